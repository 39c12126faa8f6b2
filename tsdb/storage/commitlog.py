"""The node's append-only commit log: typed opaque records, numbered segments, group commit.

Byte layout: docs/format/commitlog.md. Appenders frame a record, write(2) it under a lock
and get a *position* (bytes written by this instance so far, headers included). One
background thread fsyncs whatever is unsynced and wakes every waiter whose position the
fsync covered, so one fsync acknowledges many requests. A crash leaves at most a torn tail,
which the next replay() detects by length/CRC32C, truncates and logs.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import heapq
import itertools
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from crc32c import crc32c as _crc

__all__ = ["CommitLog", "CommitLogClosed", "CommitLogError"]

logger = logging.getLogger(__name__)

MAGIC = b"TSDBCLOG"
VERSION = 1
_SEGMENT_HEAD = struct.Struct("<8sIQ")  # magic, version, segment id; then u32 CRC32C of these
SEGMENT_HEADER_SIZE = _SEGMENT_HEAD.size + 4
_RECORD_HEAD = struct.Struct("<IIB")  # CRC32C of everything after it, payload length, type
_LENGTH_TYPE = struct.Struct("<IB")
_U32 = struct.Struct("<I")
RECORD_HEADER_SIZE = _RECORD_HEAD.size
MAX_PAYLOAD = 0xFFFF_FFFF
_SEGMENT_NAME = re.compile(r"([0-9]{16})\.log")
_IOV_MAX = max(16, min(os.sysconf("SC_IOV_MAX"), 1024))

_UNWAITED_SYNC_DELAY = 0.01
_IDLE, _DIRTY, _GATHERING, _BUSY = range(4)  # syncer states

# Looked up at call time so tests can instrument the syscalls.
_fdatasync = getattr(os, "fdatasync", os.fsync)
_fsync_dir = os.fsync


class CommitLogError(RuntimeError):
    """The log cannot (or can no longer) accept or acknowledge writes."""


class CommitLogClosed(CommitLogError):
    """The log was closed."""


def segment_file_name(segment_id: int) -> str:
    return f"{segment_id:016d}.log"


def encode_segment_header(segment_id: int) -> bytes:
    head = _SEGMENT_HEAD.pack(MAGIC, VERSION, segment_id)
    return head + _U32.pack(_crc(head))


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """Runs in the waiters' event loop."""
    for fut in futures:
        if fut.done():  # cancelled meanwhile
            continue
        if error is None:
            fut.set_result(None)
        else:
            exc = CommitLogError(f"commit log fsync failed: {error}")
            exc.__cause__ = error
            fut.set_exception(exc)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError as exc:  # data was already fsynced (or the failure already reported)
        logger.warning("commit log: closing a segment failed: %s", exc)


def _write_all(fd: int, bufs: list[Any]) -> None:
    """writev() every buffer (bytes or byte-format memoryview), resuming after short writes."""
    while bufs:
        batch = bufs[:_IOV_MAX]
        written = os.writev(fd, batch)
        if written == 0:
            raise OSError(errno.EIO, "writev() wrote nothing")
        done = 0
        while done < len(batch) and written >= len(batch[done]):
            written -= len(batch[done])
            done += 1
        rest = bufs[done:]
        if written:
            rest[0] = memoryview(rest[0])[written:]
        bufs = rest


