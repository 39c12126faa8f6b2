"""Test support for the PromQL function library: value builders, and plain-Python
per-window reference implementations that follow Prometheus 2.42's ``promql/functions.go``
and ``quantile.go`` statement by statement (loops are fine here; the library must not
need them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tsdb.query.promql import ast
from tsdb.query.promql.functions import FUNCTIONS, FunctionCall
from tsdb.query.promql.values import EvalContext, InstantVector, RangeVector, Scalar, Value
from tsdb.storage.labels import Labels

Point = tuple[int, float]

# --- builders ----------------------------------------------------------------------------


def make_ctx(steps: Sequence[int]) -> EvalContext:
    arr = np.asarray(steps, dtype=np.int64)
    step = int(arr[1] - arr[0]) if len(arr) > 1 else 0
    return EvalContext(arr, int(arr[0]), int(arr[-1]), step)


def make_range_vector(
    series: Sequence[Sequence[Point]],
    steps: Sequence[int],
    range_ms: int,
    offset_ms: int = 0,
    labels: list[Labels] | None = None,
) -> RangeVector:
    """Windows ``[step - offset - range, step - offset]``, both ends inclusive."""
    ends = np.asarray(steps, dtype=np.int64) - offset_ms
    times = [np.array([p[0] for p in s], dtype=np.int64) for s in series]
    values = [np.array([p[1] for p in s], dtype=np.float64) for s in series]
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in times])
    lo = np.zeros((len(series), len(ends)), dtype=np.int64)
    hi = np.zeros((len(series), len(ends)), dtype=np.int64)
    for i, t in enumerate(times):
        lo[i] = offsets[i] + np.searchsorted(t, ends - range_ms, side="left")
        hi[i] = offsets[i] + np.searchsorted(t, ends, side="right")
    if labels is None:
        labels = [(("__name__", "m"), ("i", str(i))) for i in range(len(series))]
    return RangeVector(
        labels,
        np.concatenate(times) if times else np.zeros(0, np.int64),
        np.concatenate(values) if values else np.zeros(0),
        offsets,
        lo,
        hi,
        ends,
        range_ms,
    )


def window_points(rv: RangeVector, i: int, s: int) -> list[Point]:
    lo, hi = int(rv.lo[i, s]), int(rv.hi[i, s])
    return [(int(rv.t[j]), float(rv.v[j])) for j in range(lo, hi)]


def make_vector(
    rows: Sequence[Sequence[float | None]], labels: list[Labels] | None = None
) -> InstantVector:
    """``rows[i][s]`` is series i's value at step s, None where it has none."""
    n = len(rows)
    steps = len(rows[0]) if rows else 1
    values = np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=float)
    present = np.array([[x is not None for x in r] for r in rows], dtype=bool)
    if labels is None:
        labels = [(("__name__", "m"), ("i", str(i))) for i in range(n)]
    return InstantVector(labels, values.reshape(n, steps), present.reshape(n, steps))


def scalar(value: float, steps: int) -> Scalar:
    return Scalar(np.full(steps, float(value)))


def call(
    name: str,
    args: list[Value],
    steps: Sequence[int],
    arg_exprs: list[ast.Expr] | None = None,
    **kwargs: object,
) -> Value:
    return FUNCTIONS[name](FunctionCall(name, args, arg_exprs or [], make_ctx(steps), **kwargs))


