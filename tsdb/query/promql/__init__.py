"""PromQL: parser (lexer, parser, ast), vectorised evaluator and the function library."""
