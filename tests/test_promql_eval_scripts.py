"""Runs every ``tests/promql/*.test`` script against the engine (format: tests/promql/script.py;
the expectations were checked against Prometheus 2.42 with ``python3 -m
tests.promql.reference``)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.promql.script import STALE, Eval, Outcome, check, parse_script
from tsdb.query.promql.engine import QueryEngine
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.result import QueryResult
from tsdb.storage.database import Database
from tsdb.storage.options import DatabaseOptions, NamespaceOptions

pytest.importorskip("tsdb.query.promql.parser")

SCRIPTS = sorted((Path(__file__).parent / "promql").glob("*.test"))
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_ENGINES: dict[Path, QueryEngine] = {}


def _cases():
    for path in SCRIPTS:
        for ev in parse_script(path).evals:
            yield pytest.param(path, ev, id=f"{path.stem}:{ev.line_no}")


def load(path: Path, directory: Path) -> QueryEngine:
    script = parse_script(path)
    ns = NamespaceOptions(retention_ms=0, future_limit_ms=10**15)
    db = Database(directory, DatabaseOptions(shards=4, fsync=False, namespaces=(ns,)))
    if script.series:
        sids = db.series_ids([s.labels for s in script.series])
        sid_col, t_col, v_col = [], [], []
        for sid, s in zip(sids.tolist(), script.series, strict=True):
            for t, v in s.samples:
                sid_col.append(sid)
                t_col.append(t)
                v_col.append(STALE_NAN if v == STALE else v)
        db.write(np.array(sid_col), np.array(t_col), np.array(v_col))
    return QueryEngine(db)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    yield _ENGINES
    for engine in _ENGINES.values():
        engine.db.close()
    _ENGINES.clear()


def outcome(result: QueryResult) -> Outcome:
    if result.result_type == "scalar":
        assert result.scalar is not None
        return Outcome("scalar", [((), [result.scalar])])
    if result.result_type == "string":
        assert result.string is not None
        return Outcome("string", [((), [result.string])])
    rows = [(labels, list(zip(t.tolist(), v.tolist(), strict=True)))
            for labels, t, v in result.series]
    return Outcome(result.result_type, rows)


def run(engine: QueryEngine, ev: Eval) -> Outcome:
    try:
        if ev.kind == "instant":
            result = engine.instant_query(ev.query, ev.time_ms)
        else:
            result = engine.range_query(ev.query, ev.start_ms, ev.end_ms, ev.step_ms)
    except QueryError as e:
        return Outcome("error", error=f"{e.error_type}: {e}")
    return outcome(result)


@pytest.mark.parametrize("path,ev", list(_cases()))
def test_script(path: Path, ev: Eval, engines, tmp_path_factory):
    if path not in engines:
        engines[path] = load(path, tmp_path_factory.mktemp(path.stem))
    problems = check(ev, run(engines[path], ev))
    assert not problems, f"{path.name}:{ev.line_no}: {ev.query}\n" + "\n".join(problems)
