"""maxDataPoints consolidation: the matrix version against a line-by-line port of
graphite-web 1.1.8's ``renderViewJson`` + ``TimeSeries`` consolidating generator, on random
series (gaps, steps, starts, consolidation functions, xFilesFactor)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.query.graphite.consolidate import ConsolidationError, consolidate
from tsdb.query.graphite.series import SeriesList

_CF = {
    "sum": sum,
    "average": lambda usable: sum(usable) / len(usable),
    "avg": lambda usable: sum(usable) / len(usable),
    "avg_zero": lambda usable: sum(usable) / len(usable),
    "max": max,
    "min": min,
    "first": lambda usable: usable[0],
    "last": lambda usable: usable[-1],
}


def graphite_points(series: list[dict], max_data_points: int | None, xff: float):
    """[(name, [(value, ts), ...])] exactly as graphite-web computes them."""
    start_time = min(s["start"] for s in series)
    end_time = max(s["end"] for s in series)
    time_range = end_time - start_time
    out = []
    for s in series:
        values, start, step, vpp = list(s["values"]), s["start"], s["step"], 1
        if max_data_points is not None:
            if max_data_points == 1:
                vpp = len(values)
            else:
                n = time_range / step
                if max_data_points < n:
                    vpp = math.ceil(float(n) / float(max_data_points))
                    spp = int(vpp * step)
                    nudge = spp + (start % step) - (start % spp)
                    start = start + nudge
                    for _ in range(1, int(nudge / step)):
                        del values[0]  # IndexError past the end, as graphite-web
        if vpp > 1:
            cf, buf, cnt, non_null, cons = _CF[s["cf"]], [], 0, 0, []
            for x in values:
                cnt += 1
                if x is not None:
                    buf.append(x)
                    non_null += 1
                elif s["cf"] == "avg_zero":
                    buf.append(0)
                if cnt == vpp:
                    cons.append(cf(buf) if non_null and non_null / vpp >= xff else None)
                    buf, cnt, non_null = [], 0, 0
            if cnt > 0:
                cons.append(cf(buf) if non_null and non_null / vpp >= xff else None)
            values = cons
        stamps = range(int(start), int(s["end"]) + 1, int(step * vpp))
        out.append((s["name"], list(zip(values, stamps))))  # noqa: B905 (graphite zips short)
    return out


def ours(series: list[dict], max_data_points: int | None, xff: float):
    lists = []
    for s in series:
        values = np.array([[np.nan if v is None else v for v in s["values"]]], float)
        lists.append(SeriesList([s["name"]], [{"name": s["name"]}], s["start"], s["step"],
                                values.reshape(1, -1), [s["cf"]]))
    out = []
    for r in consolidate(lists, max_data_points, xff):
        for name, row in zip(r.names, r.values, strict=True):
            vals = [None if math.isnan(v) else float(v) for v in row]
            out.append((name, list(zip(vals, r.timestamps.tolist(), strict=True))))
    return out


def _same(a, b):
    assert [n for n, _ in a] == [n for n, _ in b]
    for (_, pa), (_, pb) in zip(a, b, strict=True):
        assert [t for _, t in pa] == [t for _, t in pb]
        for (va, _), (vb, _) in zip(pa, pb, strict=True):
            assert (va is None) == (vb is None)
            if va is not None:
                assert va == pytest.approx(vb, rel=1e-12, abs=1e-12)


_value = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.just(float("inf")))


@st.composite
def _series(draw, i: int) -> dict:
    step = draw(st.sampled_from([1, 10, 60, 7]))
    start = draw(st.integers(1_700_000_000, 1_700_003_000))
    values = draw(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
                           min_size=1, max_size=150))
    cf = draw(st.sampled_from(sorted(_CF)))
    return {"name": f"s{i}", "start": start, "step": step, "values": values,
            "end": start + len(values) * step, "cf": cf}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3).flatmap(lambda n: st.tuples(*[_series(i) for i in range(n)])),
       st.one_of(st.none(), st.integers(1, 200)),
       st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_matches_graphite_web(series, max_data_points, xff):
    series = list(series)
    try:
        expected = graphite_points(series, max_data_points, xff)
    except IndexError:
        with pytest.raises(ConsolidationError):
            ours(series, max_data_points, xff)
        return
    _same(ours(series, max_data_points, xff), expected)


def test_worked_example():
    # 60 points of 10 s from T=1000 (so T % 60 = 40), maxDataPoints 10: 6 values per point,
    # start nudged by 60 + 0 - 40 = 20 s, one value dropped, buckets labelled 1020, 1080...
    s = {"name": "x", "start": 1000, "step": 10, "values": list(range(60)), "end": 1600,
         "cf": "average"}
    got = ours([s], 10, 0.0)[0][1]
    assert got[0] == (3.5, 1020) and got[1] == (9.5, 1080)
    assert len(got) == 10 and got[-1] == (57.0, 1560)
    _same([("x", got)], graphite_points([s], 10, 0.0))


def test_unknown_function_is_an_error():
    sl = SeriesList(["x"], [{"name": "x"}], 0, 10, np.ones((1, 50)), ["median"])
    with pytest.raises(ConsolidationError):
        consolidate([sl], 5)
