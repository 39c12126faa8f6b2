"""What every PromQL function module shares: the call record, argument access, label
helpers and the window machinery range functions are built from.

A range vector holds, per series and step, the window ``[lo, hi)`` of global sample
indices. :class:`Windows` flattens the windows a function computes (those with enough
samples) to 1-d arrays, so a function reduces all series and steps at once:

* :func:`window_reduce`: an associative reduction (sum, min, max) per window with one
  ``ufunc.reduceat`` call;
* :class:`WindowScan`: a sequential recurrence (Kahan sums, Holt-Winters) replayed sample
  position by sample position, vectorised over many windows. The Python loop runs over the
  position inside a window (at most the longest window), never over samples or steps, and
  it repeats Prometheus' floating-point operations in Prometheus' order, so results are
  bit-identical where later cancellation would amplify any difference (``deriv`` on
  counters around 1e12);
* :func:`count_pairs_in_windows`: counts of consecutive-sample events (resets, changes)
  from a prefix count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from tsdb.query.promql import ast
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.values import (
    EvalContext,
    InstantVector,
    RangeVector,
    Scalar,
    String,
    Value,
)
from tsdb.storage.labels import Labels

METRIC_NAME = "__name__"


@dataclass
class FunctionCall:
    """One function call as the evaluator hands it over: ``args`` are the evaluated
    arguments (missing optional ones are absent from the list), ``arg_exprs`` their
    syntax (``absent`` reads label matchers from it)."""

    name: str
    args: list[Value]
    arg_exprs: list[ast.Expr]
    ctx: EvalContext


Function = Callable[[FunctionCall], Value]


# --- arguments ---------------------------------------------------------------------------


def scalar_arg(call: FunctionCall, i: int) -> np.ndarray:
    """Argument ``i`` as one float per step."""
    arg = call.args[i]
    if isinstance(arg, Scalar):
        return np.broadcast_to(np.asarray(arg.values, dtype=np.float64), (call.ctx.n_steps,))
    raise QueryError(f"{call.name}(): argument {i + 1} must be a scalar", "bad_data")


def string_arg(call: FunctionCall, i: int) -> str:
    arg = call.args[i] if i < len(call.args) else None
    if isinstance(arg, String):
        return arg.value
    expr = unwrap_parens(call.arg_exprs[i]) if i < len(call.arg_exprs) else None
    if isinstance(expr, ast.StringLiteral):
        return expr.value
    raise QueryError(f"{call.name}(): argument {i + 1} must be a string", "bad_data")


def vector_arg(call: FunctionCall, i: int) -> InstantVector:
    arg = call.args[i]
    if not isinstance(arg, InstantVector):
        raise QueryError(f"{call.name}(): argument {i + 1} must be an instant vector", "bad_data")
    return arg


def range_arg(call: FunctionCall, i: int) -> RangeVector:
    arg = call.args[i]
    if not isinstance(arg, RangeVector):
        raise QueryError(f"{call.name}(): argument {i + 1} must be a range vector", "bad_data")
    return arg


def unwrap_parens(expr: ast.Expr) -> ast.Expr:
    while isinstance(expr, ast.ParenExpr):
        expr = expr.expr
    return expr


# --- labels --------------------------------------------------------------------------------


def drop_name(labels: Labels) -> Labels:
    if not any(name == METRIC_NAME for name, _ in labels):
        return labels
    return tuple(pair for pair in labels if pair[0] != METRIC_NAME)


def drop_names(labels: list[Labels]) -> list[Labels]:
    return [drop_name(lbls) for lbls in labels]


def map_values(vec: InstantVector, values: np.ndarray, keep_name: bool = False) -> InstantVector:
    """``vec`` with new values (same shape), ``__name__`` dropped unless ``keep_name``."""
    labels = list(vec.labels) if keep_name else drop_names(vec.labels)
    return InstantVector(labels, values, vec.present.copy())


def one_series(values: np.ndarray, present: np.ndarray | None = None) -> InstantVector:
    """A vector of a single series without labels (``vector()``, ``absent()``...)."""
    if present is None:
        present = np.ones(values.shape, dtype=bool)
    return InstantVector([()], values.reshape(1, -1), present.reshape(1, -1))


# --- Go number formatting and parsing --------------------------------------------------------


def _go_underscores_ok(s: str) -> bool:
    """Go's ``underscoreOK``: an underscore only between digits (or after a base prefix)."""
    body = s[1:] if s[:1] in ("+", "-") else s
    saw, i = "^", 0
    hexadecimal = body[:2].lower() == "0x"
    if body[:2].lower() in ("0b", "0o", "0x"):
        saw, i = "0", 2
    for c in body[i:]:
        if c.isdigit() or (hexadecimal and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def go_parse_float(s: str) -> float | None:
    """Go's ``strconv.ParseFloat(s, 64)``, None where Go returns an error.

    Python's ``float`` differs in details: it accepts surrounding whitespace, non-ASCII
    digits and a signed ``nan``, and rejects hexadecimal mantissas; Go also fails on
    overflow (``ErrRange``). ``_`` between digits is fine in both.
    """
    if not s or not s.isascii() or s != s.strip():
        return None
    sign, body = (s[0], s[1:]) if s[0] in "+-" else ("", s)
    lowered = body.lower()
    if lowered in ("inf", "infinity"):
        return -math.inf if sign == "-" else math.inf
    if lowered == "nan":
        return math.nan if not sign else None
    if "_" in s:
        if not _go_underscores_ok(s):
            return None
        s = s.replace("_", "")
        body = body.replace("_", "")
        lowered = lowered.replace("_", "")
    if lowered.startswith("0x"):
        if "p" not in lowered:
            return None
        try:
            value = float.fromhex(s)
        except (ValueError, OverflowError):
            return None
    else:
        if not all(c in "0123456789.eE+-" for c in body):
            return None
        try:
            value = float(s)
        except ValueError:
            return None
    return None if math.isinf(value) else value


# --- windows -------------------------------------------------------------------------------


@dataclass
class Windows:
    """The windows of a range vector holding at least ``min_count`` samples, flattened.

    ``mask`` is ``(N, S)``; the 1-d arrays list the selected windows in row-major order
    (series by series, steps ascending), exactly the order of ``values[mask]``.
    """

    rv: RangeVector
    mask: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray

    @classmethod
    def of(cls, rv: RangeVector, min_count: int = 1) -> Windows:
        lo = np.asarray(rv.lo, dtype=np.int64)
        hi = np.asarray(rv.hi, dtype=np.int64)
        mask = (hi - lo) >= min_count
        return cls(rv, mask, lo[mask], hi[mask], np.nonzero(mask)[1])

    def __len__(self) -> int:
        return len(self.lo)

    @property
    def n(self) -> np.ndarray:
        return self.hi - self.lo

    @property
    def end_ms(self) -> np.ndarray:
        """Each window's right bound (its step time after offset and ``@``)."""
        return np.asarray(self.rv.window_end, dtype=np.int64)[self.step]

    def result(
        self,
        values: np.ndarray,
        keep_name: bool = False,
        valid: np.ndarray | None = None,
    ) -> InstantVector:
        """An ``(N, S)`` vector with ``values`` at the selected windows; ``valid`` (per
        selected window) can drop further ones."""
        out = np.full(self.mask.shape, np.nan)
        out[self.mask] = values
        present = self.mask.copy()
        if valid is not None:
            present[self.mask] = valid
        labels = list(self.rv.labels) if keep_name else drop_names(self.rv.labels)
        return InstantVector(labels, out, present)


def window_reduce(ufunc: np.ufunc, data: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``ufunc`` reduced over each ``data[lo:hi]``; every range must be non-empty.

    One ``reduceat`` over the interleaved bounds ``lo0 hi0 lo1 hi1 ...``: the even results
    are the windows, the odd ones (from a window's end to the next window's start) are
    discarded. Overlapping windows are fine, as reduceat takes a single element where an
    index does not increase.
    """
    if len(lo) == 0:
        return np.empty(0, dtype=data.dtype)
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2] = lo
    bounds[1::2] = hi
    padded = np.concatenate([data, data[:1] if len(data) else np.zeros(1, data.dtype)])
    return ufunc.reduceat(padded, bounds)[0::2]


def prefix_count(indicator: np.ndarray) -> np.ndarray:
    """``c[i]`` = number of true entries in ``indicator[:i]`` (length ``len + 1``)."""
    out = np.zeros(len(indicator) + 1, dtype=np.int64)
    np.cumsum(indicator, out=out[1:])
    return out


def pair_indicator(rv: RangeVector, flags: np.ndarray) -> np.ndarray:
    """Per sample ``j``: ``flags[j]`` for the pair (j-1, j), false at each series' first
    sample. ``flags`` has length ``M - 1`` and compares ``v[1:]`` with ``v[:-1]``."""
    out = np.zeros(len(rv.v), dtype=bool)
    out[1:] = flags
    starts = np.asarray(rv.offsets[:-1], dtype=np.int64)
    out[starts[starts < len(out)]] = False
    return out


def count_pairs_in_windows(rv: RangeVector, w: Windows, flags: np.ndarray) -> np.ndarray:
    """Per window, how many consecutive sample pairs inside it have ``flags`` set."""
    cum = prefix_count(pair_indicator(rv, flags))
    return cum[w.hi] - cum[np.minimum(w.lo + 1, w.hi)]


SCAN_CHUNK = 1 << 14  # windows per scan: the state arrays stay in the CPU cache


def chunks(count: int, size: int = SCAN_CHUNK) -> Iterator[slice]:
    """Consecutive slices covering ``range(count)``, ``size`` elements each."""
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


class WindowScan:
    """Replays a per-window sequential computation position by position.

    Callers scan a few thousand windows at a time (:func:`chunks`): each position then
    costs a handful of numpy calls on arrays that fit in the cache, instead of streaming
    every state array through memory once per position.

    Windows are sorted by length, longest first, so the windows still running at position
    ``j`` are a prefix ``[:k]`` of the sorted order and state arrays are updated by
    slicing, without masks.
    """

    def __init__(self, lo: np.ndarray, n: np.ndarray) -> None:
        self.order = np.argsort(-n, kind="stable")
        self.lo = lo[self.order]
        self.n = n[self.order]
        self.length = int(self.n[0]) if len(self.n) else 0
        # running[j] = number of windows with more than j samples
        self.running = np.searchsorted(-self.n, -np.arange(self.length), side="left")

    def __len__(self) -> int:
        return len(self.n)

    def positions(self, start: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(j, k, idx)``: position ``j``, the ``k`` windows that have it, and the global
        index of their ``j``-th sample."""
        for j in range(start, self.length):
            k = int(self.running[j])
            yield j, k, self.lo[:k] + j

    def sorted(self, per_window: np.ndarray) -> np.ndarray:
        """A per-window array (in window order) rearranged into scan order."""
        return per_window[self.order]

    def unsort(self, scanned: np.ndarray) -> np.ndarray:
        """A scan-order array back in window order."""
        out = np.empty_like(scanned)
        out[self.order] = scanned
        return out


def kahan_add(total: np.ndarray, comp: np.ndarray, inc: np.ndarray) -> None:
    """Prometheus' ``kahanSumInc`` in place on ``total`` and ``comp`` (views are fine).

    Prometheus uses Neumaier's variant, whose branch picks the operand order for which
    ``(big - t) + small`` is the exact rounding error of ``total + inc``. Knuth's
    branch-free TwoSum computes the same exact error with fewer operations, so
    ``comp`` is bit-identical for finite values; after an infinity or an overflow both
    make ``total + comp`` NaN.
    """
    t = total + inc
    back = t - total
    comp += (total - (t - back)) + (inc - back)
    total[...] = t


def go_duration_seconds(ms: int) -> float:
    """Go's ``time.Duration.Seconds()`` for a duration of ``ms`` milliseconds."""
    sec, rem = divmod(ms, 1000)
    if ms < 0 and rem:
        sec, rem = sec + 1, rem - 1000
    return float(sec) + float(rem * 1_000_000) / 1e9
