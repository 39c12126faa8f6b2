"""The head: samples accepted but not yet in block files, kept as numpy arrays.

Writes append whole batches to an unsorted tail (a memcpy). The tail is sorted into an
immutable run when it grows large or when a reader needs it; runs are merged size-tiered,
like an LSM tree, so the head never sorts the same sample many times. Every run is sorted by
(sid, t) and deduplicated with the last write winning; runs are kept oldest first so the same
rule holds across them. Samples of any age live here until their block window is flushed,
which is how out-of-order writes and backfill are merged.
"""

from __future__ import annotations

import threading

import numpy as np

from tsdb.storage.samples import Samples, merge_newest_wins, select_sorted, sort_dedup

_RUN_SAMPLES = 1 << 20   # sort the tail into a run at this size
_FANIN = 8               # merge this many runs of one level into one run of the next


class _Tail:
    """Growable append buffer."""

    def __init__(self) -> None:
        self.n = 0
        self.sid = np.zeros(1 << 16, np.int32)
        self.t = np.zeros(1 << 16, np.int64)
        self.v = np.zeros(1 << 16, np.float64)

    def append(self, sid: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        n, k = self.n, len(sid)
        if n + k > len(self.sid):
            size = max(len(self.sid) * 2, n + k)
            for name in ("sid", "t", "v"):
                old = getattr(self, name)
                new = np.empty(size, old.dtype)
                new[:n] = old[:n]
                setattr(self, name, new)
        self.sid[n:n + k] = sid
        self.t[n:n + k] = t
        self.v[n:n + k] = v
        self.n = n + k

    def drain(self) -> Samples:
        n = self.n
        s = Samples(self.sid[:n].astype(np.int64), self.t[:n].copy(), self.v[:n].copy())
        self.n = 0
        if len(self.sid) > _RUN_SAMPLES * 2:
            self.__init__()
        return s


class Head:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tail = _Tail()
        self._runs: list[Samples] = []
        self._levels: list[int] = []  # per run; non-increasing from oldest to newest
        self.min_time = np.iinfo(np.int64).max
        self.max_time = np.iinfo(np.int64).min

    def append(self, sid: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        if len(sid) == 0:
            return
        with self._lock:
            self._tail.append(sid, t, v)
            self.min_time = min(self.min_time, int(t.min()))
            self.max_time = max(self.max_time, int(t.max()))
            if self._tail.n >= _RUN_SAMPLES:
                self._compact_tail()

    def __len__(self) -> int:
        with self._lock:
            return self._tail.n + sum(len(r) for r in self._runs)

    def nbytes(self) -> int:
        with self._lock:
            return self._tail.n * 20 + sum(r.nbytes() for r in self._runs)

    def _compact_tail(self) -> None:
        if self._tail.n:
            self._runs.append(sort_dedup(self._tail.drain()))
            self._levels.append(0)
        # tiered: _FANIN runs of one level become one run of the next, so a sample is
        # merged about log_FANIN(head size / run size) times and reads see few runs
        while len(self._levels) >= _FANIN and len(set(self._levels[-_FANIN:])) == 1:
            level = self._levels[-1]
            merged = merge_newest_wins(self._runs[-_FANIN:])
            del self._runs[-_FANIN:], self._levels[-_FANIN:]
            self._runs.append(merged)
            self._levels.append(level + 1)

    def _sorted_runs(self) -> list[Samples]:
        self._compact_tail()
        return list(self._runs)

    def select(self, sids: np.ndarray, start: int, end: int) -> Samples:
        """Samples of the sorted ``sids`` with start <= t <= end, sorted and deduplicated."""
        with self._lock:
            runs = self._sorted_runs()
        return merge_newest_wins([select_sorted(r, sids, start, end) for r in runs])

    def windows(self, block_ms: int) -> np.ndarray:
        """Start of every block window that has samples in the head."""
        with self._lock:
            runs = self._sorted_runs()
        if not runs:
            return np.zeros(0, np.int64)
        starts = [np.unique(r.t // block_ms) for r in runs]
        return np.unique(np.concatenate(starts)) * block_ms

    def take(self, lo: int, hi: int) -> Samples:
        """Remove and return every sample with lo <= t < hi (sorted, deduplicated)."""
        with self._lock:
            runs = self._sorted_runs()
            taken, kept, levels = [], [], []
            for r, level in zip(runs, self._levels, strict=True):
                inside = (r.t >= lo) & (r.t < hi)
                if not inside.any():
                    kept.append(r)
                    levels.append(level)
                    continue
                taken.append(r.take(np.flatnonzero(inside)))
                rest = r.take(np.flatnonzero(~inside))
                if len(rest):
                    kept.append(rest)
                    levels.append(level)
            self._runs, self._levels = kept, levels
            self._recompute_bounds()
        return merge_newest_wins(taken)

    def take_all(self) -> Samples:
        with self._lock:
            runs = self._sorted_runs()
            self._runs, self._levels = [], []
            self._recompute_bounds()
        return merge_newest_wins(runs)

    def drop_before(self, cutoff: int) -> int:
        """Discard samples older than ``cutoff`` (retention); returns how many."""
        return len(self.take(np.iinfo(np.int64).min, cutoff))

    def _recompute_bounds(self) -> None:
        self.min_time = min((int(r.t.min()) for r in self._runs if len(r)),
                            default=np.iinfo(np.int64).max)
        self.max_time = max((int(r.t.max()) for r in self._runs if len(r)),
                            default=np.iinfo(np.int64).min)
