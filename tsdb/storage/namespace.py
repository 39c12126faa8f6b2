"""A namespace: one retention and block size, a head, and a block file per window.

Block files hold every series of one window (all virtual shards, rows ordered by shard then
series id, with the row range of each shard recorded) so that the timestamp columns repeated
by the series of one scrape are stored once per window, not once per shard. A window that
already has a block and receives late samples is rewritten as a new generation that merges
both, newest write winning; the previous generation is deleted once the new one is in place.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsdb.encoding.block import BlockDecoder, encode_segments, narrow_uint
from tsdb.encoding.segments import expand_ranges
from tsdb.storage.blockfile import BlockFile, CorruptBlock, write_block
from tsdb.storage.head import Head
from tsdb.storage.options import NamespaceOptions
from tsdb.storage.samples import Samples, merge_newest_wins, series_offsets

log = logging.getLogger(__name__)

_SHARD_SHIFT = 40  # row key = shard << 40 | sid


@dataclass
class _Block:
    window: int
    generation: int
    file: BlockFile
    keys: np.ndarray        # (shard << 40 | sid) per row, ascending
    decoder: BlockDecoder

    @property
    def sids(self) -> np.ndarray:
        return self.keys & ((1 << _SHARD_SHIFT) - 1)


def _block_name(window: int, generation: int) -> str:
    return f"{window}_{generation:06d}.blk"


def _parse_block_name(name: str) -> tuple[int, int] | None:
    if not name.endswith(".blk"):
        return None
    try:
        window, generation = name[:-4].rsplit("_", 1)
        return int(window), int(generation)
    except ValueError:
        return None


class Namespace:
    def __init__(self, ns_id: int, options: NamespaceOptions, directory: Path,
                 shards: int, fsync: bool = True) -> None:
        self.id = ns_id
        self.options = options
        self.block_ms = options.block_ms
        self.directory = directory
        self.shards = shards
        self.fsync = fsync
        self.head = Head()
        #: newest sample time ever accepted: the clock that seals windows
        self.high_water = np.iinfo(np.int64).min
        self._blocks: dict[int, _Block] = {}
        self._flushing: dict[int, Samples] = {}
        self._lock = threading.RLock()
        directory.mkdir(parents=True, exist_ok=True)
        self._open_blocks()

    # -- blocks on disk ---------------------------------------------------------------------

    def _open_blocks(self) -> None:
        found: dict[int, list[int]] = {}
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".tmp"):
                os.unlink(entry.path)  # an interrupted flush; its data is still in the log
                continue
            parsed = _parse_block_name(entry.name)
            if parsed:
                found.setdefault(parsed[0], []).append(parsed[1])
        for window, generations in sorted(found.items()):
            generations.sort()
            for old in generations[:-1]:  # superseded by a newer complete generation
                os.unlink(self.directory / _block_name(window, old))
            path = self.directory / _block_name(window, generations[-1])
            try:
                self._blocks[window] = self._load_block(path, window, generations[-1])
            except CorruptBlock as exc:
                log.error("ignoring unreadable block: %s", exc)
                os.replace(path, path.with_name(path.name + ".corrupt"))
                continue
            self.high_water = max(self.high_water, self._blocks[window].file.meta["max_time"])

    def _load_block(self, path: Path, window: int, generation: int) -> _Block:
        bf = BlockFile(path)
        s = bf.sections
        sids = s["sids"].astype(np.int64)
        shard_rows = s["shard_rows"].astype(np.int64)
        row_shard = np.repeat(np.arange(len(shard_rows) - 1, dtype=np.int64),
                              np.diff(shard_rows))
        keys = (row_shard << _SHARD_SHIFT) | sids
        return _Block(window, generation, bf, keys, BlockDecoder(s))

    def block_windows(self) -> list[int]:
        with self._lock:
            return sorted(self._blocks)

    def block_series(self) -> list[tuple[int, np.ndarray]]:
        """(window, sids) of every block, to rebuild per-series time bounds at start-up."""
        with self._lock:
            return [(w, b.sids) for w, b in sorted(self._blocks.items())]

    def disk_bytes(self) -> int:
        with self._lock:
            return sum(b.file.size for b in self._blocks.values())

    # -- writes -----------------------------------------------------------------------------

    def append(self, sid: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        self.head.append(sid, t, v)
        if len(t):
            self.high_water = max(self.high_water, int(t.max()))

    # -- flush ------------------------------------------------------------------------------

    def windows_to_flush(self, force: bool = False) -> list[int]:
        """Head windows that are complete (or every head window when ``force``)."""
        horizon = self.high_water - self.options.buffer_past_ms
        oldest = self.head.min_time
        if not force and (oldest == np.iinfo(np.int64).max or
                          oldest // self.block_ms * self.block_ms + self.block_ms > horizon):
            return []  # nothing complete yet: decided without scanning the head
        windows = self.head.windows(self.block_ms)
        if force:
            return windows.tolist()
        return [int(w) for w in windows if w + self.block_ms <= horizon]

    def take_window(self, window: int) -> Samples:
        """Move the head's samples of a window aside (still visible to readers) for flushing."""
        with self._lock:
            part = self.head.take(window, window + self.block_ms)
            previous = self._flushing.get(window)
            if previous is not None:
                part = merge_newest_wins([previous, part])
            self._flushing[window] = part
            return part

    def flush_window(self, window: int, shard_of: np.ndarray) -> int:
        """Write the window taken by :meth:`take_window` merged with its existing block as a
        new generation; returns the block file size."""
        with self._lock:
            part = self._flushing.get(window, Samples.empty())
            old = self._blocks.get(window)
            if len(part) == 0:  # nothing new for this window: keep its block as it is
                self._flushing.pop(window, None)
                return 0
        parts = [self._read_block(old)] if old is not None else []
        merged = merge_newest_wins(parts + [part])
        size = 0
        if len(merged):
            generation = old.generation + 1 if old else 1
            path = self.directory / _block_name(window, generation)
            size = self._write(path, window, generation, merged, shard_of)
            new_block = self._load_block(path, window, generation)
        with self._lock:
            if len(merged):
                self._blocks[window] = new_block
            self._flushing.pop(window, None)
        if old is not None:
            old.file.close()
            os.unlink(old.file.path)
        return size

    def _write(self, path: Path, window: int, generation: int, samples: Samples,
               shard_of: np.ndarray) -> int:
        sids, offsets = series_offsets(samples.sid)
        counts = np.diff(offsets)
        shard = shard_of[sids].astype(np.int64)
        order = np.lexsort((sids, shard))  # rows by shard, then sid
        rows_idx = expand_ranges(offsets[:-1][order], counts[order])
        sections = encode_segments(counts[order], samples.t[rows_idx], samples.v[rows_idx])
        shard_rows = np.zeros(self.shards + 1, np.int64)
        np.cumsum(np.bincount(shard, minlength=self.shards), out=shard_rows[1:])
        sections["sids"] = narrow_uint(sids[order])
        sections["shard_rows"] = narrow_uint(shard_rows)
        meta = {
            "namespace": self.options.name, "window_start": window,
            "block_ms": self.block_ms, "generation": generation, "shards": self.shards,
            "series": len(sids), "samples": len(samples),
            "min_time": int(samples.t.min()), "max_time": int(samples.t.max()),
        }
        return write_block(path, meta, sections, fsync=self.fsync)

    @staticmethod
    def _read_block(block: _Block, rows: np.ndarray | None = None) -> Samples:
        if rows is None:
            rows = np.arange(len(block.keys), dtype=np.int64)
        sids = block.sids[rows]
        order = np.argsort(sids, kind="stable")
        rows, sids = rows[order], sids[order]
        ts, vals = block.decoder.decode(rows)
        return Samples(np.repeat(sids, block.decoder.counts[rows]), ts, vals)

    # -- reads ------------------------------------------------------------------------------

    def select(self, sids: np.ndarray, shard_of: np.ndarray, start: int, end: int) -> Samples:
        """Samples of the sorted ``sids`` with start <= t <= end, sorted by (sid, t), newest
        write winning across blocks, blocks being flushed and the head."""
        with self._lock:
            blocks = [b for w, b in sorted(self._blocks.items())
                      if w <= end and w + self.block_ms > start]
            flushing = list(self._flushing.values())
        keys = (shard_of[sids].astype(np.int64) << _SHARD_SHIFT) | sids
        parts = []
        for block in blocks:
            rows = _rows_of(block.keys, keys)
            if len(rows):
                parts.append(_clip(self._read_block(block, rows), start, end))
        for part in flushing:
            parts.append(_clip_sids(part, sids, start, end))
        parts.append(self.head.select(sids, start, end))
        return merge_newest_wins(parts)

    # -- retention --------------------------------------------------------------------------

    def expired_windows(self, now_ms: int) -> list[int]:
        if self.options.retention_ms == 0:
            return []
        cutoff = now_ms - self.options.retention_ms
        with self._lock:
            return [w for w in self._blocks if w + self.block_ms <= cutoff]

    def drop_window(self, window: int) -> None:
        with self._lock:
            block = self._blocks.pop(window, None)
        if block is not None:
            block.file.close()
            os.unlink(block.file.path)

    def close(self) -> None:
        self.head.close()
        with self._lock:
            for block in self._blocks.values():
                block.file.close()
            self._blocks.clear()


def _rows_of(row_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rows of a block whose key is among ``keys`` (both ascending)."""
    pos = np.searchsorted(row_keys, keys)
    inside = pos < len(row_keys)
    pos, keys = pos[inside], keys[inside]
    return pos[row_keys[pos] == keys]


def _clip(s: Samples, start: int, end: int) -> Samples:
    keep = (s.t >= start) & (s.t <= end)
    return s if keep.all() else s.take(np.flatnonzero(keep))


def _clip_sids(s: Samples, sids: np.ndarray, start: int, end: int) -> Samples:
    keep = np.isin(s.sid, sids) & (s.t >= start) & (s.t <= end)
    return s.take(np.flatnonzero(keep))
