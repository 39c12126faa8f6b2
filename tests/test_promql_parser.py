"""PromQL parser: precedence, every node kind, modifiers, type checks, errors with positions,
round trips through the printer, and answers recorded from a real Prometheus 2.42."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.query.promql import ast
from tsdb.query.promql.ast import ValueType
from tsdb.query.promql.errors import ParseError, QueryError
from tsdb.query.promql.lexer import go_quote
from tsdb.query.promql.parser import (
    has_non_empty_matcher,
    parse_duration,
    parse_expr,
    parse_match_params,
    parse_metric_selector,
    parse_number,
    value_type,
)
from tsdb.query.promql.printer import format_duration, format_float, to_promql
from tsdb.query.promql.signatures import FUNCTIONS, get_function
from tsdb.storage.labels import Matcher

PUBLIC_QUERIES = Path(__file__).resolve().parents[2] / "shared" / "promql-compat" / "public.txt"


def structure(node: object) -> object:
    """Every field of a tree except positions, as nested tuples (NaN == NaN, -0 != 0)."""
    if isinstance(node, Matcher):
        return ("Matcher", node.name, node.op, node.value)
    if isinstance(node, float):
        return repr(node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            structure(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "pos")
    if isinstance(node, list):
        return tuple(structure(x) for x in node)
    return node


def show(e: ast.Expr) -> str:
    """Fully parenthesised rendering that makes the tree shape visible."""
    if isinstance(e, ast.BinaryExpr):
        mod = " bool" if e.return_bool else ""
        vm = e.matching
        if vm is not None and (vm.on or vm.matching_labels):
            mod += f" {'on' if vm.on else 'ignoring'}({','.join(vm.matching_labels)})"
        if vm is not None and vm.card in ("many-to-one", "one-to-many"):
            side = "left" if vm.card == "many-to-one" else "right"
            mod += f" group_{side}({','.join(vm.include)})"
        return f"({show(e.lhs)} {e.op}{mod} {show(e.rhs)})"
    if isinstance(e, ast.UnaryExpr):
        return f"{'neg' if e.op == '-' else 'pos'}({show(e.expr)})"
    if isinstance(e, ast.ParenExpr):
        return f"paren({show(e.expr)})"
    if isinstance(e, ast.SubqueryExpr):
        return f"subquery({show(e.expr)})" + to_promql(e)[len(to_promql(e.expr)):]
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, ast.AggregateExpr):
        args = ([show(e.param)] if e.param is not None else []) + [show(e.expr)]
        grouping = f" {'without' if e.without else 'by'}({','.join(e.grouping)})" \
            if e.without or e.grouping else ""
        return f"{e.op}{grouping}({', '.join(args)})"
    return to_promql(e)


def parse_error(text: str) -> str:
    with pytest.raises(ParseError) as info:
        parse_expr(text)
    assert info.value.error_type == "bad_data"
    return str(info.value)


# --- precedence and associativity ----------------------------------------------------------


@pytest.mark.parametrize("text,shape", [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("1 * 2 + 3", "((1 * 2) + 3)"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b % c atan2 d * e", "((((a / b) % c) atan2 d) * e)"),
    ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
    ("a * b ^ c", "(a * (b ^ c))"),
    ("-2 ^ 2", "neg((2 ^ 2))"),
    ("-2 * 3", "(-2 * 3)"),
    ("-a * b", "(neg(a) * b)"),
    ("-a + b", "(neg(a) + b)"),
    ("a * -b ^ c", "(a * neg((b ^ c)))"),
    ("a ^ -b * c", "((a ^ neg(b)) * c)"),
    ("2 ^ -3 ^ 2", "(2 ^ neg((3 ^ 2)))"),
    ("a == b + c", "(a == (b + c))"),
    ("a + b == c", "((a + b) == c)"),
    ("a == b != c", "((a == b) != c)"),
    ("a > b and c < d or e", "(((a > b) and (c < d)) or e)"),
    ("a or b and c unless d", "(a or ((b and c) unless d))"),
    ("a unless b and c", "((a unless b) and c)"),
    ("a or b or c", "((a or b) or c)"),
    ("(a + b) * c", "(paren((a + b)) * c)"),
    ("a + b offset 5m", "(a + b offset 5m)"),
    ("-a offset 5m", "neg(a offset 5m)"),
    ("-a @ 5", "neg(a @ 5.000)"),
    ("a + max_over_time(b[5m:]) * c", "(a + (max_over_time(subquery(b)[5m:]) * c))"),
])
def test_precedence(text: str, shape: str) -> None:
    assert show(parse_expr(text)) == shape


@pytest.mark.parametrize("text,value", [
    ("-1", -1.0), ("+1", 1.0), ("- -1", 1.0), ("-+-1", 1.0), ("--1", 1.0), ("-0", -0.0),
    ("-Inf", -math.inf), ("-0x10", -16.0),
])
def test_unary_minus_on_a_literal_is_folded(text: str, value: float) -> None:
    expr = parse_expr(text)
    assert isinstance(expr, ast.NumberLiteral)
    assert repr(expr.value) == repr(value)
    assert expr.pos == (0, len(text))


def test_unary_minus_on_parentheses_is_kept() -> None:
    expr = parse_expr("-(1)")
    assert isinstance(expr, ast.UnaryExpr) and isinstance(expr.expr, ast.ParenExpr)


def test_binary_positions() -> None:
    expr = parse_expr("foo + bar * 2")
    assert isinstance(expr, ast.BinaryExpr)
    assert expr.pos == (0, 13) and expr.rhs.pos == (6, 13)


# --- literals ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("1", 1.0), ("1.5", 1.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("1E-3", 0.001),
    ("1.e5", 1e5), ("0x1F", 31.0), ("0X1f", 31.0), ("0x1e5", 485.0), ("010", 8.0),
    ("0755", 493.0), ("08", 8.0), ("09.5", 9.5), ("00", 0.0), ("1e-400", 0.0),
    ("9223372036854775808", 9223372036854775808.0), ("Inf", math.inf), ("iNf", math.inf),
])
def test_number_literals(text: str, value: float) -> None:
    expr = parse_expr(text)
    assert isinstance(expr, ast.NumberLiteral) and expr.value == value


def test_nan_literal() -> None:
    expr = parse_expr("NaN")
    assert isinstance(expr, ast.NumberLiteral) and math.isnan(expr.value)


@pytest.mark.parametrize("text,message", [
    ("0x", 'strconv.ParseFloat: parsing "0x": invalid syntax'),
    ("1e", 'strconv.ParseFloat: parsing "1e": invalid syntax'),
    ("0x1.8", 'strconv.ParseFloat: parsing "0x1.8": invalid syntax'),
    ("1e400", 'strconv.ParseFloat: parsing "1e400": value out of range'),
    ("0x8000000000000000", 'strconv.ParseFloat: parsing "0x8000000000000000": invalid syntax'),
])
def test_invalid_numbers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        parse_number(text)
    assert parse_error(text) == f"1:1: parse error: error parsing number: {message}"


def test_string_literals() -> None:
    for text, value in [('"a\\tb"', "a\tb"), ("'it\\'s'", "it's"), ("`raw\\n`", "raw\\n")]:
        expr = parse_expr(text)
        assert isinstance(expr, ast.StringLiteral) and expr.value == value
    # bytes that are not UTF-8 read as U+FFFD, as Prometheus' JSON shows them
    expr = parse_expr('"\\xff"')
    assert isinstance(expr, ast.StringLiteral) and expr.value == "\ufffd"


# --- selectors -----------------------------------------------------------------------------


def matchers(expr: ast.Expr) -> list[tuple[str, str, str]]:
    assert isinstance(expr, ast.VectorSelector)
    return [(m.name, m.op, m.value) for m in expr.matchers]


def test_vector_selectors() -> None:
    assert matchers(parse_expr("foo")) == [("__name__", "=", "foo")]
    assert matchers(parse_expr('foo{a="b", c!="d", e=~"f.*", g!~"h",}')) == [
        ("a", "=", "b"), ("c", "!=", "d"), ("e", "=~", "f.*"), ("g", "!~", "h"),
        ("__name__", "=", "foo")]
    assert matchers(parse_expr("{a='b'}")) == [("a", "=", "b")]
    assert matchers(parse_expr('{__name__=~"a.*"}')) == [("__name__", "=~", "a.*")]
    assert matchers(parse_expr("foo{}")) == [("__name__", "=", "foo")]
    assert matchers(parse_expr('{by="x", sum=`y`}')) == [("by", "=", "x"), ("sum", "=", "y")]
    expr = parse_expr('foo:bar{a="b"}')
    assert isinstance(expr, ast.VectorSelector) and expr.name == "foo:bar"
    assert expr.pos == (0, 14)


@pytest.mark.parametrize("name", ["sum", "by", "without", "offset", "and", "or", "unless", "start",
                                  "end", "topk", "count_values", "Sum", "group"])
def test_keywords_double_as_metric_names(name: str) -> None:
    expr = parse_expr(name)
    assert isinstance(expr, ast.VectorSelector) and expr.name == name
    expr = parse_expr(f'{name}{{a="b"}}[5m]')
    assert isinstance(expr, ast.MatrixSelector) and expr.selector.name == name


def test_empty_matching_selectors_are_rejected() -> None:
    message = "vector selector must contain at least one non-empty matcher"
    for text in ("{}", '{a=""}', '{a=~".*"}', '{a=~".*", b!~".+"}', "{}[5m]", '{__name__=""}'):
        assert parse_error(text) == f"1:1: parse error: {message}"
    for text in ('{a!=""}', '{a=~".+"}', '{a!~".*"}', '{a="", b="x"}'):
        parse_expr(text)


def test_metric_name_twice() -> None:
    assert parse_error('foo{__name__="bar"}') == \
        '1:1: parse error: metric name must not be set twice: "foo" or "bar"'
    parse_expr('{__name__="foo", __name__="bar"}')


def test_matrix_selectors() -> None:
    expr = parse_expr('rate(foo{a="b"}[1h30m] offset -5m @ 100.5)')
    assert isinstance(expr, ast.Call)
    ms = expr.args[0]
    assert isinstance(ms, ast.MatrixSelector)
    assert ms.range_ms == 5_400_000
    assert (ms.selector.offset_ms, ms.selector.at_ms) == (-300_000, 100_500)
    assert ms.pos == (5, 41)


def test_subqueries() -> None:
    expr = parse_expr("max_over_time(rate(foo[5m])[1h:1m] offset 1m @ end())")
    assert isinstance(expr, ast.Call)
    sq = expr.args[0]
    assert isinstance(sq, ast.SubqueryExpr)
    assert (sq.range_ms, sq.step_ms, sq.offset_ms, sq.at_start_or_end) == (
        3_600_000, 60_000, 60_000, "end")
    assert isinstance(sq.expr, ast.Call)
    sq = parse_expr("foo[1h:]")
    assert isinstance(sq, ast.SubqueryExpr) and sq.step_ms == 0
    sq = parse_expr("foo offset 5m [1h:]")      # offset before a subquery is on the selector
    assert isinstance(sq, ast.SubqueryExpr) and sq.offset_ms == 0
    assert isinstance(sq.expr, ast.VectorSelector) and sq.expr.offset_ms == 300_000
    sq = parse_expr("foo[5m x]")                # 2.42 lexes a letter inside [] as ':'
    assert isinstance(sq, ast.SubqueryExpr)


@pytest.mark.parametrize("text,offset,at_ms,start_end", [
    ("foo offset 5m", 300_000, None, None),
    ("foo offset -1h", -3_600_000, None, None),
    ("foo @ 1609746000", 0, 1_609_746_000_000, None),
    ("foo @ 1.5555", 0, 1556, None),
    ("foo @ -5", 0, -5000, None),
    ("foo @ +5", 0, 5000, None),
    ("foo @ - 0.0005", 0, -1, None),
    ("foo @ start()", 0, None, "start"),
    ("foo @ END ( )", 0, None, "end"),
    ("foo @ 10 offset 1m", 60_000, 10_000, None),
    ("foo offset 1m @ 10", 60_000, 10_000, None),
    ("foo Offset 1y", 31_536_000_000, None, None),
])
def test_offset_and_at(text: str, offset: int, at_ms: int | None, start_end: str | None) -> None:
    expr = parse_expr(text)
    assert isinstance(expr, ast.VectorSelector)
    assert (expr.offset_ms, expr.at_ms, expr.at_start_or_end) == (offset, at_ms, start_end)
    assert expr.pos == (0, len(text))


def test_at_timestamp_beyond_int64_milliseconds_wraps_like_go() -> None:
    expr = parse_expr("foo @ 1e17")
    assert isinstance(expr, ast.VectorSelector) and expr.at_ms == -(2**63)


# --- aggregations, functions and binary operators ------------------------------------------


def test_aggregations() -> None:
    for text in ("sum by (job, le) (foo)", "sum(foo) by (job, le)", "SUM BY (job,le,) (foo)"):
        expr = parse_expr(text)
        assert isinstance(expr, ast.AggregateExpr)
        assert (expr.op, expr.grouping, expr.without, expr.param) == (
            "sum", ["job", "le"], False, None)
    expr = parse_expr("topk without () (5, foo)")
    assert isinstance(expr, ast.AggregateExpr)
    assert (expr.op, expr.grouping, expr.without) == ("topk", [], True)
    assert isinstance(expr.param, ast.NumberLiteral) and expr.param.value == 5
    expr = parse_expr('count_values("value", foo)')
    assert isinstance(expr, ast.AggregateExpr) and isinstance(expr.param, ast.StringLiteral)
    expr = parse_expr("quantile(0.9, foo) by (bool, on, sum)")
    assert isinstance(expr, ast.AggregateExpr) and expr.grouping == ["bool", "on", "sum"]
    assert expr.pos == (0, 37)


@pytest.mark.parametrize("op", ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"])
def test_plain_aggregations(op: str) -> None:
    expr = parse_expr(f"{op}(foo)")
    assert isinstance(expr, ast.AggregateExpr) and expr.op == op and expr.param is None


@pytest.mark.parametrize("op,param", [("topk", "3"), ("bottomk", "3"), ("quantile", "0.5"),
                                      ("count_values", '"v"')])
def test_parameter_aggregations(op: str, param: str) -> None:
    expr = parse_expr(f"{op}({param}, foo)")
    assert isinstance(expr, ast.AggregateExpr) and expr.op == op and expr.param is not None


def test_function_calls() -> None:
    expr = parse_expr('label_join(up, "dst", ",", "a", "b", "c")')
    assert isinstance(expr, ast.Call) and expr.func == "label_join" and len(expr.args) == 6
    expr = parse_expr("time()")
    assert isinstance(expr, ast.Call) and expr.args == [] and expr.pos == (0, 6)
    assert value_type(parse_expr("day_of_week()")) == ValueType.VECTOR


def test_every_function_accepts_its_signature() -> None:
    samples = {ValueType.SCALAR: "1", ValueType.VECTOR: "foo", ValueType.MATRIX: "foo[5m]",
               ValueType.STRING: '"s"'}
    for sig in FUNCTIONS.values():
        args = [samples[t] for t in sig.arg_types]
        if sig.variadic > 0:
            args = args[:-1]
        expr = parse_expr(f"{sig.name}({', '.join(args)})")
        assert value_type(expr) == sig.return_type, sig.name


def test_signature_table() -> None:
    assert len(FUNCTIONS) == 70
    assert get_function("Rate") is None and get_function("mad_over_time") is None
    label_join = get_function("label_join")
    assert label_join is not None
    assert (label_join.min_args, label_join.max_args) == (3, None)
    assert label_join.arg_type(10) == ValueType.STRING
    rnd = get_function("round")
    assert rnd is not None and (rnd.min_args, rnd.max_args) == (1, 2)
    rate = get_function("rate")
    assert rate is not None and rate.arg_type(1) is None


def test_binary_matching() -> None:
    expr = parse_expr("a * on(x, y) group_left(z) b")
    assert isinstance(expr, ast.BinaryExpr) and expr.matching is not None
    assert structure(expr.matching) == ("VectorMatching", "many-to-one", ("x", "y"), True, ("z",))
    expr = parse_expr("a / ignoring(x) group_right b")
    assert isinstance(expr, ast.BinaryExpr) and expr.matching is not None
    assert structure(expr.matching) == ("VectorMatching", "one-to-many", ("x",), False, ())
    expr = parse_expr("a * on(x) group_left (y) (b)")    # the list right after group_left
    assert isinstance(expr, ast.BinaryExpr) and expr.matching is not None
    assert expr.matching.include == ["y"] and isinstance(expr.rhs, ast.ParenExpr)
    expr = parse_expr("a > bool on() b")
    assert isinstance(expr, ast.BinaryExpr) and expr.return_bool and expr.matching is not None
    assert expr.matching.on and expr.matching.card == "one-to-one"


def test_set_operators_are_many_to_many() -> None:
    for op in ("and", "or", "unless"):
        expr = parse_expr(f"a {op} on(x) b")
        assert isinstance(expr, ast.BinaryExpr) and expr.op == op
        assert expr.matching is not None and expr.matching.card == "many-to-many"


def test_matching_is_dropped_when_a_side_is_scalar() -> None:
    for text in ("a + 1", "1 - a", "1 + on() a", "a == bool 2", "1 == bool 2", "1 atan2 2"):
        expr = parse_expr(text)
        assert isinstance(expr, ast.BinaryExpr) and expr.matching is None, text


def test_operator_text_is_canonical() -> None:
    expr = parse_expr("a AND b Atan2 c")
    assert show(expr) == "(a and (b atan2 c))"


# --- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text,vt", [
    ("1", ValueType.SCALAR), ('"s"', ValueType.STRING), ("foo", ValueType.VECTOR),
    ("foo[5m]", ValueType.MATRIX), ("foo[5m:]", ValueType.MATRIX), ("-foo", ValueType.VECTOR),
    ("-(1)", ValueType.SCALAR), ("(foo)", ValueType.VECTOR), ("1 + 2 * 3", ValueType.SCALAR),
    ("1 + foo", ValueType.VECTOR), ("time()", ValueType.SCALAR), ("pi() ^ 2", ValueType.SCALAR),
    ("scalar(foo)", ValueType.SCALAR), ("vector(1)", ValueType.VECTOR),
    ("sum(foo)", ValueType.VECTOR), ("1 < bool 2", ValueType.SCALAR),
    ("(1 + (2 * foo))", ValueType.VECTOR),
])
def test_value_type(text: str, vt: ValueType) -> None:
    assert value_type(parse_expr(text)) == vt


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("text,message", [
    ("", "1:1: parse error: no expression found in input"),
    ("# just a comment", "1:1: parse error: no expression found in input"),
    ("rate(foo)", '1:6: parse error: expected type range vector in call to function "rate", '
                  "got instant vector"),
    ("foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant "
                    "vector types"),
    ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo and 1", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ("foo or on(a) group_left bar", '1:1: parse error: no grouping allowed for "or" operation'),
    ("1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("foo + on(a) group_left(a) bar",
     '1:5: parse error: label "a" must not occur in ON and GROUP clause at once'),
    ("sum()", "1:1: parse error: no arguments for aggregate expression provided"),
    ("topk(foo)", "1:1: parse error: wrong number of arguments for aggregate expression "
                  "provided, expected 2, got 1"),
    ("topk(foo, bar)", "1:6: parse error: expected type scalar in aggregation parameter, got "
                       "instant vector"),
    ("count_values(1, foo)", "1:14: parse error: expected type string in aggregation parameter, "
                             "got scalar"),
    ("sum(1)", "1:5: parse error: expected type instant vector in aggregation expression, "
               "got scalar"),
    ("foo()", '1:1: parse error: unknown function with name "foo"'),
    ("RATE(foo[5m])", '1:1: parse error: unknown function with name "RATE"'),
    ("pi(1)", '1:1: parse error: expected 0 argument(s) in call to "pi", got 1'),
    ("round(foo, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", '
                         "got 3"),
    ("label_join(foo, \"a\")", '1:1: parse error: expected at least 3 argument(s) in call to '
                               '"label_join", got 2'),
    ("rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"),
    ("(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"),
    ("foo offset 1m [5m]", "1:15: parse error: no offset modifiers allowed before range"),
    ("foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
    ("foo[5m:][5m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix "
                      "instead"),
    ("-foo[5m]", '1:1: parse error: unary expression only allowed on expressions of type scalar '
                 'or instant vector, got "range vector"'),
    ("foo offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
    ("sum(foo) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant "
                           "vector selector or range vector selector or a subquery"),
    ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("1 @ 5", "1:1: parse error: @ modifier must be preceded by an instant vector selector or "
              "range vector selector or a subquery"),
    ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
    ("foo @ 1e30", "1:1: parse error: timestamp out of bounds for @ modifier: "
                   "1000000000000000019884624838656.000000"),
    ("foo[0s]", "1:5: parse error: duration must be greater than 0"),
    ("foo[1d1ms1s]", '1:5: parse error: not a valid duration string: "1d1ms1s"'),
    ("foo[300y]", "1:5: parse error: duration out of range"),
    ("foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("foo bar", '1:5: parse error: unexpected identifier "bar"'),
    ("sum(foo bar)", '1:9: parse error: unexpected identifier "bar" in aggregation'),
    ("sum by (a b) (foo)", '1:11: parse error: unexpected identifier "b" in grouping opts, '
                           'expected "," or ")"'),
    ("foo{a=b}", '1:7: parse error: unexpected identifier "b" in label matching, expected string'),
    ("foo offset 5", '1:12: parse error: unexpected number "5" in offset, expected duration'),
    ("foo @ x", '1:7: parse error: unexpected identifier "x" in @, expected timestamp'),
    ("foo[5m 1]", '1:8: parse error: unexpected number "1" in subquery or range, expected ":" '
                  'or "]"'),
    ("foo +", "1:6: parse error: unexpected end of input"),
    ("sum(foo", "1:8: parse error: unclosed left parenthesis"),
    ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
    ("foo\n  + bar{\n  a=1}", "3:5: parse error: unexpected character inside braces: '1'"),
    ('"é" + é', "1:8: parse error: unexpected character: 'é'"),     # columns count UTF-8 bytes
    ("rate(foo) + bar(1)", '1:13: parse error: unknown function with name "bar"'),  # parse first
    ("sum(foo, bar) }", "1:15: parse error: unexpected character: '}'"),
])
def test_errors(text: str, message: str) -> None:
    assert parse_error(text) == message


def test_error_attributes() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr("foo\n  + ")
    assert (info.value.line, info.value.column, info.value.detail) == (
        2, 5, "unexpected end of input")


# --- durations and metric selectors --------------------------------------------------------


@pytest.mark.parametrize("text,ms", [
    ("1ms", 1), ("5s", 5000), ("5m", 300_000), ("1h30m", 5_400_000), ("2d", 172_800_000),
    ("1w", 604_800_000), ("1y", 31_536_000_000), ("1y2w3d4h5m6s7ms", 33_019_506_007),
    ("90m", 5_400_000), ("290y", 290 * 31_536_000_000),
])
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text,message", [
    ("", "empty duration string"),
    ("0", "duration must be greater than 0"),
    ("0s", "duration must be greater than 0"),
    ("5", 'not a valid duration string: "5"'),
    ("1m1h", 'not a valid duration string: "1m1h"'),
    ("5m5m", 'not a valid duration string: "5m5m"'),
    ("1.5h", 'not a valid duration string: "1.5h"'),
    ("1H", 'not a valid duration string: "1H"'),
    ("-5m", 'not a valid duration string: "-5m"'),
    ("300y", "duration out of range"),
    ("99999999999999999999ms", "duration out of range"),
])
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_parse_duration_allow_zero() -> None:
    assert parse_duration("0", allow_zero=True) == 0
    assert parse_duration("0s", allow_zero=True) == 0


def test_parse_metric_selector() -> None:
    got = parse_metric_selector('up{job="x"}')
    assert [(m.name, m.op, m.value) for m in got] == [("job", "=", "x"), ("__name__", "=", "up")]
    assert parse_metric_selector("{}") == []          # the API rejects it, not the parser
    assert len(parse_metric_selector('foo{__name__="bar"}')) == 2
    for text, message in [
        ("rate(foo)", '1:5: parse error: unexpected "("'),
        ("foo[5m]", '1:4: parse error: unexpected "["'),
        ("foo offset 5m", "1:5: parse error: unexpected <offset>"),
        ("", "1:1: parse error: unexpected end of input"),
        ("1", '1:1: parse error: unexpected number "1"'),
        ("(foo)", '1:1: parse error: unexpected "("'),
    ]:
        with pytest.raises(ParseError) as info:
            parse_metric_selector(text)
        assert str(info.value) == message


def test_match_params() -> None:
    assert has_non_empty_matcher([Matcher("a", "=~", ".+")])
    assert not has_non_empty_matcher([Matcher("a", "=~", ".*"), Matcher("b", "=", "")])
    assert len(parse_match_params(["up", '{job="x"}'])) == 2
    with pytest.raises(QueryError) as info:
        parse_match_params(["up", '{a=~".*"}'])
    assert (str(info.value), info.value.error_type) == (
        "match[] must contain at least one non-empty matcher", "bad_data")


# --- printer -------------------------------------------------------------------------------


@pytest.mark.parametrize("ms,text", [
    (0, "0s"), (1, "1ms"), (1500, "1s500ms"), (300_000, "5m"), (5_400_000, "1h30m"),
    (86_400_000, "1d"), (604_800_000, "1w"), (8 * 86_400_000, "8d"), (31_536_000_000, "1y"),
    (31_536_000_000 + 86_400_000, "366d"),
])
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize("value,text", [
    (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (1.5, "1.5"), (100.0, "100"), (123456.0, "123456"),
    (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (-2.5e-7, "-2.5e-07"), (1e21, "1e+21"), (1.5e300, "1.5e+300"), (math.inf, "Inf"),
    (-math.inf, "-Inf"), (math.nan, "NaN"),
])
def test_format_float_is_go_percent_v(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize("text,printed", [
    ('sum(rate(foo{job="a"}[5m])) by (job)', 'sum by (job) (rate(foo{job="a"}[5m]))'),
    ("foo offset 5m @ 10", "foo @ 10.000 offset 5m"),
    ("foo[5m] offset -1m @ start()", "foo[5m] @ start() offset -1m"),
    ("rate(foo[5m])[1h:5m] offset 1m", "rate(foo[5m])[1h:5m] offset 1m"),
    ("a * on(x) group_left(y) b", "a * on (x) group_left (y) b"),
    ("a > bool ignoring(x) b", "a > bool ignoring (x) b"),
    ("topk without () (3, foo)", "topk without () (3, foo)"),
    ("-(1 + 2) ^ -3", "-(1 + 2) ^ -3"),
    ("'a\"b'", '"a\\"b"'),
    ('{__name__="foo", a="b"}', '{__name__="foo",a="b"}'),
    ("foo{a=\"b\"}", 'foo{a="b"}'),
    ("0x10 + 1e6", "16 + 1e+06"),
])
def test_printer(text: str, printed: str) -> None:
    assert to_promql(parse_expr(text)) == printed


def test_printer_round_trips_inf_on_the_left_of_pow() -> None:
    expr = parse_expr("Inf ^ 2")
    assert structure(parse_expr(to_promql(expr))) == structure(expr)


# Queries of the compat set that Prometheus 2.42 itself refuses to parse.
REJECTED_BY_PROMETHEUS = {'{__name__=~".*"}', "1 > 2", "unknown_function(up)", "abs(-2)"}


def public_queries() -> list[str]:
    if not PUBLIC_QUERIES.exists():
        return []
    out = []
    for line in PUBLIC_QUERIES.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append(line.split("# tier:")[0].strip())
    return out


@pytest.mark.skipif(not PUBLIC_QUERIES.exists(), reason="promql-compat query set not present")
def test_public_compat_queries_parse_and_round_trip() -> None:
    queries = public_queries()
    assert len(queries) > 150
    for query in queries:
        if query in REJECTED_BY_PROMETHEUS:
            with pytest.raises(ParseError):
                parse_expr(query)
            continue
        expr = parse_expr(query)
        printed = to_promql(expr)
        assert structure(parse_expr(printed)) == structure(expr), query
        assert to_promql(parse_expr(printed)) == printed


# --- properties ----------------------------------------------------------------------------

_NAMES = st.sampled_from(["foo", "bar", "up", "sum", "by", "offset", "and", "start", "a:b", "x_1"])
_LABELS = st.sampled_from(["a", "job", "le", "bool", "on", "sum", "by", "offset", "atan2"])
_REGEXES = st.sampled_from([".*", ".+", "a|b", "x.*", "[0-9]+", "", "(?i)foo"])
_DURATIONS = st.sampled_from(["1ms", "30s", "5m", "1h30m", "2d", "1w", "1y", "90s", "1h1ms"])


@st.composite
def _matcher(draw: st.DrawFn) -> str:
    name = draw(_LABELS)
    op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    value = draw(_REGEXES) if "~" in op else draw(st.text(max_size=6))
    quote = draw(st.sampled_from(['"', "'"]))
    return f"{name}{op}{go_quote(value, quote)}"


@st.composite
def _selector(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.just(""), _NAMES))
    matchers = draw(st.lists(_matcher(), max_size=3))
    if not name:
        matchers.append('job="x"')
    text = name + ("{" + ", ".join(matchers) + "}" if matchers or not name else "")
    return text


@st.composite
def _modifiers(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f" offset {draw(st.sampled_from(['', '-']))}{draw(_DURATIONS)}")
    if draw(st.booleans()):
        at = draw(st.one_of(st.sampled_from(["start()", "end()"]),
                            st.integers(-10**12, 10**12).map(lambda ms: "%.3f" % (ms / 1000))))
        parts.append(f" @ {at}")
    if draw(st.booleans()):
        parts.reverse()
    return "".join(parts)


def _number(value: float) -> str:
    return format_float(value) if not math.isinf(value) else ("Inf" if value > 0 else "-Inf")


_SCALAR_LEAF = st.one_of(
    st.floats(allow_nan=True).map(_number),
    st.integers(0, 2**40).map(hex),
    st.sampled_from(["time()", "pi()", "NaN", "-Inf", ".5", "1e3"]),
)
_ARITH = st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2"])
_CMP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])

_VECTOR_LEAF = st.builds(lambda s, m: s + m, _selector(), _modifiers())
_MATRIX_LEAF = st.builds(lambda s, d, m: f"{s}[{d}]{m}", _selector(), _DURATIONS, _modifiers())

scalars = st.recursive(_SCALAR_LEAF, lambda inner: st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", inner, _ARITH, inner),
    st.builds(lambda a, op, b: f"{a} {op} bool {b}", inner, _CMP, inner),
    st.builds(lambda s: f"-{s}", inner),
    st.builds(lambda s: f"+({s})", inner),
    st.builds(lambda v: f"scalar({v})", _VECTOR_LEAF),
), max_leaves=6)


def _extend_vectors(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    labels = st.lists(_LABELS, max_size=3).map(", ".join)
    return st.one_of(
        st.builds(lambda op, g, v: f"{op}{g}({v})",
                  st.sampled_from(["sum", "avg", "count", "min", "max", "group", "stddev"]),
                  st.one_of(st.just(""), labels.map(lambda ls: f" by ({ls}) ")), inner),
        st.builds(lambda op, p, v: f"{op}({p}, {v}) without (a)",
                  st.sampled_from(["topk", "bottomk", "quantile"]), scalars, inner),
        st.builds(lambda v: f'count_values("value", {v})', inner),
        st.builds(lambda v: f'label_join({v}, "dst", ",", "a", "b")', inner),
        st.builds(lambda s, v: f"histogram_quantile({s}, {v})", scalars, inner),
        st.builds(lambda f, v, d, step, m: f"{f}(({v})[{d}:{step}]{m})",
                  st.sampled_from(["max_over_time", "rate", "changes"]), inner, _DURATIONS,
                  st.one_of(st.just(""), _DURATIONS), _modifiers()),
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.one_of(_ARITH, _CMP), inner),
        st.builds(lambda a, op, b: f"{a} {op} bool {b}", inner, _CMP, scalars),
        st.builds(lambda a, op, b: f"{a} {op} {b}", scalars, _ARITH, inner),
        st.builds(lambda a, op, on, ls, b: f"({a}) {op} {on}({ls}) ({b})", inner,
                  st.sampled_from(["and", "or", "unless", "+", ">"]),
                  st.sampled_from(["on", "ignoring"]), labels, inner),
        st.builds(lambda a, g, ls, b: f"({a}) * on(job) {g}({', '.join(ls)}) ({b})", inner,
                  st.sampled_from(["group_left", "group_right"]),
                  st.lists(st.sampled_from(["x", "y"]), max_size=2), inner),
        st.builds(lambda v: f"-{v}", inner),
        st.builds(lambda v: f"({v})", inner),
    )


vectors = st.recursive(st.one_of(
    _VECTOR_LEAF,
    st.builds(lambda f, m: f"{f}({m})", st.sampled_from(["rate", "max_over_time", "deriv"]),
              _MATRIX_LEAF),
    st.builds(lambda s: f"vector({s})", scalars),
), _extend_vectors, max_leaves=8)

matrices = st.one_of(
    _MATRIX_LEAF,
    st.builds(lambda v, d, step, m: f"({v})[{d}:{step}]{m}", vectors, _DURATIONS,
              st.one_of(st.just(""), _DURATIONS), _modifiers()),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(vectors.map(lambda t: (t, ValueType.VECTOR)),
                 scalars.map(lambda t: (t, ValueType.SCALAR)),
                 matrices.map(lambda t: (t, ValueType.MATRIX))))
def test_generated_expressions_parse_and_round_trip(case: tuple[str, ValueType]) -> None:
    text, expected_type = case
    expr = parse_expr(text)
    assert value_type(expr) == expected_type
    printed = to_promql(expr)
    again = parse_expr(printed)
    assert structure(again) == structure(expr)
    assert to_promql(again) == printed


_QUERY_FRAGMENTS = st.sampled_from([
    "foo", "sum", "by", "rate", "(", ")", "[", "]", "{", "}", ",", ":", "=", "!=", "=~", '"x"',
    "5m", "1", "-", "+", "*", "^", "==", "bool", "on", "group_left", "offset", "@", "start()",
    "and", "#", "\n", " ", "topk", "label_join", "0x", "Inf", "without", "atan2", "`", "'",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_QUERY_FRAGMENTS, max_size=25).map(" ".join),
                 st.lists(_QUERY_FRAGMENTS, max_size=25).map("".join),
                 st.text(max_size=30)))
def test_parser_only_raises_parse_errors(text: str) -> None:
    try:
        expr = parse_expr(text)
    except ParseError as e:
        assert e.line >= 1 and e.column >= 1
        return
    assert structure(parse_expr(to_promql(expr))) == structure(expr)


def test_long_chains_and_deep_nesting() -> None:
    chain = " or ".join(f"m{i}" for i in range(5000))
    expr = parse_expr(chain)
    assert value_type(expr) == ValueType.VECTOR
    assert value_type(parse_expr(" + ".join(["1"] * 5000))) == ValueType.SCALAR
    nested = "(" * 100 + "foo" + ")" * 100
    assert isinstance(parse_expr(nested), ast.ParenExpr)


# --- answers of a real Prometheus 2.42 -----------------------------------------------------


@pytest.mark.parametrize("query,answer", [
    ("-2^2", "OK"),
    ("histogram_count(up)", "OK"),
    ("rate(up)",
     "1:6: parse error: expected type range vector in call to function \"rate\", got instant ve"
     "ctor"),
    ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("foo offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
    ("sum(x) by (a) by (b)", "1:15: parse error: unexpected <by>"),
    ("{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("sum", "OK"),
    ("by", "OK"),
    ("sum{a=\"b\"}", "OK"),
    ("offset", "OK"),
    ("avg + 1", "OK"),
    ("start", "OK"),
    ("end", "OK"),
    ("start()", "1:6: parse error: unexpected \"(\""),
    ("bool", "1:1: parse error: unexpected <bool>"),
    ("on", "1:1: parse error: unexpected <on>"),
    ("ignoring", "1:1: parse error: unexpected <ignoring>"),
    ("group_left", "1:1: parse error: unexpected <group_left>"),
    ("atan2", "1:1: parse error: unexpected <op:atan2>"),
    ("and", "OK"),
    ("or", "OK"),
    ("foo and", "1:8: parse error: unexpected end of input"),
    ("without", "OK"),
    ("group", "OK"),
    ("count_values", "OK"),
    ("topk", "OK"),
    ("Inf", "OK"),
    ("NaN", "OK"),
    ("nan", "OK"),
    ("iNf", "OK"),
    ("Infinity", "OK"),
    ("inf{a=\"b\"}", "1:4: parse error: unexpected \"{\""),
    ("sum by", "1:7: parse error: unexpected end of input in grouping opts, expected \"(\""),
    ("sum(", "1:5: parse error: unclosed left parenthesis"),
    ("sum()", "1:1: parse error: no arguments for aggregate expression provided"),
    ("sum(foo", "1:8: parse error: unclosed left parenthesis"),
    ("sum(foo,)", "1:8: parse error: trailing commas not allowed in function call args"),
    ("sum(1,foo)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1"
     ", got 2"),
    ("topk(foo)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2"
     ", got 1"),
    ("topk(1,2,3)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2"
     ", got 3"),
    ("rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"),
    ("rate(foo[5m]", "1:13: parse error: unclosed left parenthesis"),
    ("foo(", "1:5: parse error: unclosed left parenthesis"),
    ("foo()", "1:1: parse error: unknown function with name \"foo\""),
    ("pi()", "OK"),
    ("pi(1)", "1:1: parse error: expected 0 argument(s) in call to \"pi\", got 1"),
    ("time()", "OK"),
    ("round(foo)", "OK"),
    ("round(foo,1,2)",
     "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3"),
    ("label_join(foo,\"a\",\"b\")", "OK"),
    ("label_join(foo,\"a\")",
     "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"),
    ("days_in_month()", "OK"),
    ("days_in_month(foo, foo)",
     "1:1: parse error: expected at most 1 argument(s) in call to \"days_in_month\", got 2"),
    ("foo and and", "OK"),
    ("foo offset offset", "1:12: parse error: unexpected <offset> in offset, expected duration"),
    ("foo by", "1:5: parse error: unexpected <by>"),
    ("sum offset 5m", "OK"),
    ("foo +", "1:6: parse error: unexpected end of input"),
    ("+", "1:2: parse error: unexpected end of input"),
    ("-", "1:2: parse error: unexpected end of input"),
    ("(", "1:2: parse error: unclosed left parenthesis"),
    (")", "1:2: parse error: unexpected right parenthesis ')'"),
    ("()", "1:2: parse error: unexpected \")\""),
    ("(foo", "1:5: parse error: unclosed left parenthesis"),
    ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
    ("1 2", "1:3: parse error: unexpected number \"2\""),
    ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
    ("foo{", "1:5: parse error: unexpected end of input inside braces"),
    ("foo{a", "1:6: parse error: unexpected end of input inside braces"),
    ("foo{a=", "1:7: parse error: unexpected end of input inside braces"),
    ("foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"),
    ("foo{a=\"b\",}", "OK"),
    ("foo{,}",
     "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
    ("foo{a=\"b\" c=\"d\"}",
     "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""),
    ("foo{a=b}",
     "1:7: parse error: unexpected identifier \"b\" in label matching, expected string"),
    ("foo{a~\"b\"}", "1:6: parse error: unexpected character inside braces: '~'"),
    ("foo{a=~}", "1:8: parse error: unexpected \"}\" in label matching, expected string"),
    ("foo{\"a\"=\"b\"}",
     "1:5: parse error: unexpected string \"\\\"a\\\"\" in label matching, expected identifier "
     "or \"}\""),
    ("foo{a:b=\"c\"}", "1:6: parse error: unexpected character inside braces: ':'"),
    ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("foo{}", "OK"),
    ("foo[", "1:5: parse error: missing unit character in duration"),
    ("foo[5m", "1:7: parse error: unclosed left bracket"),
    ("foo[5m:", "1:8: parse error: unclosed left bracket"),
    ("foo[5m:1m", "1:10: parse error: unclosed left bracket"),
    ("foo[5m:1m:]", "1:10: parse error: unexpected colon ':'"),
    ("foo[]", "1:5: parse error: missing unit character in duration"),
    ("foo[5]", "1:5: parse error: missing unit character in duration"),
    ("foo[5m x]", "OK"),
    ("foo[5m:x]", "1:8: parse error: unexpected colon 'x'"),
    ("foo[x]", "1:5: parse error: bad duration syntax: \"\""),
    ("foo[:5m]", "1:5: parse error: missing unit character in duration"),
    ("foo[1h5]", "1:5: parse error: bad duration syntax: \"1h5\""),
    ("foo[0s]", "1:5: parse error: duration must be greater than 0"),
    ("foo[5m5m]", "1:5: parse error: not a valid duration string: \"5m5m\""),
    ("foo[1m1h]", "1:5: parse error: not a valid duration string: \"1m1h\""),
    ("foo[5mm]", "1:5: parse error: bad duration syntax: \"5mm\""),
    ("", "1:1: parse error: no expression found in input"),
    ("# comment", "1:1: parse error: no expression found in input"),
    ("foo # comment", "OK"),
    ("foo offset -5m", "OK"),
    ("foo offset +5m", "1:12: parse error: unexpected <op:+> in offset, expected duration"),
    ("foo offset 5", "1:12: parse error: unexpected number \"5\" in offset, expected duration"),
    ("foo offset 0s", "1:12: parse error: duration must be greater than 0"),
    ("foo[1y2y]", "1:5: parse error: bad duration syntax: \"1y2\""),
    ("foo[999999999999y]", "1:5: parse error: duration out of range"),
    ("foo[300y]", "1:5: parse error: duration out of range"),
    ("foo[290y]", "OK"),
    ("foo[1y1w1d1h1m1s1ms]", "OK"),
    ("foo[1ms]", "OK"),
    ("foo[1d1ms1s]", "1:5: parse error: not a valid duration string: \"1d1ms1s\""),
    ("foo[1M]", "1:5: parse error: bad duration syntax: \"1\""),
    ("foo[1H]", "1:5: parse error: bad duration syntax: \"1\""),
    ("foo[5m:0s]", "1:8: parse error: duration must be greater than 0"),
    ("foo[5m] offset 1m", "OK"),
    ("foo offset 1m [5m]", "1:15: parse error: no offset modifiers allowed before range"),
    ("foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
    ("foo @ 5", "OK"),
    ("foo @ -5", "OK"),
    ("foo @ +5", "OK"),
    ("foo @ start()", "OK"),
    ("foo @ end()", "OK"),
    ("foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
    ("foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"),
    ("foo @ 1e30",
     "1:1: parse error: timestamp out of bounds for @ modifier: 1000000000000000019884624838656"
     ".000000"),
    ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("foo @ start() @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("foo @ 1 offset 1m", "OK"),
    ("foo offset 1m @ 1", "OK"),
    ("1 @ 5",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("(foo) @ 5",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("sum(foo) offset 5m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("foo @", "1:6: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ x", "1:7: parse error: unexpected identifier \"x\" in @, expected timestamp"),
    ("foo @ \"1\"", "1:7: parse error: unexpected string \"\\\"1\\\"\" in @, expected timestamp"),
    ("foo @ 5m", "1:7: parse error: unexpected duration \"5m\" in @, expected timestamp"),
    ("foo offset 5m[5m:]", "OK"),
    ("foo[5m:] @ 1 offset 2m", "OK"),
    ("foo[5m:][5m:]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
    ("foo[5m][5m]", "1:8: parse error: ranges only allowed for vector selectors"),
    ("foo[5m][5m:]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
    ("(foo[5m])[5m]", "1:10: parse error: ranges only allowed for vector selectors"),
    ("rate(foo[5m])[5m:1m]", "OK"),
    ("-foo[5m]",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"range vector\""),
    ("foo[5m] offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
    ("foo @ 1.5555", "OK"),
    ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo == bool bar", "OK"),
    ("1 == bool 2", "OK"),
    ("1 == 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("foo == 1", "OK"),
    ("foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
    ("1 and foo", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
    ("1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
    ("foo and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation"),
    ("foo + on(a) group_left(a) bar",
     "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"),
    ("foo + ignoring(a) group_left(a) bar", "OK"),
    ("foo + on(a) bool bar", "1:13: parse error: unexpected <bool>"),
    ("foo == bool on(a) bar", "OK"),
    ("foo + group_left bar", "1:7: parse error: unexpected <group_left>"),
    ("foo + on bar",
     "1:10: parse error: unexpected identifier \"bar\" in grouping opts, expected \"(\""),
    ("foo + on() bar", "OK"),
    ("1 + on() foo", "OK"),
    ("1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("foo + on(a,) bar", "OK"),
    ("foo + on(a,,) bar", "1:12: parse error: unexpected \",\" in grouping opts, expected label"),
    ("foo + on(,) bar", "1:10: parse error: unexpected \",\" in grouping opts, expected label"),
    ("foo + on(a b) bar",
     "1:12: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
    ("foo + on(\"a\") bar",
     "1:10: parse error: unexpected string \"\\\"a\\\"\" in grouping opts, expected label"),
    ("foo + on(sum, by, bool, on, offset, start, end, atan2, and) bar", "OK"),
    ("foo + on(inf) bar",
     "1:10: parse error: unexpected number \"inf\" in grouping opts, expected label"),
    ("foo + on(a:b) bar",
     "1:10: parse error: unexpected metric identifier \"a:b\" in grouping opts, expected label"),
    ("foo * on(a) group_left(b) bar", "OK"),
    ("foo * on(a) group_right bar", "OK"),
    ("foo * on(a) group_right() bar", "OK"),
    ("foo * on(a) group_right(b c) bar",
     "1:27: parse error: unexpected identifier \"c\" in grouping opts, expected \",\" or \")\""),
    ("foo or on(a) group_right bar", "1:1: parse error: no grouping allowed for \"or\" operation"),
    ("foo atan2 bar", "OK"),
    ("1 atan2 2", "OK"),
    ("foo[5m] + 1",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    ("1 + foo[5m]",
     "1:5: parse error: binary expression must contain only scalar and instant vector types"),
    ("\"a\" + 1",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    ("foo unless bool bar",
     "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo ^ bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("sum by (a) (foo) + on(b) group_left sum(bar)", "OK"),
    ("sum(foo) by (a)", "OK"),
    ("sum by (a) (foo) by (b)", "1:18: parse error: unexpected <by>"),
    ("sum without (a) (foo)", "OK"),
    ("sum(foo) without ()", "OK"),
    ("topk(foo, bar)",
     "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
    ("topk(\"a\", bar)",
     "1:6: parse error: expected type scalar in aggregation parameter, got string"),
    ("count_values(1, foo)",
     "1:14: parse error: expected type string in aggregation parameter, got scalar"),
    ("count_values(\"a\", foo)", "OK"),
    ("quantile(foo, bar)",
     "1:10: parse error: expected type scalar in aggregation parameter, got instant vector"),
    ("sum(1)",
     "1:5: parse error: expected type instant vector in aggregation expression, got scalar"),
    ("sum(\"a\")",
     "1:5: parse error: expected type instant vector in aggregation expression, got string"),
    ("sum(foo[5m])",
     "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
    ("sum foo", "1:5: parse error: unexpected identifier \"foo\""),
    ("sum(foo) by", "1:12: parse error: unexpected end of input in grouping opts, expected \"(\""),
    ("sum(foo) by a",
     "1:13: parse error: unexpected identifier \"a\" in grouping opts, expected \"(\""),
    ("sum by (a b) (foo)",
     "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
    ("sum (foo) (bar)", "1:11: parse error: unexpected \"(\""),
    ("sum by(a)", "1:10: parse error: unexpected end of input in aggregation"),
    ("sum by(a) foo", "1:11: parse error: unexpected identifier \"foo\" in aggregation"),
    ("rate(foo)",
     "1:6: parse error: expected type range vector in call to function \"rate\", got instant ve"
     "ctor"),
    ("rate(foo[5m], 1)", "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2"),
    ("rate(1)",
     "1:6: parse error: expected type range vector in call to function \"rate\", got scalar"),
    ("abs(\"a\")",
     "1:5: parse error: expected type instant vector in call to function \"abs\", got string"),
    ("label_replace(foo, \"a\", \"b\", \"c\", 1)",
     "1:35: parse error: expected type string in call to function \"label_replace\", got scalar"),
    ("label_join(foo, \"a\", \"b\", 1, \"c\")",
     "1:27: parse error: expected type string in call to function \"label_join\", got scalar"),
    ("vector(\"a\")",
     "1:8: parse error: expected type scalar in call to function \"vector\", got string"),
    ("vector(foo)",
     "1:8: parse error: expected type scalar in call to function \"vector\", got instant vector"),
    ("scalar(1)",
     "1:8: parse error: expected type instant vector in call to function \"scalar\", got scalar"),
    ("histogram_quantile(foo, bar)",
     "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got i"
     "nstant vector"),
    ("round(foo, bar)",
     "1:12: parse error: expected type scalar in call to function \"round\", got instant vector"),
    ("clamp(foo, 1)", "1:1: parse error: expected 3 argument(s) in call to \"clamp\", got 2"),
    ("time(1)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
    ("absent()", "1:1: parse error: expected 1 argument(s) in call to \"absent\", got 0"),
    ("foo @ start() [5m]", "OK"),
    ("foo @ end() [5m:]", "OK"),
    ("foo @ start() [5m] @ 1", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("010", "OK"),
    ("08", "OK"),
    ("0x1F", "OK"),
    ("0X1f", "OK"),
    ("0x",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("1e",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax"),
    ("1e400",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out "
     "of range"),
    ("1e-400", "OK"),
    ("0x8000000000000000",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x8000000000000000"
     "\": invalid syntax"),
    ("9223372036854775808", "OK"),
    ("1.e5", "OK"),
    ("5.", "OK"),
    (".5", "OK"),
    ("1.2.3", "1:4: parse error: unexpected number \".3\""),
    ("0x1.8",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x1.8\": invalid sy"
     "ntax"),
    ("5mx", "1:1: parse error: bad number or duration syntax: \"5mx\""),
    ("5x", "1:1: parse error: bad number or duration syntax: \"5\""),
    ("1m", "1:1: parse error: unexpected duration \"1m\""),
    ("5m + 1", "1:1: parse error: unexpected duration \"5m\""),
    ("0755", "OK"),
    ("09.5", "OK"),
    ("0x1e5", "OK"),
    ("-0", "OK"),
    ("- -1", "OK"),
    ("-(1)", "OK"),
    ("1e+3", "OK"),
    ("1E3", "OK"),
    ("0e0", "OK"),
    ("1_000", "1:1: parse error: bad number or duration syntax: \"1\""),
    ("00", "OK"),
    ("\"\\x41\\u00e9\\U0001F600\\101\"", "OK"),
    ("'a\\'b'", "OK"),
    ("\"a\\'b\"", "1:1: parse error: unknown escape sequence U+0027 '''"),
    ("`a\\nb`", "OK"),
    ("\"\\q\"", "1:1: parse error: unknown escape sequence U+0071 'q'"),
    ("\"\\400\"", "1:1: parse error: escape sequence is an invalid Unicode code point"),
    ("\"\\ud800\"", "1:1: parse error: escape sequence is an invalid Unicode code point"),
    ("\"\\x4\"", "1:1: parse error: illegal character U+0022 '\"' in escape sequence"),
    ("\"abc", "1:1: parse error: unterminated quoted string"),
    ("`abc", "1:1: parse error: unterminated raw string"),
    ("\"\\", "1:1: parse error: escape sequence not terminated"),
    ("'\\\"'", "1:1: parse error: unknown escape sequence U+0022 '\"'"),
    ("\"\\xff\"", "OK"),
    ("\"\\xc3\\xa9\"", "OK"),
    ("\"é\"", "OK"),
    ("\"\\a\\b\\f\\n\\r\\t\\v\\\\\"", "OK"),
    ("\"\\u00\"", "1:1: parse error: illegal character U+0022 '\"' in escape sequence"),
    ("\"a\\\"b\"", "OK"),
    ("'a\"b'", "OK"),
    ("`a\"b'`", "OK"),
    ("}", "1:1: parse error: unexpected character: '}'"),
    ("foo}", "1:4: parse error: unexpected character: '}'"),
    ("foo]", "1:4: parse error: unexpected right bracket ']'"),
    ("foo[5m]]", "1:8: parse error: unexpected right bracket ']'"),
    ("foo[5m[5m]]", "1:7: parse error: unexpected left bracket '['"),
    ("$", "1:1: parse error: unexpected character: '$'"),
    ("foo{a=\"b\"}{c=\"d\"}", "1:11: parse error: unexpected \"{\""),
    ("foo{a!~\"b\",c=~\"d\",e!=\"f\"}", "OK"),
    ("foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("{a=~\".*\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("{a=~\".+\"}", "OK"),
    ("{a!=\"\"}", "OK"),
    ("{a!~\".*\"}", "OK"),
    ("{__name__=\"foo\"}", "OK"),
    ("foo{__name__=\"bar\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
    ("{__name__=~\"foo|bar\"}", "OK"),
    ("{__name__=\"foo\",__name__=\"bar\"}", "OK"),
    ("foo{__name__=\"foo\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"foo\""),
    ("sum(foo bar)", "1:9: parse error: unexpected identifier \"bar\" in aggregation"),
    ("sum by (a) (foo bar)", "1:17: parse error: unexpected identifier \"bar\" in aggregation"),
    ("sum(foo) bar", "1:10: parse error: unexpected identifier \"bar\""),
    ("sum(rate(foo bar))", "1:14: parse error: unexpected identifier \"bar\" in aggregation"),
    ("rate(sum(foo bar))", "1:14: parse error: unexpected identifier \"bar\" in aggregation"),
    ("sum(foo{a=\"b\" c})",
     "1:15: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""),
    ("sum(foo offset)", "1:15: parse error: unexpected \")\" in offset, expected duration"),
    ("sum(foo[5m 1])",
     "1:12: parse error: unexpected number \"1\" in subquery or range, expected \":\" or \"]\""),
    ("sum(,)", "1:5: parse error: unexpected \",\" in aggregation"),
    ("rate(,)", "1:6: parse error: unexpected \",\""),
    ("sum(foo,,bar)", "1:8: parse error: trailing commas not allowed in function call args"),
    ("rate(foo,,bar)", "1:9: parse error: trailing commas not allowed in function call args"),
    ("foo offset - 5", "1:14: parse error: unexpected number \"5\" in offset, expected duration"),
    ("foo offset - 5m", "OK"),
    ("foo @ start(1)", "1:13: parse error: unexpected number \"1\" in @, expected timestamp"),
    ("foo @ -x", "1:8: parse error: unexpected identifier \"x\" in @, expected timestamp"),
    ("foo @ @", "1:7: parse error: unexpected \"<Item 57385>\" <op:@> in @, expected timestamp"),
    ("foo @ - 5", "OK"),
    ("foo[5m 1]",
     "1:8: parse error: unexpected number \"1\" in subquery or range, expected \":\" or \"]\""),
    ("foo[5m:1]",
     "1:8: parse error: unexpected number \"1\" in subquery selector, expected duration or \"]\""),
    ("foo[5m:1m 1]",
     "1:11: parse error: unexpected number \"1\" in subquery selector, expected \"]\""),
    ("foo{a=\"b\",,}",
     "1:11: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
    ("foo{a 1}", "1:7: parse error: unexpected character inside braces: '1'"),
    ("foo{a=\"b\" 1}", "1:11: parse error: unexpected character inside braces: '1'"),
    ("unless", "OK"),
    ("group_right", "1:1: parse error: unexpected <group_right>"),
    ("avg", "OK"),
    ("bottomk", "OK"),
    ("min", "OK"),
    ("max", "OK"),
    ("stddev", "OK"),
    ("stdvar", "OK"),
    ("quantile", "OK"),
    ("count", "OK"),
    ("sum by (without) (foo)",
     "1:9: parse error: unexpected <without> in grouping opts, expected label"),
    ("sum by (group_left, group_right, ignoring, bool, on) (foo)", "OK"),
    ("sum by (unless, or, count_values, quantile, stddev, stdvar, topk, bottomk, min, max, avg,"
     " group, count) (foo)",
     "OK"),
    ("foo * on(a) group_left (bar)", "1:29: parse error: unexpected end of input"),
    ("foo * on(a) group_left (bar) baz", "OK"),
    ("foo * on(a) group_left (sum(x))",
     "1:28: parse error: unexpected \"(\" in grouping opts, expected \",\" or \")\""),
    ("{a=~\"\\xff\"}", "1:2: parse error: error parsing regexp: invalid UTF-8: `�)$`"),
    ("{a=\"\\xff\"}", "OK"),
    ("foo @ 1e17", "OK"),
    ("foo @ 9.3e15", "OK"),
    ("foo @ -9.3e15", "OK"),
    ("SUM(foo) BY (a)", "OK"),
    ("RATE(foo[5m])", "1:1: parse error: unknown function with name \"RATE\""),
    ("foo AND bar", "OK"),
    ("foo Offset 5m", "OK"),
    ("foo[5M]", "1:5: parse error: bad duration syntax: \"5\""),
    ("foo @ START()", "OK"),
    ("Sum", "OK"),
    ("rate(foo, ])", "1:11: parse error: unexpected right bracket ']'"),
    ("rate(foo, bool)", "1:9: parse error: trailing commas not allowed in function call args"),
    ("rate(foo, on)", "1:9: parse error: trailing commas not allowed in function call args"),
    ("rate(foo, *)", "1:9: parse error: trailing commas not allowed in function call args"),
    ("sum(foo, *)", "1:8: parse error: trailing commas not allowed in function call args"),
    ("rate(foo *)", "1:11: parse error: unexpected \")\""),
    ("rate(*)", "1:6: parse error: unexpected <op:*>"),
    ("(*)", "1:2: parse error: unexpected <op:*>"),
    ("(foo *)", "1:7: parse error: unexpected \")\""),
    ("foo + *", "1:7: parse error: unexpected <op:*>"),
    ("foo + bool", "1:11: parse error: unexpected end of input"),
    ("foo + on(a)", "1:12: parse error: unexpected end of input"),
    ("foo + on(a) group_left",
     "1:23: parse error: unexpected end of input in grouping opts, expected \"(\""),
    ("foo + on(a) group_left(a)", "1:26: parse error: unexpected end of input"),
    ("foo == bool", "1:12: parse error: unexpected end of input"),
    ("foo ==", "1:7: parse error: unexpected end of input"),
    ("foo offset", "1:11: parse error: unexpected end of input in offset, expected duration"),
    ("foo[5m:1m] @", "1:13: parse error: unexpected end of input in @, expected timestamp"),
    ("sum by (a) (foo) @ 1",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("(foo + bar) offset 5m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("foo offset 5m offset",
     "1:21: parse error: unexpected end of input in offset, expected duration"),
    ("+foo", "OK"),
    ("- \"a\"",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"string\""),
    ("-\"a\"",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"string\""),
    ("+\"a\"",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"string\""),
    ("(1)", "OK"),
    ("((foo))", "OK"),
    ("foo{a=\"b\"} offset 1m [5m]", "1:22: parse error: no offset modifiers allowed before range"),
    ("(((", "1:4: parse error: unclosed left parenthesis"),
    (")))", "1:2: parse error: unexpected right parenthesis ')'"),
    ("foo{}[5m]", "OK"),
    ("{__name__=\"\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("{a=\"b\"}[5m]", "OK"),
    ("{}[5m]", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("foo @ 1 @ start()", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("a:b:c", "OK"),
    (":a", "OK"),
    ("a:", "OK"),
    ("1 + 2 * 3", "OK"),
    ("foo[1h:]", "OK"),
    ("foo[1h:5m] offset 5m", "OK"),
    ("foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range"),
    ("foo()}", "1:1: parse error: unknown function with name \"foo\""),
    ("sum()}", "1:6: parse error: unexpected character: '}'"),
    ("sum(foo) }", "1:10: parse error: unexpected character: '}'"),
    ("sum(foo, bar) }", "1:15: parse error: unexpected character: '}'"),
    ("sum(foo, bar) by (a) }",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1"
     ", got 2"),
    ("foo offset 1m offset 2m }", "1:1: parse error: offset may not be set multiple times"),
    ("foo[5m][5m] }", "1:8: parse error: ranges only allowed for vector selectors"),
    ("foo offset 0s }", "1:12: parse error: duration must be greater than 0"),
    ("0x }",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("0x + 1",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("foo @ Inf }", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
    ("foo{a=~\"(\"}}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("rate(foo,)}", "1:9: parse error: trailing commas not allowed in function call args"),
    ("foo[5m] offset 1m offset 2m }", "1:1: parse error: offset may not be set multiple times"),
    ("foo offset 1m [5m] }", "1:15: parse error: no offset modifiers allowed before range"),
    ("(foo)[5m] }", "1:6: parse error: ranges only allowed for vector selectors"),
    ("1 @ 5 }",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("1 offset 5m }",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("foo[0s] }", "1:5: parse error: duration must be greater than 0"),
    ("foo[5m:0s] }", "1:8: parse error: duration must be greater than 0"),
    ("foo @ 0x }",
     "1:7: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("foo @ 0x",
     "1:7: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("foo @ - 0x }",
     "1:9: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
    ("foo @ start() @ end() }", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("foo(1)}", "1:1: parse error: unknown function with name \"foo\""),
    ("foo(1) + 1", "1:1: parse error: unknown function with name \"foo\""),
    ("sum(foo) by (a) }", "1:17: parse error: unexpected character: '}'"),
    ("sum by (a) () }", "1:1: parse error: no arguments for aggregate expression provided"),
    ("topk(1) }", "1:9: parse error: unexpected character: '}'"),
    ("foo{a=~\"(\"} + bar", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("foo{a=~\"(\"} }", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("foo\n  + bar{\n  a=1}", "3:5: parse error: unexpected character inside braces: '1'"),
    ("sum(\n  rate(foo[5m])\n) by (job\n,)", "OK"),
    ("é", "1:1: parse error: unexpected character: 'é'"),
    ("\"é\" + é", "1:8: parse error: unexpected character: 'é'"),
    ("foo{a=\"é\"} + é", "1:15: parse error: unexpected character: 'é'"),
    ("foo\n\n  [5m]]", "3:7: parse error: unexpected right bracket ']'"),
    ("foo # c\n + # d\n bool bar",
     "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo\r\n+\r\nbar", "OK"),
    ("foo\tand\ton(a)\tbar", "OK"),
    ("{a=~\"\\\\q\"}", "1:2: parse error: error parsing regexp: invalid escape sequence: `\\q`"),
    ("{a=~\"a**\"}",
     "1:2: parse error: error parsing regexp: invalid nested repetition operator: `**`"),
    ("{a=~\"[a\"}", "1:2: parse error: error parsing regexp: missing closing ]: `[a)$`"),
    ("{a=~\"x{1001}\"}", "1:2: parse error: error parsing regexp: invalid repeat count: `{1001}`"),
    ("{a=~\")\"}", "1:2: parse error: error parsing regexp: unexpected ): `^(?:))$`"),
    ("{a=~\"*\"}",
     "1:2: parse error: error parsing regexp: missing argument to repetition operator: `*`"),
    ("{a=~\"[z-a]\"}",
     "1:2: parse error: error parsing regexp: invalid character class range: `z-a`"),
    ("foo @ 1.2345", "OK"),
    ("foo @ 1e15", "OK"),
    ("1 + 2 ^ 3 ^ 2 * 4 - 5 / 6 % 7", "OK"),
    ("1 < bool 2 and 3",
     "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
    ("a or b and c unless d", "OK"),
    ("a == b != c", "OK"),
    ("-a ^ -b", "OK"),
    ("a * -b ^ c", "OK"),
    ("- - -1", "OK"),
    ("+-+1", "OK"),
    ("count_values(\"v\", foo)", "OK"),
    ("quantile(0.9, foo) without (a)", "OK"),
    ("bottomk by (a) (2, foo)", "OK"),
    ("group(foo)", "OK"),
    ("stdvar without () (foo)", "OK"),
    ("foo offset -1m", "OK"),
    ("foo[5m] @ end() offset -1s", "OK"),
    ("foo[1h:1m] offset 5m @ 100", "OK"),
    ("(foo)[1h:]", "OK"),
    ("sum(foo)[1h:5m] @ start()", "OK"),
    ("label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")", "OK"),
    ("label_join(up, \"a\", \",\", \"b\", \"c\", \"d\")", "OK"),
    ("absent_over_time(foo[5m:])", "OK"),
    ("histogram_fraction(0, 0.1, foo)", "OK"),
    ("holt_winters(foo[5m], 0.1)",
     "1:1: parse error: expected 3 argument(s) in call to \"holt_winters\", got 2"),
    ("predict_linear(foo[5m], 3600)", "OK"),
    ("quantile_over_time(0.5, foo)",
     "1:25: parse error: expected type range vector in call to function \"quantile_over_time\","
     " got instant vector"),
    ("month(foo, bar)",
     "1:1: parse error: expected at most 1 argument(s) in call to \"month\", got 2"),
    ("vector(1) + on() vector(2)", "OK"),
    ("scalar(foo) + scalar(bar)", "OK"),
    ("time() > bool 5", "OK"),
    ("time() > 5", "1:8: parse error: comparisons between scalars must use BOOL modifier"),
    ("\"a\" == bool \"b\"",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    ("foo and bool bar",
     "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("1 + -foo", "OK"),
    ("abs(-foo)", "OK"),
    ("-sum(foo)", "OK"),
    ("-(foo)[5m:]",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"range vector\""),
    ("sort(-foo)", "OK"),
    ("foo + bar offset 1m", "OK"),
    ("foo @ 1 + bar", "OK"),
    ("foo{a=\"b\"} unless on(job) bar", "OK"),
    ("foo / ignoring(a, b) group_right(c, d) bar", "OK"),
    ("rate(foo[5m] offset 1m)", "OK"),
    ("rate(foo offset 1m[5m])", "1:19: parse error: no offset modifiers allowed before range"),
    ("foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'"),
    ("foo[5m::]", "1:8: parse error: unexpected colon ':'"),
    ("foo[5m :1m]", "OK"),
    ("foo[ 5m ]", "OK"),
    ("foo [5m]", "OK"),
    ("foo[5m] [5m]", "1:9: parse error: ranges only allowed for vector selectors"),
    ("foo{a=\"b\"}[5m]", "OK"),
    ("{__name__=~\"a.*\"}[5m] offset 1h", "OK"),
    ("sum(foo) by (a) > bool 5", "OK"),
    ("max_over_time(foo[1y])", "OK"),
    ("foo[1w]", "OK"),
    ("foo[2w3d]", "OK"),
    ("foo[1h30m]", "OK"),
    ("foo[90m]", "OK"),
    ("foo[100ms]", "OK"),
    ("foo[5m:100ms]", "OK"),
    ("foo offset 1y", "OK"),
    ("avg_over_time((foo + bar)[10m:1m])", "OK"),
    ("topk(3, sum by (a) (rate(foo[5m])))", "OK"),
    ("count(count(foo) by (a))", "OK"),
    ("sum(foo) / ignoring(b) sum(bar)", "OK"),
    ("(1 + 2)", "OK"),
    ("((1))", "OK"),
    ("1 - -1", "OK"),
    ("1--1", "OK"),
    ("1---1", "OK"),
    ("2 ^ -1", "OK"),
    ("2^-1^2", "OK"),
    ("-2^-2", "OK"),
    ("1 atan2 -2", "OK"),
    ("foo atan2 on(a) bar", "OK"),
    ("\"\\\\u00e9\"", "OK"),
    ("'\\\\x41'", "OK"),
    ("`\\\\n`", "OK"),
    ("\"\\\\101\\\\102\"", "OK"),
    ("\"\\\\12\"", "OK"),
    ("\"\\\\1234\"", "OK"),
    ("\"\\\\U00110000\"", "OK"),
    ("\"\\\\uDFFF\"", "OK"),
    ("\"\\\\xG1\"", "OK"),
    ("0X1F + 0x1f", "OK"),
    ("1e-3", "OK"),
    ("1E+3", "OK"),
    ("0.5e1", "OK"),
    ("5e",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"5e\": invalid syntax"),
    ("5e+",
     "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"5e+\": invalid syntax"),
    (".e5", "1:1: parse error: unexpected character: '.'"),
    ("1.5.5", "1:4: parse error: unexpected number \".5\""),
    ("00x1", "1:1: parse error: bad number or duration syntax: \"00\""),
    ("0xx1", "1:1: parse error: bad number or duration syntax: \"0x\""),
    ("1f", "1:1: parse error: bad number or duration syntax: \"1\""),
    ("1d", "1:1: parse error: unexpected duration \"1d\""),
    ("1s", "1:1: parse error: unexpected duration \"1s\""),
    ("100ms + 1", "1:1: parse error: unexpected duration \"100ms\""),
    ("1h1m", "1:1: parse error: unexpected duration \"1h1m\""),
    ("nan + NaN", "OK"),
    ("inF", "OK"),
    ("-Inf", "OK"),
    ("+Inf", "OK"),
    ("Infx", "OK"),
    ("NaNfoo", "OK"),
    ("inf:x", "OK"),
    ("in", "OK"),
    ("sum:foo", "OK"),
    ("by:x", "OK"),
    ("start:end", "OK"),
    (":", "OK"),
    ("::", "OK"),
    ("a::b", "OK"),
    ("foo{a!b=\"c\"}", "1:6: parse error: unexpected character after '!' inside braces: 'b'"),
    ("foo{a! =\"c\"}", "1:6: parse error: unexpected character after '!' inside braces: ' '"),
    ("foo{a=~\"b\",}", "OK"),
    ("foo{a=\"b\" ,}", "OK"),
    ("foo{,a=\"b\"}",
     "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
    ("foo{a=\"b\"}}", "1:11: parse error: unexpected character: '}'"),
    ("foo{{a=\"b\"}", "1:5: parse error: unexpected left brace '{'"),
    ("foo{a=\"b\"#c\n}", "OK"),
    ("foo{a\n=\n\"b\"}", "OK"),
    ("foo{by=\"x\", sum=\"y\", on=\"z\", offset=\"w\", inf=\"v\"}", "OK"),
    ("foo{a='b'}", "OK"),
    ("foo{a=`b`}", "OK"),
    ("foo{__name__!=\"bar\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
    ("foo{__name__=~\"bar\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
    ("{__name__=\"foo\", __name__=\"bar\"}", "OK"),
    ("foo{__name__=\"foo\", a=\"b\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"foo\""),
    ("{a=\"\", b=\"\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("{a!~\"\"}", "OK"),
    ("{a=~\".+|\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("{a=~\"a*\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("{a!=\"x\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ("sum without(a,b,)(foo)", "OK"),
    ("sum by ()(foo)", "OK"),
    ("sum by (a,,) (foo)", "1:11: parse error: unexpected \",\" in grouping opts, expected label"),
    ("sum by ((a)) (foo)", "1:9: parse error: unexpected \"(\" in grouping opts, expected label"),
    ("sum by a (foo)",
     "1:8: parse error: unexpected identifier \"a\" in grouping opts, expected \"(\""),
    ("sum by (1) (foo)",
     "1:9: parse error: unexpected number \"1\" in grouping opts, expected label"),
    ("sum by (\"a\") (foo)",
     "1:9: parse error: unexpected string \"\\\"a\\\"\" in grouping opts, expected label"),
    ("sum(foo) by (a) by (b)", "1:17: parse error: unexpected <by>"),
    ("sum by (a) (foo) without (b)", "1:18: parse error: unexpected <without>"),
    ("sum(foo) by (a) offset 1m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("sum(foo) (bar)", "1:10: parse error: unexpected \"(\""),
    ("sum() by (a)", "1:1: parse error: no arguments for aggregate expression provided"),
    ("sum(foo, bar, baz)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1"
     ", got 3"),
    ("count_values(foo)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2"
     ", got 1"),
    ("topk(1, foo, bar)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2"
     ", got 3"),
    ("quantile()", "1:1: parse error: no arguments for aggregate expression provided"),
    ("group()", "1:1: parse error: no arguments for aggregate expression provided"),
    ("sum(1, 2)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1"
     ", got 2"),
    ("topk(by, foo)",
     "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
    ("topk(foo, 1)",
     "1:11: parse error: expected type instant vector in aggregation expression, got scalar"),
    ("sum(\"a\", foo)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1"
     ", got 2"),
    ("rate()", "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 0"),
    ("rate(foo[5m], foo[5m])",
     "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2"),
    ("abs()", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 0"),
    ("abs(1, 2)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2"),
    ("round()", "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0"),
    ("label_replace(foo)",
     "1:1: parse error: expected 5 argument(s) in call to \"label_replace\", got 1"),
    ("label_join()",
     "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 0"),
    ("time(foo)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
    ("vector()", "1:1: parse error: expected 1 argument(s) in call to \"vector\", got 0"),
    ("vector(1, 2)", "1:1: parse error: expected 1 argument(s) in call to \"vector\", got 2"),
    ("histogram_quantile(0.5)",
     "1:1: parse error: expected 2 argument(s) in call to \"histogram_quantile\", got 1"),
    ("clamp_min(foo)", "1:1: parse error: expected 2 argument(s) in call to \"clamp_min\", got 1"),
    ("clamp_max(foo, 1, 2)",
     "1:1: parse error: expected 2 argument(s) in call to \"clamp_max\", got 3"),
    ("holt_winters(foo, 1, 2)",
     "1:14: parse error: expected type range vector in call to function \"holt_winters\", got i"
     "nstant vector"),
    ("days_in_month(1)",
     "1:15: parse error: expected type instant vector in call to function \"days_in_month\", go"
     "t scalar"),
    ("year(foo[5m])",
     "1:6: parse error: expected type instant vector in call to function \"year\", got range ve"
     "ctor"),
    ("timestamp(1)",
     "1:11: parse error: expected type instant vector in call to function \"timestamp\", got sc"
     "alar"),
    ("foo(1, 2)", "1:1: parse error: unknown function with name \"foo\""),
    ("foo:bar(1)", "1:8: parse error: unexpected \"(\""),
    ("Rate(foo[5m])", "1:1: parse error: unknown function with name \"Rate\""),
    ("sum_over_time(1)",
     "1:15: parse error: expected type range vector in call to function \"sum_over_time\", got "
     "scalar"),
    ("absent(nonexistent{job=\"x\"})", "OK"),
    ("scalar(foo[5m])",
     "1:8: parse error: expected type instant vector in call to function \"scalar\", got range "
     "vector"),
    ("1 + \"a\"",
     "1:5: parse error: binary expression must contain only scalar and instant vector types"),
    ("foo + \"a\"",
     "1:7: parse error: binary expression must contain only scalar and instant vector types"),
    ("foo[5m] + bar[5m]",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    ("foo and foo[5m]",
     "1:9: parse error: binary expression must contain only scalar and instant vector types"),
    ("1 and 2", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
    ("foo or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"),
    ("1 unless foo",
     "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression"),
    ("foo + on(a) 1", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("1 + ignoring(a) 2", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("1 + ignoring() 2", "OK"),
    ("1 + on() group_left 2", "OK"),
    ("foo == bool on(a) group_left(b) bar", "OK"),
    ("foo and ignoring(a) group_left bar",
     "1:1: parse error: no grouping allowed for \"and\" operation"),
    ("foo and on() group_right() bar",
     "1:1: parse error: no grouping allowed for \"and\" operation"),
    ("foo unless bool on(a) bar",
     "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("1 > 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("1 > bool 2", "OK"),
    ("(1) > (2)", "1:5: parse error: comparisons between scalars must use BOOL modifier"),
    ("-1 > 2", "1:4: parse error: comparisons between scalars must use BOOL modifier"),
    ("scalar(foo) > 1", "1:13: parse error: comparisons between scalars must use BOOL modifier"),
    ("foo > bool 1", "OK"),
    ("1 != bool foo", "OK"),
    ("foo offset -", "1:13: parse error: unexpected end of input in offset, expected duration"),
    ("foo offset - -5m", "1:14: parse error: unexpected <op:-> in offset, expected duration"),
    ("foo offset 5m5m", "1:12: parse error: not a valid duration string: \"5m5m\""),
    ("foo offset 1.5m", "1:12: parse error: not a valid duration string: \"1.5m\""),
    ("foo offset 5m offset 5m", "1:1: parse error: offset may not be set multiple times"),
    ("foo offset 5m @ 1 offset 1m", "1:1: parse error: offset may not be set multiple times"),
    ("foo @ -", "1:8: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ +", "1:8: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ 1 @", "1:10: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ start(", "1:13: parse error: unclosed left parenthesis"),
    ("foo @ start(]", "1:13: parse error: unexpected right bracket ']'"),
    ("foo @ end", "1:10: parse error: unexpected end of input in @, expected timestamp"),
    ("foo @ end()[5m]", "OK"),
    ("foo @ 9223372036854775807",
     "1:1: parse error: timestamp out of bounds for @ modifier: 9223372036854775808.000000"),
    ("foo @ -9223372036854775808",
     "1:1: parse error: timestamp out of bounds for @ modifier: -9223372036854775808.000000"),
    ("foo @ 9.2e18", "OK"),
    ("foo[5m] @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("foo[5m:] offset 1m offset 1m", "1:1: parse error: offset may not be set multiple times"),
    ("(foo) offset 1m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("rate(foo[5m]) offset 1m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range"
     " vector selector or a subquery"),
    ("vector(1) @ 1",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("\"a\" @ 1",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vect"
     "or selector or a subquery"),
    ("1[5m]", "1:2: parse error: ranges only allowed for vector selectors"),
    ("\"a\"[5m]", "1:4: parse error: ranges only allowed for vector selectors"),
    ("1[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead"),
    ("\"a\"[5m:]",
     "1:1: parse error: subquery is only allowed on instant vector, got string instead"),
    ("-foo[5m:]",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"range vector\""),
    ("sum(foo[5m:])",
     "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
    ("rate(foo[5m:])", "OK"),
    ("rate(foo[5m:1m])", "OK"),
    ("rate((foo)[5m:1m])", "OK"),
    ("rate(sum(foo)[5m:1m])", "OK"),
    ("rate(1[5m:1m])",
     "1:6: parse error: subquery is only allowed on instant vector, got scalar instead"),
    ("[5m]", "1:1: parse error: unexpected \"[\""),
    ("foo[[5m]]", "1:5: parse error: missing unit character in duration"),
    ("foo[5m:5m", "1:10: parse error: unclosed left bracket"),
    ("foo[5m}", "1:7: parse error: unexpected character: '}'"),
    ("foo[5m)", "1:8: parse error: unexpected right parenthesis ')'"),
    ("(foo[5m)]",
     "1:8: parse error: unexpected \")\" in subquery or range, expected \":\" or \"]\""),
    ("foo[5m,]",
     "1:7: parse error: unexpected \",\" in subquery or range, expected \":\" or \"]\""),
    ("((", "1:3: parse error: unclosed left parenthesis"),
    ("())", "1:2: parse error: unexpected \")\""),
    ("(1", "1:3: parse error: unclosed left parenthesis"),
    ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
    ("( )", "1:3: parse error: unexpected \")\""),
    ("(1,2)", "1:3: parse error: unexpected \",\""),
    ("(foo bar)", "1:6: parse error: unexpected identifier \"bar\""),
    ("(sum(foo) bar)", "1:11: parse error: unexpected identifier \"bar\""),
    ("sum((foo bar))", "1:10: parse error: unexpected identifier \"bar\" in aggregation"),
    ("sum((foo) bar)", "1:11: parse error: unexpected identifier \"bar\" in aggregation"),
    ("#", "1:1: parse error: no expression found in input"),
    ("# only comment\n", "1:1: parse error: no expression found in input"),
    ("  ", "1:1: parse error: no expression found in input"),
    ("\n", "1:1: parse error: no expression found in input"),
    ("foo\n#c", "OK"),
    ("1 # c\n + 2", "OK"),
    ("/* c */ 1", "1:1: parse error: unexpected <op:/>"),
    ("// c\n1", "1:1: parse error: unexpected <op:/>"),
    ("foo ~ bar", "1:5: parse error: unexpected character: '~'"),
    ("foo =~ bar", "1:5: parse error: unexpected character after '=': '~'"),
    ("foo !~ bar", "1:5: parse error: unexpected character after '!': '~'"),
    ("foo = bar", "1:5: parse error: unexpected \"=\""),
    ("foo ! bar", "1:5: parse error: unexpected character after '!': ' '"),
    ("foo <> bar", "1:6: parse error: unexpected <op:>>"),
    ("foo => bar", "1:5: parse error: unexpected \"=\""),
    ("foo =< bar", "1:5: parse error: unexpected \"=\""),
    ("foo === bar", "1:7: parse error: unexpected \"=\""),
    ("foo ** bar", "1:6: parse error: unexpected <op:*>"),
    ("foo & bar", "1:5: parse error: unexpected character: '&'"),
    ("foo | bar", "1:5: parse error: unexpected character: '|'"),
    ("foo ; bar", "1:5: parse error: unexpected character: ';'"),
    ("foo $ bar", "1:5: parse error: unexpected character: '$'"),
    ("foo ? bar", "1:5: parse error: unexpected character: '?'"),
    ("foo{a=\"b\"} == bool on (a, b) group_left (c) bar{c=\"d\"}", "OK"),
])
def test_same_answer_as_prometheus(query: str, answer: str) -> None:
    """Answers recorded from Prometheus 2.42's /api/v1/query ("OK": it parsed); the queries
    are the edge cases met while writing the parser, plus differential-fuzzing finds."""
    try:
        parse_expr(query)
    except ParseError as e:
        assert str(e) == answer
    else:
        assert answer == "OK"
