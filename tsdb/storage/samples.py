"""Sample arrays sorted by (series, time): the currency between head, blocks and queries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding.segments import expand_ranges


@dataclass
class Samples:
    """Parallel arrays; unless stated otherwise sorted by (sid, t) without duplicates."""

    sid: np.ndarray  # int64
    t: np.ndarray    # int64 ms
    v: np.ndarray    # float64

    @classmethod
    def empty(cls) -> Samples:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    def __len__(self) -> int:
        return len(self.sid)

    def take(self, idx: np.ndarray) -> Samples:
        return Samples(self.sid[idx], self.t[idx], self.v[idx])

    def nbytes(self) -> int:
        return self.sid.nbytes + self.t.nbytes + self.v.nbytes


def sort_order(sid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Stable permutation ordering by (sid, t).

    When (sid, t) fits one int64 key the sort is a single stable argsort (timsort), which is
    close to linear on what the head feeds it: concatenated runs that are already sorted.
    """
    t_min, t_max = int(t.min()), int(t.max())
    span = t_max - t_min + 1
    if (int(sid.max()) + 1) * span < 2**63:
        key = sid * span + (t - t_min)
        return np.argsort(key, kind="stable")
    order = np.argsort(t, kind="stable")
    return order[np.argsort(sid[order], kind="stable")]


def sort_dedup(s: Samples) -> Samples:
    """Sort by (sid, t) keeping, for equal (sid, t), the sample that came LAST in the input
    (stable sorts), i.e. the last write wins."""
    if len(s) == 0:
        return s
    order = sort_order(s.sid, s.t)
    out = s.take(order)
    same = (out.sid[1:] == out.sid[:-1]) & (out.t[1:] == out.t[:-1])
    if same.any():
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ~same
        out = out.take(last)
    return out


def is_sorted_unique(s: Samples) -> bool:
    if len(s) < 2:
        return True
    ds = np.diff(s.sid)
    return bool(np.all((ds > 0) | ((ds == 0) & (np.diff(s.t) > 0))))


def merge_newest_wins(parts: list[Samples]) -> Samples:
    """Merge sorted, deduplicated parts given oldest first; on equal (sid, t) the part
    that comes later wins."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Samples.empty()
    if len(parts) == 1:
        return parts[0]
    by_time = sorted(parts, key=lambda p: int(p.t.min()))
    if all(int(a.t.max()) < int(b.t.min()) for a, b in zip(by_time, by_time[1:], strict=False)):
        return _interleave_disjoint(by_time)
    return sort_dedup(Samples(np.concatenate([p.sid for p in parts]),
                              np.concatenate([p.t for p in parts]),
                              np.concatenate([p.v for p in parts])))


def _interleave_disjoint(parts: list[Samples]) -> Samples:
    """Merge sorted parts whose time ranges do not overlap (given in time order): per series
    the parts' samples simply follow each other, so every sample's output position is known
    from per-series counts, without sorting."""
    distinct = [series_offsets(p.sid) for p in parts]
    all_sids = np.unique(np.concatenate([d[0] for d in distinct]))
    counts = np.zeros((len(parts), len(all_sids)), np.int64)
    slots = []
    for i, (sids, offsets) in enumerate(distinct):
        slot = np.searchsorted(all_sids, sids)
        counts[i, slot] = np.diff(offsets)
        slots.append(slot)
    per_sid = counts.sum(axis=0)
    sid_start = np.cumsum(per_sid) - per_sid
    part_start = sid_start[None, :] + np.cumsum(counts, axis=0) - counts
    total = int(per_sid.sum())
    out = Samples(np.empty(total, np.int64), np.empty(total, np.int64),
                  np.empty(total, np.float64))
    for i, (p, (_, offsets), slot) in enumerate(zip(parts, distinct, slots, strict=True)):
        run = np.diff(offsets)
        dest = np.arange(len(p), dtype=np.int64) + np.repeat(part_start[i, slot] - offsets[:-1],
                                                             run)
        out.sid[dest] = p.sid
        out.t[dest] = p.t
        out.v[dest] = p.v
    return out


def select_sorted(s: Samples, sids: np.ndarray, start: int, end: int) -> Samples:
    """Samples of the given sorted sids with start <= t <= end, from sorted ``s``."""
    if len(s) == 0 or len(sids) == 0:
        return Samples.empty()
    lo = np.searchsorted(s.sid, sids, side="left")
    hi = np.searchsorted(s.sid, sids, side="right")
    idx = expand_ranges(lo, hi - lo)
    if len(idx) == 0:
        return Samples.empty()
    t = s.t[idx]
    idx = idx[(t >= start) & (t <= end)]
    return s.take(idx)


def series_offsets(sid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct sids, CSR offsets) of a sid column sorted by sid."""
    if len(sid) == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64)
    first = np.flatnonzero(np.concatenate(([True], sid[1:] != sid[:-1])))
    return sid[first], np.append(first, len(sid)).astype(np.int64)
