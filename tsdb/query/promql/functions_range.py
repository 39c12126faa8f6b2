"""Range-vector functions: rate and friends, regressions, Holt-Winters and ``*_over_time``.

Each one reduces every window ``[window_end - range, window_end]`` of every series at once
(see :mod:`functions_base`). As in Prometheus 2.42, a window without samples yields no
value, and the output drops ``__name__`` except for ``last_over_time``.

Results match Prometheus to the last bit wherever its order of operations matters:
counter-reset corrections are added one at a time in sample order (the cancellation
against a 1e12 first value rounds alike), and the Neumaier-compensated (``kahanSumInc``)
sums of ``deriv``, ``predict_linear``, ``stddev_over_time`` and ``stdvar_over_time`` are
replayed with :class:`WindowScan`. ``sum_over_time`` and ``avg_over_time`` add in extended
precision with one ``reduceat`` instead: as accurate as the compensated sum, equal to it
except in the last bits.
"""

from __future__ import annotations

import numpy as np

from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.functions_base import (
    Function,
    FunctionCall,
    Windows,
    WindowScan,
    chunks,
    count_pairs_in_windows,
    go_duration_seconds,
    kahan_add,
    pair_indicator,
    prefix_count,
    range_arg,
    scalar_arg,
    window_reduce,
)
from tsdb.query.promql.goformat import format_percent_f
from tsdb.query.promql.values import InstantVector, RangeVector

# --- rate, increase, delta ---------------------------------------------------------------


def _add_reset_corrections(rv: RangeVector, w: Windows, result: np.ndarray) -> np.ndarray:
    """``result`` plus, per window, the value before each counter reset inside it.

    The corrections are added one reset at a time in sample order, as Prometheus does, so
    that the cancellation between a large first value and the correction rounds the same
    way: for the k-th round, every window with more than k resets adds its k-th one.
    """
    v = rv.v
    reset_at = np.flatnonzero(pair_indicator(rv, v[1:] < v[:-1]))  # sample after a drop
    first = np.searchsorted(reset_at, w.lo + 1, side="left")
    count = np.searchsorted(reset_at, w.hi, side="left") - first
    result = result.copy()
    for k in range(int(count.max()) if len(count) else 0):
        more = count > k
        result[more] += v[reset_at[first[more] + k] - 1]
    return result


def _extrapolated_rate(call: FunctionCall, is_counter: bool, is_rate: bool) -> InstantVector:
    """Prometheus 2.42 ``extrapolatedRate``: the change over the samples in the window,
    extrapolated towards the window bounds (fully if the first/last sample is within 1.1
    average sample intervals of the bound, else by half an interval; for counters never
    below the counter's zero point)."""
    rv = range_arg(call, 0)
    w = Windows.of(rv, 2)
    first_idx, last_idx = w.lo, w.hi - 1
    first, last = rv.v[first_idx], rv.v[last_idx]
    t_first, t_last = rv.t[first_idx], rv.t[last_idx]
    range_end = w.end_ms
    range_start = range_end - rv.range_ms
    with np.errstate(all="ignore"):
        result = last - first
        if is_counter:
            result = _add_reset_corrections(rv, w, result)
        to_start = (t_first - range_start) / 1000.0
        to_end = (range_end - t_last) / 1000.0
        sampled = (t_last - t_first) / 1000.0
        average_gap = sampled / (w.n - 1)
        if is_counter:
            to_zero = sampled * (first / result)
            use_zero = (result > 0) & (first >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        threshold = average_gap * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average_gap / 2)
        interval = interval + np.where(to_end < threshold, to_end, average_gap / 2)
        factor = interval / sampled
        if is_rate:
            factor = factor / go_duration_seconds(rv.range_ms)
        result = result * factor
    return w.result(result)


def func_rate(call: FunctionCall) -> InstantVector:
    return _extrapolated_rate(call, is_counter=True, is_rate=True)


def func_increase(call: FunctionCall) -> InstantVector:
    return _extrapolated_rate(call, is_counter=True, is_rate=False)


def func_delta(call: FunctionCall) -> InstantVector:
    return _extrapolated_rate(call, is_counter=False, is_rate=False)