def same_float(a: float, b: float) -> bool:
    """Bit-for-bit equal, NaN equal to NaN (the sign of zero is not compared)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def close_float(a: float, b: float, rel: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return same_float(a, b)
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)


# --- IEEE helpers (Python raises on x/0, Go does not) --------------------------------------


def div(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if math.isnan(a) or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        comp += (total - t) + inc
    else:
        comp += (inc - t) + total
    return t, comp


# --- reference implementations (one window -> value or None) ---------------------------------


def ref_extrapolated_rate(
    points: list[Point], range_start: int, range_end: int, range_ms: int,
    is_counter: bool, is_rate: bool,
) -> float | None:
    if len(points) < 2:
        return None
    result = points[-1][1] - points[0][1]
    if is_counter:
        prev = points[0][1]
        for _, v in points[1:]:
            if v < prev:
                result += prev
            prev = v
    to_start = (points[0][0] - range_start) / 1000
    to_end = (range_end - points[-1][0]) / 1000
    sampled = (points[-1][0] - points[0][0]) / 1000
    average = sampled / (len(points) - 1)
    if is_counter and result > 0 and points[0][1] >= 0:
        to_zero = sampled * div(points[0][1], result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = div(interval, sampled)
    if is_rate:
        # Go's Duration.Seconds(): whole seconds plus the nanoseconds / 1e9, which is not
        # always the same double as range_ms / 1000
        seconds, rest = divmod(range_ms, 1000)
        factor = div(factor, float(seconds) + float(rest * 1_000_000) / 1e9)
    return result * factor


def ref_instant_value(points: list[Point], is_rate: bool) -> float | None:
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points[-2], points[-1]
    result = v1 if is_rate and v1 < v0 else v1 - v0
    if t1 == t0:
        return None
    return div(result, (t1 - t0) / 1000) if is_rate else result


def ref_linear_regression(points: list[Point], intercept_ms: int) -> tuple[float, float]:
    n = sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    init_y = points[0][1]
    const_y = True
    for i, (t, v) in enumerate(points):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_ms) / 1e3
        sx, cx = kahan_inc(x, sx, cx)
        sy, cy = kahan_inc(v, sy, cy)
        sxy, cxy = kahan_inc(x * v, sxy, cxy)
        sx2, cx2 = kahan_inc(x * x, sx2, cx2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = div(cov, var)
    return slope, sy / n - slope * sx / n


def ref_deriv(points: list[Point]) -> float | None:
    if len(points) < 2:
        return None
    return ref_linear_regression(points, points[0][0])[0]


def ref_predict_linear(points: list[Point], eval_ms: int, seconds: float) -> float | None:
    if len(points) < 2:
        return None
    slope, intercept = ref_linear_regression(points, eval_ms)
    return slope * seconds + intercept


def ref_holt_winters(points: list[Point], sf: float, tf: float) -> float | None:
    if len(points) < 2:
        return None
    s0, s1 = 0.0, points[0][1]
    b = points[1][1] - points[0][1]
    for i in range(1, len(points)):
        x = sf * points[i][1]
        if i - 1 != 0:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def ref_resets(points: list[Point]) -> float | None:
    if not points:
        return None
    return float(sum(1 for (_, a), (_, b) in zip(points, points[1:], strict=False) if b < a))


def ref_changes(points: list[Point]) -> float | None:
    if not points:
        return None
    return float(sum(
        1 for (_, a), (_, b) in zip(points, points[1:], strict=False)
        if not (a == b or (math.isnan(a) and math.isnan(b)))
    ))


def ref_avg(points: list[Point]) -> float | None:
    """Prometheus 2.42: incremental mean with Kahan compensation and Inf special cases."""
    if not points:
        return None
    mean = count = c = 0.0
    for _, v in points:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def ref_sum(points: list[Point]) -> float | None:
    if not points:
        return None
    total = c = 0.0
    for _, v in points:
        total, c = kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def ref_min(points: list[Point]) -> float | None:
    if not points:
        return None
    low = points[0][1]
    for _, v in points:
        if v < low or math.isnan(low):
            low = v
    return low


def ref_max(points: list[Point]) -> float | None:
    if not points:
        return None
    high = points[0][1]
    for _, v in points:
        if v > high or math.isnan(high):
            high = v
    return high


def ref_stdvar(points: list[Point]) -> float | None:
    if not points:
        return None
    count = mean = c_mean = aux = c_aux = 0.0
    for _, v in points:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def ref_stddev(points: list[Point]) -> float | None:
    var = ref_stdvar(points)
    if var is None:
        return None
    return math.sqrt(var) if var >= 0 else math.nan


def go_quantile(q: float, values: list[float]) -> float:
    """Prometheus' ``quantile`` (NaN values sort first)."""
    if not values:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = [v for v in values if math.isnan(v)] + sorted(v for v in values if not math.isnan(v))
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def ref_quantile_over_time(points: list[Point], q: float) -> float | None:
    if not points:
        return None
    return go_quantile(q, [v for _, v in points])


def go_bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus 2.42 ``bucketQuantile`` on (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for upper, count in buckets:
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    running = -math.inf
    for b in merged:
        if b[1] > running:
            running = b[1]
        else:
            b[1] = running
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * div(rank, count)
