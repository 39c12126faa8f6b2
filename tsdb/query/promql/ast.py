"""The PromQL syntax tree, as produced by :mod:`parser` and walked by the evaluator.

Node kinds and their fields follow Prometheus 2.42's ``promql/parser/ast.go`` so that
semantics documented there carry over one to one. Durations and timestamps are integer
milliseconds. Every node records the ``(start, end)`` character range it was parsed from,
which error messages use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tsdb.storage.labels import Matcher


class ValueType(StrEnum):
    """Static type of an expression (Prometheus' ``parser.ValueType``)."""

    NONE = "none"
    SCALAR = "scalar"
    VECTOR = "vector"   # instant vector
    MATRIX = "matrix"   # range vector
    STRING = "string"


PosRange = tuple[int, int]


@dataclass(eq=False)
class Expr:
    """Base class of every node."""

    pos: PosRange = field(default=(0, 0), kw_only=True, compare=False, repr=False)


@dataclass(eq=False)
class NumberLiteral(Expr):
    value: float


@dataclass(eq=False)
class StringLiteral(Expr):
    value: str


@dataclass(eq=False)
class VectorSelector(Expr):
    """``name{matchers} offset D @ T``.

    ``matchers`` always includes the ``__name__`` matcher when a metric name was written
    before the braces. ``offset_ms`` may be negative. ``at_ms`` is set for ``@ <number>``;
    ``at_start_or_end`` is ``"start"`` / ``"end"`` for ``@ start()`` / ``@ end()``.
    """

    name: str
    matchers: list[Matcher]
    offset_ms: int = 0
    at_ms: int | None = None
    at_start_or_end: str | None = None


@dataclass(eq=False)
class MatrixSelector(Expr):
    """``selector[range]``; offset and ``@`` live on the inner :class:`VectorSelector`."""

    selector: VectorSelector
    range_ms: int


@dataclass(eq=False)
class SubqueryExpr(Expr):
    """``expr[range:step] offset D @ T``; ``step_ms == 0`` means the default interval."""

    expr: Expr
    range_ms: int
    step_ms: int = 0
    offset_ms: int = 0
    at_ms: int | None = None
    at_start_or_end: str | None = None


@dataclass(eq=False)
class Call(Expr):
    """A function call; ``func`` is the function name (see ``signatures``)."""

    func: str
    args: list[Expr]


@dataclass(eq=False)
class AggregateExpr(Expr):
    """``op [by|without (grouping)] ([param,] expr)``.

    ``op`` is the lower-case aggregation name (``sum``, ``topk``, ``count_values``...).
    ``param`` is set for ``topk``, ``bottomk``, ``quantile`` and ``count_values``.
    """

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: list[str] = field(default_factory=list)
    without: bool = False


@dataclass(eq=False)
class VectorMatching:
    """The ``on``/``ignoring`` and ``group_left``/``group_right`` part of a binary op.

    ``card`` is one of ``"one-to-one"``, ``"many-to-one"`` (group_left),
    ``"one-to-many"`` (group_right), ``"many-to-many"`` (and/or/unless).
    ``include`` holds the extra labels listed in ``group_left(...)``/``group_right(...)``.
    """

    card: str = "one-to-one"
    matching_labels: list[str] = field(default_factory=list)
    on: bool = False
    include: list[str] = field(default_factory=list)


@dataclass(eq=False)
class BinaryExpr(Expr):
    """``lhs op [bool] [matching] rhs``; ``op`` is the operator token text (``+``,
    ``==``, ``and``, ``atan2``...). ``matching`` is None when either side is a scalar."""

    op: str
    lhs: Expr
    rhs: Expr
    matching: VectorMatching | None = None
    return_bool: bool = False


@dataclass(eq=False)
class UnaryExpr(Expr):
    """``-expr`` or ``+expr``."""

    op: str
    expr: Expr


@dataclass(eq=False)
class ParenExpr(Expr):
    expr: Expr
