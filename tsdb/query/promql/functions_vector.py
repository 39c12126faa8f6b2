"""Functions that reshape whole vectors rather than map values: ``sort``, ``sort_desc``,
``scalar``, ``vector``, ``absent`` and ``absent_over_time``."""

from __future__ import annotations

import numpy as np

from tsdb.query.promql import ast
from tsdb.query.promql.functions_base import (
    METRIC_NAME,
    Function,
    FunctionCall,
    one_series,
    range_arg,
    scalar_arg,
    unwrap_parens,
    vector_arg,
)
from tsdb.query.promql.values import InstantVector, Scalar
from tsdb.storage.labels import EQ, Labels


def _sort(call: FunctionCall, descending: bool) -> InstantVector:
    """Order the series by value, NaN last, keeping the labels as they are.

    Only an instant query (one step) has an order to show; a range query's series are
    ordered by the API, so they are returned unchanged.
    """
    vec = vector_arg(call, 0)
    if vec.values.shape[1] != 1:
        return InstantVector(list(vec.labels), vec.values.copy(), vec.present.copy())
    values = vec.values[:, 0]
    key = -values if descending else values
    order = np.lexsort((key, ~vec.present[:, 0]))  # present first, then by key, NaN last
    return InstantVector([vec.labels[i] for i in order], vec.values[order], vec.present[order])


def func_sort(call: FunctionCall) -> InstantVector:
    return _sort(call, descending=False)


def func_sort_desc(call: FunctionCall) -> InstantVector:
    return _sort(call, descending=True)


def func_scalar(call: FunctionCall) -> Scalar:
    """The value of the only series at each step; NaN where there are none or several."""
    vec = vector_arg(call, 0)
    steps = call.ctx.n_steps
    if len(vec) == 0:
        return Scalar(np.full(steps, np.nan))
    single = vec.present.sum(axis=0) == 1
    row = np.argmax(vec.present, axis=0)
    return Scalar(np.where(single, vec.values[row, np.arange(steps)], np.nan))


def func_vector(call: FunctionCall) -> InstantVector:
    return one_series(np.array(scalar_arg(call, 0), dtype=np.float64))


def absent_labels(expr: ast.Expr) -> Labels:
    """Prometheus' ``createLabelsForAbsentFunction``: the labels a selector argument pins
    with exactly one equality matcher; a name matched any other way, or twice, is left
    out. Anything but a (parenthesised) selector gives no labels."""
    expr = unwrap_parens(expr)
    if isinstance(expr, ast.MatrixSelector):
        expr = expr.selector
    if not isinstance(expr, ast.VectorSelector):
        return ()
    pinned: dict[str, str] = {}
    seen: set[str] = set()
    for matcher in expr.matchers:
        if matcher.name == METRIC_NAME:
            continue
        if matcher.op == EQ and matcher.name not in seen:
            seen.add(matcher.name)
            if matcher.value:  # an empty value means the label is absent
                pinned[matcher.name] = matcher.value
        else:
            pinned.pop(matcher.name, None)
    return tuple(sorted(pinned.items()))


def func_absent(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    missing = ~vec.present.any(axis=0)
    out = one_series(np.ones(call.ctx.n_steps), missing)
    out.labels = [absent_labels(call.arg_exprs[0])]
    return out


def func_absent_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    missing = ~((rv.hi - rv.lo) > 0).any(axis=0)
    out = one_series(np.ones(call.ctx.n_steps), missing)
    out.labels = [absent_labels(call.arg_exprs[0])]
    return out


FUNCTIONS: dict[str, Function] = {
    "sort": func_sort,
    "sort_desc": func_sort_desc,
    "scalar": func_scalar,
    "vector": func_vector,
    "absent": func_absent,
    "absent_over_time": func_absent_over_time,
}
