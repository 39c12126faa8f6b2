"""Property tests: the vectorised render-function kernels against plain per-point Python
references written here from graphite-web 1.1's semantics (lists with None)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.query.graphite.functions_aggregation import aggregate_axis, consolidate
from tsdb.query.graphite.functions_calculate import affine_scan, moving_values
from tsdb.query.graphite.functions_special import changed_values
from tsdb.query.graphite.functions_transform import (
    derivative_values,
    hitcount_values,
    integral_values,
    interpolate_values,
    keep_last_values,
    non_negative_delta_values,
    summarize_values,
)

# --- plain-Python references ---------------------------------------------------------------


def ref_agg(func: str, values: list) -> float | None:
    """graphite's aggregation functions (``graphite.functions.safe``) on a list."""
    vals = [v for v in values if v is not None]
    if func == "avg_zero":
        return sum(0 if v is None else v for v in values) / len(values) if vals else None
    if not vals:
        return None
    if func == "sum":
        return sum(vals)
    if func == "average":
        return sum(vals) / len(vals)
    if func == "median":
        s = sorted(vals)
        mid = len(s) // 2
        return float(s[mid - 1] + s[mid]) / 2 if len(s) % 2 == 0 else s[mid]
    if func == "min":
        return min(vals)
    if func == "max":
        return max(vals)
    if func == "diff":
        return sum([vals[0]] + [-v for v in vals[1:]])
    if func == "stddev":
        avg = sum(vals) / len(vals)
        total = 0
        for v in vals:
            total = total + (v - avg) * (v - avg)
        return math.sqrt(total / len(vals))
    if func == "count":
        return len(vals)
    if func == "range":
        return float(max(vals)) - float(min(vals))
    if func == "multiply":
        if None in values:
            return None
        product = float(values[0])
        for v in values[1:]:
            product *= float(v)
        return product
    if func == "last":
        return vals[-1]
    if func == "first":
        return vals[0]
    raise AssertionError(func)


def ref_derivative(series: list) -> list:
    out, prev = [], None
    for v in series:
        out.append(None if prev is None or v is None else v - prev)
        prev = v
    return out


def ref_non_negative_delta(series: list, max_value: float | None = None,
                           min_value: float | None = None) -> list:
    out, prev = [], None
    for v in series:
        if v is not None and ((max_value is not None and v > max_value)
                              or (min_value is not None and v < min_value)):
            out.append(None)
            prev = None
            continue
        if prev is None or v is None:
            out.append(None)
        elif v >= prev:
            out.append(v - prev)
        elif max_value is not None:
            out.append(max_value + 1 + v - prev - (min_value or 0))
        elif min_value is not None:
            out.append(v - min_value)
        else:
            out.append(None)
        prev = v
    return out


def ref_integral(series: list) -> list:
    out, current = [], 0.0
    for v in series:
        if v is None:
            out.append(None)
        else:
            current += v
            out.append(current)
    return out


def ref_keep_last(series: list, limit: float) -> list:
    series = list(series)
    nones, last = 0, None
    for i, v in enumerate(series):
        if v is None:
            nones += 1
            continue
        if 0 < nones <= limit and last is not None:
            for k in range(i - nones, i):
                series[k] = last
        nones, last = 0, v
    if 0 < nones <= limit and last is not None:
        for k in range(len(series) - nones, len(series)):
            series[k] = last
    return series


def ref_interpolate(series: list, limit: float) -> list:
    series = list(series)
    nones = 0
    for i, v in enumerate(series):
        if i == 0:
            continue
        if v is None:
            nones += 1
        elif nones == 0:
            continue
        elif series[i - nones - 1] is None:
            nones = 0
        else:
            if nones <= limit:
                a = series[i - nones - 1]
                for k in range(i - nones, i):
                    series[k] = a + (k - (i - nones - 1)) * (v - a) / (nones + 1)
            nones = 0
    return series


def ref_moving(series: list, window: int, func: str) -> list:
    out = []
    for i in range(window, len(series)):
        non_null = [v for v in series[i - window:i] if v is not None]
        out.append(ref_agg(func, non_null) if non_null else None)
    return out


def ref_summarize(series: list, start: int, step: int, interval: int, func: str,
                  align_to_from: bool) -> tuple[int, list]:
    end = start + len(series) * step
    if align_to_from:
        new_start, new_end = start, end
    else:
        new_start = start - start % interval
        new_end = end - end % interval + interval
    timestamps = list(range(start, end, step))
    out, i, t = [], 0, new_start
    while t < new_end:
        s, non_null = i, 0
        while i < len(series) and timestamps[i] < t + interval:
            if timestamps[i] <= t:
                s = i
            if timestamps[i] >= t and series[i] is not None:
                non_null += 1
            i += 1
        out.append(ref_agg(func, series[s:i]) if non_null else None)
        t += interval
    return new_start, out


