"""In-memory series index: canonical key -> sid, label pairs per series, postings per pair.

Layout (no Python object per series other than its key dict entry):

* every distinct ``(name, value)`` pair is interned once and gets a dense *pair id*:
  ``_pair_ids`` maps the pair tuple to its id, ``_pairs[pid]`` is the tuple (names are
  interned too, so each name string exists once), ``_name_pids[nid]`` lists the pair ids of
  one label name in creation order;
* series are rows of a CSR matrix: ``_row_pairs[_row_off[r]:_row_off[r + 1]]`` are the pair
  ids of row ``r`` (in label-name order), ``_row_sid[r]`` its sid, ``_sid_row[sid]`` its row;
* postings (pair id -> sorted sids) live in a few immutable *segments*, each covering a range
  of rows. Rows added since the last query get a fresh segment on the next query, which
  absorbs older segments not bigger than itself (a binary counter): at most ~log2(n)
  segments, and every row is re-sorted at most ~log2(n) times over the index's life.

Matcher evaluation follows Prometheus: a matcher that does not match ``""`` selects the
union of the postings of the matching values; one that matches ``""`` (it also selects
series without the label) removes the postings of the non-matching values. Regexes run once
per distinct value of the label, never per series, and their per-value results are cached
for repeated queries. When the candidate set is already small, a matcher is checked series
by series through their pair rows instead, which avoids gathering huge postings lists for a
handful of survivors.

Thread safety: ``add`` and the queries take one lock (queries build postings lazily);
``lookup`` takes none, because ``add`` publishes a series' key only once its rows are complete.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from .growable import GrowableArray
from .labels import EQ, NEQ, RE, SEP, Labels, Matcher, Regex, labels_key

__all__ = ["Matcher", "SeriesIndex"]

_EMPTY_I64 = np.empty(0, dtype=np.int64)
_EMPTY_I32 = np.empty(0, dtype=np.int32)
_MAX_SID = 2**31 - 1
_value_of = itemgetter(1)
_CHUNK = 1 << 16  # series interned per pass, to bound temporary lists
# One label pair inside a canonical key: name 0xff value 0xff.
_PAIR_BYTES = re.compile(rb"[^\xff]*\xff[^\xff]*\xff")


def _decode_pair(segment: bytes) -> tuple[str, str]:
    name, value = segment[:-1].split(SEP)
    return name.decode("utf-8"), value.decode("utf-8")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(method: Callable[Concatenate[SeriesIndex, _P], _R]) -> Callable[..., _R]:
    @functools.wraps(method)
    def wrapper(self: SeriesIndex, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


@dataclass(slots=True)
class _Segment:
    """Postings of rows ``[row_start, row_end)``: the sids of pair ``pids[i]`` are
    ``sids[off[i]:off[i + 1]]``, ascending."""

    row_start: int
    row_end: int
    pids: np.ndarray  # int32, ascending, unique
    off: np.ndarray  # int64, len(pids) + 1
    sids: np.ndarray  # int32


def _gather_ranges(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arr[starts[i]:ends[i]]`` for all i, without a Python loop."""
    lens = ends - starts
    total = int(lens.sum())
    if total == 0:
        return arr[:0]
    if len(starts) == 1:
        return arr[int(starts[0]) : int(ends[0])]
    shift = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return arr[np.arange(total, dtype=np.int64) + shift]