def _instant_value(call: FunctionCall, is_rate: bool) -> InstantVector:
    """irate/idelta: from the last two samples of the window."""
    rv = range_arg(call, 0)
    w = Windows.of(rv, 2)
    last, previous = rv.v[w.hi - 1], rv.v[w.hi - 2]
    interval_ms = rv.t[w.hi - 1] - rv.t[w.hi - 2]
    with np.errstate(all="ignore"):
        if is_rate:
            result = np.where(last < previous, last, last - previous)  # reset: count from 0
            result = result / (interval_ms / 1000.0)
        else:
            result = last - previous
    return w.result(result, valid=interval_ms != 0)


def func_irate(call: FunctionCall) -> InstantVector:
    return _instant_value(call, is_rate=True)


def func_idelta(call: FunctionCall) -> InstantVector:
    return _instant_value(call, is_rate=False)


# --- regression and smoothing ---------------------------------------------------------------


def _linear_regression(
    rv: RangeVector, w: Windows, intercept_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least squares per window with ``x = (t - intercept_ms) / 1000``: (slope, value at
    x = 0). Prometheus' ``linearRegression``, including its constant-series shortcut."""
    slope, intercept = np.empty(len(w)), np.empty(len(w))
    for part in chunks(len(w)):
        slope[part], intercept[part] = _regression_scan(
            rv, WindowScan(w.lo[part], w.n[part]), intercept_ms[part]
        )
    return slope, intercept


def _regression_scan(
    rv: RangeVector, scan: WindowScan, intercept_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    size = len(scan)
    origin = scan.sorted(intercept_ms)
    first_y = rv.v[scan.lo]
    constant = np.ones(size, dtype=bool)
    sx, cx, sy, cy = (np.zeros(size) for _ in range(4))
    sxy, cxy, sx2, cx2 = (np.zeros(size) for _ in range(4))
    with np.errstate(all="ignore"):
        for j, k, idx in scan.positions():
            y = rv.v[idx]
            if j > 0:
                constant[:k] &= y == first_y[:k]
            x = (rv.t[idx] - origin[:k]) / 1e3
            kahan_add(sx[:k], cx[:k], x)
            kahan_add(sy[:k], cy[:k], y)
            kahan_add(sxy[:k], cxy[:k], x * y)
            kahan_add(sx2[:k], cx2[:k], x * x)
        n = scan.n.astype(np.float64)
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov_xy = sxy - sx * sy / n
        var_x = sx2 - sx * sx / n
        slope = cov_xy / var_x
        intercept = sy / n - slope * sx / n
    infinite = np.isinf(first_y)
    slope = np.where(constant, np.where(infinite, np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(infinite, np.nan, first_y), intercept)
    return scan.unsort(slope), scan.unsort(intercept)


def func_deriv(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 2)
    # Prometheus puts x = 0 at the window's first sample to keep the sums small.
    slope, _ = _linear_regression(rv, w, rv.t[w.lo])
    return w.result(slope)


def func_predict_linear(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    seconds = scalar_arg(call, 1)
    w = Windows.of(rv, 2)
    steps = np.asarray(call.ctx.steps, dtype=np.int64)
    slope, intercept = _linear_regression(rv, w, steps[w.step])
    with np.errstate(all="ignore"):
        return w.result(slope * seconds[w.step] + intercept)


def func_holt_winters(call: FunctionCall) -> InstantVector:
    """Double exponential smoothing (Prometheus' ``holt_winters``)."""
    rv = range_arg(call, 0)
    sf = scalar_arg(call, 1)
    tf = scalar_arg(call, 2)
    # Prometheus checks the factors whenever a window has any sample, even a single one.
    with np.errstate(invalid="ignore"):
        bad_sf = (sf <= 0) | (sf >= 1)
        bad_tf = (tf <= 0) | (tf >= 1)
    nonempty_steps = Windows.of(rv, 1).step
    bad = bad_sf[nonempty_steps] | bad_tf[nonempty_steps]
    if bad.any():
        step = nonempty_steps[int(np.argmax(bad))]
        if bad_sf[step]:
            raise QueryError(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: " + format_percent_f(sf[step])
            )
        raise QueryError(
            "invalid trend factor. Expected: 0 < tf < 1, got: " + format_percent_f(tf[step])
        )

    w = Windows.of(rv, 2)
    smoothed = np.empty(len(w))
    for part in chunks(len(w)):
        scan = WindowScan(w.lo[part], w.n[part])
        smoothed[part] = _holt_winters_scan(
            rv.v, scan, scan.sorted(sf[w.step[part]]), scan.sorted(tf[w.step[part]])
        )
    return w.result(smoothed)


def _holt_winters_scan(v: np.ndarray, scan: WindowScan, sf: np.ndarray,
                       tf: np.ndarray) -> np.ndarray:
    s0 = np.zeros(len(scan))
    s1 = v[scan.lo].copy()
    trend = v[scan.lo + 1] - v[scan.lo]
    with np.errstate(all="ignore"):
        for j, k, idx in scan.positions(start=1):
            x = sf[:k] * v[idx]
            if j > 1:
                trend[:k] = tf[:k] * (s1[:k] - s0[:k]) + (1 - tf[:k]) * trend[:k]
            y = (1 - sf[:k]) * (s1[:k] + trend[:k])
            s0[:k] = s1[:k]
            s1[:k] = x + y
    return scan.unsort(s1)


# --- counting changes --------------------------------------------------------------------


def func_resets(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    v = rv.v
    return w.result(count_pairs_in_windows(rv, w, v[1:] < v[:-1]).astype(np.float64))


def func_changes(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    cur, prev = rv.v[1:], rv.v[:-1]
    changed = ~((cur == prev) | (np.isnan(cur) & np.isnan(prev)))
    return w.result(count_pairs_in_windows(rv, w, changed).astype(np.float64))


# --- *_over_time ---------------------------------------------------------------------------


def _extended_sum(rv: RangeVector, w: Windows) -> np.ndarray:
    """Per-window sums in extended precision (80-bit on x86), not yet rounded."""
    return window_reduce(np.add, rv.v.astype(np.longdouble), w.lo, w.hi)


def func_avg_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    with np.errstate(all="ignore"):
        mean = (_extended_sum(rv, w) / w.n).astype(np.float64)
    return w.result(mean)


def func_sum_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    with np.errstate(all="ignore"):
        return w.result(_extended_sum(rv, w).astype(np.float64))


def func_count_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(w.n.astype(np.float64))


def func_min_over_time(call: FunctionCall) -> InstantVector:
    # fmin: NaN only when every sample is NaN, as Prometheus' "v < min || isNaN(min)".
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(window_reduce(np.fmin, rv.v, w.lo, w.hi))


def func_max_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(window_reduce(np.fmax, rv.v, w.lo, w.hi))


def func_last_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(rv.v[w.hi - 1], keep_name=True)  # acts like an offset: keeps the name


def func_present_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(np.ones(len(w)))


def _variance(rv: RangeVector, w: Windows) -> np.ndarray:
    """Population variance per window: Welford's algorithm with Kahan-compensated mean
    and sum of squares, as ``stdvar_over_time`` computes it."""
    out = np.empty(len(w))
    for part in chunks(len(w)):
        out[part] = _variance_scan(rv.v, WindowScan(w.lo[part], w.n[part]))
    return out


def _variance_scan(v: np.ndarray, scan: WindowScan) -> np.ndarray:
    size = len(scan)
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    with np.errstate(all="ignore"):
        for j, k, idx in scan.positions():
            f = v[idx]
            delta = f - (mean[:k] + c_mean[:k])
            kahan_add(mean[:k], c_mean[:k], delta / (j + 1))
            kahan_add(aux[:k], c_aux[:k], delta * (f - (mean[:k] + c_mean[:k])))
        variance = (aux + c_aux) / scan.n
    return scan.unsort(variance)


def func_stdvar_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    return w.result(_variance(rv, w))


def func_stddev_over_time(call: FunctionCall) -> InstantVector:
    rv = range_arg(call, 0)
    w = Windows.of(rv, 1)
    with np.errstate(invalid="ignore"):
        return w.result(np.sqrt(_variance(rv, w)))


_QUANTILE_CHUNK = 1 << 22  # window samples copied out and sorted at once
_PARTITION_GROUPS = 16  # distinct rank pairs worth a partial sort each


def func_quantile_over_time(call: FunctionCall) -> InstantVector:
    """Prometheus' ``quantile``: NaN samples sort first, then linear interpolation between
    the two closest ranks; ``q`` below 0 or above 1 gives -Inf or +Inf, NaN gives NaN."""
    q_by_step = scalar_arg(call, 0)
    rv = range_arg(call, 1)
    w = Windows.of(rv, 1)
    q = q_by_step[w.step]
    nan_prefix = prefix_count(np.isnan(rv.v))
    nan_count = nan_prefix[w.hi] - nan_prefix[w.lo]
    with np.errstate(all="ignore"):
        count = w.n.astype(np.float64)
        rank = q * (count - 1)
        lower = np.maximum(0.0, np.floor(rank))
        upper = np.minimum(count - 1, lower + 1)
        weight = rank - np.floor(rank)
        in_range = (q >= 0) & (q <= 1)
        lower_i = np.where(in_range, lower, 0).astype(np.int64)
        upper_i = np.where(in_range, upper, 0).astype(np.int64)

    # Windows of one length are copied out of a sliding-window view of the samples, a
    # chunk at a time, and only the two needed ranks are selected.
    low_value, high_value = np.empty(len(w)), np.empty(len(w))
    by_length = np.argsort(w.n, kind="stable")
    lengths, starts = np.unique(w.n[by_length], return_index=True)
    bounds = np.append(starts, len(by_length))
    for length, first, last in zip(lengths.tolist(), bounds[:-1], bounds[1:], strict=True):
        windows_of_length = np.lib.stride_tricks.sliding_window_view(rv.v, length)
        group = by_length[first:last]
        for part in chunks(len(group), max(1, _QUANTILE_CHUNK // length)):
            rows = group[part]
            values = windows_of_length[w.lo[rows]]  # a copy: (rows, length)
            _select_ranks(values, nan_count[rows], lower_i[rows], upper_i[rows],
                          low_value, high_value, rows)

    with np.errstate(all="ignore"):
        result = low_value * (1 - weight) + high_value * weight
    result = np.where(q < 0, -np.inf, result)
    result = np.where(q > 1, np.inf, result)
    return w.result(np.where(np.isnan(q), np.nan, result))


def _select_ranks(
    values: np.ndarray,
    nan_count: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    low_out: np.ndarray,
    high_out: np.ndarray,
    rows: np.ndarray,
) -> None:
    """The values at ranks ``lower`` and ``upper`` of each row in Go's order (NaN first,
    then ascending), written to ``low_out[rows]`` and ``high_out[rows]``."""
    width = values.shape[1]
    full_sort = nan_count > 0
    pair = lower * width + upper
    pairs = np.unique(pair[~full_sort])
    if len(pairs) <= _PARTITION_GROUPS:
        for key in pairs.tolist():
            members = np.flatnonzero(~full_sort & (pair == key))
            a, b = divmod(key, width)
            part = np.partition(values[members], sorted({a, b}), axis=1)
            low_out[rows[members]], high_out[rows[members]] = part[:, a], part[:, b]
    else:
        full_sort[:] = True
    if full_sort.any():
        members = np.flatnonzero(full_sort)
        ordered = np.sort(values[members], axis=1)  # ascending, NaN last
        nans = nan_count[members]
        for go_index, out in ((lower[members], low_out), (upper[members], high_out)):
            picked = ordered[np.arange(len(members)), np.maximum(go_index - nans, 0)]
            out[rows[members]] = np.where(go_index < nans, np.nan, picked)


FUNCTIONS: dict[str, Function] = {
    "rate": func_rate,
    "increase": func_increase,
    "delta": func_delta,
    "irate": func_irate,
    "idelta": func_idelta,
    "deriv": func_deriv,
    "predict_linear": func_predict_linear,
    "holt_winters": func_holt_winters,
    "resets": func_resets,
    "changes": func_changes,
    "avg_over_time": func_avg_over_time,
    "sum_over_time": func_sum_over_time,
    "count_over_time": func_count_over_time,
    "min_over_time": func_min_over_time,
    "max_over_time": func_max_over_time,
    "last_over_time": func_last_over_time,
    "present_over_time": func_present_over_time,
    "stdvar_over_time": func_stdvar_over_time,
    "stddev_over_time": func_stddev_over_time,
    "quantile_over_time": func_quantile_over_time,
}
