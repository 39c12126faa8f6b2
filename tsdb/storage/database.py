"""The storage engine of one node: series, commit log, namespaces, flush and retention.

Data flows one way: ``write`` -> commit log -> namespace head -> (seal) -> block files.
A write returns once its commit-log record is fsynced (group commit); series are created on
first sight, logged in the commit log before any sample that uses them, and persisted in the
series registry before the log segments that hold them are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsdb.memtune import release_memory
from tsdb.storage import records
from tsdb.storage.commitlog import CommitLog
from tsdb.storage.growable import GrowableArray
from tsdb.storage.index import SeriesIndex
from tsdb.storage.labels import Labels, Matcher, labels_key
from tsdb.storage.namespace import Namespace
from tsdb.storage.options import DatabaseOptions
from tsdb.storage.samples import Samples, series_offsets
from tsdb.storage.series_registry import SeriesRegistry

log = logging.getLogger(__name__)

_FORMAT = 1
_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


class ShardCountMismatch(RuntimeError):
    pass


def shard_of_key(key: bytes, shards: int) -> int:
    """Virtual shard of a series: a stable 64-bit hash of its canonical label key."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "little") & (shards - 1)


@dataclass
class WriteResult:
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    position: int = -1

    def reject(self, reason: str, count: int) -> None:
        if count:
            self.rejected[reason] = self.rejected.get(reason, 0) + count


