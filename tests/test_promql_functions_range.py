"""Range-vector functions: hand-computed cases, then every function against the per-window
reference implementations in ``promql_function_refs`` on generated data (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.promql_function_refs import call as fcall
from tests.promql_function_refs import (
    close_float,
    kahan_inc,
    make_range_vector,
    ref_avg,
    ref_changes,
    ref_deriv,
    ref_extrapolated_rate,
    ref_holt_winters,
    ref_instant_value,
    ref_max,
    ref_min,
    ref_predict_linear,
    ref_quantile_over_time,
    ref_resets,
    ref_stddev,
    ref_stdvar,
    ref_sum,
    same_float,
    scalar,
    window_points,
)
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.functions_base import WindowScan, kahan_add, window_reduce
from tsdb.query.promql.values import InstantVector, RangeVector


def run(name: str, rv: RangeVector, steps, *scalars: float) -> InstantVector:
    args = [rv] + [scalar(x, len(steps)) for x in scalars]
    if name == "quantile_over_time":
        args = [scalar(scalars[0], len(steps)), rv]
    out = fcall(name, args, steps)
    assert isinstance(out, InstantVector)
    return out


def only(out: InstantVector, i: int = 0, s: int = 0) -> float | None:
    return float(out.values[i, s]) if out.present[i, s] else None


# --- building blocks -----------------------------------------------------------------------


def test_window_reduce_handles_overlap_gaps_and_array_end():
    data = np.arange(10, dtype=np.float64)
    lo = np.array([0, 2, 1, 7, 9])
    hi = np.array([3, 5, 10, 10, 10])
    assert window_reduce(np.add, data, lo, hi).tolist() == [3, 9, 45, 24, 9]
    assert window_reduce(np.fmax, data, lo, hi).tolist() == [2, 4, 9, 9, 9]
    assert len(window_reduce(np.add, data, lo[:0], hi[:0])) == 0


def test_window_scan_visits_each_window_position_once():
    lo = np.array([10, 0, 5])
    n = np.array([2, 4, 1])
    scan = WindowScan(lo, n)
    seen = [(j, idx.tolist()) for j, _, idx in scan.positions()]
    assert seen == [(0, [0, 10, 5]), (1, [1, 11]), (2, [2]), (3, [3])]
    assert scan.unsort(scan.sorted(np.array([7, 8, 9]))).tolist() == [7, 8, 9]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False,
                                    min_value=-1e300, max_value=1e300),
                          st.floats(-1e-3, 1e-3), st.integers(-10**6, 10**6).map(float)),
                min_size=1, max_size=40))
def test_branch_free_kahan_equals_prometheus_neumaier(values):
    total, comp = np.zeros(1), np.zeros(1)
    ref_total = ref_comp = 0.0
    for v in values:
        kahan_add(total, comp, np.array([v]))
        ref_total, ref_comp = kahan_inc(v, ref_total, ref_comp)
    assert same_float(total[0] + comp[0], ref_total + ref_comp)
    if math.isfinite(ref_total + ref_comp):
        assert (total[0], comp[0]) == (ref_total, ref_comp)


# --- rate, increase, delta ---------------------------------------------------------------------


def test_rate_extrapolates_to_both_window_bounds():
    # samples every 15 s from 15 s to 285 s, counter +1 per sample; window [0, 300 s]
    points = [(t * 1000, float(t // 15)) for t in range(15, 286, 15)]
    rv = make_range_vector([points], [300_000], 300_000)
    # 18 over 270 s, extrapolated by 15 s on each side (< 1.1 * 15 s): 18 * 300 / 270 = 20
    assert only(run("increase", rv, [300_000])) == pytest.approx(20.0)
    assert only(run("rate", rv, [300_000])) == pytest.approx(20.0 / 300)
    assert only(run("delta", rv, [300_000])) == pytest.approx(20.0)


def test_increase_does_not_extrapolate_below_zero_for_counters():
    # counter starts at 1 at 150 s, +1 per 15 s; zero point is 15 s before the first sample
    points = [(150_000 + k * 15_000, 1.0 + k) for k in range(10)]
    rv = make_range_vector([points], [300_000], 300_000)
    # sampled 135 s for +9; start extends by 15 s (zero point), end by 7.5 s (half interval,
    # as 15 s > 1.1 * 15 s is false -> full 15 s): to_end = 300 - 285 = 15 s
    expected = 9 * (135 + 15 + 15) / 135
    assert only(run("increase", rv, [300_000])) == pytest.approx(expected)
    # delta is no counter: extrapolated by half an interval at the start (150 s gap)
    expected_delta = 9 * (135 + 7.5 + 15) / 135
    assert only(run("delta", rv, [300_000])) == pytest.approx(expected_delta)


def test_counter_resets_add_the_value_before_the_reset():
    points = [(0, 10.0), (10_000, 20.0), (20_000, 5.0), (30_000, 8.0)]
    rv = make_range_vector([points], [30_000], 30_000)
    # raw increase 8 - 10 + 20 = 18 over 30 s, window exactly covered
    assert only(run("increase", rv, [30_000])) == pytest.approx(18.0)
    assert only(run("resets", rv, [30_000])) == 1.0
    assert only(run("delta", rv, [30_000])) == pytest.approx(-2.0)


def test_rate_needs_two_samples_and_windows_are_inclusive():
    points = [(0, 1.0), (60_000, 2.0)]
    rv = make_range_vector([points], [60_000, 90_000, 200_000], 60_000)
    out = run("rate", rv, [60_000, 90_000, 200_000])
    assert out.present[0].tolist() == [True, False, False]
    assert run("count_over_time", rv, [60_000, 90_000, 200_000]).values[0, :2].tolist() == [2, 1]


def test_rate_on_large_counters_matches_prometheus_arithmetic():
    base = 1.234_567_890_123e12
    points = [(k * 15_000 + 7, base + k * 1_000_003.25) for k in range(41)]
    points[20] = (points[20][0], 12.0)  # a reset
    steps = list(range(300_000, 600_001, 15_000))
    rv = make_range_vector([points], steps, 300_000)
    out = run("rate", rv, steps)
    for s, step in enumerate(steps):
        expected = ref_extrapolated_rate(window_points(rv, 0, s), step - 300_000, step,
                                         300_000, True, True)
        assert same_float(only(out, 0, s), expected)


def test_irate_and_idelta_use_the_last_two_samples():
    points = [(0, 5.0), (10_000, 9.0), (15_000, 3.0)]
    rv = make_range_vector([points], [15_000], 60_000)
    assert only(run("irate", rv, [15_000])) == pytest.approx(3.0 / 5)  # reset: 3 over 5 s
    assert only(run("idelta", rv, [15_000])) == pytest.approx(-6.0)


# --- regressions and smoothing ---------------------------------------------------------------


def test_deriv_and_predict_linear_on_a_line():
    points = [(t * 1000, 2.0 * t + 5) for t in range(0, 61, 10)]
    rv = make_range_vector([points], [60_000], 60_000)
    assert only(run("deriv", rv, [60_000])) == pytest.approx(2.0)
    # value at the evaluation time (60 s -> 125) plus 30 s of slope
    assert only(run("predict_linear", rv, [60_000], 30)) == pytest.approx(185.0)


def test_deriv_of_a_constant_is_zero_and_of_infinity_nan():
    rv = make_range_vector([[(0, 3.0), (1000, 3.0)], [(0, math.inf), (1000, math.inf)]],
                           [1000], 1000)
    out = run("deriv", rv, [1000])
    assert only(out, 0) == 0.0
    assert math.isnan(only(out, 1))


def test_holt_winters_checks_factors_only_where_windows_have_samples():
    rv = make_range_vector([[(0, 1.0)]], [0, 500_000], 1000)
    with pytest.raises(QueryError, match=r"invalid smoothing factor\. Expected: 0 < sf < 1, "
                                         r"got: 1\.000000"):
        run("holt_winters", rv, [0, 500_000], 1, 0.5)
    with pytest.raises(QueryError, match=r"invalid trend factor.*got: -Inf"):
        run("holt_winters", rv, [0, 500_000], 0.5, -math.inf)
    empty = make_range_vector([[(0, 1.0)]], [500_000], 1000)
    assert not run("holt_winters", empty, [500_000], 1, 0.5).present.any()
    nan_factor = run("holt_winters", make_range_vector([[(0, 1.0), (1, 2.0)]], [1], 10), [1],
                     math.nan, 0.5)
    assert math.isnan(only(nan_factor))


def test_holt_winters_hand_computed():
    points = [(0, 1.0), (1000, 3.0), (2000, 4.0)]
    rv = make_range_vector([points], [2000], 2000)
    # s1=1, b=2; i=1: s1 = .5*3 + .5*(1+2) = 3; i=2: b = .5*(3-1) + .5*2 = 2,
    # s1 = .5*4 + .5*(3+2) = 4.5
    assert only(run("holt_winters", rv, [2000], 0.5, 0.5)) == pytest.approx(4.5)


# --- counting ------------------------------------------------------------------------------


def test_changes_counts_nan_transitions_like_go():
    points = [(0, 1.0), (1, 1.0), (2, math.nan), (3, math.nan), (4, 2.0), (5, 2.0)]
    rv = make_range_vector([points], [5], 10)
    assert only(run("changes", rv, [5])) == 2.0
    assert only(run("resets", rv, [5])) == 0.0
    one = make_range_vector([[(0, 1.0)]], [0], 10)
    assert only(run("changes", one, [0])) == 0.0


# --- *_over_time -----------------------------------------------------------------------------


def test_over_time_aggregations():
    points = [(0, 4.0), (1000, math.nan), (2000, -2.0), (3000, 10.0)]
    rv = make_range_vector([points[:1] + points[2:], points], [3000], 3000)
    assert only(run("avg_over_time", rv, [3000])) == pytest.approx(4.0)
    assert only(run("sum_over_time", rv, [3000])) == 12.0
    assert only(run("min_over_time", rv, [3000])) == -2.0
    assert only(run("max_over_time", rv, [3000])) == 10.0
    assert only(run("min_over_time", rv, [3000]), 1) == -2.0  # NaN skipped
    assert math.isnan(only(run("avg_over_time", rv, [3000]), 1))
    assert only(run("count_over_time", rv, [3000]), 1) == 4.0
    assert only(run("last_over_time", rv, [3000])) == 10.0
    assert only(run("stdvar_over_time", rv, [3000])) == pytest.approx(24.0)
    assert only(run("stddev_over_time", rv, [3000])) == pytest.approx(math.sqrt(24.0))
    assert only(run("quantile_over_time", rv, [3000], 0.5)) == pytest.approx(4.0)
    # Go sorts NaN first: [NaN, -2, 4, 10]; rank 0.5 * 3 = 1.5 -> (-2 + 4) / 2
    assert only(run("quantile_over_time", rv, [3000], 0.5), 1) == pytest.approx(1.0)
    assert only(run("quantile_over_time", rv, [3000], 1.5)) == math.inf
    assert only(run("quantile_over_time", rv, [3000], -1)) == -math.inf
    assert math.isnan(only(run("quantile_over_time", rv, [3000], math.nan)))


def test_avg_and_sum_over_time_do_not_overflow_or_lose_large_values():
    rv = make_range_vector([[(0, 1e308), (1, 1e308), (2, -1e308)]], [2], 10)
    assert only(run("avg_over_time", rv, [2])) == pytest.approx(1e308 / 3)
    big = make_range_vector([[(k, 1e12 + k * 0.125) for k in range(1000)]], [999], 1000)
    assert only(run("sum_over_time", big, [999])) == 1e15 + 0.125 * 999 * 500
    assert only(run("avg_over_time", big, [999])) == 1e12 + 0.125 * 999 / 2


def test_infinities_in_over_time():
    rv = make_range_vector([[(0, math.inf), (1, 1.0)], [(0, math.inf), (1, -math.inf)]], [1], 5)
    avg = run("avg_over_time", rv, [1])
    assert only(avg, 0) == math.inf and math.isnan(only(avg, 1))
    assert math.isnan(only(run("stddev_over_time", rv, [1]), 0))


def test_names_are_dropped_except_by_last_over_time():
    rv = make_range_vector([[(0, 1.0)]], [0], 10, labels=[(("__name__", "x"), ("a", "b"))])
    assert run("sum_over_time", rv, [0]).labels == [(("a", "b"),)]
    assert run("last_over_time", rv, [0]).labels == [(("__name__", "x"), ("a", "b"))]
    assert run("present_over_time", rv, [0]).values.tolist() == [[1.0]]


def test_offset_windows_use_window_end_for_extrapolation():
    points = [(t * 1000, float(t)) for t in range(0, 100, 10)]
    steps = [100_000]
    shifted = make_range_vector([points], steps, 30_000, offset_ms=20_000)
    expected = ref_extrapolated_rate(window_points(shifted, 0, 0), 50_000, 80_000, 30_000,
                                     True, False)
    assert same_float(only(run("increase", shifted, steps)), expected)


# --- properties against the references --------------------------------------------------------

_SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 1e300])


@st.composite
def series_points(draw: st.DrawFn, specials: bool) -> list[tuple[int, float]]:
    n = draw(st.integers(0, 30))
    t = draw(st.integers(0, 100_000))
    kind = draw(st.sampled_from(["counter", "gauge", "large", "mixed"] if specials
                                else ["counter", "gauge", "large"]))
    value = draw(st.floats(0, 1e12 if kind == "large" else 100))
    out = []
    for _ in range(n):
        out.append((t, value))
        t += draw(st.integers(1, 40_000))
        if kind in ("counter", "large"):
            value = value + draw(st.floats(0, 1e6 if kind == "large" else 10))
            if draw(st.integers(0, 9)) == 0:
                value = draw(st.floats(0, 10))
        elif kind == "gauge":
            value = draw(st.floats(-1e3, 1e3, allow_nan=False))
        else:
            value = draw(st.one_of(_SPECIAL, st.floats(-1e3, 1e3)))
    return out


@st.composite
def range_cases(draw: st.DrawFn, specials: bool = True):
    series = draw(st.lists(series_points(specials), min_size=0, max_size=4))
    start = draw(st.integers(0, 400_000))
    step = draw(st.integers(1, 60_000))
    steps = [start + k * step for k in range(draw(st.integers(1, 12)))]
    range_ms = draw(st.integers(1, 300_000))
    offset = draw(st.sampled_from([0, 0, 10_000, -5_000]))
    return make_range_vector(series, steps, range_ms, offset_ms=offset), steps


_EXACT = {
    "rate": lambda p, s, e, r: ref_extrapolated_rate(p, e - r, e, r, True, True),
    "increase": lambda p, s, e, r: ref_extrapolated_rate(p, e - r, e, r, True, False),
    "delta": lambda p, s, e, r: ref_extrapolated_rate(p, e - r, e, r, False, False),
    "irate": lambda p, s, e, r: ref_instant_value(p, True),
    "idelta": lambda p, s, e, r: ref_instant_value(p, False),
    "deriv": lambda p, s, e, r: ref_deriv(p),
    "resets": lambda p, s, e, r: ref_resets(p),
    "changes": lambda p, s, e, r: ref_changes(p),
    "count_over_time": lambda p, s, e, r: float(len(p)) if p else None,
    "min_over_time": lambda p, s, e, r: ref_min(p),
    "max_over_time": lambda p, s, e, r: ref_max(p),
    "last_over_time": lambda p, s, e, r: p[-1][1] if p else None,
    "present_over_time": lambda p, s, e, r: 1.0 if p else None,
    "stdvar_over_time": lambda p, s, e, r: ref_stdvar(p),
    "stddev_over_time": lambda p, s, e, r: ref_stddev(p),
}


def _check(name, rv, steps, reference, compare=same_float, scalars=()):
    out = run(name, rv, steps, *scalars)
    ends = rv.window_end
    for i in range(len(rv)):
        for s, step in enumerate(steps):
            expected = reference(window_points(rv, i, s), step, int(ends[s]), rv.range_ms)
            got = only(out, i, s)
            assert (got is None) == (expected is None), (name, i, s, got, expected)
            if expected is not None:
                assert compare(got, expected), (name, i, s, got, expected)


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(range_cases())
def test_exact_functions_match_prometheus_arithmetic(case):
    rv, steps = case
    for name, reference in _EXACT.items():
        _check(name, rv, steps, reference)


@_settings
@given(range_cases(), st.floats(-600, 600))
def test_predict_linear_matches(case, seconds):
    rv, steps = case
    _check("predict_linear", rv, steps,
           lambda p, s, e, r: ref_predict_linear(p, s, seconds), scalars=(seconds,))


@_settings
@given(range_cases(), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_holt_winters_matches(case, sf, tf):
    rv, steps = case
    _check("holt_winters", rv, steps, lambda p, s, e, r: ref_holt_winters(p, sf, tf),
           scalars=(sf, tf))


@_settings
@given(range_cases(), st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, math.nan])))
def test_quantile_over_time_matches(case, q):
    rv, steps = case
    _check("quantile_over_time", rv, steps,
           lambda p, s, e, r: ref_quantile_over_time(p, q), scalars=(q,))


@_settings
@given(range_cases(specials=False))
def test_sums_and_means_match_within_rounding(case):
    """Sums use extended precision rather than Kahan's algorithm: not bit-identical, but
    within a few units in the last place of the magnitudes involved."""
    rv, steps = case

    def close(got: float, expected: float, points) -> bool:
        scale = max([abs(v) for _, v in points] + [0.0])
        return close_float(got, expected, rel=1e-12, abs_tol=scale * len(points) * 1e-15)

    for name, reference in (("sum_over_time", ref_sum), ("avg_over_time", ref_avg)):
        out = run(name, rv, steps)
        for i in range(len(rv)):
            for s in range(len(steps)):
                points = window_points(rv, i, s)
                expected = reference(points)
                assert (only(out, i, s) is None) == (expected is None)
                if expected is not None:
                    assert close(only(out, i, s), expected, points), (name, points)


@_settings
@given(range_cases(specials=True))
def test_sums_with_special_values_agree_on_nan_and_infinity(case):
    rv, steps = case
    for name, reference in (("sum_over_time", ref_sum), ("avg_over_time", ref_avg)):
        out = run(name, rv, steps)
        for i in range(len(rv)):
            for s in range(len(steps)):
                points = window_points(rv, i, s)
                expected = reference(points)
                if expected is None:
                    continue
                if not all(math.isfinite(v) for _, v in points):
                    assert same_float(only(out, i, s), expected), (name, points)
                else:
                    scale = max(abs(v) for _, v in points)
                    assert close_float(only(out, i, s), expected, rel=1e-9,
                                       abs_tol=1e-12 * scale * len(points)), (name, points)
