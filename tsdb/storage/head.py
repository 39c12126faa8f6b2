"""The head: samples accepted but not yet in block files, kept as numpy arrays.

Writes append whole batches to an unsorted tail (a memcpy). A full tail is handed to a
background compactor thread that sorts it into an immutable run and merges runs in tiers,
like an LSM tree, outside the head's lock: writers never wait for a sort (numpy sorts
release the GIL, so this also puts the second core to work). A reader that needs sorted
data sorts whatever is still pending itself. Every run is sorted by
(sid, t) and deduplicated with the last write winning; runs are kept oldest first so the same
rule holds across them. Samples of any age live here until their block window is flushed,
which is how out-of-order writes and backfill are merged.
"""

from __future__ import annotations

import threading

import numpy as np

from tsdb.storage.growable import GrowableArray
from tsdb.storage.samples import Samples, merge_newest_wins, select_sorted, sort_dedup

_RUN_SAMPLES = 1 << 20   # sort the tail into a run at this size
_FANIN = 8               # merge this many runs of one level into one run of the next


class _Tail:
    """Unsorted append buffer: one growable column per field."""

    def __init__(self) -> None:
        self.sid = GrowableArray(np.int32, 1 << 16)
        self.t = GrowableArray(np.int64, 1 << 16)
        self.v = GrowableArray(np.float64, 1 << 16)

    @property
    def n(self) -> int:
        return self.sid.n

    def append(self, sid: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        self.sid.extend(sid)
        self.t.extend(t)
        self.v.extend(v)

    def drain(self) -> Samples:
        s = Samples(self.sid.view.astype(np.int64), self.t.view.copy(), self.v.view.copy())
        if len(self.sid.buf) > _RUN_SAMPLES * 2:  # an outsized buffer from a huge batch
            self.__init__()
        else:
            for column in (self.sid, self.t, self.v):
                column.clear()
        return s


class Head:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tail = _Tail()
        self._runs: list[Samples] = []
        self._levels: list[int] = []  # per run; non-increasing from oldest to newest
        self._pending: list[Samples] = []  # full tails waiting for the compactor, oldest first
        self._wake = threading.Event()
        self._compactor: threading.Thread | None = None
        self._closing = False
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
                self._pending.append(self._tail.drain())
                self._kick()

    def _kick(self) -> None:
        """Wake the compactor, starting it on first use (under the lock)."""
        if self._compactor is None:
            self._compactor = threading.Thread(target=self._compact_loop,
                                               name="tsdb-head-compactor", daemon=True)
            self._compactor.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the compactor thread (the head's data stays readable)."""
        with self._lock:
            thread, self._closing = self._compactor, True
        if thread is not None:
            self._wake.set()
            thread.join()

    def _compact_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            while self._compact_step():
                pass

    def _compact_step(self) -> bool:
        """Sort the oldest pending tail, or merge one tier, without holding the lock while
        working; the result is installed only if nobody changed the head meanwhile."""
        with self._lock:
            if self._pending:
                work, job = self._pending[0], "sort"
            else:
                tier = self._full_tier()
                if tier is None:
                    return False
                work, job = tier, "merge"
        if job == "sort":
            run = sort_dedup(work)
            with self._lock:
                if self._pending and self._pending[0] is work:
                    self._pending.pop(0)
                    self._runs.append(run)
                    self._levels.append(0)
            return True
        first, runs = work
        merged = merge_newest_wins(list(runs))
        with self._lock:
            end = first + len(runs)
            current = self._runs[first:end]
            if len(current) == len(runs) and all(a is b for a, b in zip(current, runs,
                                                                         strict=True)):
                level = self._levels[first] + 1
                self._runs[first:end] = [merged]
                self._levels[first:end] = [level]
        return True

    def _full_tier(self) -> tuple[int, tuple[Samples, ...]] | None:
        """The oldest _FANIN runs of the first level that has that many. Levels never
        increase from oldest to newest, so runs of a level are contiguous and the merged run
        (one level up) still fits between its older and newer neighbours."""
        i = 0
        while i < len(self._levels):
            level = self._levels[i]
            j = i
            while j < len(self._levels) and self._levels[j] == level:
                j += 1
            if j - i >= _FANIN:
                return i, tuple(self._runs[i:i + _FANIN])
            i = j
        return None

    def __len__(self) -> int:
        with self._lock:
            return (self._tail.n + sum(len(r) for r in self._runs)
                    + sum(len(p) for p in self._pending))

    def nbytes(self) -> int:
        with self._lock:
            return (self._tail.n * 20 + sum(r.nbytes() for r in self._runs)
                    + sum(p.nbytes() for p in self._pending))

    def _compact_tail(self) -> None:
        """Under the lock: sort everything pending and the tail (a reader needs it now)."""
        for batch in self._pending:
            self._runs.append(sort_dedup(batch))
            self._levels.append(0)
        self._pending.clear()
        if self._tail.n:
            self._runs.append(sort_dedup(self._tail.drain()))
            self._levels.append(0)
        if self._full_tier() is not None:
            self._kick()  # tiers are merged in the background

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
        starts = [_windows_of(r.t, block_ms) for r in runs]
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
        if self.min_time >= cutoff:  # the common case, without scanning the head
            return 0
        return len(self.take(np.iinfo(np.int64).min, cutoff))

    def _recompute_bounds(self) -> None:
        self.min_time = min((int(r.t.min()) for r in self._runs if len(r)),
                            default=np.iinfo(np.int64).max)
        self.max_time = max((int(r.t.max()) for r in self._runs if len(r)),
                            default=np.iinfo(np.int64).min)


def _windows_of(t: np.ndarray, block_ms: int) -> np.ndarray:
    """Distinct ``t // block_ms`` without sorting millions of samples: the windows of a
    head span a handful of indices, so a presence count over that span does it in O(n)."""
    if len(t) == 0:
        return np.zeros(0, np.int64)
    w = t // block_ms
    lo, hi = int(w.min()), int(w.max())
    if hi - lo > 1 << 16:  # widely scattered backfill: sorting is cheaper than the span
        return np.unique(w)
    return np.flatnonzero(np.bincount(w - lo, minlength=hi - lo + 1)) + lo
