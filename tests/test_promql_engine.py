"""The evaluator core on hand-built syntax trees (independent of the parser and of the
function library): selectors, operators, aggregations, subqueries, limits and result shapes.
Behaviour is pinned further by the scripts in tests/promql/ (test_promql_eval_scripts.py)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from tsdb.query.promql import ast
from tsdb.query.promql.engine import QueryEngine
from tsdb.query.promql.errors import QueryError, QueryTimeout, TooManySamples
from tsdb.query.promql.values import InstantVector, RangeVector, Scalar
from tsdb.storage.database import Database
from tsdb.storage.labels import Matcher
from tsdb.storage.options import DatabaseOptions, NamespaceOptions

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
S = 1000


def sel(name: str, offset: int = 0, at: int | None = None, **labels: str) -> ast.VectorSelector:
    matchers = [Matcher("__name__", "=", name)] + [Matcher(k, "=", v) for k, v in labels.items()]
    return ast.VectorSelector(name, matchers, offset_ms=offset, at_ms=at)


def num(v: float) -> ast.NumberLiteral:
    return ast.NumberLiteral(v)


def _rate_stub(call):
    """A crude stand-in for rate(): (last - first) / range, enough to see windows."""
    rv: RangeVector = call.args[0]
    n = rv.hi - rv.lo
    ok = n >= 2
    last = rv.v[np.maximum(rv.hi - 1, 0)]
    first = rv.v[np.minimum(rv.lo, max(len(rv.v) - 1, 0))]
    vals = np.where(ok, (last - first) / (rv.range_ms / 1000), np.nan)
    labels = [tuple(p for p in ls if p[0] != "__name__") for ls in rv.labels]
    return InstantVector(labels, vals, ok)


def _count_over_time_stub(call):
    rv: RangeVector = call.args[0]
    n = rv.hi - rv.lo
    labels = [tuple(p for p in ls if p[0] != "__name__") for ls in rv.labels]
    return InstantVector(labels, n.astype(float), n > 0)


def _abs_stub(call):
    vec: InstantVector = call.args[0]
    labels = [tuple(p for p in ls if p[0] != "__name__") for ls in vec.labels]
    return InstantVector(labels, np.abs(vec.values), vec.present)


def _time_stub(call):
    return Scalar(call.ctx.steps / 1000.0)


FUNCS = {"rate": _rate_stub, "count_over_time": _count_over_time_stub, "abs": _abs_stub,
         "time": _time_stub}


@pytest.fixture
def db(tmp_path):
    ns = NamespaceOptions(retention_ms=0)
    d = Database(tmp_path, DatabaseOptions(shards=4, fsync=False, namespaces=(ns,)))
    yield d
    d.close()


def write(db: Database, labels: dict[str, str], samples: list[tuple[int, float]]) -> None:
    sid = db.series_ids([tuple(sorted(labels.items()))])[0]
    t = np.array([p[0] for p in samples], np.int64)
    v = np.array([p[1] for p in samples], np.float64)
    db.write(np.full(len(t), sid), t, v)


@pytest.fixture
def engine(db):
    # gauge{i="1"}: 1..5 every 15 s, then a gap, 26 27 at 375 s / 390 s, stale at 405 s
    write(db, {"__name__": "gauge", "i": "1", "job": "a"},
          [(k * 15 * S, k + 1.0) for k in range(5)] +
          [(375 * S, 26.0), (390 * S, 27.0), (405 * S, STALE_NAN), (450 * S, 31.0)])
    write(db, {"__name__": "gauge", "i": "2", "job": "a"},
          [(k * 15 * S, 10.0 * (k + 1)) for k in range(41)])
    write(db, {"__name__": "counter", "i": "1", "job": "b"},
          [(k * 15 * S, 5.0 * k) for k in range(41)])
    return QueryEngine(db, functions=FUNCS)


def vector(result) -> dict:
    assert result.result_type == "vector"
    return {dict(ls).get("i", "") + dict(ls).get("__name__", ""): float(v[0])
            for ls, _, v in result.series}


def test_lookback_is_inclusive_and_stale_markers_hide(engine):
    assert vector(engine.instant_query_expr(sel("gauge"), 360 * S)) == \
        {"1gauge": 5.0, "2gauge": 250.0}
    assert vector(engine.instant_query_expr(sel("gauge"), 361 * S)) == {"2gauge": 250.0}
    assert vector(engine.instant_query_expr(sel("gauge", i="1"), 420 * S)) == {}
    r = engine.range_query_expr(sel("gauge", i="1"), 0, 600 * S, 30 * S)
    ((labels, t, v),) = r.series
    assert (t // S).tolist() == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 360,
                                 390, 450, 480, 510, 540, 570, 600]
    assert v.tolist()[:3] == [1.0, 3.0, 5.0] and v.tolist()[13:15] == [27.0, 31.0]


def test_range_selector_windows_are_closed(engine):
    r = engine.instant_query_expr(ast.MatrixSelector(sel("gauge", i="2"), 30 * S), 60 * S)
    assert r.result_type == "matrix"
    ((_, t, v),) = r.series
    assert (t // S).tolist() == [30, 45, 60] and v.tolist() == [30.0, 40.0, 50.0]
    r = engine.instant_query_expr(ast.MatrixSelector(sel("gauge", i="1"), 60 * S), 420 * S)
    ((_, t, v),) = r.series
    assert v.tolist() == [26.0, 27.0]   # the stale marker is left out


def test_offset_and_at(engine):
    assert vector(engine.instant_query_expr(sel("gauge", offset=30 * S, i="2"), 60 * S)) == \
        {"2gauge": 30.0}
    assert vector(engine.instant_query_expr(sel("gauge", offset=-30 * S, i="2"), 60 * S)) == \
        {"2gauge": 70.0}
    r = engine.range_query_expr(sel("gauge", at=120 * S, i="2"), 0, 300 * S, 60 * S)
    assert r.series[0][2].tolist() == [90.0] * 6
    node = sel("gauge", i="2")
    node.at_start_or_end = "end"
    r = engine.range_query_expr(node, 60 * S, 300 * S, 60 * S)
    assert r.series[0][2].tolist() == [210.0] * 5


def test_scalar_results(engine):
    r = engine.instant_query_expr(ast.BinaryExpr("/", num(1), num(0)), 5 * S)
    assert r.result_type == "scalar" and r.scalar == (5 * S, math.inf)
    r = engine.range_query_expr(ast.BinaryExpr("-", num(5), num(2)), 0, 2 * S, S)
    assert r.result_type == "matrix"
    assert [(ls, t.tolist(), v.tolist()) for ls, t, v in r.series] == \
        [((), [0, S, 2 * S], [3.0, 3.0, 3.0])]
    r = engine.instant_query_expr(ast.StringLiteral("hi"), 7)
    assert r.result_type == "string" and r.string == (7, "hi")
    with pytest.raises(QueryError) as e:
        engine.range_query_expr(ast.StringLiteral("hi"), 0, 10, 1)
    assert e.value.error_type == "bad_data" and "string" in str(e.value)
    with pytest.raises(QueryError) as e:
        engine.range_query_expr(ast.MatrixSelector(sel("gauge"), 60 * S), 0, 10, 1)
    assert 'invalid expression type "range vector"' in str(e.value)


def test_arithmetic_drops_name_and_filters_keep_it(engine):
    r = engine.instant_query_expr(ast.BinaryExpr("*", sel("gauge"), num(2)), 60 * S)
    assert {ls: v[0] for ls, _, v in r.series} == {
        (("i", "1"), ("job", "a")): 10.0, (("i", "2"), ("job", "a")): 100.0}
    r = engine.instant_query_expr(ast.BinaryExpr("<", num(20), sel("gauge")), 60 * S)
    assert vector(r) == {"2gauge": 50.0}
    r = engine.instant_query_expr(
        ast.BinaryExpr(">", sel("gauge"), num(20), return_bool=True), 60 * S)
    assert sorted(v[0] for _, _, v in r.series) == [0.0, 1.0]
    assert all("__name__" not in dict(ls) for ls, _, _ in r.series)


def test_vector_matching(engine):
    on_job = ast.VectorMatching("one-to-one", ["job"], on=True)
    # two gauge series share job="a": one-to-one matching of them is an error
    with pytest.raises(QueryError) as e:
        engine.instant_query_expr(ast.BinaryExpr("+", sel("counter"), sel("gauge"),
                                                 matching=ast.VectorMatching(
                                                     "one-to-one", [], on=True)), 60 * S)
    assert "duplicate series" in str(e.value) and e.value.error_type == "execution"
    with pytest.raises(QueryError) as e:  # the "one" side is not unique
        engine.instant_query_expr(ast.BinaryExpr("-", sel("gauge", i="2"), sel("gauge"),
                                                 matching=on_job), 60 * S)
    assert "duplicate series for the match group" in str(e.value)
    with pytest.raises(QueryError) as e:  # many-to-one without group_left
        engine.instant_query_expr(ast.BinaryExpr("-", sel("gauge"), sel("gauge", i="2"),
                                                 matching=on_job), 60 * S)
    assert "many-to-one matching must be explicit" in str(e.value)
    r = engine.instant_query_expr(ast.BinaryExpr("-", sel("counter"), sel("gauge", i="2"),
                                                 matching=ast.VectorMatching(
                                                     "one-to-one", ["i", "job"])), 60 * S)
    assert [(ls, v[0]) for ls, _, v in r.series] == [((), -30.0)]
    left = ast.VectorMatching("many-to-one", ["job"], on=True)
    r = engine.instant_query_expr(
        ast.BinaryExpr("/", sel("gauge"), sel("gauge", i="2"), matching=left), 60 * S)
    assert {ls: v[0] for ls, _, v in r.series} == {
        (("i", "1"), ("job", "a")): 0.1, (("i", "2"), ("job", "a")): 1.0}


def test_set_operators(engine):
    many = ast.VectorMatching("many-to-many")
    r = engine.instant_query_expr(
        ast.BinaryExpr("or", sel("gauge", i="1"), sel("counter"), matching=many), 420 * S)
    assert vector(r) == {"1counter": 140.0}
    on_i = ast.VectorMatching("many-to-many", ["i"], on=True)
    r = engine.instant_query_expr(
        ast.BinaryExpr("and", sel("gauge"), sel("counter"), matching=on_i), 60 * S)
    assert vector(r) == {"1gauge": 5.0}
    r = engine.instant_query_expr(
        ast.BinaryExpr("unless", sel("gauge"), sel("counter"), matching=on_i), 60 * S)
    assert vector(r) == {"2gauge": 50.0}


def test_aggregations(engine):
    def agg(op, expr, grouping=(), without=False, param=None, t=60 * S):
        node = ast.AggregateExpr(op, expr, param, list(grouping), without)
        return {ls: float(v[0]) for ls, _, v in engine.instant_query_expr(node, t).series}

    g = sel("gauge")
    assert agg("sum", g) == {(): 55.0}
    assert agg("avg", g, ["job"]) == {(("job", "a"),): 27.5}
    assert agg("count", g, ["i"], without=True) == {(("job", "a"),): 2.0}
    assert agg("max", g) == {(): 50.0} and agg("min", g) == {(): 5.0}
    assert agg("stdvar", g) == {(): 506.25} and agg("stddev", g) == {(): 22.5}
    assert agg("group", g, ["job"]) == {(("job", "a"),): 1.0}
    assert agg("quantile", g, param=num(0.5)) == {(): 27.5}
    assert agg("quantile", g, param=num(2)) == {(): math.inf}
    top = agg("topk", g, param=num(1))
    assert list(top) == [(("__name__", "gauge"), ("i", "2"), ("job", "a"))]
    assert agg("bottomk", g, param=num(1)) == {
        (("__name__", "gauge"), ("i", "1"), ("job", "a")): 5.0}
    assert agg("count_values", g, param=ast.StringLiteral("v")) == {
        (("v", "5"),): 1.0, (("v", "50"),): 1.0}


def test_functions_and_duplicate_labelsets(engine):
    call = ast.Call("rate", [ast.MatrixSelector(sel("counter"), 60 * S)])
    r = engine.instant_query_expr(call, 300 * S)
    assert [(ls, v[0]) for ls, _, v in r.series] == [((("i", "1"), ("job", "b")), 20 / 60)]
    both = ast.VectorSelector("", [Matcher("__name__", "=~", "gauge|counter"),
                                   Matcher("i", "=", "1")])
    # abs() drops the name; gauge{i=1} and counter{i=1} differ in job, no clash
    r = engine.instant_query_expr(ast.Call("abs", [both]), 60 * S)
    assert len(r.series) == 2
    clash = ast.VectorSelector("", [Matcher("__name__", "=~", "gauge|counter")])
    r = engine.instant_query_expr(
        ast.AggregateExpr("sum", ast.Call("abs", [clash]), None, ["i"], False), 60 * S)
    assert len(r.series) == 2
    twins = ast.BinaryExpr("*", sel("gauge"), num(1))
    twins_again = ast.Call("abs", [ast.BinaryExpr(
        "or", twins, ast.BinaryExpr("+", sel("gauge"), num(0)),
        matching=ast.VectorMatching("many-to-many"))])
    assert len(engine.instant_query_expr(twins_again, 60 * S).series) == 2


def test_subquery(engine):
    inner = ast.BinaryExpr("*", sel("gauge", i="2"), num(1))
    sq = ast.SubqueryExpr(inner, 60 * S, 20 * S)
    r = engine.instant_query_expr(sq, 130 * S)
    ((_, t, v),) = r.series
    # grid points: multiples of 20 s within [70 s, 130 s]
    assert (t // S).tolist() == [80, 100, 120] and v.tolist() == [60.0, 70.0, 90.0]
    counted = ast.Call("count_over_time", [ast.SubqueryExpr(sel("gauge", i="2"), 60 * S)])
    r = engine.range_query_expr(counted, 60 * S, 180 * S, 60 * S)
    assert r.series[0][2].tolist() == [2.0, 2.0, 2.0]  # default 1m step, windows closed


def test_limits(db, engine):
    tiny = QueryEngine(db, max_samples=10, functions=FUNCS)
    with pytest.raises(TooManySamples) as e:
        tiny.range_query_expr(sel("gauge"), 0, 600 * S, 15 * S)
    assert "too many samples" in str(e.value) and e.value.error_type == "execution"
    late = QueryEngine(db, timeout_s=-1, functions=FUNCS)
    with pytest.raises(QueryTimeout) as e:
        late.instant_query_expr(sel("gauge"), 0)
    assert str(e.value) == "query timed out in expression evaluation"
    assert e.value.error_type == "timeout"


def test_unary_minus_and_time(engine):
    r = engine.instant_query_expr(ast.UnaryExpr("-", sel("gauge", i="2")), 60 * S)
    assert [(ls, v[0]) for ls, _, v in r.series] == [((("i", "2"), ("job", "a")), -50.0)]
    r = engine.range_query_expr(ast.Call("time", []), 0, 2 * S, S)
    assert r.series[0][2].tolist() == [0.0, 1.0, 2.0]


def test_empty_and_missing(engine):
    r = engine.instant_query_expr(sel("nope"), 60 * S)
    assert r.result_type == "vector" and r.series == []
    r = engine.range_query_expr(ast.AggregateExpr("sum", sel("nope")), 0, 60 * S, 15 * S)
    assert r.result_type == "matrix" and r.series == []
    assert isinstance(InstantVector.empty(3), InstantVector)


def test_subquery_grid_is_aligned_to_absolute_multiples():
    from tsdb.query.promql.subquery import subquery_grid

    refs = np.array([130_000, 190_000, 250_000])
    assert subquery_grid(refs, 60_000, 20_000).tolist() == list(range(80_000, 250_001, 20_000))
    # windows that do not touch leave the grid points between them out
    refs = np.array([100_000, 400_000])
    assert subquery_grid(refs, 30_000, 10_000).tolist() == [
        70_000, 80_000, 90_000, 100_000, 370_000, 380_000, 390_000, 400_000]
    assert subquery_grid(np.array([-50_000]), 60_000, 40_000).tolist() == [-80_000]


def test_long_operator_chains_do_not_recurse(engine):
    expr: ast.Expr = num(0)
    for i in range(1, 3000):
        expr = ast.BinaryExpr("+", expr, num(i))
    assert engine.instant_query_expr(expr, 0).scalar == (0, float(sum(range(3000))))


def test_sample_limit_bounds_the_step_matrix(db, engine):
    tiny = QueryEngine(db, max_samples=100, functions=FUNCS)
    # 2 series x 61 steps: more cells than the limit, even before counting points
    with pytest.raises(TooManySamples):
        tiny.range_query_expr(sel("gauge"), 0, 60 * S, S)
    assert len(tiny.range_query_expr(sel("gauge"), 0, 40 * S, S).series) == 2
