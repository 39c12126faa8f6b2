"""The render function library against answers recorded from graphite-web 1.1.8.

``tests/data/graphite_functions_golden.json.gz`` holds, for every target of
``../shared/graphite-compat/public.txt`` and ``tests/data/graphite_functions_targets.txt``
(recorded by ``tests/graphite_functions_golden_gen.py``), graphite-web's status and series
and the raw series each evaluation fetches. Here the targets are evaluated over the
recorded fetches and compared the way the compat harness compares: names and tags as
multisets (in order for ``ordered`` entries), timestamps exactly, values within 1e-9
relative, nulls as nulls; an error answer must be an error here.
"""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pytest

from tests.graphite_eval import evaluate, to_json
from tsdb.query.graphite.functions import GraphiteError
from tsdb.query.graphite.series import SeriesList, concat

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "graphite_functions_golden.json.gz")

with gzip.open(FIXTURE, "rt") as _f:
    GOLDEN = json.load(_f)


def _fetch(expr: str, start: int, end: int) -> list[SeriesList]:
    key = "%s|%d|%d" % (expr, start, end)
    if key not in GOLDEN["fetches"]:
        raise AssertionError("fetch not recorded: %s" % key)
    if isinstance(GOLDEN["fetches"][key], int):      # graphite-web answered an error
        raise GraphiteError("fetch of %s failed" % expr, GOLDEN["fetches"][key])
    out = []
    for name, tags, s_start, step, values in GOLDEN["fetches"][key]:
        row = np.array([[math.nan if v is None else v for v in values]], dtype=np.float64)
        out.append(SeriesList([name], [dict(tags)], s_start, step or 10, row,
                              path_expressions=[expr]))
    return concat(out)


def _expected(case: dict) -> list[dict]:
    return [{"target": name, "tags": tags,
             "datapoints": [[v, start + k * step] for k, v in enumerate(values)]}
            for name, tags, start, step, values in case["series"]]


def _key(s: dict) -> tuple[str, str]:
    return s["target"], json.dumps(s["tags"], sort_keys=True)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(1e-9 * max(abs(a), abs(b)), 1e-12)


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[c["target"] for c in GOLDEN["cases"]])
def test_matches_graphite_web(case: dict) -> None:
    try:
        got = to_json(evaluate(case["target"], case["from"], case["until"], _fetch,
                               {"xFilesFactor": case.get("xFilesFactor")}))
    except GraphiteError as e:
        assert case["status"] != 200, "graphite-web answered 200, we %d: %s" % (
            e.status, e.message)
        return
    assert case["status"] == 200, "graphite-web answered %d, we 200" % case["status"]
    want = _expected(case)
    if case["ordered"]:
        assert [_key(s) for s in got] == [_key(s) for s in want]
    got_sorted, want_sorted = sorted(got, key=_key), sorted(want, key=_key)
    assert [_key(s) for s in got_sorted] == [_key(s) for s in want_sorted]
    for g, w in zip(got_sorted, want_sorted, strict=True):
        # graphite-web writes as many points as its series' timestamps allow
        assert len(g["datapoints"]) == len(w["datapoints"]), g["target"]
        for (gv, gt), (wv, wt) in zip(g["datapoints"], w["datapoints"], strict=True):
            assert gt == wt, g["target"]
            assert _close(gv, wv), "%s at %d: got %r, graphite-web %r" % (g["target"], gt,
                                                                         gv, wv)