class CommitLog:
    """Append-only log of ``(record_type, payload)`` records in ``NNNNNNNNNNNNNNNN.log`` files.

    Lifecycle: construct, exhaust ``replay()`` (required when segments exist), then
    ``append``/``wait_durable`` from any thread or ``wait_durable_async`` from event loops,
    ``rotate``/``remove_segments_before`` to checkpoint, and ``close()``. A failed write or
    fsync is sticky: every later append raises, and waiters not covered by an earlier
    successful fsync raise. Only one instance may hold a directory (flock on it).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 128 << 20,
        sync_interval: float = 0.0,
        fsync: bool = True,
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        if sync_interval < 0:
            raise ValueError("sync_interval must be >= 0")
        self._dir = os.fspath(directory)
        self._segment_bytes = segment_bytes
        self._sync_interval = sync_interval
        self._fsync = fsync
        os.makedirs(self._dir, exist_ok=True)
        self._dir_fd = os.open(self._dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(self._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._dir_fd)
            raise CommitLogError(f"commit log directory {self._dir} is in use") from None

        self._lock = threading.Lock()
        self._work_cv = threading.Condition(self._lock)  # syncer waits for unsynced writes
        self._durable_cv = threading.Condition(self._lock)  # blocking waiters
        existing = self.segment_ids()
        self._next_id = existing[-1] + 1 if existing else 0
        self._replayed = not existing
        self._fd: int | None = None
        self._segment_id = -1
        self._segment_size = 0
        self._retired_fds: list[int] = []  # rotated-out segments; the syncer fsyncs + closes
        self._dir_dirty = False
        self._written = 0  # position after the last fully written record
        self._durable = 0  # position covered by the last successful fsync
        self._sync_now = False
        self._closing = False
        self._closed = False
        self._syncer_state = _BUSY
        self._unwaited_delay = max(sync_interval, _UNWAITED_SYNC_DELAY)
        self._blocking_waiters = 0
        self._write_error: BaseException | None = None
        self._sync_error: BaseException | None = None
        self._async_waiters: list[tuple[int, int, asyncio.AbstractEventLoop, Any]] = []
        self._waiter_seq = itertools.count()
        self._stats: dict[str, float] = {
            "fsyncs": 0,
            "fsync_seconds_last": 0.0,
            "fsync_seconds_total": 0.0,
            "fsync_seconds_max": 0.0,
            "records_appended": 0,
            "bytes_appended": 0,
            "segments_created": 0,
            "replay_records": 0,
            "replay_truncations": 0,
            "replay_bytes_discarded": 0,
        }
        self._syncer = threading.Thread(
            target=self._syncer_main, name=f"commitlog-syncer:{self._dir}", daemon=True
        )
        self._syncer.start()

    # ------------------------------------------------------------------ replay

    def replay(self) -> Iterator[tuple[int, int, memoryview | bytes]]:
        """(segment_id, record_type, payload) for every intact record of every segment, in
        order. Must be called (and exhausted) before the first append; opening for append
        starts a NEW segment. A torn or corrupt record ends that segment: the file is
        truncated there, a warning is logged, and replay continues with the next segment
        (never raises on corrupt data; a corrupt non-final segment is logged as an error).

        Payloads are memoryviews into the segment's read buffer: they stay valid, but keep
        that buffer (up to segment_bytes) alive, so copy whatever is retained long-term.
        OSError on reading is raised, never treated as corruption.
        """
        with self._lock:
            self._check_open()
            if self._segment_id >= 0:
                raise CommitLogError("replay() must run before the first append/rotate")
        return self._replay_all()

    def _replay_all(self) -> Iterator[tuple[int, int, memoryview | bytes]]:
        ids = self.segment_ids()
        for i, segment_id in enumerate(ids):
            yield from self._replay_segment(segment_id, is_last=i == len(ids) - 1)
        with self._lock:
            self._replayed = True
            if ids:
                self._next_id = max(self._next_id, ids[-1] + 1)

    def _replay_segment(
        self, segment_id: int, *, is_last: bool
    ) -> Iterator[tuple[int, int, memoryview]]:
        path = self._path(segment_id)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            logger.warning("commit log segment %s vanished during replay", path)
            return
        size = len(data)
        if size == 0:
            return  # created, crashed before the header was written
        problem = self._header_problem(data, segment_id)
        if problem:
            self._truncate(path, 0, size, problem, is_last=is_last)
            return
        view = memoryview(data)
        offset = SEGMENT_HEADER_SIZE
        records = 0
        while offset < size:
            if size - offset < RECORD_HEADER_SIZE:
                problem = "torn record header"
                break
            crc, length, record_type = _RECORD_HEAD.unpack_from(data, offset)
            end = offset + RECORD_HEADER_SIZE + length
            if end > size:
                problem = f"record of {length} payload bytes runs past the end of the file"
                break
            if _crc(view[offset + 4 : end]) != crc:
                problem = "record checksum mismatch"
                break
            records += 1
            yield segment_id, record_type, view[offset + RECORD_HEADER_SIZE : end]
            offset = end
        with self._lock:
            self._stats["replay_records"] += records
        if problem:
            self._truncate(path, offset, size, problem, is_last=is_last)

    @staticmethod
    def _header_problem(data: bytes, segment_id: int) -> str | None:
        if len(data) < SEGMENT_HEADER_SIZE:
            return "torn segment header"
        magic, version, header_id = _SEGMENT_HEAD.unpack_from(data)
        (crc,) = _U32.unpack_from(data, _SEGMENT_HEAD.size)
        if magic != MAGIC or crc != _crc(memoryview(data)[: _SEGMENT_HEAD.size]):
            return "bad segment header (magic or checksum)"
        if version != VERSION:
            # Intact header of a format we do not know: refuse rather than destroy it.
            raise CommitLogError(f"commit log segment {segment_id}: unsupported version {version}")
        if header_id != segment_id:
            logger.warning("commit log segment %d says it is segment %d", segment_id, header_id)
        return None

    def _truncate(self, path: str, offset: int, size: int, problem: str, *, is_last: bool) -> None:
        if is_last:
            logger.warning(
                "commit log %s: %s at offset %d; truncating (%d bytes discarded, expected "
                "after a crash)",
                path,
                problem,
                offset,
                size - offset,
            )
        else:
            logger.error(
                "commit log %s: %s at offset %d in a NON-FINAL segment; truncating and "
                "discarding %d bytes: records in them are LOST (disk corruption?)",
                path,
                problem,
                offset,
                size - offset,
            )
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, offset)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._stats["replay_truncations"] += 1
            self._stats["replay_bytes_discarded"] += size - offset

    # ------------------------------------------------------------------ writing

    def append(self, record_type: int, *payload_parts: bytes | memoryview) -> int:
        """Frame and write one record (write(2) to the OS, no fsync); thread-safe; returns the
        log position (monotonic int) the caller later waits on. Writes are ordered.

        Parts may be any C-contiguous buffer (bytes, memoryview, numpy array); they are
        written with one writev() and never copied by Python.
        """
        if not 0 <= record_type <= 0xFF:
            raise ValueError(f"record_type must fit in a byte, got {record_type}")
        bufs: list[Any] = [b""]  # [0] becomes the record header
        length = 0
        for part in payload_parts:
            if type(part) is not bytes:
                part = memoryview(part).cast("B")  # TypeError unless C-contiguous
            length += len(part)
            bufs.append(part)
        if length > MAX_PAYLOAD:
            raise ValueError(f"record payload of {length} bytes exceeds {MAX_PAYLOAD}")
        length_type = _LENGTH_TYPE.pack(length, record_type)
        crc = _crc(length_type)
        for part in bufs[1:]:
            crc = _crc(part, crc)
        bufs[0] = _U32.pack(crc) + length_type
        record_size = RECORD_HEADER_SIZE + length

        with self._lock:
            self._check_writable()
            if self._fd is None:
                self._open_segment()
            elif (
                self._segment_size > SEGMENT_HEADER_SIZE
                and self._segment_size + record_size > self._segment_bytes
            ):
                self._rotate_locked()
            try:
                _write_all(self._fd, bufs)  # type: ignore[arg-type]
            except BaseException as exc:
                self._fail_write(exc)
                raise CommitLogError(f"commit log write failed: {exc}") from exc
            self._segment_size += record_size
            self._written += record_size
            self._stats["records_appended"] += 1
            self._stats["bytes_appended"] += record_size
            if self._syncer_state == _IDLE:
                self._work_cv.notify()
            return self._written

    def rotate(self) -> int:
        """Close the current segment (its fsync follows in the next group commit), start a new
        one and return its id. Records appended afterwards go to the new segment."""
        with self._lock:
            self._check_writable()
            if self._fd is None:
                self._open_segment()
            else:
                self._rotate_locked()
            if self._syncer_state == _IDLE:
                self._work_cv.notify()
            return self._segment_id

    def _check_open(self) -> None:
        if self._closed:
            raise CommitLogClosed("commit log is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._sync_error is not None:
            raise CommitLogError(f"commit log fsync failed earlier: {self._sync_error}")
        if self._write_error is not None:
            raise CommitLogError(f"commit log write failed earlier: {self._write_error}")
        if not self._replayed:
            raise CommitLogError("replay() must be exhausted before the first append")

    def _rotate_locked(self) -> None:
        assert self._fd is not None
        self._retired_fds.append(self._fd)
        self._fd = None
        self._open_segment()

    def _open_segment(self) -> None:
        existing = self.segment_ids()
        segment_id = max(self._next_id, self._segment_id + 1, existing[-1] + 1 if existing else 0)
        path = self._path(segment_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except BaseException as exc:
            self._fail_write(exc)
            raise CommitLogError(f"cannot create commit log segment {path}: {exc}") from exc
        header = encode_segment_header(segment_id)
        try:
            _write_all(fd, [header])
        except BaseException as exc:
            os.close(fd)
            self._fail_write(exc)
            raise CommitLogError(f"cannot write commit log segment {path}: {exc}") from exc
        self._fd = fd
        self._segment_id = segment_id
        self._next_id = segment_id + 1
        self._segment_size = SEGMENT_HEADER_SIZE
        self._written += SEGMENT_HEADER_SIZE
        self._dir_dirty = True
        self._stats["segments_created"] += 1

    def _fail_write(self, exc: BaseException) -> None:
        """Make the failure sticky and cut a partial record off so the bytes already acknowledged
        stay a clean prefix (if the cut fails too, replay sees the rest as a torn tail)."""
        self._write_error = exc
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._segment_size)
                os.lseek(self._fd, self._segment_size, os.SEEK_SET)
            except OSError:
                logger.exception("commit log: cannot cut a partially written record")
        logger.error("commit log write failed; refusing further appends: %s", exc)

    # ------------------------------------------------------------------ durability

    def wait_durable(self, position: int, timeout: float | None = None) -> None:
        """Block until an fsync covered ``position``. Raises CommitLogError if the log failed
        before that, TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._check_position(position)
            if self._durable >= position:
                return
            self._blocking_waiters += 1
            try:
                self._wake_syncer_for_waiter()
                while self._durable < position:
                    if self._sync_error is not None:
                        raise CommitLogError(
                            f"commit log fsync failed: {self._sync_error}"
                        ) from self._sync_error
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"commit log position {position} not durable yet")
                    self._durable_cv.wait(remaining)
            finally:
                self._blocking_waiters -= 1

    async def wait_durable_async(self, position: int) -> None:
        """Like wait_durable, for asyncio: the syncer resolves a future in the caller's loop."""
        with self._lock:
            self._check_position(position)
            if self._durable >= position:
                return
            if self._sync_error is not None:
                raise CommitLogError(
                    f"commit log fsync failed: {self._sync_error}"
                ) from self._sync_error
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            heapq.heappush(self._async_waiters, (position, next(self._waiter_seq), loop, fut))
            self._wake_syncer_for_waiter()
        await fut

    def _check_position(self, position: int) -> None:
        if position > self._written:
            raise ValueError(f"position {position} was never written (at {self._written})")

    def sync(self) -> None:
        """Force an fsync of everything written so far (skipping sync_interval) and wait for
        it. Returns at once if nothing is unsynced."""
        with self._lock:
            target = self._written
            if target > self._durable:
                self._sync_now = True
                if self._syncer_state != _BUSY:
                    self._work_cv.notify()
        self.wait_durable(target)

    def _syncer_main(self) -> None:
        while True:
            with self._lock:
                if not self._wait_for_work():
                    break
                self._sync_now = False
                target = self._written
                retired, self._retired_fds = self._retired_fds, []
                current = self._fd
                dir_dirty, self._dir_dirty = self._dir_dirty, False

            error: BaseException | None = None
            started = time.perf_counter()
            try:
                if self._fsync:
                    for fd in retired:
                        _fdatasync(fd)
                    if current is not None:
                        _fdatasync(current)
                    if dir_dirty:  # new segment files: make their directory entries durable
                        _fsync_dir(self._dir_fd)
            except BaseException as exc:  # any failure must reach the waiters
                error = exc
            elapsed = time.perf_counter() - started
            for fd in retired:
                _close_quietly(fd)

            with self._lock:
                stats = self._stats
                stats["fsyncs"] += 1
                stats["fsync_seconds_last"] = elapsed
                stats["fsync_seconds_total"] += elapsed
                stats["fsync_seconds_max"] = max(stats["fsync_seconds_max"], elapsed)
                if error is None:
                    self._durable = target
                    settled = self._pop_async_waiters(target)
                else:
                    # After a failed fsync the page cache state is unknown: never retry, fail.
                    logger.error("commit log fsync failed; the log is now read-only: %s", error)
                    self._sync_error = error
                    settled = self._pop_async_waiters(None)
                self._durable_cv.notify_all()
            for loop, futures in settled.items():
                try:
                    loop.call_soon_threadsafe(_settle, futures, error)
                except RuntimeError:  # that loop is closed; nobody is waiting any more
                    pass
            if error is not None:
                return

    def _wait_for_work(self) -> bool:
        """Under the lock: block until a sync round is due; False once closing and all synced.

        A round is due at once when someone waits (wait_durable, wait_durable_async, sync) or
        the log closes, then gathers for sync_interval. Writes nobody waits for yet are synced
        after max(sync_interval, 10 ms): appends alone do not wake this thread per append
        (each wake-up costs the appending thread a GIL hand-off).
        """
        dirty_since = None
        while True:
            if self._written == self._durable:
                if self._closing:
                    return False
                dirty_since = None
                self._syncer_state = _IDLE
                self._work_cv.wait()
                continue
            if self._closing or self._sync_now or self._blocking_waiters or self._async_waiters:
                break
            now = time.monotonic()
            if dirty_since is None:
                dirty_since = now
            remaining = dirty_since + self._unwaited_delay - now
            if remaining <= 0:
                self._syncer_state = _BUSY
                return True
            self._syncer_state = _DIRTY
            self._work_cv.wait(remaining)
        if self._sync_interval > 0 and not self._sync_now and not self._closing:
            self._syncer_state = _GATHERING
            self._work_cv.wait_for(lambda: self._sync_now or self._closing, self._sync_interval)
        self._syncer_state = _BUSY
        return True

    def _wake_syncer_for_waiter(self) -> None:
        if self._syncer_state in (_IDLE, _DIRTY):
            self._work_cv.notify()

    def _pop_async_waiters(
        self, upto: int | None
    ) -> dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]]:
        """Remove the async waiters covered by ``upto`` (all if None), grouped by loop so that
        each loop gets one call_soon_threadsafe per fsync."""
        waiters = self._async_waiters
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        while waiters and (upto is None or waiters[0][0] <= upto):
            _, _, loop, fut = heapq.heappop(waiters)
            by_loop.setdefault(loop, []).append(fut)
        return by_loop

    # ------------------------------------------------------------------ segments

    def _path(self, segment_id: int) -> str:
        return os.path.join(self._dir, segment_file_name(segment_id))

    def segment_ids(self) -> list[int]:
        """Ids of the segment files in the directory, ascending."""
        ids = []
        for name in os.listdir(self._dir):
            m = _SEGMENT_NAME.fullmatch(name)
            if m:
                ids.append(int(m.group(1)))
        ids.sort()
        return ids

    @property
    def current_segment_id(self) -> int:
        """The segment appends go to (or the one the first append will create)."""
        with self._lock:
            return self._segment_id if self._fd is not None else self._next_id

    def remove_segments_before(self, segment_id: int) -> list[int]:
        """Delete segments with id < ``segment_id`` (never the one being written); returns the
        ids removed. Call once everything they hold is persisted elsewhere (flushed blocks)."""
        with self._lock:
            self._check_open()
            if self._fd is not None:
                segment_id = min(segment_id, self._segment_id)
        removed = []
        for old in self.segment_ids():
            if old >= segment_id:
                break
            try:
                os.unlink(self._path(old))
            except FileNotFoundError:
                continue
            removed.append(old)
        if removed and self._fsync:
            _fsync_dir(self._dir_fd)
        return removed

    # ------------------------------------------------------------------ misc

    def stats(self) -> dict[str, float]:
        """Counters for metrics. ``fsyncs`` counts group commits (each syncs every dirty
        segment; with fsync=False the syscalls are skipped but the rounds still counted)."""
        with self._lock:
            out = dict(self._stats)
            out["written_position"] = self._written
            out["durable_position"] = self._durable
            out["segment_id"] = self._segment_id
            out["async_waiters"] = len(self._async_waiters)
            return out

    def close(self) -> None:
        """Sync everything written, stop the syncer, close files. Idempotent. Raises
        CommitLogError (once) if the final fsync failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            self._work_cv.notify_all()
        self._syncer.join()
        with self._lock:
            fds = self._retired_fds + ([self._fd] if self._fd is not None else [])
            self._retired_fds, self._fd = [], None
            unsynced = self._written > self._durable
            error = self._sync_error
            settled = self._pop_async_waiters(None)
            self._durable_cv.notify_all()
        for loop, futures in settled.items():
            try:
                loop.call_soon_threadsafe(
                    _settle, futures, error or OSError(errno.EIO, "commit log closed")
                )
            except RuntimeError:
                pass
        for fd in fds:
            _close_quietly(fd)
        os.close(self._dir_fd)  # releases the flock
        if unsynced and error is not None:
            raise CommitLogError(f"commit log closed with unsynced writes: {error}") from error

    def __enter__(self) -> CommitLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
