"""Syntax tree -> PromQL text, in the format of Prometheus 2.42's ``String()`` methods.

Parsing the output gives back the same tree (parentheses are nodes, so no precedence logic
is needed). Two deliberate differences from Prometheus' printer, both for that round trip:
label matchers keep their written order instead of being sorted, and ``group_left`` /
``group_right`` are printed even when no ``on``/``ignoring`` labels were given.
"""

from __future__ import annotations

import math
from decimal import Decimal

from tsdb.query.promql import ast
from tsdb.query.promql.lexer import go_quote

_UNITS = (("y", 365 * 86_400_000, True), ("w", 7 * 86_400_000, True), ("d", 86_400_000, False),
          ("h", 3_600_000, False), ("m", 60_000, False), ("s", 1000, False), ("ms", 1, False))


def format_duration(ms: int) -> str:
    """Prometheus' ``model.Duration.String``: ``90m`` -> ``1h30m``; years and weeks only
    when they divide the whole duration."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size, exact in _UNITS:
        if exact and ms % size:
            continue
        count = ms // size
        if count > 0:
            out.append(f"{count}{unit}")
            ms -= count * size
    return "".join(out)


def format_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent form outside [1e-4, 1e6)
    (except ``Inf`` for +Inf)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        # Go prints "+Inf"; plain "Inf" keeps `Inf ^ 2` from re-parsing as `+(Inf ^ 2)`.
        return "Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    point = len(digit_tuple) + exponent            # digits before the decimal point
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def to_promql(expr: ast.Expr) -> str:
    """PromQL text for ``expr``."""
    if isinstance(expr, ast.NumberLiteral):
        return format_float(expr.value)
    if isinstance(expr, ast.StringLiteral):
        return go_quote(expr.value)
    if isinstance(expr, ast.VectorSelector):
        return _selector(expr) + _modifiers(expr.at_ms, expr.at_start_or_end, expr.offset_ms)
    if isinstance(expr, ast.MatrixSelector):
        vs = expr.selector
        return (f"{_selector(vs)}[{format_duration(expr.range_ms)}]"
                + _modifiers(vs.at_ms, vs.at_start_or_end, vs.offset_ms))
    if isinstance(expr, ast.SubqueryExpr):
        step = format_duration(expr.step_ms) if expr.step_ms else ""
        return (f"{to_promql(expr.expr)}[{format_duration(expr.range_ms)}:{step}]"
                + _modifiers(expr.at_ms, expr.at_start_or_end, expr.offset_ms))
    if isinstance(expr, ast.Call):
        return f"{expr.func}({', '.join(to_promql(a) for a in expr.args)})"
    if isinstance(expr, ast.AggregateExpr):
        return _aggregation(expr)
    if isinstance(expr, ast.BinaryExpr):
        return _binary(expr)
    if isinstance(expr, ast.UnaryExpr):
        return f"{expr.op}{to_promql(expr.expr)}"
    if isinstance(expr, ast.ParenExpr):
        return f"({to_promql(expr.expr)})"
    raise TypeError(f"not a PromQL expression node: {expr!r}")


def _selector(vs: ast.VectorSelector) -> str:
    shown = [f"{m.name}{m.op}{go_quote(m.value)}" for m in vs.matchers
             if not (m.name == "__name__" and m.op == "=" and m.value == vs.name)]
    if not shown:
        return vs.name
    return f"{vs.name}{{{','.join(shown)}}}"


def _modifiers(at_ms: int | None, at_start_or_end: str | None, offset_ms: int) -> str:
    out = ""
    if at_ms is not None:
        out += " @ %.3f" % (at_ms / 1000.0)
    elif at_start_or_end is not None:
        out += f" @ {at_start_or_end}()"
    if offset_ms > 0:
        out += f" offset {format_duration(offset_ms)}"
    elif offset_ms < 0:
        out += f" offset -{format_duration(-offset_ms)}"
    return out


def _aggregation(expr: ast.AggregateExpr) -> str:
    text = expr.op
    if expr.without:
        text += f" without ({', '.join(expr.grouping)}) "
    elif expr.grouping:
        text += f" by ({', '.join(expr.grouping)}) "
    args = [to_promql(expr.param)] if expr.param is not None else []
    args.append(to_promql(expr.expr))
    return f"{text}({', '.join(args)})"


def _binary(expr: ast.BinaryExpr) -> str:
    # Left-deep chains (`a or b or c ...`) are printed with a loop, not recursion.
    spine: list[ast.BinaryExpr] = []
    left: ast.Expr = expr
    while isinstance(left, ast.BinaryExpr):
        spine.append(left)
        left = left.lhs
    parts = [to_promql(left)]
    for node in reversed(spine):
        parts.append(f" {node.op}{_binary_modifiers(node)} {to_promql(node.rhs)}")
    return "".join(parts)


def _binary_modifiers(expr: ast.BinaryExpr) -> str:
    text = " bool" if expr.return_bool else ""
    vm = expr.matching
    if vm is not None:
        grouped = vm.card in ("many-to-one", "one-to-many")
        if vm.on or vm.matching_labels or grouped:
            text += f" {'on' if vm.on else 'ignoring'} ({', '.join(vm.matching_labels)})"
        if grouped:
            side = "left" if vm.card == "many-to-one" else "right"
            text += f" group_{side} ({', '.join(vm.include)})"
    return text
