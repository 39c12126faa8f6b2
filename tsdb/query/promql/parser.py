"""PromQL parser and static type checker, answering like Prometheus 2.42.

A recursive-descent / precedence-climbing parser over the tokens of :mod:`lexer`. It
accepts exactly the language of 2.42's ``generated_parser.y``, quirks included: aggregation
names and several keywords double as metric names (``sum``, ``by``, ``offset``, ``and``,
``start``...), unary minus binds looser than ``^`` but tighter than ``*`` (``-2^2`` is -4),
``offset``, ``@`` and ``[...]`` apply to the operand right before them, and a unary minus
directly on a number literal is folded into a negative literal.

Errors are raised as :class:`ParseError` with Prometheus' wording and 1-based
``line:column`` (the column counts UTF-8 bytes, as Go does). Like Prometheus, the first
error found while parsing wins; static type checking (``checkAST``) only runs on a
syntactically valid tree.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn

from tsdb.query.promql import ast
from tsdb.query.promql import lexer as T
from tsdb.query.promql.ast import ValueType
from tsdb.query.promql.errors import ParseError, QueryError
from tsdb.query.promql.goformat import format_percent_f
from tsdb.query.promql.lexer import Token, describe, go_quote
from tsdb.query.promql.signatures import get_function
from tsdb.storage.labels import Matcher

__all__ = [
    "parse_expr", "parse_metric_selector", "parse_duration", "parse_number", "value_type",
    "documented_type", "has_non_empty_matcher", "parse_match_params",
]

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)

_PRECEDENCE = {
    T.LOR: 1,
    T.LAND: 2, T.LUNLESS: 2,
    T.EQLC: 3, T.NEQ: 3, T.LTE: 3, T.LSS: 3, T.GTE: 3, T.GTR: 3,
    T.ADD: 4, T.SUB: 4,
    T.MUL: 5, T.DIV: 5, T.MOD: 5, T.ATAN2: 5,
    T.POW: 6,
}
_POW_PRECEDENCE = 6

#: Tokens that can name a metric: 2.42's ``metric_identifier`` rule.
_METRIC_NAME_KINDS = frozenset(
    {T.IDENTIFIER, T.METRIC_IDENTIFIER, T.BY, T.WITHOUT, T.OFFSET, T.LAND, T.LOR, T.LUNLESS,
     T.START, T.END} | T.AGGREGATORS
)
#: Tokens that can start an expression.
_EXPR_START = _METRIC_NAME_KINDS | {
    T.NUMBER, T.STRING, T.LEFT_PAREN, T.LEFT_BRACE, T.ADD, T.SUB,
}
#: Tokens accepted as a label name in ``by (...)``, ``on (...)``, ``group_left (...)``:
#: 2.42's ``maybe_label`` rule (``without`` is missing from it there too).
_MAYBE_LABEL_KINDS = frozenset(
    {T.IDENTIFIER, T.METRIC_IDENTIFIER, T.BOOL, T.BY, T.GROUP_LEFT, T.GROUP_RIGHT, T.IGNORING,
     T.LAND, T.LOR, T.LUNLESS, T.OFFSET, T.ON, T.START, T.END, T.ATAN2} | T.AGGREGATORS
)
_MATCH_OPS = {T.EQL: "=", T.NEQ: "!=", T.EQL_REGEX: "=~", T.NEQ_REGEX: "!~"}
_PARAM_AGGREGATORS = frozenset({"topk", "bottomk", "count_values", "quantile"})
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


# --- public API ----------------------------------------------------------------------------


def parse_expr(text: str) -> ast.Expr:
    """Parse and type-check a PromQL expression; raises :class:`ParseError`."""
    try:
        expr = _Parser(text).parse_query()
        _Checker(text).check(expr)
    except RecursionError:
        # Go's growable stacks have no such limit; hundreds of nested levels are needed.
        raise _error(text, 0, "expression is nested too deeply") from None
    return expr


def parse_metric_selector(text: str) -> list[Matcher]:
    """Parse a bare series selector (the API's ``match[]``), like ``ParseMetricSelector``.

    The matchers of ``name{...}`` end with the ``__name__`` matcher. No type check runs, so
    ``{}`` is accepted here; see :func:`has_non_empty_matcher` for the API's rule.
    """
    parser = _Parser(text)
    tok = parser.peek()
    if tok.kind not in _METRIC_NAME_KINDS and tok.kind != T.LEFT_BRACE:
        parser.unexpected(tok, top_level=True)
    selector = parser.parse_vector_selector()
    parser.expect_end()
    return selector.matchers


def has_non_empty_matcher(matchers: list[Matcher]) -> bool:
    """Does some matcher reject the empty string (so the selector cannot select all)?"""
    return any(not m.matches_empty for m in matchers)


def parse_match_params(selectors: list[str]) -> list[list[Matcher]]:
    """Parse the API's ``match[]`` values; raises a ``bad_data`` :class:`QueryError` like
    Prometheus when one of them has no non-empty matcher."""
    matcher_sets = [parse_metric_selector(s) for s in selectors]
    for matchers in matcher_sets:
        if not has_non_empty_matcher(matchers):
            raise QueryError("match[] must contain at least one non-empty matcher", "bad_data")
    return matcher_sets


_DURATION_RE = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration(text: str, *, allow_zero: bool = False) -> int:
    """A duration like ``1h30m`` in milliseconds, as Prometheus' ``model.ParseDuration``:
    units ``y w d h m s ms`` in this order, each at most once, integer counts, at most
    ~292 years. PromQL also rejects zero (``allow_zero`` lifts that; ``"0"`` is then
    accepted without a unit). Raises ``ValueError`` with Prometheus' message."""
    if text == "0":
        if allow_zero:
            return 0
        raise ValueError("duration must be greater than 0")
    if text == "":
        raise ValueError("empty duration string")
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    total_ns = 0
    for count, unit_ms in zip(match.groups(), _UNIT_MS, strict=True):
        if count is None:
            continue
        n = int(count)
        if n > MAX_INT64 // unit_ms // 1_000_000:
            raise ValueError("duration out of range")
        total_ns += n * unit_ms * 1_000_000
        if total_ns > MAX_INT64:
            raise ValueError("duration out of range")
    if total_ns == 0 and not allow_zero:
        raise ValueError("duration must be greater than 0")
    return total_ns // 1_000_000


def value_type(expr: ast.Expr) -> ValueType:
    """The static type of an expression (Prometheus' ``Expr.Type()``).

    A binary expression is a scalar only when both sides are; the walk is iterative so
    that long chains like ``a or b or c ...`` cost no recursion.
    """
    expr = _unwrap(expr)
    if not isinstance(expr, ast.BinaryExpr):
        return _leaf_type(expr)
    pending: list[ast.Expr] = [expr]
    while pending:
        node = _unwrap(pending.pop())
        if isinstance(node, ast.BinaryExpr):
            pending += (node.lhs, node.rhs)
        elif _leaf_type(node) != ValueType.SCALAR:
            return ValueType.VECTOR
    return ValueType.SCALAR


def _unwrap(expr: ast.Expr) -> ast.Expr:
    while isinstance(expr, (ast.ParenExpr, ast.UnaryExpr)):
        expr = expr.expr
    return expr


def _leaf_type(expr: ast.Expr) -> ValueType:
    if isinstance(expr, ast.NumberLiteral):
        return ValueType.SCALAR
    if isinstance(expr, ast.StringLiteral):
        return ValueType.STRING
    if isinstance(expr, (ast.VectorSelector, ast.AggregateExpr)):
        return ValueType.VECTOR
    if isinstance(expr, (ast.MatrixSelector, ast.SubqueryExpr)):
        return ValueType.MATRIX
    if isinstance(expr, ast.Call):
        sig = get_function(expr.func)
        return sig.return_type if sig is not None else ValueType.NONE
    return ValueType.NONE


def documented_type(t: ValueType) -> str:
    """The type names the documentation (and error messages) use."""
    return {ValueType.VECTOR: "instant vector", ValueType.MATRIX: "range vector"}.get(t, str(t))


# --- numbers -------------------------------------------------------------------------------

_GO_FLOAT_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def parse_number(text: str) -> float:
    """A NUMBER token's value, as 2.42 computes it: ``strconv.ParseInt(text, 0, 64)`` first
    (so ``0x1f`` is hex and ``010`` is octal 8), then ``strconv.ParseFloat``."""
    as_int = _go_parse_int(text)
    if as_int is not None:
        return float(as_int)
    lowered = text.lower()
    if lowered in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    if lowered == "nan":
        return math.nan
    if not _GO_FLOAT_RE.match(text):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


def _go_parse_int(text: str) -> int | None:
    if text[:2] in ("0x", "0X"):
        digits, base, valid = text[2:], 16, "0123456789abcdefABCDEF"
    elif len(text) > 1 and text[0] == "0":
        digits, base, valid = text[1:], 8, "01234567"
    else:
        digits, base, valid = text, 10, "0123456789"
    if not digits or any(c not in valid for c in digits):
        return None
    value = int(digits, base)
    return value if value <= MAX_INT64 else None


def _round_half_away(x: float) -> float:
    """Go's ``math.Round``."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def _seconds_to_ms(ts: float) -> int:
    """``timestamp.FromFloatSeconds``; a result outside int64 becomes MinInt64, as Go's
    float-to-int conversion does on amd64."""
    ms = _round_half_away(ts * 1000.0)
    if not (MIN_INT64 <= ms < 2.0**63):
        return MIN_INT64
    return int(ms)


# --- positions -----------------------------------------------------------------------------


def _line_col(text: str, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    prefix = text[line_start:pos]
    try:
        width = len(prefix.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        width = len(prefix.encode("utf-8", "surrogatepass"))
    return line, width + 1


def _error(text: str, pos: int, message: str) -> ParseError:
    line, col = _line_col(text, pos)
    return ParseError(message, line, col)


# --- the parser ----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = T.lex(text)
        self.i = 0
        # Depth of aggregations whose arguments are being parsed: a syntax error there
        # reads "... in aggregation", as 2.42's `aggregate_op error` rule reports it.
        self.aggregation_depth = 0

    # -- token access and errors

    def peek(self) -> Token:
        return self.tokens[self.i]

    def peek_next(self) -> Token:
        return self.tokens[min(self.i + 1, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind == T.ERROR:
            raise self.error(tok.pos, tok.text)
        if tok.kind != T.EOF:
            self.i += 1
        return tok

    def error(self, pos: int, message: str) -> ParseError:
        return _error(self.text, pos, message)

    def unexpected(self, tok: Token, context: str = "", expected: str = "",
                   top_level: bool = False) -> NoReturn:
        """Raise "unexpected <token> [in context][, expected ...]"; a lexer error found at
        this point is reported instead, as Prometheus does."""
        if tok.kind == T.ERROR:
            raise self.error(tok.pos, tok.text)
        if not context and self.aggregation_depth and not top_level:
            context = "aggregation"
        message = f"unexpected {describe(tok)}"
        if context:
            message += f" in {context}"
        if expected:
            message += f", expected {expected}"
        raise self.error(tok.pos, message)

    def expect_end(self) -> None:
        tok = self.peek()
        if tok.kind != T.EOF:
            self.unexpected(tok, top_level=True)

    # -- expressions

    def parse_query(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind == T.EOF:
            raise self.error(0, "no expression found in input")
        expr = self.parse_binary(0)
        self.expect_end()
        return expr

    def parse_binary(self, min_precedence: int) -> ast.Expr:
        lhs = self.parse_unary()
        while True:
            op_tok = self.peek()
            precedence = _PRECEDENCE.get(op_tok.kind)
            if precedence is None or precedence < min_precedence:
                return lhs
            self.advance()
            return_bool, matching = self.parse_binary_modifiers()
            # `^` is right-associative, every other operator left-associative.
            next_min = precedence if op_tok.kind == T.POW else precedence + 1
            rhs = self.parse_binary(next_min)
            lhs = ast.BinaryExpr(T.OPERATOR_TEXT[op_tok.kind], lhs, rhs, matching, return_bool,
                                 pos=(lhs.pos[0], rhs.pos[1]))

    def parse_binary_modifiers(self) -> tuple[bool, ast.VectorMatching]:
        return_bool = False
        if self.peek().kind == T.BOOL:
            self.advance()
            return_bool = True
        matching = ast.VectorMatching()
        if self.peek().kind in (T.ON, T.IGNORING):
            matching.on = self.advance().kind == T.ON
            matching.matching_labels = self.parse_grouping_labels()
            group_kind = self.peek().kind
            if group_kind in (T.GROUP_LEFT, T.GROUP_RIGHT):
                self.advance()
                matching.card = "many-to-one" if group_kind == T.GROUP_LEFT else "one-to-many"
                tok = self.peek()
                if tok.kind == T.LEFT_PAREN:
                    matching.include = self.parse_grouping_labels()
                elif tok.kind not in _EXPR_START:
                    self.unexpected(tok, "grouping opts", '"("')
        return return_bool, matching

    def parse_grouping_labels(self) -> list[str]:
        tok = self.peek()
        if tok.kind != T.LEFT_PAREN:
            self.unexpected(tok, "grouping opts", '"("')
        self.advance()
        labels: list[str] = []
        if self.peek().kind == T.RIGHT_PAREN:
            self.advance()
            return labels
        while True:
            tok = self.peek()
            if tok.kind not in _MAYBE_LABEL_KINDS or not _LABEL_NAME_RE.match(tok.text):
                self.unexpected(tok, "grouping opts", "label")
            self.advance()
            labels.append(tok.text)
            tok = self.peek()
            if tok.kind == T.COMMA:
                self.advance()
                if self.peek().kind == T.RIGHT_PAREN:
                    self.advance()
                    return labels
            elif tok.kind == T.RIGHT_PAREN:
                self.advance()
                return labels
            else:
                self.unexpected(tok, "grouping opts", '"," or ")"')

    def parse_unary(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind not in (T.ADD, T.SUB):
            return self.parse_postfix()
        self.advance()
        # The operand of a unary operator extends over `^` only (2.42: `%prec MUL`).
        operand = self.parse_binary(_POW_PRECEDENCE)
        if type(operand) is ast.NumberLiteral:
            if tok.kind == T.SUB:
                operand.value = -operand.value
            operand.pos = (tok.pos, operand.pos[1])
            return operand
        return ast.UnaryExpr(T.OPERATOR_TEXT[tok.kind], operand, pos=(tok.pos, operand.pos[1]))

    def parse_postfix(self) -> ast.Expr:
        expr = self.parse_primary()
        while True:
            kind = self.peek().kind
            if kind == T.LEFT_BRACKET:
                expr = self.parse_range_or_subquery(expr)
            elif kind == T.OFFSET:
                self.parse_offset(expr)
            elif kind == T.AT:
                self.parse_at(expr)
            else:
                return expr

    def parse_primary(self) -> ast.Expr:
        tok = self.peek()
        kind = tok.kind
        if kind == T.NUMBER:
            self.advance()
            return ast.NumberLiteral(self.number(tok), pos=(tok.pos, tok.end))
        if kind == T.STRING:
            self.advance()
            value = (tok.value or "").encode("utf-8", "surrogateescape").decode("utf-8",
                                                                                  "replace")
            return ast.StringLiteral(value, pos=(tok.pos, tok.end))
        if kind == T.LEFT_PAREN:
            self.advance()
            inner = self.parse_binary(0)
            close = self.peek()
            if close.kind != T.RIGHT_PAREN:
                self.unexpected(close)
            self.advance()
            return ast.ParenExpr(inner, pos=(tok.pos, close.end))
        if kind == T.IDENTIFIER and self.peek_next().kind == T.LEFT_PAREN:
            return self.parse_call()
        if kind in T.AGGREGATORS and self.peek_next().kind in (T.LEFT_PAREN, T.BY, T.WITHOUT):
            return self.parse_aggregation()
        if kind in _METRIC_NAME_KINDS or kind == T.LEFT_BRACE:
            return self.parse_vector_selector()
        self.unexpected(tok)

    def number(self, tok: Token) -> float:
        try:
            return parse_number(tok.text)
        except ValueError as e:
            raise self.error(tok.pos, f"error parsing number: {e}") from None

    def duration(self, tok: Token) -> int:
        try:
            return parse_duration(tok.text)
        except ValueError as e:
            raise self.error(tok.pos, str(e)) from None

    # -- postfix modifiers

    def parse_range_or_subquery(self, expr: ast.Expr) -> ast.Expr:
        bracket = self.advance()
        tok = self.peek()
        if tok.kind != T.DURATION:
            self.unexpected(tok, "subquery selector", "duration")
        self.advance()
        range_ms = self.duration(tok)
        tok = self.peek()
        if tok.kind == T.RIGHT_BRACKET:
            self.advance()
            if not isinstance(expr, ast.VectorSelector):
                message = "ranges only allowed for vector selectors"
            elif expr.offset_ms != 0:
                message = "no offset modifiers allowed before range"
            elif expr.at_ms is not None:
                message = "no @ modifiers allowed before range"
            else:
                return ast.MatrixSelector(expr, range_ms, pos=(expr.pos[0], tok.end))
            raise self.error(bracket.pos, message)
        if tok.kind != T.COLON:
            self.unexpected(tok, "subquery or range", '":" or "]"')
        self.advance()
        step_ms = 0
        tok = self.peek()
        if tok.kind == T.DURATION:
            self.advance()
            step_ms = self.duration(tok)
            tok = self.peek()
            if tok.kind != T.RIGHT_BRACKET:
                self.unexpected(tok, "subquery selector", '"]"')
        elif tok.kind != T.RIGHT_BRACKET:
            self.unexpected(tok, "subquery selector", 'duration or "]"')
        self.advance()
        return ast.SubqueryExpr(expr, range_ms, step_ms, pos=(expr.pos[0], tok.end))

    def parse_offset(self, expr: ast.Expr) -> None:
        self.advance()
        tok = self.peek()
        sign = 1
        if tok.kind == T.SUB:
            self.advance()
            sign = -1
            tok = self.peek()
        if tok.kind != T.DURATION:
            self.unexpected(tok, "offset", "duration")
        self.advance()
        offset_ms = sign * self.duration(tok)
        target = expr.selector if isinstance(expr, ast.MatrixSelector) else expr
        if not isinstance(target, (ast.VectorSelector, ast.SubqueryExpr)):
            raise self.error(expr.pos[0], "offset modifier must be preceded by an instant vector "
                             "selector or range vector selector or a subquery")
        if target.offset_ms != 0:
            raise self.error(expr.pos[0], "offset may not be set multiple times")
        target.offset_ms = offset_ms
        expr.pos = (expr.pos[0], tok.end)

    def parse_at(self, expr: ast.Expr) -> None:
        self.advance()
        tok = self.peek()
        timestamp: float | None = None
        preprocessor: str | None = None
        if tok.kind == T.NUMBER:
            self.advance()
            timestamp = self.number(tok)
        elif tok.kind in (T.ADD, T.SUB):
            self.advance()
            num = self.peek()
            if num.kind != T.NUMBER:
                self.unexpected(num, "@", "timestamp")
            self.advance()
            timestamp = self.number(num) * (-1 if tok.kind == T.SUB else 1)
            tok = num
        elif tok.kind in (T.START, T.END):
            self.advance()
            preprocessor = "start" if tok.kind == T.START else "end"
            for want in (T.LEFT_PAREN, T.RIGHT_PAREN):
                tok = self.peek()
                if tok.kind != want:
                    self.unexpected(tok, "@", "timestamp")
                self.advance()
        else:
            self.unexpected(tok, "@", "timestamp")
        if timestamp is not None and (math.isnan(timestamp) or abs(timestamp) >= 2.0**63):
            raise self.error(expr.pos[0], "timestamp out of bounds for @ modifier: "
                             + format_percent_f(timestamp))
        target = expr.selector if isinstance(expr, ast.MatrixSelector) else expr
        if not isinstance(target, (ast.VectorSelector, ast.SubqueryExpr)):
            raise self.error(expr.pos[0], "@ modifier must be preceded by an instant vector "
                             "selector or range vector selector or a subquery")
        if target.at_ms is not None or target.at_start_or_end is not None:
            raise self.error(expr.pos[0], "@ <timestamp> may not be set multiple times")
        if timestamp is not None:
            target.at_ms = _seconds_to_ms(timestamp)
        else:
            target.at_start_or_end = preprocessor
        expr.pos = (expr.pos[0], tok.end)

    # -- selectors, calls, aggregations

    def parse_vector_selector(self) -> ast.VectorSelector:
        tok = self.peek()
        start = tok.pos
        name = ""
        if tok.kind != T.LEFT_BRACE:
            self.advance()
            name = tok.text
        end = tok.end
        matchers: list[Matcher] = []
        if self.peek().kind == T.LEFT_BRACE:
            matchers, end = self.parse_label_matchers()
        if name:
            matchers.append(Matcher("__name__", "=", name))
        return ast.VectorSelector(name, matchers, pos=(start, end))

    def parse_label_matchers(self) -> tuple[list[Matcher], int]:
        self.advance()
        matchers: list[Matcher] = []
        while True:
            tok = self.peek()
            if tok.kind == T.RIGHT_BRACE:
                break
            if tok.kind != T.IDENTIFIER:
                self.unexpected(tok, "label matching", 'identifier or "}"')
            self.advance()
            op = self.peek()
            if op.kind not in _MATCH_OPS:
                self.unexpected(op, "label matching", "label matching operator")
            self.advance()
            value = self.peek()
            if value.kind != T.STRING:
                self.unexpected(value, "label matching", "string")
            self.advance()
            matchers.append(self.new_matcher(tok, _MATCH_OPS[op.kind], value.value or ""))
            sep = self.peek()
            if sep.kind == T.COMMA:
                self.advance()
            elif sep.kind != T.RIGHT_BRACE:
                self.unexpected(sep, "label matching", '"," or "}"')
        close = self.advance()
        return matchers, close.end

    def new_matcher(self, name: Token, op: str, value: str) -> Matcher:
        regex = op in ("=~", "!~")
        if regex and any("\udc80" <= c <= "\udcff" for c in value):
            shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise self.error(name.pos, f"error parsing regexp: invalid UTF-8: `{shown})$`")
        try:
            return Matcher(name.text, op, value)
        except ValueError as e:
            raise self.error(name.pos, _regex_error_message(str(e), value)) from None

    def parse_call_args(self) -> tuple[list[ast.Expr], int]:
        """``( [expr {, expr}] )``; returns the arguments and the end of ``)``."""
        self.advance()
        args: list[ast.Expr] = []
        if self.peek().kind == T.RIGHT_PAREN:
            return args, self.advance().end
        while True:
            args.append(self.parse_binary(0))
            tok = self.peek()
            if tok.kind == T.RIGHT_PAREN:
                return args, self.advance().end
            if tok.kind != T.COMMA:
                self.unexpected(tok)
            self.advance()
            following = self.peek()
            if following.kind == T.ERROR:
                self.unexpected(following)
            if following.kind not in _EXPR_START:
                raise self.error(tok.pos, "trailing commas not allowed in function call args")

    def parse_call(self) -> ast.Call:
        name = self.advance()
        args, end = self.parse_call_args()
        if get_function(name.text) is None:
            raise self.error(name.pos, f"unknown function with name {go_quote(name.text)}")
        return ast.Call(name.text, args, pos=(name.pos, end))

    def parse_aggregation(self) -> ast.AggregateExpr:
        op = self.advance()
        grouping: list[str] = []
        without = False
        modifier_first = self.peek().kind in (T.BY, T.WITHOUT)
        if modifier_first:
            without = self.advance().kind == T.WITHOUT
            grouping = self.parse_grouping_labels()
        self.aggregation_depth += 1
        tok = self.peek()
        if tok.kind != T.LEFT_PAREN:
            self.unexpected(tok, "aggregation")
        args, end = self.parse_call_args()
        self.aggregation_depth -= 1
        if not modifier_first:
            # 2.42 looks at the next token (for a trailing `by`/`without`) before checking
            # the arguments, so a lexer error there is reported first.
            tok = self.peek()
            if tok.kind == T.ERROR:
                self.unexpected(tok)
            if tok.kind in (T.BY, T.WITHOUT):
                without = self.advance().kind == T.WITHOUT
                grouping = self.parse_grouping_labels()
                end = self.tokens[self.i - 1].end
        op_name = op.kind.lower()
        if not args:
            raise self.error(op.pos, "no arguments for aggregate expression provided")
        wanted = 2 if op_name in _PARAM_AGGREGATORS else 1
        if len(args) != wanted:
            raise self.error(op.pos, "wrong number of arguments for aggregate expression "
                             f"provided, expected {wanted}, got {len(args)}")
        param = args[0] if wanted == 2 else None
        return ast.AggregateExpr(op_name, args[-1], param, grouping, without, pos=(op.pos, end))


# RE2's names of regexp syntax errors -> Go's, so messages read like Prometheus'.
_REGEX_ERROR_CODES = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
}


def _regex_error_message(reason: str, pattern: str) -> str:
    """``error parsing regexp: <what>: `<where>``` from the matcher's RE2 error."""
    prefix = f"invalid regular expression {pattern!r}: "
    reason = reason.removeprefix(prefix)
    code, _, arg = reason.partition(": ")
    if code in ("missing )", "unexpected )") or not arg:
        arg = f"^(?:{pattern})$"
    elif code == "missing ]":
        arg += ")$"
    return f"error parsing regexp: {_REGEX_ERROR_CODES.get(code, code)}: `{arg}`"


