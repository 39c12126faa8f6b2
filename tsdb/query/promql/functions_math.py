"""Elementwise math on instant vectors: abs, ceil, exp, logarithms, trigonometry, sgn,
rounding and clamping, plus the ``pi()`` constant. All drop ``__name__`` (Prometheus'
``simpleFunc``); domain errors give NaN or ±Inf as Go's ``math`` package does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tsdb.query.promql.functions_base import (
    Function,
    FunctionCall,
    map_values,
    scalar_arg,
    vector_arg,
)
from tsdb.query.promql.values import InstantVector, Scalar


def _elementwise(op: Callable[[np.ndarray], np.ndarray]) -> Function:
    def func(call: FunctionCall) -> InstantVector:
        vec = vector_arg(call, 0)
        with np.errstate(all="ignore"):
            return map_values(vec, op(vec.values))

    return func


def _sgn(v: np.ndarray) -> np.ndarray:
    # Go returns v itself for 0, -0 and NaN
    return np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))


def _deg(v: np.ndarray) -> np.ndarray:
    return v * 180 / math.pi


def _rad(v: np.ndarray) -> np.ndarray:
    return v * math.pi / 180


def func_round(call: FunctionCall) -> InstantVector:
    """Round to the nearest multiple of ``to_nearest`` (default 1), ties up:
    ``floor(v / to_nearest + 0.5) * to_nearest`` computed through the inverse like Go."""
    vec = vector_arg(call, 0)
    to_nearest = scalar_arg(call, 1) if len(call.args) > 1 else np.ones(call.ctx.n_steps)
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest
        return map_values(vec, np.floor(vec.values * inverse + 0.5) / inverse)


def go_max(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Go's ``math.Max``: +Inf wins even over NaN, NaN next, and +0 beats -0."""
    out = np.maximum(x, y)
    out = np.where(np.isposinf(x) | np.isposinf(y), np.inf, out)
    both_zero = (x == 0) & (y == 0)
    return np.where(both_zero, np.where(np.signbit(x) & np.signbit(y), -0.0, 0.0), out)


def go_min(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Go's ``math.Min``: -Inf wins even over NaN, NaN next, and -0 beats +0."""
    out = np.minimum(x, y)
    out = np.where(np.isneginf(x) | np.isneginf(y), -np.inf, out)
    both_zero = (x == 0) & (y == 0)
    return np.where(both_zero, np.where(np.signbit(x) | np.signbit(y), -0.0, 0.0), out)


def func_clamp(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    low, high = scalar_arg(call, 1), scalar_arg(call, 2)
    out = map_values(vec, go_max(low, go_min(high, vec.values)))
    out.present &= ~(high < low)  # an empty range yields an empty vector at that step
    return out


def func_clamp_min(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    return map_values(vec, go_max(scalar_arg(call, 1), vec.values))


def func_clamp_max(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    return map_values(vec, go_min(scalar_arg(call, 1), vec.values))


def func_pi(call: FunctionCall) -> Scalar:
    return Scalar(np.full(call.ctx.n_steps, math.pi))


FUNCTIONS: dict[str, Function] = {
    "abs": _elementwise(np.abs),
    "ceil": _elementwise(np.ceil),
    "floor": _elementwise(np.floor),
    "exp": _elementwise(np.exp),
    "sqrt": _elementwise(np.sqrt),
    "ln": _elementwise(np.log),
    "log2": _elementwise(np.log2),
    "log10": _elementwise(np.log10),
    "sin": _elementwise(np.sin),
    "cos": _elementwise(np.cos),
    "tan": _elementwise(np.tan),
    "asin": _elementwise(np.arcsin),
    "acos": _elementwise(np.arccos),
    "atan": _elementwise(np.arctan),
    "sinh": _elementwise(np.sinh),
    "cosh": _elementwise(np.cosh),
    "tanh": _elementwise(np.tanh),
    "asinh": _elementwise(np.arcsinh),
    "acosh": _elementwise(np.arccosh),
    "atanh": _elementwise(np.arctanh),
    "sgn": _elementwise(_sgn),
    "deg": _elementwise(_deg),
    "rad": _elementwise(_rad),
    "round": func_round,
    "clamp": func_clamp,
    "clamp_min": func_clamp_min,
    "clamp_max": func_clamp_max,
    "pi": func_pi,
}