class SeriesIndex:
    """Series identity and label postings for one node (or shard)."""

    #: A matcher is checked per candidate series (instead of through its postings) when
    #: ``candidates * labels_per_series * FILTER_COST < postings entries it would gather``.
    FILTER_COST = 2.0
    #: A new segment absorbs older ones not bigger than ``MERGE_RATIO`` times its size.
    MERGE_RATIO = 1
    #: Regex results (one bool per distinct value of a label) kept for repeated queries.
    REGEX_CACHE_ENTRIES = 64

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sid_of_key: dict[bytes, int] = {}
        self._key_bytes = 0
        self._names: list[str] = []
        self._name_ids: dict[str, int] = {}
        self._name_pids: list[GrowableArray] = []
        self._pair_ids: dict[tuple[str, str], int] = {}
        self._pair_of_bytes: dict[bytes, int] | None = None
        self._pairs: list[tuple[str, str]] = []
        self._pair_name = GrowableArray(np.int32)
        self._pair_count = GrowableArray(np.int64)
        self._row_sid = GrowableArray(np.int32)
        self._row_off = GrowableArray(np.int64)
        self._row_off.extend([0])
        self._row_pairs = GrowableArray(np.int32)
        self._sid_row = GrowableArray(np.int32)
        self._rows_in_sid_order = True
        self._segments: list[_Segment] = []
        self._indexed_rows = 0
        self._all_sids: np.ndarray | None = None
        self._sorted_values: dict[int, list[str]] = {}
        self._regex_cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return self._row_sid.n

    # --- writing -------------------------------------------------------------------------

    def add(
        self,
        sids: np.ndarray | Sequence[int],
        label_sets: Sequence[Labels] | None,
        keys: Sequence[bytes] | None = None,
    ) -> None:
        """Register new series. ``label_sets`` must be valid (see ``validate_labels``);
        pass their canonical ``keys`` too when you have them, to save recomputing them.

        With ``label_sets=None`` the series are taken from ``keys`` alone, which is the
        fastest way to load many series (start-up): pairs are interned straight from the key
        bytes, without building label tuples.

        Raises ``ValueError`` (and changes nothing) if a sid or label set is already known
        or repeated within the batch, or a label set / key is malformed.
        """
        sids = np.asarray(sids, dtype=np.int64).reshape(-1)
        n = len(sids)
        if label_sets is None and keys is None:
            raise ValueError("add() needs label_sets or keys")
        if (label_sets is not None and len(label_sets) != n) or (
            keys is not None and len(keys) != n
        ):
            raise ValueError("sids, label_sets and keys must have the same length")
        if n == 0:
            return
        if keys is None:
            assert label_sets is not None
            keys = [labels_key(ls) for ls in label_sets]
        with self._lock:
            self._check_new_sids(sids)
            new_keys = self._new_keys(keys, sids)
            if label_sets is None:
                pids, counts = self._intern_keys(keys)
            else:
                counts = np.fromiter(map(len, label_sets), dtype=np.int64, count=n)
                pids = self._intern(label_sets)
            self._pair_count.resize(len(self._pairs), 0)
            self._pair_count.view[:] += np.bincount(pids, minlength=self._pair_count.n)
            first_row = self._row_sid.n
            if self._rows_in_sid_order and first_row:
                self._rows_in_sid_order = int(sids[0]) > int(self._row_sid.buf[first_row - 1])
            if self._rows_in_sid_order and n > 1:
                self._rows_in_sid_order = bool(np.all(sids[1:] > sids[:-1]))
            # Publication order matters for lock-free readers (lookup): rows first, then the
            # sid -> row map, then the keys, so a key that resolves is a complete series.
            self._row_pairs.extend(pids)
            self._row_off.extend(self._row_off.buf[first_row] + np.cumsum(counts))
            self._row_sid.extend(sids)
            self._sid_row.resize(int(sids.max()) + 1, -1)
            self._sid_row.buf[sids] = np.arange(first_row, first_row + n, dtype=np.int32)
            self._all_sids = None
            self._key_bytes += sum(map(len, keys))
            self._sid_of_key.update(new_keys)

    def _check_new_sids(self, sids: np.ndarray) -> None:
        if int(sids.min()) < 0 or int(sids.max()) > _MAX_SID:
            raise ValueError(f"series ids must be in [0, {_MAX_SID}]")
        if len(sids) > 1 and not bool(np.all(sids[1:] > sids[:-1])):
            if len(np.unique(sids)) != len(sids):
                raise ValueError("add(): the batch repeats a series id")
        known = sids[sids < self._sid_row.n]
        if len(known) and bool(np.any(self._sid_row.buf[known] >= 0)):
            raise ValueError("add(): some series ids are already in the index")

    def _new_keys(self, keys: Sequence[bytes], sids: np.ndarray) -> dict[bytes, int]:
        new = dict(zip(keys, sids.tolist(), strict=True))
        if len(new) != len(sids):
            raise ValueError("add(): the batch repeats a label set")
        if not self._sid_of_key.keys().isdisjoint(new):
            raise ValueError("add(): some label sets are already in the index")
        return new

    def _intern(self, label_sets: Sequence[Labels]) -> np.ndarray:
        """Pair ids of all labels of all series, flattened; new pairs are interned first.

        Per chunk of series, one C-level ``dict.get`` pass over the pairs; Python code only
        touches the positions whose pair was unknown. On error every pair interned by this
        call is forgotten again.
        """
        get = self._pair_ids.get
        mark = self._mark()
        out: list[np.ndarray] = []
        try:
            for start in range(0, len(label_sets), _CHUNK):
                flat = list(chain.from_iterable(label_sets[start : start + _CHUNK]))
                pids = np.fromiter(map(get, flat, repeat(-1)), np.int32, len(flat))
                unknown = np.flatnonzero(pids < 0).tolist()
                if unknown:
                    self._register_pairs(list(dict.fromkeys(map(flat.__getitem__, unknown))))
                    pids[unknown] = list(map(get, map(flat.__getitem__, unknown)))
                out.append(pids)
        except BaseException as e:
            self._forget_pairs(mark)
            if isinstance(e, TypeError):
                raise TypeError("label sets must be tuples of (name, value) str tuples") from e
            raise
        return np.concatenate(out) if out else _EMPTY_I32

    def _intern_keys(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``(flat pair ids, pairs per key)`` taken straight from canonical keys.

        One regex pass cuts a chunk of joined keys into ``name 0xff value 0xff`` segments,
        looked up as bytes; only segments never seen before are decoded.
        """
        seps = np.fromiter(map(bytes.count, keys, repeat(SEP)), dtype=np.int64, count=len(keys))
        closed = sum(map(bytes.endswith, keys, repeat(SEP)))
        if closed != int(np.count_nonzero(seps)) or bool(np.any(seps % 2)):
            raise ValueError("add(): malformed label key (see labels_key)")
        by_bytes = self._pair_bytes()
        get = by_bytes.get
        mark = self._mark()
        out: list[np.ndarray] = []
        try:
            for start in range(0, len(keys), _CHUNK):
                segments = _PAIR_BYTES.findall(b"".join(keys[start : start + _CHUNK]))
                pids = np.fromiter(map(get, segments, repeat(-1)), np.int32, len(segments))
                unknown = np.flatnonzero(pids < 0).tolist()
                if unknown:
                    fresh = list(dict.fromkeys(map(segments.__getitem__, unknown)))
                    try:
                        pairs = [_decode_pair(s) for s in fresh]
                    except UnicodeDecodeError as e:
                        raise ValueError("add(): label key is not valid UTF-8") from e
                    self._register_pairs(pairs, fresh)
                    pids[unknown] = list(map(get, map(segments.__getitem__, unknown)))
                out.append(pids)
        except BaseException:
            self._forget_pairs(mark)
            raise
        return (np.concatenate(out) if out else _EMPTY_I32), seps // 2

    def _pair_bytes(self) -> dict[bytes, int]:
        """Canonical bytes (``name 0xff value 0xff``) of each pair -> pair id; built on first
        use, then kept up to date."""
        if self._pair_of_bytes is None:
            self._pair_of_bytes = {
                n.encode() + SEP + v.encode() + SEP: pid for pid, (n, v) in enumerate(self._pairs)
            }
        return self._pair_of_bytes

    def _register_pairs(
        self,
        fresh: Sequence[tuple[str, str]],
        encoded: Sequence[bytes] | None = None,
    ) -> None:
        """Give new pair ids to pairs not known yet (``encoded``: their canonical bytes)."""
        pairs, names, pair_ids = self._pairs, self._names, self._pair_ids
        first_pair = len(pairs)
        new_nids: list[int] = []
        for name, value in fresh:
            if type(name) is not str or type(value) is not str or not name or not value:
                raise ValueError(f"invalid label {name!r}={value!r} (use validate_labels)")
            nid = self._name_ids.get(name)
            if nid is None:
                nid = len(names)
                self._name_ids[name] = nid
                names.append(name)
                self._name_pids.append(GrowableArray(np.int32))
            pair = (names[nid], value)  # share the interned name string
            pair_ids[pair] = len(pairs)
            pairs.append(pair)
            new_nids.append(nid)
        by_bytes = self._pair_of_bytes
        if by_bytes is not None:
            if encoded is None:
                encoded = [n.encode() + SEP + v.encode() + SEP for n, v in pairs[first_pair:]]
            by_bytes.update(zip(encoded, range(first_pair, len(pairs)), strict=True))
        nid_arr = np.array(new_nids, dtype=np.int32)
        self._pair_name.extend(nid_arr)
        order = np.argsort(nid_arr, kind="stable")
        grouped = order.astype(np.int32) + first_pair  # new pids, grouped by name id
        cuts = np.flatnonzero(np.diff(nid_arr[order])) + 1
        for chunk in np.split(grouped, cuts):
            if len(chunk):
                self._name_pids[int(nid_arr[chunk[0] - first_pair])].extend(chunk)

    def _mark(self) -> tuple[int, int]:
        return len(self._pairs), len(self._names)

    def _forget_pairs(self, mark: tuple[int, int]) -> None:
        """Undo ``_register_pairs`` calls made since ``mark`` (a failed ``add``)."""
        first_pair, first_name = mark
        by_bytes = self._pair_of_bytes
        for pair in self._pairs[first_pair:]:
            del self._pair_ids[pair]
            if by_bytes is not None:
                by_bytes.pop(pair[0].encode() + SEP + pair[1].encode() + SEP, None)
        del self._pairs[first_pair:]
        self._pair_name.n = min(self._pair_name.n, first_pair)
        for pids in self._name_pids[:first_name]:
            pids.n = int(np.searchsorted(pids.view, first_pair))
        for name in self._names[first_name:]:
            del self._name_ids[name]
        del self._names[first_name:], self._name_pids[first_name:]

    # --- identity ------------------------------------------------------------------------

    def lookup(self, keys: Sequence[bytes]) -> np.ndarray:
        """Sid of each canonical key, or -1 when unknown (int64 array)."""
        get = self._sid_of_key.get
        return np.fromiter(map(get, keys, repeat(-1)), dtype=np.int64, count=len(keys))

    @_locked
    def labels_of(self, sids: np.ndarray | Sequence[int]) -> list[Labels]:
        """Label sets of the given series (``KeyError`` for an unknown sid)."""
        rows = self._rows_of(sids)
        if len(rows) == 0:
            return []
        off = self._row_off.buf
        starts, ends = off[rows], off[rows + 1]
        flat = _gather_ranges(self._row_pairs.buf, starts, ends).tolist()
        pairs = list(map(self._pairs.__getitem__, flat))
        bounds = np.cumsum(ends - starts).tolist()
        return [tuple(pairs[a:b]) for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]

    def _rows_of(self, sids: np.ndarray | Sequence[int]) -> np.ndarray:
        sids = np.asarray(sids, dtype=np.int64).reshape(-1)
        if len(sids) == 0:
            return _EMPTY_I64
        bad = (sids < 0) | (sids >= self._sid_row.n)
        rows = self._sid_row.buf[np.where(bad, 0, sids)].astype(np.int64)
        bad |= rows < 0
        if bool(bad.any()):
            raise KeyError(f"unknown series id {int(sids[np.argmax(bad)])}")
        return rows

    # --- label names and values ----------------------------------------------------------

    @_locked
    def label_names(self, sids: np.ndarray | None = None) -> list[str]:
        """Sorted label names used by any series (or by the given ones)."""
        if sids is None:
            return sorted(self._names)
        pids = self._pairs_of(sids)
        if len(pids) == 0:
            return []
        nids = np.unique(self._pair_name.buf[pids])
        return sorted(map(self._names.__getitem__, nids.tolist()))

    @_locked
    def label_values(self, name: str, sids: np.ndarray | None = None) -> list[str]:
        """Sorted values of label ``name`` over all series (or over the given ones)."""
        nid = self._name_ids.get(name)
        if nid is None:
            return []
        if sids is None:
            return list(self._values_sorted(nid))
        pids = self._pairs_of(sids)
        pids = np.unique(pids[self._pair_name.buf[pids] == nid])
        return sorted(map(_value_of, map(self._pairs.__getitem__, pids.tolist())))

    def _pairs_of(self, sids: np.ndarray | Sequence[int]) -> np.ndarray:
        rows = self._rows_of(sids)
        off = self._row_off.buf
        return _gather_ranges(self._row_pairs.buf, off[rows], off[rows + 1])

    def _values_sorted(self, nid: int) -> list[str]:
        pids = self._name_pids[nid]
        cached = self._sorted_values.get(nid)
        if cached is None or len(cached) != pids.n:
            cached = sorted(self._values(pids.view))
            self._sorted_values[nid] = cached
        return cached

    def _values(self, pids: np.ndarray) -> map[str]:
        return map(_value_of, map(self._pairs.__getitem__, pids.tolist()))

    # --- selection -----------------------------------------------------------------------

    @_locked
    def select(self, matchers: Sequence[Matcher]) -> np.ndarray:
        """Sorted unique sids (int64) of the series that satisfy every matcher.

        No matchers selects every series.
        """
        self._refresh_postings()
        positive: list[tuple[int, int, np.ndarray]] = []  # (postings size, name id, pids)
        negative: list[tuple[int, int, np.ndarray]] = []
        for m in matchers:
            if not isinstance(m, Matcher):
                raise TypeError(f"select() expects Matcher objects, got {m!r}")
            nid, pids = self._matcher_pairs(m)
            if len(pids) == 0:
                if m.matches_empty:
                    continue  # no series that has the label fails the matcher
                return _EMPTY_I64.copy()
            cost = int(self._pair_count.buf[pids].sum())
            (negative if m.matches_empty else positive).append((cost, nid, pids))

        positive.sort(key=itemgetter(0))
        negative.sort(key=itemgetter(0))
        if positive:
            result = self._postings(positive.pop(0)[2])
        else:
            result = self._all()
        per_series = self._row_pairs.n / max(1, len(self))
        for keep, items in ((True, positive), (False, negative)):
            for cost, nid, pids in items:
                if len(result) == 0:
                    return result
                if len(result) * per_series * self.FILTER_COST < cost:
                    result = self._filter(result, nid, pids, keep)
                else:
                    inside = _member(result, self._postings(pids), self._sid_row.n)
                    result = result[inside if keep else ~inside]
        return result

    def _matcher_pairs(self, m: Matcher) -> tuple[int, np.ndarray]:
        """``(name id, pair ids)``: the pairs whose series *pass* ``m`` when it does not
        match "", else the pairs whose series *fail* it (absent label = "")."""
        nid = self._name_ids.get(m.name, -1)
        if nid < 0:
            return nid, _EMPTY_I32
        if m.op in (EQ, NEQ):
            if m.value == "":
                # {a=""}: every value fails it; {a!=""}: every value passes it.
                return nid, self._name_pids[nid].view
            pid = self._pair_ids.get((m.name, m.value))
            return nid, _EMPTY_I32 if pid is None else np.array([pid], dtype=np.int32)

        rx = m.regex
        assert rx is not None
        all_pids = self._name_pids[nid].view
        unmatched: np.ndarray | None
        if rx.matches_all or rx.matches_all_nonempty:  # stored values are never empty
            matched, unmatched = all_pids, _EMPTY_I32
        elif rx.literals is not None:
            found = [self._pair_ids.get((m.name, v)) for v in rx.literals]
            matched = np.array(sorted(p for p in found if p is not None), dtype=np.int32)
            unmatched = None
        else:
            hit = self._regex_hits(nid, rx)
            matched, unmatched = all_pids[hit], all_pids[~hit]
        # =~ passes the matching values, !~ the others; a matcher matching "" reports the
        # values that fail it instead.
        if (m.op == RE) != m.matches_empty:
            return nid, matched
        if unmatched is None:
            unmatched = np.setdiff1d(all_pids, matched, assume_unique=True)
        return nid, unmatched

    def _regex_hits(self, nid: int, rx: Regex) -> np.ndarray:
        """One bool per value of the name (creation order); cached, extended as values
        are added."""
        pids = self._name_pids[nid]
        key = (nid, rx.pattern)
        cache = self._regex_cache
        hit = cache.get(key)
        if hit is None:
            hit = rx.match_many(self._values(pids.view), pids.n)
        elif len(hit) < pids.n:
            tail = rx.match_many(self._values(pids.view[len(hit) :]), pids.n - len(hit))
            hit = np.concatenate([hit, tail])
        cache[key] = hit
        cache.move_to_end(key)
        while len(cache) > self.REGEX_CACHE_ENTRIES:
            cache.popitem(last=False)
        return hit

    def _all(self) -> np.ndarray:
        if self._all_sids is None:
            sids = self._row_sid.view.astype(np.int64)
            if not self._rows_in_sid_order:
                sids.sort()
            self._all_sids = sids
        return self._all_sids.copy()

    def _filter(self, cands: np.ndarray, nid: int, pids: np.ndarray, keep: bool) -> np.ndarray:
        """Keep (``keep``) or drop the candidates whose value of label ``nid`` is in ``pids``."""
        rows = self._sid_row.buf[cands].astype(np.int64)
        off = self._row_off.buf
        starts, ends = off[rows], off[rows + 1]
        flat = _gather_ranges(self._row_pairs.buf, starts, ends)
        owner = np.repeat(np.arange(len(cands)), ends - starts)
        mine = self._pair_name.buf[flat] == nid
        flat, owner = flat[mine], owner[mine]
        table = np.zeros(self._pair_count.n, dtype=np.bool_)
        table[pids] = True
        mask = np.full(len(cands), not keep, dtype=np.bool_)
        mask[owner[table[flat]]] = keep
        return cands[mask]

    # --- postings ------------------------------------------------------------------------

    def _postings(self, pids: np.ndarray) -> np.ndarray:
        """Sorted sids (int64, a fresh array) of the series holding any of ``pids``, which
        all belong to one label name (so their postings are disjoint)."""
        parts: list[np.ndarray] = []
        for seg in self._segments:
            if len(seg.pids) == 0:
                continue
            idx = np.searchsorted(seg.pids, pids)
            np.minimum(idx, len(seg.pids) - 1, out=idx)
            idx = idx[seg.pids[idx] == pids]
            if len(idx):
                parts.append(_gather_ranges(seg.sids, seg.off[idx], seg.off[idx + 1]))
        if not parts:
            return _EMPTY_I64.copy()
        out = (np.concatenate(parts) if len(parts) > 1 else parts[0]).astype(np.int64)
        if len(pids) > 1 or (len(parts) > 1 and not self._rows_in_sid_order):
            out = _sort_disjoint(out, self._sid_row.n)
        return out

    def _refresh_postings(self) -> None:
        """Index rows added since the last query; merge segments to keep them few."""
        total = self._row_sid.n
        if self._indexed_rows == total:
            return
        start = self._indexed_rows
        segs = self._segments
        while segs and segs[-1].row_end - segs[-1].row_start <= self.MERGE_RATIO * (total - start):
            start = segs.pop().row_start
        segs.append(self._build_segment(start, total))
        self._indexed_rows = total

    def _build_segment(self, r0: int, r1: int) -> _Segment:
        off = self._row_off.buf
        a, b = int(off[r0]), int(off[r1])
        # Sort (pair id, sid) in one pass as one little-endian int64: pid high, sid low.
        combined = self._row_pairs.buf[a:b].astype(np.int64)
        combined <<= 32
        combined |= np.repeat(self._row_sid.buf[r0:r1], np.diff(off[r0 : r1 + 1]))
        combined.sort()
        halves = combined.view(np.int32).reshape(-1, 2)
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        sorted_sids = halves[:, low].copy()
        sorted_pids = halves[:, high]
        starts = np.flatnonzero(sorted_pids[1:] != sorted_pids[:-1]) + 1
        if len(sorted_pids):
            uniq = sorted_pids[np.concatenate(([0], starts))].copy()
            seg_off = np.concatenate(([0], starts, [len(sorted_pids)])).astype(np.int64)
        else:
            uniq, seg_off = _EMPTY_I32, np.zeros(1, dtype=np.int64)
        return _Segment(r0, r1, uniq, seg_off, sorted_sids)

    # --- introspection -------------------------------------------------------------------

    def memory_usage(self) -> dict[str, int]:
        """Approximate bytes held, by component (numpy arrays exact, Python objects
        estimated from CPython's object sizes)."""
        n_keys = len(self._sid_of_key)
        arrays = {
            "pair_arrays": self._pair_name.nbytes + self._pair_count.nbytes,
            "row_arrays": self._row_sid.nbytes + self._row_off.nbytes + self._sid_row.nbytes,
            "row_pairs": self._row_pairs.nbytes,
            "postings": sum(s.pids.nbytes + s.off.nbytes + s.sids.nbytes for s in self._segments),
        }
        # key dict table + bytes objects (33 bytes of header each) + the int objects of sids
        keys = sys.getsizeof(self._sid_of_key) + self._key_bytes + (33 + 32) * n_keys
        # pair dict table + pair tuples (56 bytes) + pid ints + pair list + value strings
        pairs = sys.getsizeof(self._pair_ids) + sys.getsizeof(self._pairs)
        pairs += len(self._pairs) * (56 + 32) + sum(sys.getsizeof(v) for _, v in self._pairs)
        if self._pair_of_bytes is not None:
            pairs += (
                sys.getsizeof(self._pair_of_bytes)
                + sum(map(len, self._pair_of_bytes))
                + (33 * len(self._pair_of_bytes))
            )
        return {**arrays, "key_dict": keys, "pairs": pairs}


def _sort_disjoint(sids: np.ndarray, upper: int) -> np.ndarray:
    """Sort distinct sids in place; a bitmap over [0, upper) beats sorting once dense."""
    if len(sids) * 16 > upper:
        mask = np.zeros(upper, dtype=np.bool_)
        mask[sids] = True
        return np.flatnonzero(mask).astype(np.int64)
    sids.sort()
    return sids


def _member(a: np.ndarray, b: np.ndarray, upper: int) -> np.ndarray:
    """Bool per element of sorted ``a``: is it in sorted ``b``? (values < ``upper``)"""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(len(a), dtype=np.bool_)
    if min(len(a), len(b)) * 16 > upper:
        mask = np.zeros(upper, dtype=np.bool_)
        mask[b] = True
        return mask[a]
    idx = np.searchsorted(b, a)
    np.minimum(idx, len(b) - 1, out=idx)
    return b[idx] == a
