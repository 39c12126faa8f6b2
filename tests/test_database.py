"""The storage engine end to end on a real data directory: writes, flush, restart, retention."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsdb.storage.database import Database, ShardCountMismatch
from tsdb.storage.labels import Matcher
from tsdb.storage.options import DatabaseOptions, NamespaceOptions

T0 = 1_700_000_000_000
HOUR = 3_600_000


def options(**ns_kw) -> DatabaseOptions:
    ns = NamespaceOptions(**{"retention_ms": 0, "block_ms": HOUR, "buffer_past_ms": 0, **ns_kw})
    return DatabaseOptions(shards=8, fsync=False, namespaces=(ns,))


def labels(i: int) -> tuple[tuple[str, str], ...]:
    return (("__name__", "metric_%d" % (i % 3)), ("instance", "host-%d" % i),
            ("job", "node" if i % 2 else "app"))


def reference_select(ref: dict, sids: np.ndarray, start: int, end: int):
    out = {}
    for (sid, t), v in ref.items():
        if sid in sids and start <= t <= end:
            out.setdefault(sid, []).append((t, v))
    return {sid: sorted(pts) for sid, pts in out.items()}


def as_dict(result):
    out = {}
    for i, sid in enumerate(result.sids.tolist()):
        _, t, v = result.series(i)
        out[sid] = list(zip(t.tolist(), v.view(np.uint64).tolist(), strict=True))
    return out


def bits(v: float) -> int:
    return int(np.float64(v).view(np.uint64))


ALL = [Matcher("__name__", "=~", ".+")]


def crash(db: Database) -> None:
    """What a killed process leaves: written files, no flush of the head, no clean close."""
    db.commitlog.close()
    db.registry.close()


def test_write_select_across_head_flush_and_restart(tmp_path):
    db = Database(tmp_path, options())
    sids = db.series_ids([labels(i) for i in range(10)])
    assert sids.tolist() == list(range(10))
    t = T0 + np.arange(0, 3 * HOUR, 15_000)
    for k, ts in enumerate(t):
        db.write(sids, np.full(10, ts), np.arange(10) + k * 0.5)
    assert db.flush() >= 2  # complete windows are sealed into blocks
    got = db.select(ALL, T0, T0 + 3 * HOUR)
    assert got.sids.tolist() == list(range(10))
    for i in range(10):
        _, ts, vs = got.series(i)
        assert ts.tolist() == t.tolist()
        assert vs.tolist() == [i + k * 0.5 for k in range(len(t))]
    db.close()
    db2 = Database(tmp_path, options())
    assert db2.stats["replayed_records"] == 0  # a clean stop leaves nothing to replay
    again = db2.select(ALL, T0, T0 + 3 * HOUR)
    assert as_dict(again) == as_dict(got)
    assert db2.series_ids([labels(3)]).tolist() == [3]
    db2.close()


def test_crash_without_close_replays_commit_log(tmp_path):
    db = Database(tmp_path, options())
    sids = db.series_ids([labels(i) for i in range(4)])
    db.write(sids, np.full(4, T0), np.array([1.0, 2.0, 3.0, 4.0]))
    db.flush(force=True)
    db.write(sids, np.full(4, T0 + 1000), np.array([5.0, 6.0, 7.0, 8.0]))
    crash(db)
    db2 = Database(tmp_path, options())
    assert db2.stats["replayed_samples"] >= 4
    got = as_dict(db2.select(ALL, T0, T0 + 1000))
    assert got[2] == [(T0, bits(3.0)), (T0 + 1000, bits(7.0))]
    db2.close()


def test_out_of_order_backfill_and_last_write_wins(tmp_path):
    db = Database(tmp_path, options())
    sid = db.series_ids([labels(0)])
    db.write(sid, [T0 + 5 * HOUR], [1.0])
    db.flush()
    # an old window that was never written, and a duplicate of the newest sample
    db.write(np.repeat(sid, 3), [T0, T0 - 1000, T0 + 5 * HOUR], [2.0, 3.0, 9.0])
    db.flush(force=True)
    db.write(sid, [T0], [4.0])  # overwrite a flushed sample: the newest write wins
    got = as_dict(db.select(ALL, T0 - HOUR, T0 + 6 * HOUR))[0]
    assert got == [(T0 - 1000, bits(3.0)), (T0, bits(4.0)), (T0 + 5 * HOUR, bits(9.0))]
    db.flush(force=True)
    assert as_dict(db.select(ALL, T0 - HOUR, T0 + 6 * HOUR))[0] == got
    db.close()


def test_special_floats_survive_blocks(tmp_path):
    db = Database(tmp_path, options())
    sid = db.series_ids([labels(0)])
    stale = np.uint64(0x7FF0000000000002).view(np.float64)
    vals = np.array([stale, -0.0, np.inf, -np.inf, 5e-324, np.nan, 1.5])
    db.write(np.repeat(sid, len(vals)), T0 + np.arange(len(vals)) * 1000, vals)
    db.flush(force=True)
    got = as_dict(db.select(ALL, T0, T0 + 10_000))[0]
    assert [b for _, b in got] == vals.view(np.uint64).tolist()
    db.close()


def test_shard_count_is_fixed_at_creation(tmp_path):
    Database(tmp_path, options()).close()
    with pytest.raises(ShardCountMismatch, match="created with 8 virtual shards"):
        Database(tmp_path, DatabaseOptions(shards=16, fsync=False))


def test_retention_rejects_old_samples_and_drops_blocks(tmp_path):
    now = [T0 / 1000]
    opts = options(retention_ms=2 * HOUR)
    db = Database(tmp_path, opts, clock=lambda: now[0])
    sid = db.series_ids([labels(0)])
    res = db.write(np.repeat(sid, 3), [T0 - 3 * HOUR, T0 - HOUR, T0 + 2 * HOUR], [1.0, 2.0, 3.0])
    assert res.accepted == 1
    assert res.rejected == {"too_old": 1, "too_far_in_future": 1}
    db.flush(force=True)
    assert db.namespaces["default"].block_windows()
    now[0] += 4 * HOUR / 1000
    db.flush()
    assert db.namespaces["default"].block_windows() == []
    assert len(db.select(ALL, T0 - 4 * HOUR, T0 + 4 * HOUR)) == 0
    db.close()


def test_label_lookups_restricted_to_time_range(tmp_path):
    db = Database(tmp_path, options())
    sids = db.series_ids([labels(i) for i in range(4)])
    db.write(sids[:2], [T0, T0], [1.0, 1.0])
    db.write(sids[2:], [T0 + 10 * HOUR] * 2, [1.0, 1.0])
    assert db.label_values("instance", start=T0, end=T0 + HOUR) == ["host-0", "host-1"]
    assert db.label_values("instance") == ["host-0", "host-1", "host-2", "host-3"]
    assert db.label_names(start=T0 + 9 * HOUR, end=T0 + 11 * HOUR) == [
        "__name__", "instance", "job"]
    assert db.label_values("instance", [Matcher("job", "=", "node")],
                           start=T0 + 9 * HOUR, end=T0 + 11 * HOUR) == ["host-3"]
    db.flush(force=True)
    db.close()
    db = Database(tmp_path, options())  # bounds rebuilt from the blocks
    assert db.label_values("instance", start=T0, end=T0 + HOUR) == ["host-0", "host-1"]
    db.close()


batches = st.lists(
    st.tuples(
        st.lists(st.integers(0, 5), min_size=1, max_size=8),     # series
        st.lists(st.integers(-3, 12), min_size=8, max_size=8),   # time slot (x 20 min)
        st.lists(st.floats(allow_nan=False, width=64), min_size=8, max_size=8),
        st.sampled_from(["none", "flush", "force", "restart"]),
    ),
    min_size=1, max_size=12,
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches)
def test_matches_a_reference_model(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("db")
    db = Database(path, options())
    sids = db.series_ids([labels(i) for i in range(6)])
    ref = {}
    for series, slots, vals, action in ops:
        n = len(series)
        sid = sids[series]
        t = T0 + np.array(slots[:n]) * 20 * 60_000
        v = np.array(vals[:n])
        db.write(sid, t, v)
        for s_, t_, v_ in zip(sid.tolist(), t.tolist(), v.tolist(), strict=True):
            ref[(s_, t_)] = bits(v_)
        if action == "flush":
            db.flush()
        elif action == "force":
            db.flush(force=True)
        elif action == "restart":
            if len(ref) % 2:
                db.close()
            else:
                crash(db)
            db = Database(path, options())
    want = reference_select(ref, set(range(6)), T0 - HOUR, T0 + 5 * HOUR)
    assert as_dict(db.select(ALL, T0 - HOUR, T0 + 5 * HOUR)) == want
    db.close()


def test_background_flush_seals_complete_windows(tmp_path):
    import time

    db = Database(tmp_path, options())
    sid = db.series_ids([labels(0)])
    db.write(np.repeat(sid, 2), [T0, T0 + 2 * HOUR], [1.0, 2.0])
    db.start_background_flush(0.05)
    deadline = time.time() + 10
    while not db.namespaces["default"].block_windows() and time.time() < deadline:
        time.sleep(0.05)
    assert db.namespaces["default"].block_windows() == [T0 // HOUR * HOUR]
    db.close()


def test_commit_log_is_truncated_when_a_window_seals_mid_segment(tmp_path):
    """A segment that also holds samples of the next window must go once that window is
    flushed too (a clean close leaves nothing to replay)."""
    db = Database(tmp_path, options())
    sid = db.series_ids([labels(0)])
    t = T0 + np.arange(0, 3 * HOUR, 15_000)
    for ts in t[: len(t) // 2]:
        db.write(sid, [ts], [1.0])
    db.flush()  # seals the first window while the segment keeps receiving the next one
    for ts in t[len(t) // 2:]:
        db.write(sid, [ts], [2.0])
    db.close()
    db = Database(tmp_path, options())
    assert db.stats["replayed_records"] == 0
    assert len(db.select(ALL, T0, T0 + 3 * HOUR).t) == len(t)
    db.close()
