"""The PromQL query engine: parse, evaluate over all steps at once, shape the result the way
Prometheus 2.42's API answers (``/api/v1/query`` and ``/api/v1/query_range``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from tsdb.query.promql import ast
from tsdb.query.promql import labelsets as ls_
from tsdb.query.promql.ast import ValueType
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.evaluator import Evaluator, unwrap_parens
from tsdb.query.promql.parser import documented_type, parse_expr, value_type
from tsdb.query.promql.result import QueryResult
from tsdb.query.promql.values import (
    EvalContext,
    InstantVector,
    RangeVector,
    Scalar,
    String,
    Value,
)
from tsdb.storage.database import Database


class QueryEngine:
    """Answers PromQL queries from a :class:`Database` like Prometheus 2.42 does.

    Raises :class:`~errors.QueryError` subclasses: ``ParseError`` (bad_data) for syntax and
    type errors, ``QueryTimeout`` past ``timeout_s``, ``TooManySamples`` past
    ``max_samples``, plain ``QueryError`` (execution) for runtime errors such as duplicate
    label sets or ambiguous vector matching. An engine holds settings only; each query
    gets its own :class:`~evaluator.Evaluator`, so one engine serves concurrent queries.
    """

    def __init__(self, db: Database, *, lookback_ms: int = 300_000, timeout_s: float = 120.0,
                 max_samples: int = 50_000_000, default_subquery_step_ms: int = 60_000,
                 functions: Mapping[str, Callable] | None = None) -> None:
        self.db = db
        self.lookback_ms = lookback_ms
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.default_subquery_step_ms = default_subquery_step_ms
        self._functions = functions   # tests inject stubs; None = the function library

    def _evaluator(self) -> Evaluator:
        return Evaluator(self.db, deadline=time.monotonic() + self.timeout_s,
                         max_samples=self.max_samples,
                         default_subquery_step_ms=self.default_subquery_step_ms,
                         functions=self._functions)

    # -- public API ----------------------------------------------------------------------

    def instant_query(self, query: str, time_ms: int) -> QueryResult:
        expr = parse_expr(query)
        return self.instant_query_expr(expr, time_ms)

    def range_query(self, query: str, start_ms: int, end_ms: int,
                    step_ms: int) -> QueryResult:
        expr = parse_expr(query)
        return self.range_query_expr(expr, start_ms, end_ms, step_ms)

    # -- parsed expressions (tests build syntax trees by hand) ---------------------------

    def instant_query_expr(self, expr: ast.Expr, time_ms: int) -> QueryResult:
        time_ms = int(time_ms)
        ctx = EvalContext(steps=np.array([time_ms], np.int64), start_ms=time_ms,
                          end_ms=time_ms, step_ms=0, lookback_ms=self.lookback_ms)
        value = self._evaluator().eval(expr, ctx)
        return _instant_result(value, time_ms, keep_order=_outer_sort(expr))

    def range_query_expr(self, expr: ast.Expr, start_ms: int, end_ms: int,
                         step_ms: int) -> QueryResult:
        kind = value_type(expr)
        if kind not in (ValueType.SCALAR, ValueType.VECTOR):
            raise QueryError(f'invalid expression type "{documented_type(kind)}" for range '
                             "query, must be Scalar or instant Vector", "bad_data")
        start_ms, end_ms, step_ms = int(start_ms), int(end_ms), int(step_ms)
        if step_ms <= 0:
            raise QueryError("zero or negative query resolution step widths are not "
                             "accepted. Try a positive integer", "bad_data")
        if end_ms < start_ms:
            raise QueryError("end timestamp must not be before start time", "bad_data")
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        ctx = EvalContext(steps=steps, start_ms=start_ms, end_ms=end_ms, step_ms=step_ms,
                          lookback_ms=self.lookback_ms)
        value = self._evaluator().eval(expr, ctx)
        return _range_result(value, steps)


def _outer_sort(expr: ast.Expr) -> bool:
    node = unwrap_parens(expr)
    return isinstance(node, ast.Call) and node.func in ("sort", "sort_desc")


def _instant_result(value: Value, time_ms: int, keep_order: bool) -> QueryResult:
    if isinstance(value, Scalar):
        return QueryResult("scalar", scalar=(time_ms, float(value.values[0])))
    if isinstance(value, String):
        return QueryResult("string", string=(time_ms, value.value))
    if isinstance(value, RangeVector):
        series = []
        for i in ls_.sort_order(value.labels):
            lo, hi = int(value.lo[i, 0]), int(value.hi[i, 0])
            if hi > lo:
                series.append((value.labels[i], value.t[lo:hi].copy(), value.v[lo:hi].copy()))
        return QueryResult("matrix", series)
    assert isinstance(value, InstantVector)
    rows = np.flatnonzero(value.present[:, 0]).tolist()
    if not keep_order:
        rows.sort(key=value.labels.__getitem__)
    t = np.array([time_ms], np.int64)
    series = [(value.labels[i], t, value.values[i, :1].copy()) for i in rows]
    return QueryResult("vector", series)


def _range_result(value: Value, steps: np.ndarray) -> QueryResult:
    if isinstance(value, Scalar):
        return QueryResult("matrix", [((), steps.copy(), value.values.astype(np.float64))])
    if not isinstance(value, InstantVector):
        raise QueryError("range query must evaluate to a scalar or an instant vector",
                         "bad_data")
    series = []
    for i in ls_.sort_order(value.labels):
        mask = value.present[i]
        if mask.any():
            series.append((value.labels[i], steps[mask], value.values[i, mask]))
    return QueryResult("matrix", series)
