"""Render function library: one or a few hand-computed cases per function (graphite-web
1.1 semantics: names, tags, nulls, grids), the registry and argument handling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions import FUNCTIONS, GraphiteError, GraphiteFunction
from tsdb.query.graphite.functions_aggregation import consolidate, normalize, py_round
from tsdb.query.graphite.functions_base import interval_arg
from tsdb.query.graphite.functions_naming import first_path_expression
from tsdb.query.graphite.series import SeriesList

N = math.nan


def S(names: list[str] | str, rows: list[list[float]], start: int = 100, step: int = 10,
      tags: list[dict] | None = None, path: str | None = None) -> SeriesList:
    """A series list; tags default to ``{"name": name}``, path expression to ``path``."""
    names = [names] if isinstance(names, str) else names
    return SeriesList(names, tags or [{"name": n} for n in names], start, step,
                      np.array(rows, dtype=np.float64).reshape(len(names), -1),
                      path_expressions=[path] * len(names) if path else [])


def ctx(start: int = 90, end: int = 140, store: dict | None = None,
        notes: dict | None = None) -> RenderContext:
    """A context whose ``evaluate`` answers from ``store[(expr, start, end)]`` and logs the
    calls in ``notes["calls"]``."""
    calls: list = []

    def evaluate(expr: str, s: int, e: int) -> list[SeriesList]:
        calls.append((expr, s, e))
        return (store or {})[(expr, s, e)]

    c = RenderContext(start, end, end, evaluate, dict(notes or {}))
    c.notes["calls"] = calls
    return c


def call(name: str, *args: object, context: RenderContext | None = None,
         **kwargs: object) -> list[SeriesList]:
    return FUNCTIONS[name].impl(context or ctx(), *args, **kwargs)


def one(result: list[SeriesList]) -> SeriesList:
    assert len(result) == 1
    return result[0]


def rows(result: list[SeriesList]) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in r] for sl in result for r in sl.values]


def names(result: list[SeriesList]) -> list[str]:
    return [n for sl in result for n in sl.names]


# --- registry and arguments ---------------------------------------------------------------

REQUIRED = """sumSeries averageSeries minSeries maxSeries diffSeries divideSeries multiplySeries
asPercent scale offset absolute alias aliasByNode aliasByTags aliasSub aliasByMetric perSecond
derivative nonNegativeDerivative integral summarize hitcount movingAverage movingMedian
keepLastValue transformNull removeBelowValue removeAboveValue highestCurrent highestAverage
highestMax lowestCurrent sortByMaxima sortByName sortByTotal limit timeShift groupByNode
groupByNodes groupByTags consolidateBy countSeries constantLine exclude grep aggregate sum avg
max min seriesByTag""".split()


def test_registry_has_every_required_function() -> None:
    missing = [n for n in REQUIRED if n not in FUNCTIONS]
    assert not missing
    assert all(isinstance(f, GraphiteFunction) and f.name == n for n, f in FUNCTIONS.items())
    assert FUNCTIONS["sum"].impl is FUNCTIONS["sumSeries"].impl


def test_function_index_entries_look_like_graphite_web() -> None:
    f = FUNCTIONS["sumSeries"]
    assert f.group == "Combine"
    assert f.params == [{"name": "seriesLists", "type": "seriesList", "required": True,
                         "multiple": True}]
    assert f.signature() == "sumSeries(*seriesLists)"
    summ = FUNCTIONS["summarize"].params
    assert summ[1] == {"name": "intervalString", "type": "interval", "required": True,
                       "suggestions": ["10min", "1h", "1d"]}
    assert summ[2]["default"] == "sum" and "median" in summ[2]["options"]
    assert FUNCTIONS["consolidateBy"].group == "Special"
    assert FUNCTIONS["removeBelowValue"].group == "Filter Data"
    assert FUNCTIONS["sortByMaxima"].group == "Sorting"
    assert all(f.description for f in FUNCTIONS.values())


def test_arguments_are_converted_like_graphite_web() -> None:
    out = one(call("scale", [S("a.b", [[1, N, 3]])], 2))
    assert out.names == ["scale(a.b,2)"]
    assert out.tags == [{"name": "a.b", "scale": "2.0"}]       # the float, as a string
    assert rows([out]) == [[2, None, 6]]


def test_missing_required_argument_is_500_and_bad_values_400() -> None:
    with pytest.raises(GraphiteError) as e:
        call("scale", [S("a", [[1]])])
    assert e.value.status == 500
    with pytest.raises(GraphiteError) as e:
        call("aggregate", [S("a", [[1]])], "nope")
    assert e.value.status == 400
    with pytest.raises(GraphiteError) as e:
        call("summarize", [S("a", [[1]])], "5m")                # bare m is no unit
    assert e.value.status == 400


# --- combine ---------------------------------------------------------------------------


def test_sum_series_names_tags_and_nulls() -> None:
    a = S(["s.a.cpu", "s.b.cpu"], [[1, N, N], [2, 5, N]], path="s.*.cpu",
          tags=[{"name": "s.a.cpu", "dc": "eu"}, {"name": "s.b.cpu", "dc": "eu"}])
    out = one(call("sumSeries", [a]))
    assert out.names == ["sumSeries(s.*.cpu)"]
    assert out.tags == [{"dc": "eu", "name": "sumSeries(s.*.cpu)", "aggregatedBy": "sum"}]
    assert rows([out]) == [[3, 5, None]]                          # all null -> null
    assert out.path_expressions == ["sumSeries(s.*.cpu)"]


def test_aggregate_of_several_arguments_lists_distinct_paths() -> None:
    a = S("x.a", [[1, 2]], path="x.a")
    b = S(["y.a", "y.b"], [[1, 1], [1, N]], path="y.*")
    out = one(call("maxSeries", [a], [b], [S("x.a", [[0, 9]], path="x.a")]))
    assert out.names == ["maxSeries(x.a,y.*)"]
    assert rows([out]) == [[1, 9]]
    same_name = one(call("averageSeries", [S(["m", "m"], [[1, 2], [3, N]],
                                             tags=[{"name": "m", "k": "1"},
                                                   {"name": "m", "k": "2"}])]))
    assert same_name.tags == [{"name": "m", "aggregatedBy": "average"}]
    assert rows([same_name]) == [[2, 2]]


def test_diff_multiply_count_and_aggregate_functions() -> None:
    lst = [S(["a", "b", "c"], [[10, N, 1], [1, 2, N], [2, 3, N]])]
    assert rows(call("diffSeries", lst)) == [[7, -1, 1]]
    assert rows(call("multiplySeries", lst)) == [[20, None, None]]
    single = [S("a", [[1, 2]])]
    assert call("multiplySeries", single)[0] is single[0]        # legacy: unchanged
    count = one(call("countSeries", lst))
    assert count.names == ["countSeries(a,b,c)"] and rows([count]) == [[3, 3, 3]]
    assert rows(call("aggregate", lst, "median")) == [[2, 2.5, 1]]
    assert rows(call("aggregate", lst, "avg_zero")) == [[13 / 3, 5 / 3, 1 / 3]]
    assert rows(call("aggregate", lst, "sum", 0.5)) == [[13, 5, None]]   # xFilesFactor
    assert names(call("aggregate", lst, "sumSeries")) == ["sumSeries(a,b,c)"]
    assert call("sumSeries", []) == []


def test_aggregates_normalise_to_the_lcm_step() -> None:
    fine = S("fine", [[1, 2, 3, 4, 5, 6]], start=100, step=10)   # 6 points of 10 s
    coarse = S("coarse", [[10, 20, 30]], start=100, step=15)     # lcm 30: 2 and 1 per point
    norm = normalize([fine, coarse])
    assert (norm.start, norm.step) == (100, 30)
    # fine: averages of 3 points (2, 5); coarse: averages of 2 (15, 30 - partial group)
    np.testing.assert_array_equal(norm.values, [[2, 5], [15, 30]])
    out = one(call("sumSeries", [fine, coarse]))
    assert (out.start, out.step) == (100, 30) and rows([out]) == [[17, 35]]


def test_consolidation_functions() -> None:
    values = np.array([[1, N, 3, N, N, 4, 7]])
    np.testing.assert_array_equal(consolidate(values, 3, ["avg_zero"]), [[4 / 3, 4 / 3, 7]])
    np.testing.assert_array_equal(consolidate(values, 3, ["last"]), [[3, 4, 7]])
    # xFilesFactor counts against the full group, also for the partial last one
    np.testing.assert_array_equal(consolidate(values, 3, ["sum"], 0.5), [[4, N, N]])


def test_divide_series() -> None:
    dividend = [S(["a", "b"], [[1, 2, N], [4, 4, 4]])]
    divisor = [S("d", [[2, 0, 2]])]
    out = one(call("divideSeries", dividend, divisor))
    assert out.names == ["divideSeries(a,d)", "divideSeries(b,d)"]
    assert out.tags == [{"name": "divideSeries(a,d)"}, {"name": "divideSeries(b,d)"}]
    assert rows([out]) == [[0.5, None, None], [2, None, 2]]
    missing = one(call("divideSeries", dividend, []))
    assert missing.names == ["divideSeries(a,MISSING)", "divideSeries(b,MISSING)"]
    assert rows([missing]) == [[None] * 3] * 2
    with pytest.raises(GraphiteError) as e:
        call("divideSeries", dividend, dividend)
    assert e.value.status == 400


def test_as_percent_forms() -> None:
    lst = [S(["c.user", "c.sys"], [[1, 3, N], [3, 0, N]], path="c.*")]
    total = one(call("asPercent", lst))
    assert total.names == ["asPercent(c.user,sumSeries(c.*))",
                           "asPercent(c.sys,sumSeries(c.*))"]
    assert total.tags[0] == {"name": "asPercent(c.user,sumSeries(c.*))"}
    assert rows([total]) == [[25, 100, None], [75, 0, None]]
    number = one(call("asPercent", lst, 50))
    assert number.names[0] == "asPercent(c.user,50)" and rows([number])[0] == [2, 6, None]
    by_series = one(call("asPercent", lst, [S("t", [[0, 6, 6]])]))
    assert by_series.names[1] == "asPercent(c.sys,t)"
    assert rows([by_series]) == [[None, 50, None], [None, 0, None]]
    # as many totals as series: matched by sorted name, output sorted by name
    pairs = call("asPercent", lst, [S(["t.user", "t.sys"], [[2, 2, 2], [4, 4, 4]])])
    assert names(pairs) == ["asPercent(c.sys,t.sys)", "asPercent(c.user,t.user)"]
    assert rows(pairs) == [[75, 0, None], [50, 150, None]]
    with pytest.raises(GraphiteError):
        call("asPercent", lst, [S(["x", "y", "z"], [[1], [1], [1]])])


def test_as_percent_with_nodes() -> None:
    used = [S(["S1.used", "S2.used"], [[1, 2], [3, 4]])]
    totals = [S(["S1.total", "S3.total"], [[4, 4], [8, 8]])]
    out = call("asPercent", used, totals, 0)
    assert names(out) == ["asPercent(S1.used,S1.total)", "asPercent(S2.used,MISSING)",
                          "asPercent(MISSING,S3.total)"]
    assert rows(out) == [[25, 50], [None, None], [None, None]]
    grouped = call("asPercent", [S(["h1.a", "h1.b", "h2.a"], [[1, 1], [3, N], [5, 5]])],
                   None, 0)
    assert names(grouped) == ["asPercent(h1.a,sumSeries(h1.a,h1.b))",
                              "asPercent(h1.b,sumSeries(h1.a,h1.b))", "asPercent(h2.a,h2.a)"]
    assert rows(grouped) == [[25, 100], [75, None], [100, 100]]


def test_group_by_node_and_nodes() -> None:
    lst = [S(["s.b.cpu.user", "s.a.cpu.user", "s.b.cpu.sys"], [[1, 2], [3, N], [5, 6]],
             path="s.*.cpu.*")]
    out = call("groupByNode", lst, 1)
    assert names(out) == ["b", "a"]                                  # first appearance
    assert rows(out) == [[3, 4], [3, None]]
    assert out[0].tags == [{"name": "averageSeries(s.*.cpu.*)", "aggregatedBy": "average"},
                           {"name": "s.a.cpu.user", "aggregatedBy": "average"}]  # one series
    summed = call("groupByNodes", lst, "sum", 1, 3)
    assert names(summed) == ["b.user", "a.user", "b.sys"]
    assert summed[0].tags[0]["aggregatedBy"] == "sum"
    assert rows(call("groupByNode", lst, 3, "max")) == [[3, 2], [5, 6]]


def test_group_by_tags() -> None:
    lst = [S(["h;dc=eu;host=a", "h;dc=eu;host=b", "h;dc=us;host=c"], [[1], [2], [4]],
             tags=[{"name": "h", "dc": "eu", "host": "a"}, {"name": "h", "dc": "eu", "host": "b"},
                   {"name": "h", "dc": "us", "host": "c"}])]
    out = call("groupByTags", lst, "sum", "dc")
    assert names(out) == ["h;dc=eu", "h;dc=us"]
    assert out[0].tags == [{"dc": "eu", "name": "h"}, {"dc": "us", "name": "h"}]
    assert rows(out) == [[3], [4]]
    with pytest.raises(GraphiteError):
        call("groupByTags", lst, "sum")


# --- transform -------------------------------------------------------------------------


def test_scale_offset_absolute_names() -> None:
    lst = [S("a", [[-1.5, N]])]
    assert names(call("scale", lst, 0.01)) == ["scale(a,0.01)"]
    off = one(call("offset", lst, -100))
    assert off.names == ["offset(a,-100)"] and off.tags[0]["offset"] == "-100.0"
    assert rows([off]) == [[-101.5, None]]
    ab = one(call("absolute", lst))
    assert ab.names == ["absolute(a)"] and ab.tags[0]["absolute"] == "1"
    assert rows([ab]) == [[1.5, None]]


def test_derivatives() -> None:
    lst = [S("c", [[1, 4, N, 6, 2, 5]])]
    assert rows(call("derivative", lst)) == [[None, 3, None, None, -4, 3]]
    nnd = one(call("nonNegativeDerivative", lst))
    assert nnd.names == ["nonNegativeDerivative(c)"]
    assert rows([nnd]) == [[None, 3, None, None, None, 3]]
    # wrap-around at maxValue 9: 9 + 1 + 2 - 6 = 6
    assert rows(call("nonNegativeDerivative", lst, 9)) == [[None, 3, None, None, 6, 3]]
    assert rows(call("nonNegativeDerivative", lst, None, 1)) == [[None, 3, None, None, 1, 3]]
    # values outside [minValue, maxValue] are null and reset the previous value
    assert rows(call("nonNegativeDerivative", lst, 5)) == [[None, 3, None, None, None, 3]]
    per = one(call("perSecond", [S("c", [[0, 1, 3]], step=3)]))
    assert per.names == ["perSecond(c)"] and rows([per]) == [[None, 0.333333, 0.666667]]


def test_integral_keep_last_and_transform_null() -> None:
    lst = [S("a", [[1, N, 2, N, N, N, 3, N]])]
    assert rows(call("integral", lst)) == [[1, None, 3, None, None, None, 6, None]]
    assert rows(call("keepLastValue", lst)) == [[1, 1, 2, 2, 2, 2, 3, 3]]
    klv = one(call("keepLastValue", lst, 2))
    assert klv.names == ["keepLastValue(a)"]
    assert rows([klv]) == [[1, 1, 2, None, None, None, 3, 3]]
    tn = one(call("transformNull", lst, -1))
    assert tn.names == ["transformNull(a,-1)"] and tn.tags[0]["transformNull"] == "-1.0"
    assert rows([tn]) == [[1, -1, 2, -1, -1, -1, 3, -1]]
    assert one(call("transformNull", lst)).tags[0]["transformNull"] == "0"
    ref = [S("r", [[N, 1, N, 1, N, N, N, N]])]
    tr = one(call("transformNull", lst, 0, ref))
    assert tr.names == ["transformNull(a,0,referenceSeries)"]
    assert rows([tr]) == [[1, 0, 2, 0, None, None, 3, None]]


def test_summarize_alignment_and_names() -> None:
    # points at 100..170 every 10 s; 30 s buckets aligned to 90: [90,120) [120,150) [150,180)
    lst = [S("a", [[1, 2, N, 4, 5, 6, N, 8]], start=100)]
    out = one(call("summarize", lst, "30s"))
    assert out.names == ['summarize(a, "30s", "sum")']
    assert out.tags == [{"name": "a", "summarize": "30s", "summarizeFunction": "sum"}]
    # the end (180) falls on a boundary: graphite still adds the bucket [180, 210)
    assert (out.start, out.step) == (90, 30) and rows([out]) == [[3, 9, 14, None]]
    assert rows(call("summarize", lst, "30s", "avg")) == [[1.5, 4.5, 7, None]]
    frm = one(call("summarize", lst, "30s", "last", True))
    assert frm.names == ['summarize(a, "30s", "last", true)']
    assert (frm.start, rows([frm])) == (100, [[2, 6, 8]])


def test_hitcount() -> None:
    # rates per second at 100, 110, 120 (10 s steps); 25 s buckets ending at 130
    lst = [S("r", [[1, 2, 4]], start=100)]
    out = one(call("hitcount", lst, "25s"))
    assert out.names == ['hitcount(r, "25s")'] and (out.start, out.step) == (80, 25)
    # [80,105): 1×5  [105,130): 1×5 + 2×10 + 4×10
    assert rows([out]) == [[5, 65]]


def test_time_shift_reevaluates_the_argument() -> None:
    shifted = S("a", [[7, 8, 9]], start=3700)
    c = ctx(90, 120, {("a", 90 - 3600, 120 - 3600): [shifted]}, notes={"args": ["a"]})
    out = one(call("timeShift", [S("a", [[1, 2, 3]], start=100)], "1h", context=c))
    assert out.names == ['timeShift(a, "-1h")'] and out.tags[0]["timeShift"] == "-1h"
    assert (out.start, rows([out])) == (100, [[7, 8, 9]])
    c = ctx(90, 120, {("a", 90 + 900, 120 + 900): [shifted]})    # path expressions
    assert names(call("timeShift", [S("a", [[1]], path="a")], "+15min", context=c)) == [
        'timeShift(a, "+15min")']


def test_moving_average_fetches_history() -> None:
    history = S("a", [[1, 2, 3, 4, N, 6]], start=70)                # 70..120
    c = ctx(90, 120, {("a", 60, 120): [history]}, notes={"args": ["a"]})
    out = one(call("movingAverage", [S("a", [[0, 0, 0]], start=100)], "30s", context=c))
    assert out.names == ['movingAverage(a,"30s")'] and out.tags[0]["movingAverage"] == "30s"
    # point t averages the 3 points before t
    assert (out.start, rows([out])) == (100, [[2, 3, 3.5]])
    c = ctx(90, 120, {("a", 70, 120): [history]}, notes={"args": ["a"]})
    med = one(call("movingMedian", [S("a", [[0]], start=100)], 2, context=c))
    assert med.names == ["movingMedian(a,2)"] and med.start == 90
    assert rows([med]) == [[1.5, 2.5, 3.5, 4]]


def test_consolidate_by() -> None:
    out = one(call("consolidateBy", [S("a", [[1]])], "max"))
    assert out.names == ['consolidateBy(a,"max")'] and out.consolidate == ["max"]
    assert out.tags[0]["consolidateBy"] == "max"
    with pytest.raises(GraphiteError):
        call("consolidateBy", [S("a", [[1]])], "median")


# --- filters and sorting -----------------------------------------------------------------

RANKED = [S(["a", "b", "c", "d"], [[1, 9, 2], [5, 5, N], [N, N, N], [1, 9, 2]])]


def test_highest_lowest_and_ties() -> None:
    assert names(call("highestMax", RANKED, 2)) == ["a", "d"]          # ties keep order
    assert names(call("highestAverage", RANKED, 3)) == ["b", "a", "d"]
    assert names(call("highestCurrent", RANKED, 9)) == ["b", "a", "d", "c"]
    assert names(call("lowestCurrent", RANKED, 2)) == ["c", "a"]        # no value: -inf
    assert names(call("sortByMaxima", RANKED)) == ["a", "d", "b", "c"]
    assert names(call("sortByTotal", RANKED)) == ["a", "d", "b", "c"]
    assert names(call("limit", RANKED, 2)) == ["a", "b"]
    assert call("limit", RANKED, 0) == []


def test_sort_by_name_exclude_grep() -> None:
    lst = [S(["s.web10", "s.web9", "s.db1"], [[1], [2], [3]])]
    assert names(call("sortByName", lst)) == ["s.db1", "s.web10", "s.web9"]
    assert names(call("sortByName", lst, True)) == ["s.db1", "s.web9", "s.web10"]
    assert names(call("exclude", lst, "web")) == ["s.db1"]
    assert names(call("grep", lst, r"web\d$")) == ["s.web9"]


def test_remove_values() -> None:
    lst = [S("a", [[1, N, 30, 40]])]
    below = one(call("removeBelowValue", lst, 30))
    assert below.names == ["removeBelowValue(a, 30)"] and rows([below]) == [[None, None, 30, 40]]
    above = one(call("removeAboveValue", lst, 30))
    assert above.names == ["removeAboveValue(a, 30)"] and rows([above]) == [[1, None, 30, None]]


# --- aliases ---------------------------------------------------------------------------


def test_alias_family() -> None:
    lst = [S(["servers.web01.cpu.user"], [[1]], path="servers.*.cpu.user")]
    assert names(call("alias", lst, "total")) == ["total"]
    assert call("alias", lst, "total")[0].path_expressions == ["servers.*.cpu.user"]
    assert names(call("aliasSub", lst, r"(^.*$)", r"\1 A")) == ["servers.web01.cpu.user A"]
    assert names(call("aliasSub", lst, r"web(\d+)", r"host-\1")) == ["servers.host-01.cpu.user"]
    assert names(call("aliasByNode", lst, 1, -1)) == ["web01.user"]
    assert names(call("aliasByMetric", lst)) == ["user"]
    wrapped = [S(['summarize(servers.web01.cpu.user, "5min", "sum")'], [[1]])]
    assert names(call("aliasByNode", wrapped, 1)) == ["web01"]
    assert names(call("aliasByMetric", [S(["scale(a.b.c,2)"], [[1]])])) == ["c"]
    tagged = [S(["disk.used;dc=eu;host=web01"], [[1]],
                tags=[{"name": "disk.used", "dc": "eu", "host": "web01"}])]
    assert names(call("aliasByTags", tagged, "host", "dc")) == ["web01.eu"]
    assert names(call("aliasByTags", tagged, 0)) == ["disk"]
    assert names(call("aliasByNode", tagged, "nope")) == [""]
    with pytest.raises(GraphiteError):
        call("aliasSub", lst, "(", "x")


def test_first_path_expression() -> None:
    assert first_path_expression("sumSeries(a.{b,c}.d,e)") == "a.{b,c}.d"
    assert first_path_expression('summarize(scale(x.y, 2), "5min")') == "x.y"
    assert first_path_expression("sumSeries(seriesByTag('name=a'))") is None


# --- special ---------------------------------------------------------------------------


def test_constant_line() -> None:
    out = one(call("constantLine", 100, context=ctx(1000, 4600)))
    assert out.names == ["100.0"] and out.tags == [{"name": "100.0"}]
    assert (out.start, out.step, rows([out])) == (1000, 1800, [[100, 100, 100]])
    assert out.path_expressions == ["constantLine(100.0)"]


def test_intervals_and_rounding() -> None:
    assert interval_arg("5min") == 300 and interval_arg("-1h30min") == -5400
    assert interval_arg("1mon") == 30 * 86400 and interval_arg("+2w") == 1209600
    with pytest.raises(GraphiteError):
        interval_arg("5m")
    values = np.array([2.675, 0.5, 1.5, -0.0000005, 1e300])
    assert list(py_round(values, 2)) == [round(float(v), 2) for v in values]