def ref_hitcount(series: list, start: int, step: int, end: int, interval: int
                 ) -> tuple[int, list]:
    count = int(math.ceil(float(end - start) / interval))
    buckets: list[list] = [[] for _ in range(count)]
    new_start = int(end - count * interval)
    for i, v in enumerate(series):
        if v is None:
            continue
        t = start + i * step
        sb, smod = divmod(t - new_start, interval)
        eb, emod = divmod(t + step - new_start, interval)
        if eb >= count:
            eb, emod = count - 1, interval
        if sb == eb:
            if sb >= 0:
                buckets[sb].append(v * (emod - smod))
        else:
            if sb >= 0:
                buckets[sb].append(v * (interval - smod))
            for j in range(sb + 1, eb):
                buckets[j].append(v * interval)
            if emod > 0:
                buckets[eb].append(v * emod)
    return new_start, [sum(b) if b else None for b in buckets]


def ref_consolidate(series: list, vpp: int, func: str) -> list:
    out = []
    for k in range(0, len(series), vpp):
        group = series[k:k + vpp]
        non_null = [v for v in group if v is not None]
        if not non_null:
            out.append(None)
        elif func == "avg_zero":
            out.append(sum(0 if v is None else v for v in group) / len(group))
        else:
            out.append(ref_agg(func, non_null))
    return out


def ref_changed(series: list) -> list:
    out, previous = [], None
    for v in series:
        if previous is None:
            previous = v
            out.append(0)
        elif v is not None and previous != v:
            out.append(1)
            previous = v
        else:
            out.append(0)
    return out


# --- strategies and comparison -------------------------------------------------------------

_value = st.one_of(st.none(), st.integers(-50, 50).map(float),
                   st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
_counter = st.one_of(st.none(), st.integers(0, 200).map(float))
#: small integers: sums are exact in any order (for kernels that reassociate sums)
_small = st.one_of(st.none(), st.integers(-50, 50).map(float))


def _matrix(elements: st.SearchStrategy = _value, max_series: int = 4,
            max_points: int = 30) -> st.SearchStrategy:
    return st.integers(1, max_series).flatmap(
        lambda n: st.integers(0, max_points).flatmap(
            lambda p: st.lists(st.lists(elements, min_size=p, max_size=p),
                               min_size=n, max_size=n)))


def _array(rows: list[list]) -> np.ndarray:
    width = len(rows[0]) if rows else 0
    return np.array([[math.nan if v is None else v for v in r] for r in rows],
                    dtype=np.float64).reshape(len(rows), width)


def _assert_rows(got: np.ndarray, want: list[list]) -> None:
    assert got.shape == (len(want), len(want[0]) if want else 0), (got.shape, want)
    for g_row, w_row in zip(got, want, strict=True):
        for g, w in zip(g_row, w_row, strict=True):
            if w is None:
                assert math.isnan(g), (g_row, w_row)
            else:
                assert not math.isnan(g), (g_row, w_row)
                assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9), (g_row, w_row)


AGGS = ["sum", "average", "avg_zero", "median", "min", "max", "diff", "stddev", "count",
        "range", "multiply", "last"]


# --- the properties -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(_matrix(max_series=6, max_points=12), st.sampled_from(AGGS))
def test_aggregate_across_series(rows: list[list], func: str) -> None:
    got = aggregate_axis(func, _array(rows), axis=0)
    columns = list(zip(*rows, strict=True)) if rows and rows[0] else []
    want = [ref_agg(func, list(col)) if any(v is not None for v in col) else None
            for col in columns]
    _assert_rows(got[None, :], [want])


@settings(max_examples=60, deadline=None)
@given(_matrix())
def test_derivative(rows: list[list]) -> None:
    _assert_rows(derivative_values(_array(rows)), [ref_derivative(r) for r in rows])


@settings(max_examples=80, deadline=None)
@given(_matrix(_counter), st.sampled_from([None, 150.0, 255.0]),
       st.sampled_from([None, 0.0, 10.0]))
def test_non_negative_derivative(rows: list[list], max_value: float | None,
                                 min_value: float | None) -> None:
    got = non_negative_delta_values(_array(rows), max_value, min_value)
    _assert_rows(got, [ref_non_negative_delta(r, max_value, min_value) for r in rows])