@dataclass
class SeriesSet:
    """Result of a select: per series its labels and a slice of the sample arrays."""

    sids: np.ndarray
    labels: list[Labels]
    offsets: np.ndarray   # CSR into t / v
    t: np.ndarray
    v: np.ndarray

    def __len__(self) -> int:
        return len(self.sids)

    def series(self, i: int) -> tuple[Labels, np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.labels[i], self.t[a:b], self.v[a:b]


class _SeriesColumns:
    """Per-series arrays (indexed by sid) that grow with the number of series."""

    def __init__(self) -> None:
        self._shard = GrowableArray(np.uint16, 1024)
        self._min_t = GrowableArray(np.int64, 1024)
        self._max_t = GrowableArray(np.int64, 1024)

    def grow(self, n: int) -> None:
        self._shard.resize(n, 0)
        self._min_t.resize(n, _I64_MAX)
        self._max_t.resize(n, _I64_MIN)

    @property
    def n(self) -> int:
        return self._shard.n

    # full buffers (not views): updated in place by index, e.g. np.minimum.at
    @property
    def shard(self) -> np.ndarray:
        return self._shard.buf

    @property
    def min_t(self) -> np.ndarray:
        return self._min_t.buf

    @property
    def max_t(self) -> np.ndarray:
        return self._max_t.buf


@dataclass
class _Segment:
    #: (namespace id, window start) -> last log position of a sample of that window here
    windows: dict[tuple[int, int], int] = field(default_factory=dict)


class Database:
    def __init__(self, directory: str | os.PathLike,
                 options: DatabaseOptions | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.options = options or DatabaseOptions()
        self.clock = clock
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_format()
        self._write_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._series = _SeriesColumns()
        self.index = SeriesIndex()
        self.registry = SeriesRegistry(self.directory, fsync=self.options.fsync)
        self.namespaces: dict[str, Namespace] = {}
        for ns_id, ns_opts in enumerate(self.options.namespaces):
            self.namespaces[ns_opts.name] = Namespace(
                ns_id, ns_opts, self.directory / "namespaces" / ns_opts.name / "blocks",
                self.options.shards, fsync=self.options.fsync)
        self._ns_by_id = list(self.namespaces.values())
        self.default_namespace = self._ns_by_id[0]
        self._segments: dict[int, _Segment] = {}
        self._flushed_upto: dict[tuple[int, int], int] = {}
        self._last_position = -1
        self.stats = {"replayed_records": 0, "replayed_samples": 0, "flushes": 0,
                      "flushed_blocks": 0, "expired_blocks": 0, "corrupt_records": 0}
        self._load_series()
        self._rebuild_time_bounds()
        self.commitlog = CommitLog(
            self.directory / "commitlog",
            segment_bytes=self.options.commitlog_segment_bytes,
            sync_interval=self.options.commitlog_sync_interval_s,
            fsync=self.options.fsync)
        self._replay()
        self._closed = False
        self._stop_flusher = threading.Event()
        self._flusher: threading.Thread | None = None

    def start_background_flush(self, interval_s: float = 10.0) -> None:
        """Seal complete windows, apply retention and truncate the commit log every
        ``interval_s`` seconds in a background thread (a server does this; tests call
        :meth:`flush`)."""
        if self._flusher is not None:
            return

        def loop() -> None:
            while not self._stop_flusher.wait(interval_s):
                try:
                    self.flush()
                except Exception:  # keep flushing later; the data is safe in the log
                    log.exception("background flush failed")

        self._flusher = threading.Thread(target=loop, name="tsdb-flush", daemon=True)
        self._flusher.start()

    # -- start-up ---------------------------------------------------------------------------

    def _check_format(self) -> None:
        path = self.directory / "tsdb.json"
        if path.exists():
            doc = json.loads(path.read_text())
            if doc.get("shards") != self.options.shards:
                raise ShardCountMismatch(
                    f"data directory {self.directory} was created with {doc.get('shards')} "
                    f"virtual shards but this start asks for {self.options.shards}; the shard "
                    "count is fixed when a data directory is created")
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": _FORMAT, "shards": self.options.shards}))
        os.replace(tmp, path)

    def _load_series(self) -> None:
        sids, keys = self.registry.load()
        sids = np.asarray(sids, np.int64)
        # a series can be registered twice when a crash came between the registry write and
        # the commit-log truncation that would have made the second write unnecessary
        _, first = np.unique(sids, return_index=True)
        if len(first) < len(sids):
            first.sort()
            sids, keys = sids[first], [keys[i] for i in first.tolist()]
        if len(sids):
            self._register(sids, keys, log_it=False)

    def _rebuild_time_bounds(self) -> None:
        s = self._series
        for ns in self._ns_by_id:
            for window, sids in ns.block_series():
                sids = sids[sids < s.n]
                s.min_t[sids] = np.minimum(s.min_t[sids], window)
                s.max_t[sids] = np.maximum(s.max_t[sids], window + ns.block_ms - 1)

    def _replay(self) -> None:
        for segment_id, rtype, payload in self.commitlog.replay():
            try:
                if rtype == records.SERIES:
                    sids, keys = records.decode_series(payload)
                    known = sids < self._series.n
                    if not known.all():
                        new = ~known
                        self._register(sids[new], [k for k, m in zip(keys, new, strict=True) if m],
                                       log_it=False, persist=True)
                elif rtype == records.SAMPLES:
                    ns_id, sid, t, v = records.decode_samples(payload)
                    if ns_id >= len(self._ns_by_id) or (len(sid) and sid.max() >= self._series.n):
                        raise records.BadRecord("samples record refers to unknown ids")
                    self._apply(self._ns_by_id[ns_id], sid, t, v, segment_id)
                    self.stats["replayed_samples"] += len(sid)
                else:
                    raise records.BadRecord(f"unknown record type {rtype}")
                self.stats["replayed_records"] += 1
            except records.BadRecord as exc:
                self.stats["corrupt_records"] += 1
                log.error("skipping unreadable commit-log record in segment %d: %s",
                          segment_id, exc)
        if self.stats["replayed_records"]:
            log.info("replayed %d commit-log records (%d samples)",
                     self.stats["replayed_records"], self.stats["replayed_samples"])

    # -- series -----------------------------------------------------------------------------

    def _register(self, sids: np.ndarray, keys: list[bytes], *, log_it: bool,
                  persist: bool = False) -> None:
        shards = np.fromiter((shard_of_key(k, self.options.shards) for k in keys),
                             dtype=np.uint16, count=len(keys))
        top = int(sids.max()) + 1
        self._series.grow(top)
        self._series.shard[sids] = shards
        self.index.add(sids, None, keys=keys)
        if log_it:
            self._last_position = self.commitlog.append(
                records.SERIES, *records.encode_series(sids, keys))
        if log_it or persist:
            self.registry.append(sids, keys)

    def series_ids(self, label_sets: Sequence[Labels]) -> np.ndarray:
        """Ids of the given (validated, sorted) label sets, creating missing series."""
        return self.series_ids_for_keys([labels_key(ls) for ls in label_sets])

    def series_ids_for_keys(self, keys: Sequence[bytes]) -> np.ndarray:
        """Ids for canonical label keys, creating missing series."""
        sids = np.asarray(self.index.lookup(keys), dtype=np.int64)
        if (sids >= 0).all():
            return sids
        with self._write_lock:
            sids = np.asarray(self.index.lookup(keys), dtype=np.int64)
            missing = np.flatnonzero(sids < 0)
            if len(missing):
                new_keys = list(dict.fromkeys(keys[i] for i in missing))
                new_sids = np.arange(self._series.n, self._series.n + len(new_keys))
                self._register(new_sids, new_keys, log_it=True)
                sids = np.asarray(self.index.lookup(keys), dtype=np.int64)
        return sids

    @property
    def series_count(self) -> int:
        return self._series.n

    def shard_of(self, sids: np.ndarray) -> np.ndarray:
        return self._series.shard[sids]

    # -- writes -----------------------------------------------------------------------------

    def _namespace(self, name: str | None) -> Namespace:
        if name is None:
            return self.default_namespace
        try:
            return self.namespaces[name]
        except KeyError:
            raise KeyError(f"unknown namespace {name!r}") from None

    def append(self, sids: np.ndarray, t: np.ndarray, v: np.ndarray,
               namespace: str | None = None) -> WriteResult:
        """Log and apply a batch without waiting for durability; ``result.position`` is what
        :meth:`wait_durable` (or the commit log's async wait) takes."""
        if self._closed:
            raise RuntimeError("database is closed")
        ns = self._namespace(namespace)
        sids = np.asarray(sids, np.int64)
        t = np.asarray(t, np.int64)
        v = np.asarray(v, np.float64)
        if not (len(sids) == len(t) == len(v)):
            raise ValueError("sids, timestamps and values must have the same length")
        result = WriteResult()
        if len(sids) and (sids.min() < 0 or sids.max() >= self._series.n):
            raise ValueError("write refers to unknown series ids")
        keep = self._accept_mask(ns, t, result)
        if keep is not None:
            sids, t, v = sids[keep], t[keep], v[keep]
        result.accepted = len(sids)
        if not len(sids):
            result.position = self._last_position
            return result
        with self._write_lock:
            position = self.commitlog.append(records.SAMPLES,
                                             *records.encode_samples(ns.id, sids, t, v))
            self._last_position = position
            self._apply(ns, sids, t, v, self.commitlog.current_segment_id, position)
        result.position = position
        return result

    def write(self, sids: np.ndarray, t: np.ndarray, v: np.ndarray,
              namespace: str | None = None) -> WriteResult:
        """Log and apply a batch; returns once the batch is durable."""
        result = self.append(sids, t, v, namespace)
        if result.accepted:
            self.commitlog.wait_durable(result.position)
        return result

    def wait_durable(self, position: int) -> None:
        self.commitlog.wait_durable(position)

    async def wait_durable_async(self, position: int) -> None:
        await self.commitlog.wait_durable_async(position)

    def _accept_mask(self, ns: Namespace, t: np.ndarray, result: WriteResult):
        now_ms = int(self.clock() * 1000)
        keep = None
        if ns.options.retention_ms:
            old = t < now_ms - ns.options.retention_ms
            if old.any():
                result.reject("too_old", int(old.sum()))
                keep = ~old
        future = t > now_ms + ns.options.future_limit_ms
        if future.any():
            result.reject("too_far_in_future", int(future.sum()))
            keep = ~future if keep is None else keep & ~future
        return keep

    def _apply(self, ns: Namespace, sid: np.ndarray, t: np.ndarray, v: np.ndarray,
               segment_id: int, position: int = -1) -> None:
        ns.append(sid, t, v)
        s = self._series
        np.minimum.at(s.min_t, sid, t)
        np.maximum.at(s.max_t, sid, t)
        windows = self._segments.setdefault(segment_id, _Segment()).windows
        first, last = int(t.min()) // ns.block_ms, int(t.max()) // ns.block_ms
        if first == last:
            windows[(ns.id, first * ns.block_ms)] = position
        else:
            for w in (np.unique(t // ns.block_ms) * ns.block_ms).tolist():
                windows[(ns.id, w)] = position

    # -- flush, retention, close ------------------------------------------------------------

    def flush(self, force: bool = False) -> int:
        """Seal complete windows (every head window when ``force``) into block files, drop
        expired blocks and remove commit-log segments that are fully flushed. Returns the
        number of block files written."""
        written = 0
        with self._flush_lock:
            for ns in self._ns_by_id:
                for window in ns.windows_to_flush(force):
                    with self._write_lock:
                        position = self._last_position
                        ns.take_window(window)
                    ns.flush_window(window, self._series.shard)
                    self._flushed_upto[(ns.id, window)] = position
                    written += 1
            self._apply_retention()
            self.registry.sync()
            self._truncate_commitlog()
            self.stats["flushes"] += 1
            self.stats["flushed_blocks"] += written
        if written:
            release_memory()  # encoding a window churns through large temporaries
        return written

    def _apply_retention(self) -> None:
        now_ms = int(self.clock() * 1000)
        for ns in self._ns_by_id:
            for window in ns.expired_windows(now_ms):
                ns.drop_window(window)
                self.stats["expired_blocks"] += 1
            if ns.options.retention_ms:
                ns.head.drop_before(now_ms - ns.options.retention_ms)

    def _expired(self, ns_id: int, window: int, now_ms: int) -> bool:
        ns = self._ns_by_id[ns_id]
        retention = ns.options.retention_ms
        return bool(retention) and window + ns.block_ms <= now_ms - retention

    def _truncate_commitlog(self) -> None:
        now_ms = int(self.clock() * 1000)
        with self._write_lock:
            current = self.commitlog.current_segment_id
            done = []
            for seg_id, seg in sorted(self._segments.items()):
                if seg_id >= current:
                    break
                # a window's samples here are on disk once it was flushed after the last
                # of them was logged (or the window has expired)
                if all(self._flushed_upto.get(key, -2) >= pos or self._expired(*key, now_ms)
                       for key, pos in seg.windows.items()):
                    done.append(seg_id)
                else:
                    break
            if done:
                self.commitlog.remove_segments_before(done[-1] + 1)
                for seg_id in done:
                    del self._segments[seg_id]

    def close(self) -> None:
        """Flush every head window to block files, sync and close the commit log. A clean
        close leaves an empty commit log, so the next start replays nothing."""
        if self._closed:
            return
        if self._flusher is not None:
            self._stop_flusher.set()
            self._flusher.join()
        self.flush(force=True)
        with self._write_lock:
            self.commitlog.rotate()
        self._truncate_commitlog()
        self.commitlog.close()
        self.registry.close()
        for ns in self._ns_by_id:
            ns.close()
        self._closed = True

    # -- reads ------------------------------------------------------------------------------

    def select_sids(self, matchers: Sequence[Matcher], start: int = _I64_MIN,
                    end: int = _I64_MAX) -> np.ndarray:
        """Sorted ids of the series matching every matcher with data in [start, end]."""
        sids = np.asarray(self.index.select(matchers), np.int64)
        s = self._series
        alive = (s.min_t[sids] <= end) & (s.max_t[sids] >= start)
        return sids[alive]

    def select(self, matchers: Sequence[Matcher], start: int, end: int,
               namespace: str | None = None) -> SeriesSet:
        """Samples of every matching series with start <= t <= end (inclusive), sorted
        and deduplicated per series."""
        ns = self._namespace(namespace)
        sids = self.select_sids(matchers, start, end)
        samples = ns.select(sids, self._series.shard, start, end) if len(sids) else \
            Samples.empty()
        present, offsets = series_offsets(samples.sid)
        return SeriesSet(present, self.index.labels_of(present), offsets, samples.t, samples.v)

    def label_names(self, matchers: Sequence[Matcher] = (), start: int = _I64_MIN,
                    end: int = _I64_MAX) -> list[str]:
        return self.index.label_names(self._alive(matchers, start, end))

    def label_values(self, name: str, matchers: Sequence[Matcher] = (),
                     start: int = _I64_MIN, end: int = _I64_MAX) -> list[str]:
        return self.index.label_values(name, self._alive(matchers, start, end))

    def series_labels(self, matchers: Sequence[Matcher], start: int = _I64_MIN,
                      end: int = _I64_MAX) -> list[Labels]:
        return self.index.labels_of(self.select_sids(matchers, start, end))

    def _alive(self, matchers: Sequence[Matcher], start: int, end: int) -> np.ndarray:
        if matchers:
            return self.select_sids(matchers, start, end)
        s = self._series
        alive = (s.min_t[: s.n] <= end) & (s.max_t[: s.n] >= start)
        return np.flatnonzero(alive)

    def disk_bytes(self) -> int:
        return sum(ns.disk_bytes() for ns in self._ns_by_id)

    def head_bytes(self) -> int:
        return sum(ns.head.nbytes() for ns in self._ns_by_id)

    def active_series(self, since_ms: int) -> int:
        """Series with a sample at or after ``since_ms``."""
        s = self._series
        return int(np.count_nonzero(s.max_t[: s.n] >= since_ms))
