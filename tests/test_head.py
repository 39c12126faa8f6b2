"""Head: unsorted appends, sorted runs, newest write wins, windows taken for flushing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.storage import head as head_mod
from tsdb.storage.head import Head
from tsdb.storage.samples import Samples, is_sorted_unique, sort_dedup

writes = st.lists(st.lists(st.tuples(st.integers(0, 20), st.integers(-50, 50),
                                     st.integers(-1000, 1000)), min_size=1, max_size=30),
                  min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(writes, st.integers(1, 64))
def test_head_matches_last_write_wins_model(batches, run_size):
    old = head_mod._RUN_SAMPLES
    head_mod._RUN_SAMPLES = run_size  # force many runs and merges
    try:
        h = Head()
        ref = {}
        for b in batches:
            sid = np.array([x[0] for x in b])
            t = np.array([x[1] for x in b])
            v = np.array([float(x[2]) for x in b])
            h.append(sid, t, v)
            for s_, t_, v_ in b:
                ref[(s_, t_)] = float(v_)
        got = h.select(np.arange(21), -10, 10)
        assert is_sorted_unique(got)
        want = sorted((k, v) for k, v in ref.items() if -10 <= k[1] <= 10)
        pairs = zip(got.sid.tolist(), got.t.tolist(), strict=True)
        assert list(zip(pairs, got.v.tolist(), strict=True)) == want
        taken = h.take(0, 20)
        assert all(0 <= t < 20 for t in taken.t.tolist())
        rest = h.take_all()
        assert len(taken) + len(rest) == len(ref)
        assert len(h) == 0
        h.close()
    finally:
        head_mod._RUN_SAMPLES = old


def test_sort_dedup_handles_huge_time_spans():
    big = np.iinfo(np.int64)
    s = Samples(np.array([1, 0, 1, 1]), np.array([big.max, big.min, big.min, big.max]),
                np.array([1.0, 2.0, 3.0, 4.0]))
    out = sort_dedup(s)
    assert out.sid.tolist() == [0, 1, 1]
    assert out.t.tolist() == [big.min, big.min, big.max]
    assert out.v.tolist() == [2.0, 3.0, 4.0]


def test_windows_lists_block_starts():
    h = Head()
    h.append(np.array([0, 1, 2]), np.array([5, 7200_000, -1]), np.ones(3))
    assert h.windows(7200_000).tolist() == [-7200_000, 0, 7200_000]


parts_st = st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), max_size=20),
                    min_size=1, max_size=5)


@settings(max_examples=100, deadline=None)
@given(parts_st, st.booleans())
def test_merge_equals_sorting_everything(raw_parts, disjoint):
    from tsdb.storage.samples import merge_newest_wins

    parts, value = [], 0.0
    for i, rows in enumerate(raw_parts):
        sid = np.array([r[0] for r in rows], dtype=np.int64)
        t = np.array([r[1] + (100 * i if disjoint else 0) for r in rows], dtype=np.int64)
        v = value + np.arange(len(rows), dtype=np.float64)
        value += len(rows)
        parts.append(sort_dedup(Samples(sid, t, v)))
    want = sort_dedup(Samples(np.concatenate([p.sid for p in parts]),
                              np.concatenate([p.t for p in parts]),
                              np.concatenate([p.v for p in parts])))
    got = merge_newest_wins(parts)
    for a, b in ((got.sid, want.sid), (got.t, want.t), (got.v, want.v)):
        assert np.array_equal(a, b)


def test_background_compactor_sorts_and_merges_while_writes_go_on():
    import time

    old = head_mod._RUN_SAMPLES
    head_mod._RUN_SAMPLES = 50
    try:
        h = Head()
        for i in range(400):  # 400 batches of 10: 80 full tails handed to the compactor
            h.append(np.arange(10), np.full(10, i), np.full(10, float(i)))
            if i % 97 == 0:  # readers in between see everything written so far
                got = h.select(np.arange(10), 0, 10**6)
                assert len(got) == 10 * (i + 1)
        deadline = time.time() + 10
        while (h._pending or len(h._runs) >= head_mod._FANIN) and time.time() < deadline:
            time.sleep(0.01)
        assert not h._pending and len(h._runs) < 2 * head_mod._FANIN
        got = h.select(np.arange(10), 0, 10**6)
        assert len(got) == 4000 and is_sorted_unique(got)
        assert got.v[got.sid == 3].tolist() == [float(i) for i in range(400)]
        h.close()
    finally:
        head_mod._RUN_SAMPLES = old