@settings(max_examples=60, deadline=None)
@given(_matrix())
def test_integral(rows: list[list]) -> None:
    _assert_rows(integral_values(_array(rows)), [ref_integral(r) for r in rows])


@settings(max_examples=60, deadline=None)
@given(_matrix(), st.sampled_from([0, 1, 2, 3, math.inf]))
def test_keep_last_value(rows: list[list], limit: float) -> None:
    _assert_rows(keep_last_values(_array(rows), limit), [ref_keep_last(r, limit) for r in rows])


@settings(max_examples=60, deadline=None)
@given(_matrix(), st.sampled_from([1, 2, math.inf]))
def test_interpolate(rows: list[list], limit: float) -> None:
    _assert_rows(interpolate_values(_array(rows), limit),
                 [ref_interpolate(r, limit) for r in rows])


@settings(max_examples=80, deadline=None)
@given(_matrix(), st.integers(1, 8),
       st.sampled_from(["average", "median", "sum", "min", "max", "avg_zero", "multiply",
                        "last", "count"]))
def test_moving_window(rows: list[list], window: int, func: str) -> None:
    got = moving_values(_array(rows), window, func)
    _assert_rows(got, [ref_moving(r, window, func) for r in rows])


@settings(max_examples=20, deadline=None)
@given(_matrix(_small, max_series=2, max_points=400), st.sampled_from([257, 300]),
       st.sampled_from(["average", "sum"]))
def test_moving_window_long(rows: list[list], window: int, func: str) -> None:
    got = moving_values(_array(rows), window, func)
    _assert_rows(got, [ref_moving(r, window, func) for r in rows])


@settings(max_examples=80, deadline=None)
@given(_matrix(), st.integers(0, 100), st.sampled_from([5, 10]),
       st.sampled_from([10, 15, 20, 30, 60]), st.sampled_from(AGGS), st.booleans())
def test_summarize(rows: list[list], start: int, step: int, interval: int, func: str,
                   align: bool) -> None:
    start = start * 5
    new_start, got = summarize_values(_array(rows), start, step, interval, func, align)
    want = [ref_summarize(r, start, step, interval, func, align) for r in rows]
    assert all(w[0] == new_start for w in want)
    _assert_rows(got, [w[1] for w in want])


@settings(max_examples=80, deadline=None)
@given(_matrix(), st.integers(0, 100), st.sampled_from([10, 30, 60]),
       st.sampled_from([7, 10, 25, 45, 60, 120]), st.integers(0, 3))
def test_hitcount(rows: list[list], start: int, step: int, interval: int,
                  extend: int) -> None:
    p = len(rows[0])
    end = start + p * step + extend * interval          # alignToInterval moves the end
    new_start, got = hitcount_values(_array(rows), start, step, end, interval)
    want = [ref_hitcount(r, start, step, end, interval) for r in rows]
    assert all(w[0] == new_start for w in want)
    _assert_rows(got, [w[1] for w in want])


@settings(max_examples=60, deadline=None)
@given(_matrix(), st.integers(1, 5),
       st.sampled_from(["sum", "average", "avg_zero", "min", "max", "first", "last"]))
def test_consolidate(rows: list[list], vpp: int, func: str) -> None:
    got = consolidate(_array(rows), vpp, [func] * len(rows))
    _assert_rows(got, [ref_consolidate(r, vpp, func) for r in rows])


@settings(max_examples=50, deadline=None)
@given(_matrix(st.one_of(st.none(), st.integers(0, 3).map(float))))
def test_changed(rows: list[list]) -> None:
    _assert_rows(changed_values(_array(rows)), [ref_changed(r) for r in rows])


@settings(max_examples=50, deadline=None)
@given(_matrix(_small), st.floats(0.01, 0.99), st.floats(-10, 10))
def test_affine_scan_is_the_ema_recurrence(rows: list[list], constant: float,
                                           seed: float) -> None:
    values = _array(rows)
    valid = ~np.isnan(values)
    got = affine_scan(np.where(valid, 1 - constant, 1.0),
                      np.where(valid, constant * np.where(valid, values, 0.0), 0.0),
                      np.full(values.shape[0], seed))
    want = []
    for r in rows:
        ema, out = seed, []
        for v in r:
            if v is not None:
                ema = constant * v + (1 - constant) * ema
            out.append(ema)
        want.append(out)
    _assert_rows(got, want)
