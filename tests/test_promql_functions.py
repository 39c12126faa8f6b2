"""The function registry and the instant-vector functions: math, calendar, labels,
histogram_quantile, sort/scalar/vector/absent. Values marked "Prometheus 2.42" were
produced by a real Prometheus 2.42.0 on the same input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.promql_function_refs import call as fcall
from tests.promql_function_refs import (
    go_bucket_quantile,
    make_range_vector,
    make_vector,
    same_float,
    scalar,
)
from tsdb.query.promql import ast
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.functions import FUNCTIONS, KEEPS_METRIC_NAME
from tsdb.query.promql.functions_base import go_parse_float
from tsdb.query.promql.values import InstantVector, Scalar, String
from tsdb.storage.labels import Matcher

PROMETHEUS_2_42_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_replace", "label_join", "ln", "log10", "log2", "last_over_time",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}


def test_registry_is_exactly_prometheus_2_42():
    assert set(FUNCTIONS) == PROMETHEUS_2_42_FUNCTIONS
    assert KEEPS_METRIC_NAME <= set(FUNCTIONS)


def vec(*rows, labels=None) -> InstantVector:
    return make_vector(rows, labels)


def one(name: str, *args, steps=(0,), **kwargs):
    return fcall(name, list(args), list(steps), **kwargs)


# --- math --------------------------------------------------------------------------------


def test_simple_math_drops_the_name_and_keeps_presence():
    v = vec([-2.0, None], [4.0, 9.0], labels=[(("__name__", "a"), ("x", "1")), (("x", "2"),)])
    out = one("sqrt", v, steps=(0, 1))
    assert out.labels == [(("x", "1"),), (("x", "2"),)]
    assert math.isnan(out.values[0, 0]) and out.values[1].tolist() == [2.0, 3.0]
    assert out.present.tolist() == [[True, False], [True, True]]
    assert v.labels[0][0] == ("__name__", "a")  # input untouched


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("abs", -3.5, 3.5), ("ceil", 1.2, 2.0), ("floor", -1.2, -2.0), ("exp", 0.0, 1.0),
        ("ln", 0.0, -math.inf), ("ln", -1.0, math.nan), ("log2", 8.0, 3.0),
        ("log10", 1000.0, 3.0), ("sgn", -0.5, -1.0), ("sgn", 0.0, 0.0), ("sgn", math.nan, math.nan),
        ("deg", math.pi, 180.0), ("rad", 180.0, math.pi), ("acosh", 0.5, math.nan),
        ("atanh", 1.0, math.inf), ("asin", 2.0, math.nan), ("tanh", math.inf, 1.0),
    ],
)
def test_math_functions(name, value, expected):
    got = one(name, vec([value])).values[0, 0]
    assert same_float(got, pytest.approx(expected) if math.isfinite(expected) else expected) or \
        got == pytest.approx(expected)


def test_round_rounds_halves_up_and_to_a_multiple():
    v = vec([-2.5, -1.5, 0.5, 2.5, 1.26, 7.0])
    assert one("round", v, steps=range(6)).values[0].tolist() == [-2, -1, 1, 3, 1, 7]
    to_quarter = one("round", v, scalar(0.25, 6), steps=range(6)).values[0]
    assert to_quarter.tolist() == [-2.5, -1.5, 0.5, 2.5, 1.25, 7.0]
    assert one("round", vec([17.0]), scalar(10, 1)).values[0, 0] == 20.0


def test_clamp_family():
    v = vec([-5.0, 0.5, 5.0, math.nan])
    steps = range(4)
    assert one("clamp", v, scalar(-1, 4), scalar(1, 4), steps=steps).values[0, :3].tolist() == \
        [-1, 0.5, 1]
    assert not one("clamp", v, scalar(1, 4), scalar(-1, 4), steps=steps).present.any()
    assert one("clamp_min", v, scalar(0, 4), steps=steps).values[0, :3].tolist() == [0, 0.5, 5]
    assert one("clamp_max", v, scalar(0, 4), steps=steps).values[0, :3].tolist() == [-5, 0, 0]
    # Go's math.Max/Min: an infinity in the right direction beats NaN
    assert one("clamp_min", v, scalar(math.inf, 4), steps=steps).values[0, 3] == math.inf
    assert one("clamp_max", vec([-math.inf]), scalar(math.nan, 1)).values[0, 0] == -math.inf
    assert math.isnan(one("clamp_max", vec([1.0]), scalar(math.nan, 1)).values[0, 0])


def test_clamp_bounds_vary_per_step():
    v = vec([5.0, 5.0])
    low = Scalar(np.array([0.0, 6.0]))
    high = Scalar(np.array([1.0, 2.0]))
    out = one("clamp", v, low, high, steps=(0, 1))
    assert out.present.tolist() == [[True, False]] and out.values[0, 0] == 1.0


def test_pi_and_time():
    assert one("pi", steps=(0, 1)).values.tolist() == [math.pi, math.pi]
    assert one("time", steps=(1500, 2000)).values.tolist() == [1.5, 2.0]


# --- time ----------------------------------------------------------------------------------

# Prometheus 2.42 on amd64: f(vector(x)) for these x; NaN, ±Inf and out-of-range values go
# through Go's int64 conversion (-> minimum int64) and wrap around in the time package.
_DATE_INPUTS = [math.nan, math.inf, -math.inf, -1.5, -86400.5, 951782400.0, 4102444800.0,
                1e19, -1e19, 253402300800.0]
_DATE_GOLDEN = {
    "year": [292277026596] * 3 + [1969, 1969, 2000, 2100] + [292277026596] * 2 + [10000],
    "month": [12, 12, 12, 12, 12, 2, 1, 12, 12, 1],
    "day_of_month": [4, 4, 4, 31, 31, 29, 1, 4, 4, 1],
    "day_of_year": [339, 339, 339, 365, 365, 60, 1, 339, 339, 1],
    "day_of_week": [0, 0, 0, 3, 3, 2, 5, 0, 0, 6],
    "hour": [15, 15, 15, 23, 0, 0, 0, 15, 15, 0],
    "minute": [30, 30, 30, 59, 0, 0, 0, 30, 30, 0],
    "days_in_month": [31, 31, 31, 31, 31, 29, 31, 31, 31, 31],
}


@pytest.mark.parametrize("name", sorted(_DATE_GOLDEN))
def test_calendar_functions_match_prometheus(name):
    v = vec(_DATE_INPUTS)
    out = one(name, v, steps=range(len(_DATE_INPUTS)))
    assert out.values[0].tolist() == _DATE_GOLDEN[name]
    assert out.labels == [(("i", "0"),)]


def test_calendar_functions_default_to_the_step_time():
    # 2024-01-06 22:30:00 UTC (a Saturday) and 2024-02-29 12:34:56.789 UTC
    steps = (1704580200000, 1709210096789)
    out = {name: one(name, steps=steps) for name in _DATE_GOLDEN}
    assert out["year"].labels == [()]
    assert out["minute"].values[0].tolist() == [30, 34]
    assert out["hour"].values[0].tolist() == [22, 12]
    assert out["day_of_week"].values[0].tolist() == [6, 4]
    assert out["day_of_month"].values[0].tolist() == [6, 29]
    assert out["day_of_year"].values[0].tolist() == [6, 60]
    assert out["days_in_month"].values[0].tolist() == [31, 29]
    assert out["month"].values[0].tolist() == [1, 2]


@settings(max_examples=200, deadline=None)
@given(st.integers(-62_135_596_800, 253_402_300_799))  # years 1 to 9999
def test_calendar_agrees_with_python_datetime(seconds):
    import datetime as dt

    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    v = vec([float(seconds)])
    got = {name: one(name, v).values[0, 0] for name in _DATE_GOLDEN}
    assert got["year"] == when.year and got["month"] == when.month
    assert got["day_of_month"] == when.day and got["hour"] == when.hour
    assert got["minute"] == when.minute
    assert got["day_of_week"] == (when.weekday() + 1) % 7
    assert got["day_of_year"] == when.timetuple().tm_yday


def test_timestamp_of_a_computed_vector_is_the_step_time():
    v = vec([1.0, None], labels=[(("__name__", "m"),)])
    out = one("timestamp", v, steps=(10_000, 20_500))
    assert out.values[0, 0] == 10.0 and out.present.tolist() == [[True, False]]
    assert out.labels == [()]


# --- labels --------------------------------------------------------------------------------


def replace(v: InstantVector, dst: str, repl: str, src: str, regex: str) -> InstantVector:
    return one("label_replace", v, String(dst), String(repl), String(src), String(regex))


def test_label_replace_expands_like_go():
    v = vec([1.0], labels=[(("__name__", "up"), ("instance", "node-a:9100"))])
    out = replace(v, "host", "$1-${port}-$$-$2x-${9}", "instance", "(.*):(?P<port>.*)")
    assert dict(out.labels[0])["host"] == "node-a-9100-$--"
    assert dict(out.labels[0])["__name__"] == "up"  # the name is kept
    # no match: unchanged; empty result removes the label; regex is anchored
    assert replace(v, "host", "x", "instance", "node").labels == v.labels
    assert replace(v, "instance", "", "instance", ".*").labels == [(("__name__", "up"),)]
    assert dict(replace(v, "n", "$1", "__name__", "(u)p").labels[0])["n"] == "u"
    # a missing source label matches as ""
    assert dict(replace(v, "e", "empty", "nope", "").labels[0])["e"] == "empty"


@pytest.mark.parametrize(
    ("template", "expected"),
    [("$", "$"), ("a$", "a$"), ("${1", "${1"), ("$0$00$01", "b"), ("${name}$name", "bb"),
     ("$1$2", "b"), ("$x$", "$"), ("${}", "${}"), ("€$1€", "€b€")],
)
def test_label_replace_template_edge_cases(template, expected):
    v = vec([1.0], labels=[(("l", "b"),)])
    out = replace(v, "d", template, "l", "(?P<name>b)")
    assert dict(out.labels[0]).get("d", "") == expected


def test_label_replace_errors():
    v = vec([1.0])
    with pytest.raises(QueryError, match=r"^invalid regular expression in label_replace\(\): \($"):
        replace(v, "d", "x", "i", "(")
    with pytest.raises(QueryError, match="invalid regular expression"):
        replace(v, "d", "x", "i", "(?<n>x)")  # Go 1.19 syntax has no (?<name>)
    with pytest.raises(QueryError, match="invalid regular expression"):
        replace(v, "d", "x", "i", "(?P<ü>x)")
    with pytest.raises(QueryError, match=r"invalid destination label name in label_replace\(\): "
                                         r"1bad"):
        replace(InstantVector.empty(1), "1bad", "x", "i", ".*")  # even on an empty vector


def test_label_replace_dot_does_not_match_newline():
    v = vec([1.0], labels=[(("l", "a\nb"),)])
    assert replace(v, "d", "x", "l", "a.b").labels == v.labels
    assert dict(replace(v, "d", "x", "l", "(?s)a.b").labels[0])["d"] == "x"


def test_label_join():
    v = vec([1.0], labels=[(("__name__", "up"), ("a", "x"), ("b", "y"))])
    out = one("label_join", v, String("j"), String("/"), String("a"), String("none"),
              String("b"))
    assert dict(out.labels[0]) == {"__name__": "up", "a": "x", "b": "y", "j": "x//y"}
    removed = one("label_join", v, String("a"), String(","), String("none"))
    assert dict(removed.labels[0]) == {"__name__": "up", "b": "y"}
    with pytest.raises(QueryError, match=r"invalid source label name in label_join\(\): b-c"):
        one("label_join", v, String("d"), String(","), String("b-c"))
    with pytest.raises(QueryError, match=r"invalid destination label name in label_join\(\)"):
        one("label_join", v, String("d-e"), String(","), String("a"))


# --- vectors ---------------------------------------------------------------------------------


def test_sort_orders_instant_results_with_nan_last():
    labels = [(("__name__", "m"), ("i", str(i))) for i in range(5)]
    v = vec([3.0], [math.nan], [-1.0], [None], [2.0], labels=labels)
    asc = one("sort", v)
    assert [dict(lb)["i"] for lb, p in zip(asc.labels, asc.present[:, 0], strict=True) if p] == \
        ["2", "4", "0", "1"]
    assert asc.labels[0][0] == ("__name__", "m")
    desc = one("sort_desc", v)
    assert [dict(lb)["i"] for lb, p in zip(desc.labels, desc.present[:, 0], strict=True) if p] == \
        ["0", "4", "2", "1"]


def test_scalar_and_vector():
    v = vec([1.0, 2.0, None], [None, 5.0, None])
    out = one("scalar", v, steps=(0, 1, 2))
    assert out.values[0] == 1.0 and math.isnan(out.values[1]) and math.isnan(out.values[2])
    assert math.isnan(one("scalar", InstantVector.empty(1)).values[0])
    as_vector = one("vector", Scalar(np.array([1.0, 2.0])), steps=(0, 1))
    assert as_vector.labels == [()] and as_vector.values.tolist() == [[1.0, 2.0]]


def selector(*matchers: tuple[str, str, str]) -> ast.VectorSelector:
    return ast.VectorSelector("", [Matcher(*m) for m in matchers])


def test_absent_labels_come_from_single_equality_matchers():
    sel = selector(("__name__", "=", "x"), ("job", "=", "a"), ("job", "=", "b"),
                   ("env", "=", "prod"), ("dc", "=~", "eu.*"), ("az", "=", ""),
                   ("host", "!=", "h"), ("host", "=", "h2"))
    out = one("absent", InstantVector.empty(2), steps=(0, 1), arg_exprs=[sel])
    assert out.labels == [(("env", "prod"), ("host", "h2"))]
    assert out.values.tolist() == [[1.0, 1.0]] and out.present.all()
    present = one("absent", vec([None, 1.0]), steps=(0, 1), arg_exprs=[sel])
    assert present.present.tolist() == [[True, False]]
    computed = one("absent", InstantVector.empty(1),
                   arg_exprs=[ast.BinaryExpr("==", sel, ast.NumberLiteral(5))])
    assert computed.labels == [()]
    in_parens = one("absent", InstantVector.empty(1), arg_exprs=[ast.ParenExpr(sel)])
    assert in_parens.labels == out.labels


def test_absent_over_time():
    sel = selector(("__name__", "=", "x"), ("job", "=", "a"))
    rv = make_range_vector([[(0, 1.0)], [(100_000, 2.0)]], [0, 50_000, 100_000], 10_000)
    out = one("absent_over_time", rv, steps=(0, 50_000, 100_000),
              arg_exprs=[ast.MatrixSelector(sel, 10_000)])
    assert out.labels == [(("job", "a"),)]
    assert out.present.tolist() == [[False, True, False]]
    subquery = one("absent_over_time", rv, steps=(0, 50_000, 100_000),
                   arg_exprs=[ast.SubqueryExpr(sel, 10_000)])
    assert subquery.labels == [()]


# --- histograms ------------------------------------------------------------------------------


def buckets(pairs, extra=(("__name__", "h_bucket"), ("job", "a"))):
    labels = [tuple(sorted((*extra, ("le", le)))) for le, _ in pairs]
    return make_vector([[count] for _, count in pairs], labels)


def quantile(q: float, v: InstantVector) -> InstantVector:
    return one("histogram_quantile", scalar(q, 1), v)


def test_histogram_quantile_interpolates_within_the_bucket():
    v = buckets([("0.1", 10.0), ("0.5", 30.0), ("1", 40.0), ("+Inf", 40.0)])
    out = quantile(0.5, v)
    assert out.labels == [(("job", "a"),)]
    assert out.values[0, 0] == pytest.approx(0.1 + 0.4 * (20 - 10) / 20)
    assert quantile(0.1, v).values[0, 0] == pytest.approx(0.04)  # first bucket starts at 0
    assert quantile(1.0, v).values[0, 0] == 1.0  # in the +Inf bucket: highest finite bound
    assert quantile(1.5, v).values[0, 0] == math.inf
    assert quantile(-0.5, v).values[0, 0] == -math.inf
    assert math.isnan(quantile(math.nan, v).values[0, 0])


def test_histogram_quantile_special_shapes():
    no_inf = buckets([("0.1", 1.0), ("1", 2.0)])
    assert math.isnan(quantile(0.5, no_inf).values[0, 0])
    only_inf = buckets([("+Inf", 5.0)])
    assert math.isnan(quantile(0.5, only_inf).values[0, 0])
    empty = buckets([("1", 0.0), ("+Inf", 0.0)])
    assert math.isnan(quantile(0.5, empty).values[0, 0])
    negative = buckets([("-1", 2.0), ("0", 4.0), ("+Inf", 4.0)])
    assert quantile(0.25, negative).values[0, 0] == -1.0  # lowest bound not positive
    # equal bounds written differently are merged; non-monotonic counts are fixed up
    merged = buckets([("1", 2.0), ("1.0", 2.0), ("2", 3.0), ("+Inf", 8.0)])
    assert quantile(0.5, merged).values[0, 0] == pytest.approx(1.0)
    # le values Go cannot parse are skipped; Go syntax like 0x1p-2 and 1_0 is accepted
    odd = buckets([("0x1p-2", 1.0), ("abc", 100.0), (" 1", 100.0), ("1_0", 3.0), ("+Inf", 4.0)])
    assert quantile(0.5, odd).values[0, 0] == pytest.approx(0.25 + 9.75 * 1 / 2)


def test_histogram_quantile_groups_by_labels_without_le():
    v = make_vector(
        [[1.0], [2.0], [3.0], [4.0], [5.0]],
        [(("__name__", "a_bucket"), ("le", "1")), (("__name__", "a_bucket"), ("le", "+Inf")),
         (("__name__", "b_bucket"), ("le", "1")), (("__name__", "b_bucket"), ("le", "+Inf")),
         (("__name__", "b_bucket"),)],  # no le: skipped
    )
    out = quantile(0.5, v)
    assert out.labels == [(), ()]  # two histograms, both nameless: the evaluator objects
    assert out.values[:, 0].tolist() == pytest.approx([1.0, 2.0 / 3.0])


def test_histogram_quantile_uses_buckets_present_at_each_step():
    labels = [(("le", "1"),), (("le", "2"),), (("le", "+Inf"),)]
    v = make_vector([[1.0, 1.0, None], [None, 2.0, None], [2.0, 4.0, None]], labels)
    out = one("histogram_quantile", scalar(0.5, 3), v, steps=(0, 1, 2))
    assert out.present.tolist() == [[True, True, False]]
    assert out.values[0, :2].tolist() == pytest.approx([1.0, 2.0])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["-1", "0", "0.5", "1", "1.0", "2", "5", "+Inf"]),
                  st.one_of(st.floats(0, 100), st.just(math.nan)), st.booleans()),
        min_size=1, max_size=10, unique_by=lambda b: b[0],
    ),
    st.one_of(st.floats(-0.2, 1.2), st.sampled_from([0.0, 1.0])),
)
def test_histogram_quantile_matches_bucket_quantile(spec, q):
    labels = [(("le", le),) for le, _, _ in spec]
    v = make_vector([[count if present else None] for _, count, present in spec], labels)
    out = quantile(q, v)
    pairs = [(go_parse_float(le), count) for le, count, present in spec if present]
    if not pairs:
        assert not out.present.any()
        return
    assert same_float(out.values[0, 0], go_bucket_quantile(q, pairs))


def test_native_histogram_functions_see_no_native_histograms():
    v = vec([1.0])
    assert len(one("histogram_count", v)) == 0
    assert len(one("histogram_sum", v)) == 0
    assert len(one("histogram_fraction", scalar(0, 1), scalar(1, 1), v)) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1.0), ("+Inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf),
     ("NaN", math.nan), ("0x1p-2", 0.25), ("1_000", 1000.0), (".5", 0.5), ("1e3", 1000.0),
     ("-0", -0.0), ("1e-400", 0.0), ("", None), (" 1", None), ("1 ", None), ("abc", None),
     ("1__0", None), ("_1", None), ("0x10", None), ("1e400", None), ("-nan", None),
     ("١", None), ("1,5", None)],
)
def test_go_parse_float(text, expected):
    got = go_parse_float(text)
    assert (got is None and expected is None) or same_float(got, expected)


# --- shapes --------------------------------------------------------------------------------

_RANGE_ARG = {"rate", "increase", "delta", "irate", "idelta", "deriv", "resets", "changes",
              "avg_over_time", "sum_over_time", "count_over_time", "min_over_time",
              "max_over_time", "last_over_time", "present_over_time", "stddev_over_time",
              "stdvar_over_time", "absent_over_time"}


def _arguments(name: str, steps: int, empty: bool) -> list:
    samples = [] if empty else [[(0, math.nan), (1000, 1.0)], []]
    rv = make_range_vector(samples, list(range(0, 1000 * steps, 1000)), 1000)
    v = InstantVector.empty(steps) if empty else make_vector([[math.nan] * steps,
                                                               [None] * steps])
    s = scalar(0.5, steps)
    if name in _RANGE_ARG:
        return [rv]
    return {
        "quantile_over_time": [s, rv], "predict_linear": [rv, s], "holt_winters": [rv, s, s],
        "histogram_quantile": [s, v], "histogram_fraction": [s, s, v], "vector": [s],
        "clamp": [v, s, s], "clamp_min": [v, s], "clamp_max": [v, s], "round": [v, s],
        "label_replace": [v, String("d"), String("$1"), String("i"), String("(.*)")],
        "label_join": [v, String("d"), String(","), String("i")], "time": [], "pi": [],
    }.get(name, [v])


@pytest.mark.parametrize("empty", [True, False])
@pytest.mark.parametrize("name", sorted(PROMETHEUS_2_42_FUNCTIONS))
def test_every_function_returns_values_for_every_step(name, empty):
    steps = 3
    sel = ast.MatrixSelector(selector(("__name__", "=", "m")), 1000)
    out = fcall(name, _arguments(name, steps, empty), [0, 1000, 2000], arg_exprs=[sel])
    if isinstance(out, Scalar):
        assert out.values.shape == (steps,)
    else:
        assert isinstance(out, InstantVector)
        assert out.values.shape == out.present.shape == (len(out.labels), steps)
        assert out.present.dtype == bool
