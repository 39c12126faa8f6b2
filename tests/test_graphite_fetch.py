"""Fetching for render over a real Database in a temp dir: whisper's grid (``from``
exclusive, ``until`` inclusive, slot = t - t % step, last sample of a slot wins, clamping at
``now``), name order, tagged vs plain series, ``seriesByTag``, and resolution rules."""

from __future__ import annotations

import numpy as np
import pytest

from tsdb.query.graphite.fetch import GraphiteStore, Resolutions, window
from tsdb.storage.database import Database
from tsdb.storage.labels import validate_labels
from tsdb.storage.options import DatabaseOptions, NamespaceOptions
from wire.graphite_names import path_labels

NOW = 10_000


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "db", DatabaseOptions(
        fsync=False, namespaces=(NamespaceOptions(retention_ms=0),)))
    yield d
    d.close()


def write(db: Database, labels, samples: list[tuple[float, float]]) -> None:
    """``samples`` as (seconds, value)."""
    sid = db.series_ids([validate_labels(labels)])[0]
    t = np.array([round(s * 1000) for s, _ in samples], np.int64)
    db.write(np.full(len(t), sid, np.int64), t, np.array([v for _, v in samples], float))


def carbon(db: Database, name: str, samples, **tags) -> None:
    write(db, path_labels(name, tags), samples)


def one(lists):
    assert len(lists) == 1
    return lists[0]


def test_window_is_whispers():
    assert window(1000, 1050, NOW, 10).__dict__ == {"first": 1010, "points": 5, "step": 10}
    assert window(1003, 1047, NOW, 10).__dict__ == {"first": 1010, "points": 4, "step": 10}
    assert window(1003, 1007, NOW, 10).__dict__ == {"first": 1010, "points": 1, "step": 10}
    assert window(1000, 20_000, NOW, 10).stop == NOW + 10  # until clamped to now
    assert window(NOW + 1, NOW + 100, NOW, 10) is None


def test_grid(db):
    carbon(db, "a.b", [(t, t / 10) for t in range(1000, 1100, 10)])
    sl = one(GraphiteStore(db).fetch_path("a.b", 1000, 1050, NOW))
    assert (sl.names, sl.start, sl.step) == (["a.b"], 1010, 10)
    assert sl.timestamps().tolist() == [1010, 1020, 1030, 1040, 1050]
    assert sl.values.tolist() == [[101.0, 102.0, 103.0, 104.0, 105.0]]
    assert sl.tags == [{"name": "a.b"}] and sl.path_expressions == ["a.b"]


def test_slots_keep_the_last_sample(db):
    carbon(db, "a.b", [(1011, 1.0), (1015, 2.0), (1019.999, 3.0), (1020, 4.0), (1041, 5.0)])
    sl = one(GraphiteStore(db).fetch_path("a.b", 1000, 1050, NOW))
    assert sl.values[0, 0] == 3.0 and sl.values[0, 1] == 4.0 and sl.values[0, 3] == 5.0
    assert np.isnan(sl.values[0, 2]) and np.isnan(sl.values[0, 4])


def test_gaps_and_windows_without_data(db):
    carbon(db, "a.b", [(1010, 1.0), (1030, 3.0)])
    store = GraphiteStore(db)
    sl = one(store.fetch_path("a.b", 1000, 1030, NOW))
    assert np.isnan(sl.values[0, 1]) and sl.values[0, 2] == 3.0
    before = one(store.fetch_path("a.b", 100, 200, NOW))  # still returned, all null
    assert before.names == ["a.b"] and np.isnan(before.values).all()
    assert store.fetch_path("a.b", NOW + 10, NOW + 100, NOW) == []


def test_until_is_clamped_to_now(db):
    carbon(db, "a.b", [(t, 1.0) for t in range(9900, 10_100, 10)])
    sl = one(GraphiteStore(db).fetch_path("a.b", 9950, 10_500, NOW))
    assert sl.timestamps()[-1] == NOW