# --- static type checking ------------------------------------------------------------------


class _Checker:
    """Prometheus' ``checkAST``: children first, then the node; the first error wins.

    It also normalises binary expressions as Prometheus does: set operators get a
    many-to-many matching, and the matching is dropped when a side is not a vector.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, pos: int, message: str) -> ParseError:
        return _error(self.text, pos, message)

    def expect(self, node: ast.Expr, want: ValueType, context: str) -> None:
        got = self.check(node)
        if got != want:
            raise self.error(node.pos[0], f"expected type {documented_type(want)} in {context}, "
                             f"got {documented_type(got)}")

    def check(self, node: ast.Expr) -> ValueType:
        """Check ``node`` and return its type."""
        if isinstance(node, ast.BinaryExpr):
            return self.check_binary_chain(node)
        if isinstance(node, ast.AggregateExpr):
            self.expect(node.expr, ValueType.VECTOR, "aggregation expression")
            if node.op in ("topk", "bottomk", "quantile"):
                assert node.param is not None
                self.expect(node.param, ValueType.SCALAR, "aggregation parameter")
            elif node.op == "count_values":
                assert node.param is not None
                self.expect(node.param, ValueType.STRING, "aggregation parameter")
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.ParenExpr):
            return self.check(node.expr)
        elif isinstance(node, ast.UnaryExpr):
            inner = self.check(node.expr)
            if inner not in (ValueType.SCALAR, ValueType.VECTOR):
                raise self.error(node.pos[0], "unary expression only allowed on expressions of "
                                 f'type scalar or instant vector, got "{documented_type(inner)}"')
            return inner
        elif isinstance(node, ast.SubqueryExpr):
            inner = self.check(node.expr)
            if inner != ValueType.VECTOR:
                raise self.error(node.pos[0], "subquery is only allowed on instant vector, got "
                                 f"{inner} instead")
        elif isinstance(node, ast.MatrixSelector):
            self.check(node.selector)
        elif isinstance(node, ast.VectorSelector):
            self.check_selector(node)
        return _leaf_type(node)

    def check_selector(self, node: ast.VectorSelector) -> None:
        if node.name:
            # The last matcher is the one for the name written before the braces.
            for m in node.matchers[:-1]:
                if m.name == "__name__":
                    raise self.error(node.pos[0], "metric name must not be set twice: "
                                     f"{go_quote(node.name)} or {go_quote(m.value)}")
        elif not has_non_empty_matcher(node.matchers):
            raise self.error(node.pos[0],
                             "vector selector must contain at least one non-empty matcher")

    def check_call(self, node: ast.Call) -> None:
        sig = get_function(node.func)
        assert sig is not None, node.func
        nargs = len(node.args)
        if sig.variadic == 0:
            if nargs != len(sig.arg_types):
                raise self.error(node.pos[0], f"expected {len(sig.arg_types)} argument(s) in "
                                 f'call to "{sig.name}", got {nargs}')
        elif nargs < sig.min_args:
            raise self.error(node.pos[0], f"expected at least {sig.min_args} argument(s) in "
                             f'call to "{sig.name}", got {nargs}')
        elif sig.max_args is not None and nargs > sig.max_args:
            raise self.error(node.pos[0], f"expected at most {sig.max_args} argument(s) in "
                             f'call to "{sig.name}", got {nargs}')
        for index, arg in enumerate(node.args):
            want = sig.arg_type(index)
            if want is None:
                break
            self.expect(arg, want, f'call to function "{sig.name}"')

    def operator_pos(self, node: ast.BinaryExpr) -> int:
        pos = node.lhs.pos[1]
        while pos < len(self.text) and self.text[pos] in " \t\n\r":
            pos += 1
        return pos

    def check_binary_chain(self, node: ast.BinaryExpr) -> ValueType:
        """Left-deep chains are walked with a loop, in the order recursion would take."""
        spine: list[ast.BinaryExpr] = []
        left: ast.Expr = node
        while isinstance(left, ast.BinaryExpr):
            spine.append(left)
            left = left.lhs
        lt = self.check(left)
        for binary in reversed(spine):
            rt = self.check(binary.rhs)
            self.check_binary(binary, lt, rt)
            lt = ValueType.SCALAR if lt == rt == ValueType.SCALAR else ValueType.VECTOR
        return lt

    def check_binary(self, node: ast.BinaryExpr, lt: ValueType, rt: ValueType) -> None:
        comparison = node.op in ("==", "!=", "<=", "<", ">=", ">")
        set_op = node.op in ("and", "or", "unless")
        matching = node.matching
        if node.return_bool and not comparison:
            raise self.error(self.operator_pos(node),
                             "bool modifier can only be used on comparison operators")
        if comparison and not node.return_bool and lt == rt == ValueType.SCALAR:
            raise self.error(self.operator_pos(node),
                             "comparisons between scalars must use BOOL modifier")
        if matching is not None:
            if set_op and matching.card == "one-to-one":
                matching.card = "many-to-many"
            if matching.on:
                for label in matching.matching_labels:
                    if label in matching.include:
                        raise self.error(self.operator_pos(node), f'label "{label}" must not '
                                         "occur in ON and GROUP clause at once")
        for side, t in ((node.lhs, lt), (node.rhs, rt)):
            if t not in (ValueType.SCALAR, ValueType.VECTOR):
                raise self.error(side.pos[0], "binary expression must contain only scalar and "
                                 "instant vector types")
        if matching is not None and (lt != ValueType.VECTOR or rt != ValueType.VECTOR):
            if matching.matching_labels:
                raise self.error(node.pos[0],
                                 "vector matching only allowed between instant vectors")
            node.matching = None
        elif matching is not None and set_op:
            if matching.card in ("one-to-many", "many-to-one"):
                raise self.error(node.pos[0], f'no grouping allowed for "{node.op}" operation')
        if set_op and ValueType.SCALAR in (lt, rt):
            raise self.error(node.pos[0],
                             f'set operator "{node.op}" not allowed in binary scalar expression')
