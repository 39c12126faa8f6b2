"""The tree walker: evaluates every node for all steps of the query at once.

Each node returns a :mod:`values` object covering every step; selectors read storage once
per node for the union of their windows. The query deadline is checked before each node
and the number of loaded samples / produced points against the sample limit.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from tsdb.query.promql import ast
from tsdb.query.promql import labelsets as ls_
from tsdb.query.promql.aggregations import aggregate
from tsdb.query.promql.binops import binary
from tsdb.query.promql.errors import QueryError, QueryTimeout, TooManySamples
from tsdb.query.promql.selectors import instant_vector, range_vector, select
from tsdb.query.promql.subquery import as_range_vector, subquery_grid
from tsdb.query.promql.values import (
    EvalContext,
    InstantVector,
    RangeVector,
    Scalar,
    String,
    Value,
)
from tsdb.storage.database import Database

TIMEOUT_MESSAGE = "query timed out in expression evaluation"
TOO_MANY_SAMPLES_MESSAGE = ("query processing would load too many samples into memory in "
                            "query execution")

def unwrap_parens(node: ast.Expr) -> ast.Expr:
    while isinstance(node, ast.ParenExpr):
        node = node.expr
    return node


@dataclass
class _FunctionCall:
    """Stand-in with the fields of ``functions.FunctionCall`` (used only when a function
    table is injected and the function library is not importable)."""

    name: str
    args: list[Value]
    arg_exprs: list[ast.Expr]
    ctx: EvalContext


def _load_functions() -> tuple[Mapping[str, Callable], type]:
    module = importlib.import_module("tsdb.query.promql.functions")
    return module.FUNCTIONS, module.FunctionCall


class Evaluator:
    def __init__(self, db: Database, *, deadline: float, max_samples: int,
                 default_subquery_step_ms: int,
                 functions: Mapping[str, Callable] | None = None) -> None:
        self.db = db
        self.deadline = deadline
        self.max_samples = max_samples
        self.default_subquery_step_ms = default_subquery_step_ms
        self._functions = functions
        self._call_type: type | None = None
        self._dispatch: dict[type, Callable[[ast.Expr, EvalContext], Value]] = {
            ast.NumberLiteral: self._number,
            ast.StringLiteral: self._string,
            ast.ParenExpr: self._paren,
            ast.UnaryExpr: self._unary,
            ast.VectorSelector: self._vector_selector,
            ast.MatrixSelector: self._matrix_selector,
            ast.SubqueryExpr: self._subquery,
            ast.Call: self._call,
            ast.AggregateExpr: self._aggregate,
            ast.BinaryExpr: self._binary,
        }

    # -- limits --------------------------------------------------------------------------

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout(TIMEOUT_MESSAGE)

    def check_samples(self, n: int) -> None:
        if n > self.max_samples:
            raise TooManySamples(TOO_MANY_SAMPLES_MESSAGE)

    # -- dispatch ------------------------------------------------------------------------

    def eval(self, node: ast.Expr, ctx: EvalContext) -> Value:
        self.check_deadline()
        try:
            method = self._dispatch[type(node)]
        except KeyError:
            raise QueryError(f"unexpected expression {type(node).__name__}",
                             "bad_data") from None
        value = method(node, ctx)
        if isinstance(value, InstantVector):
            self.check_samples(int(np.count_nonzero(value.present)))
        return value

    def _number(self, node: ast.NumberLiteral, ctx: EvalContext) -> Value:
        return Scalar(np.full(ctx.n_steps, float(node.value)))

    def _string(self, node: ast.StringLiteral, ctx: EvalContext) -> Value:
        return String(node.value)

    def _paren(self, node: ast.ParenExpr, ctx: EvalContext) -> Value:
        return self.eval(node.expr, ctx)

    def _unary(self, node: ast.UnaryExpr, ctx: EvalContext) -> Value:
        value = self.eval(node.expr, ctx)
        if node.op != "-":
            return value
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, InstantVector):
            negated = InstantVector(ls_.drop_name(value.labels), -value.values, value.present)
            return ls_.merge_same_labels(negated, per_step=False)
        raise QueryError("unary expression only allowed on expressions of type scalar or "
                         "instant vector", "bad_data")

    # -- selectors -----------------------------------------------------------------------

    @staticmethod
    def refs(at_ms: int | None, at_start_or_end: str | None, offset_ms: int,
             ctx: EvalContext) -> np.ndarray:
        """Per step, the time a selector or subquery looks back from: the step time or the
        ``@`` time, minus the offset."""
        if at_start_or_end == "start":
            base = np.full(ctx.n_steps, ctx.start_ms, np.int64)
        elif at_start_or_end == "end":
            base = np.full(ctx.n_steps, ctx.end_ms, np.int64)
        elif at_ms is not None:
            base = np.full(ctx.n_steps, at_ms, np.int64)
        else:
            base = np.asarray(ctx.steps, np.int64)
        return base - int(offset_ms)

    def _vector_selector(self, node: ast.VectorSelector, ctx: EvalContext,
                         timestamps: bool = False) -> Value:
        refs = self.refs(node.at_ms, node.at_start_or_end, node.offset_ms, ctx)
        series = select(self.db, node.matchers, refs[0] - ctx.lookback_ms, refs[-1])
        self.check_samples(len(series.t))
        # the (N, S) matrices are built before points can be counted: bound them first
        self.check_samples(len(series) * ctx.n_steps)
        return instant_vector(series, refs, ctx.lookback_ms, timestamps=timestamps)

    def _matrix_selector(self, node: ast.MatrixSelector, ctx: EvalContext) -> Value:
        sel = node.selector
        refs = self.refs(sel.at_ms, sel.at_start_or_end, sel.offset_ms, ctx)
        series = select(self.db, sel.matchers, refs[0] - node.range_ms, refs[-1])
        self.check_samples(len(series.t))
        self.check_samples(len(series) * ctx.n_steps)
        return range_vector(series, refs, node.range_ms)

    def _subquery(self, node: ast.SubqueryExpr, ctx: EvalContext) -> Value:
        step = node.step_ms or self.default_subquery_step_ms
        refs = self.refs(node.at_ms, node.at_start_or_end, node.offset_ms, ctx)
        grid = subquery_grid(refs, node.range_ms, step)
        if len(grid) == 0:
            inner = InstantVector.empty(0)
        else:
            sub_ctx = EvalContext(steps=grid, start_ms=ctx.start_ms, end_ms=ctx.end_ms,
                                  step_ms=step, lookback_ms=ctx.lookback_ms)
            inner = self.eval(node.expr, sub_ctx)
        if not isinstance(inner, InstantVector):
            raise QueryError("subquery is only allowed on instant vector, got "
                             f"{type(inner).__name__}", "bad_data")
        out = as_range_vector(inner, grid, refs, node.range_ms)
        self.check_samples(len(out.t))
        return out

    # -- functions, aggregations, operators ----------------------------------------------

    def _function_table(self) -> tuple[Mapping[str, Callable], type]:
        if self._call_type is None:
            try:
                table, call_type = _load_functions()
            except ImportError:
                if self._functions is None:
                    raise
                table, call_type = {}, _FunctionCall
            if self._functions is None:
                self._functions = table
            self._call_type = call_type
        assert self._functions is not None
        return self._functions, self._call_type

    def _call(self, node: ast.Call, ctx: EvalContext) -> Value:
        if node.func == "timestamp" and node.args:
            arg = unwrap_parens(node.args[0])
            if isinstance(arg, ast.VectorSelector):
                # the samples' own timestamps, not the step times (Prometheus special case)
                vec = self._vector_selector(arg, ctx, timestamps=True)
                out = InstantVector(ls_.drop_name(vec.labels), vec.values, vec.present)
                return ls_.merge_same_labels(out)
        table, call_type = self._function_table()
        fn = table.get(node.func)
        if fn is None:
            raise QueryError(f'unknown function with name "{node.func}"', "bad_data")
        args = [self.eval(a, ctx) for a in node.args]
        result = fn(call_type(node.func, args, list(node.args), ctx))
        if isinstance(result, InstantVector):
            # Prometheus checks range-vector functions' results series by series and
            # every other function's result step by step
            whole_series = any(isinstance(a, RangeVector) for a in args)
            result = ls_.merge_same_labels(result, per_step=not whole_series)
        return result

    def _aggregate(self, node: ast.AggregateExpr, ctx: EvalContext) -> Value:
        param = self.eval(node.param, ctx) if node.param is not None else None
        vec = self.eval(node.expr, ctx)
        if not isinstance(vec, InstantVector):
            raise QueryError(f"expected instant vector in aggregation {node.op}",
                             "bad_data")
        return aggregate(node.op, vec, param, list(node.grouping), node.without)

    def _binary(self, node: ast.BinaryExpr, ctx: EvalContext) -> Value:
        # left-deep chains (``a or b or c ...``, as dashboards generate them) are folded
        # in a loop, so their length is not limited by the recursion depth
        chain = [node]
        while isinstance(chain[-1].lhs, ast.BinaryExpr):
            chain.append(chain[-1].lhs)
        value = self.eval(chain[-1].lhs, ctx)
        for link in reversed(chain):
            self.check_deadline()
            rhs = self.eval(link.rhs, ctx)
            value = binary(link.op, value, rhs, link.matching, link.return_bool)
            if isinstance(value, InstantVector):
                self.check_samples(int(np.count_nonzero(value.present)))
        return value