def test_patterns_sort_and_skip_tagged(db):
    for name in ("s.web02.cpu", "s.web01.cpu", "s.db01.cpu", "s.web01.mem", "s.web01.cpu.x"):
        carbon(db, name, [(1010, 1.0)])
    carbon(db, "s.web03.cpu", [(1010, 1.0)], dc="eu")
    store = GraphiteStore(db)
    sl = one(store.fetch_path("s.*.cpu", 1000, 1020, NOW))
    assert sl.names == ["s.db01.cpu", "s.web01.cpu", "s.web02.cpu"]
    assert sl.path_expressions == ["s.*.cpu"] * 3
    assert one(store.fetch_path("s.web0{1,2}.c[p]?", 1000, 1020, NOW)).names == [
        "s.web01.cpu", "s.web02.cpu"]
    exact = one(store.fetch_path("s.web03.cpu;dc=eu", 1000, 1020, NOW))
    assert exact.names == ["s.web03.cpu;dc=eu"]
    assert exact.tags == [{"dc": "eu", "name": "s.web03.cpu"}]
    assert store.fetch_path("s.web03.cpu;dc=us", 1000, 1020, NOW) == []
    assert store.fetch_path("nothing.*", 1000, 1020, NOW) == []


def test_series_by_tag(db):
    carbon(db, "disk.used", [(1010, 1.0)], dc="eu", host="web01")
    carbon(db, "disk.used", [(1010, 2.0)], dc="us", host="db01")
    carbon(db, "disk.free", [(1010, 3.0)], dc="eu", host="web01")
    write(db, [("__name__", "node_load1"), ("instance", "h:9100")], [(1010, 0.5)])
    store = GraphiteStore(db)
    raw = "seriesByTag('name=disk.used', 'dc=eu')"
    sl = one(store.fetch_tagged(["name=disk.used", "dc=eu"], raw, 1000, 1020, NOW))
    assert sl.names == ["disk.used;dc=eu;host=web01"] and sl.path_expressions == [raw]
    assert sl.tags == [{"dc": "eu", "host": "web01", "name": "disk.used"}]
    sl = one(store.fetch_tagged(["dc=eu"], "x", 1000, 1020, NOW))
    assert sl.names == ["disk.free;dc=eu;host=web01", "disk.used;dc=eu;host=web01"]
    prom = one(store.fetch_tagged(["name=node_load1"], "x", 1000, 1020, NOW))
    assert prom.names == ["node_load1;instance=h:9100"] and prom.values[0, 0] == 0.5
    assert prom.tags == [{"instance": "h:9100", "name": "node_load1"}]


def test_resolution_rules(db):
    carbon(db, "fast.a", [(t, 1.0) for t in range(1010, 1130, 10)])
    carbon(db, "slow.b", [(1061, 1.0), (1075, 2.0), (1121, 3.0)])
    carbon(db, "zzz.c", [(1010, 1.0)])
    store = GraphiteStore(db, Resolutions([(r"^slow\.", 60)], default=10))
    lists = store.fetch_path("*.*", 1000, 1120, NOW)
    assert [(sl.names, sl.step, sl.start) for sl in lists] == [
        (["fast.a"], 10, 1010), (["slow.b"], 60, 1020), (["zzz.c"], 10, 1010)]
    assert lists[1].values.tolist() == [[2.0, 3.0]]  # slots 1020 (last of 1061, 1075), 1080
    with pytest.raises(ValueError):
        Resolutions([("x", 0)])


def test_millisecond_timestamps_truncate_to_the_second(db):
    carbon(db, "a.b", [(1019.999, 7.0)])
    assert one(GraphiteStore(db).fetch_path("a.b", 1000, 1020, NOW)).values[0, 0] == 7.0


def test_tagged_names_are_carbons_canonical_spelling(db):
    # carbon sorts the ";tag=value" strings: ";a-b=2" before ";a=1" ('-' < '=')
    carbon(db, "x.y", [(1010, 1.0)], a="1", **{"a-b": "2"})
    store = GraphiteStore(db)
    assert one(store.fetch_tagged(["name=x.y"], "x", 1000, 1020, NOW)).names == [
        "x.y;a-b=2;a=1"]
    assert one(store.fetch_path("x.y;a-b=2;a=1", 1000, 1020, NOW)).names == ["x.y;a-b=2;a=1"]
    assert store.fetch_path("x.y;a=1;a-b=2", 1000, 1020, NOW) == []  # as graphite-web
