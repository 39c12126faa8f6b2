"""Remote-write bodies decoded in worker processes, so that ingest uses more than one core.

The event loop spends most of a remote-write request in snappy, protobuf and the series-key
lookup, all CPU work in Python that holds the GIL. Each worker process takes a compressed
body, decompresses and decodes it, and looks its series keys up in a cache of its own
(raw label bytes -> series id). It answers with numpy arrays: the series id of each known
key, the bytes of the keys it does not know, and the samples. The event loop then only
resolves the unknown keys (the engine assigns ids), appends to the engine and waits for the
commit log, exactly as for an inline decode: durability and per-connection ordering are
unchanged, since a request is answered only after its own append is durable.

Ids learned by the event loop are sent to every worker with its next job, so after the
first scrape a worker knows every series. A worker that dies is replaced; its jobs fail
with :class:`WorkerLost` (the handler answers 503 and Prometheus retries).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from tsdb.memtune import tune_allocator
from wire.errors import BodyTooLarge, WireError
from wire.remote_write import MetadataEntry, decode_write_request
from wire.remote_write_v2 import decode_write_request_v2
from wire.snappy_block import decompress_block

log = logging.getLogger(__name__)

_MAX_CACHED = 4_000_000  # keys per worker; beyond this its cache restarts

# job:   u8 proto (1 = 1.0, 2 = 2.0) | u32 n_learned | learned keys | body
# reply: u8 status | u32 n_series n_samples n_unknown histograms exemplars metadata | arrays
_JOB = struct.Struct("<BI")
_REPLY = struct.Struct("<BIIIIII")
_OK, _BAD, _TOO_LARGE = 0, 1, 2
PROTO_V1, PROTO_V2 = 1, 2


class WorkerLost(RuntimeError):
    """The worker decoding a body died before answering."""


@dataclass
class DecodedBody:
    """A decoded request as the write handler needs it."""

    known_ids: np.ndarray  # int64 per series key: the worker's id, -1 if it did not know it
    unknown_keys: list[bytes]  # the keys where known_ids < 0, in order
    sample_series: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    histograms: int
    exemplars: int
    metadata: int
    metadata_entries: list[MetadataEntry] = field(default_factory=list)


# --- the two ends of a pipe: byte layouts ------------------------------------------------


def _pack_keys(keys: Sequence[bytes]) -> bytes:
    lengths = np.fromiter(map(len, keys), dtype=np.uint32, count=len(keys))
    return lengths.tobytes() + b"".join(keys)


def _unpack_keys(data: memoryview, offset: int, n: int) -> tuple[list[bytes], int]:
    """The keys :func:`_pack_keys` wrote at ``offset``, and the offset after them."""
    lengths = np.frombuffer(data, np.uint32, n, offset)
    offset += 4 * n
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    total = ends[-1] if n else 0
    blob = bytes(data[offset:offset + total])
    keys = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    return keys, offset + total


def encode_job(proto: int, body: bytes, learned: Sequence[tuple[bytes, int]]) -> list[bytes]:
    keys = [k for k, _ in learned]
    ids = np.fromiter((i for _, i in learned), dtype=np.int64, count=len(learned))
    return [_JOB.pack(proto, len(learned)), ids.tobytes(), _pack_keys(keys), body]


def decode_job(data: memoryview) -> tuple[int, list[tuple[bytes, int]], memoryview]:
    proto, n = _JOB.unpack_from(data)
    offset = _JOB.size
    ids = np.frombuffer(data, np.int64, n, offset).tolist()
    keys, offset = _unpack_keys(data, offset + 8 * n, n)
    return proto, list(zip(keys, ids, strict=True)), data[offset:]


def encode_reply(known_ids: np.ndarray, keys: Sequence[bytes], sample_series: np.ndarray,
                 timestamps: np.ndarray, values: np.ndarray, histograms: int, exemplars: int,
                 metadata: int, metadata_entries: Sequence[MetadataEntry] = ()) -> list[bytes]:
    unknown = [keys[i] for i in np.flatnonzero(known_ids < 0).tolist()]
    head = _REPLY.pack(_OK, len(known_ids), len(timestamps), len(unknown), histograms,
                       exemplars, metadata)
    return [head, np.ascontiguousarray(known_ids, np.int64).tobytes(),
            np.ascontiguousarray(sample_series, np.int64).tobytes(),
            np.ascontiguousarray(timestamps, np.int64).tobytes(),
            np.ascontiguousarray(values, np.float64).tobytes(), _pack_keys(unknown),
            json.dumps(metadata_entries).encode("utf-8") if metadata_entries else b""]


def encode_error(status: int, message: str) -> list[bytes]:
    return [_REPLY.pack(status, 0, 0, 0, 0, 0, 0), message.encode("utf-8")]


def decode_reply(data: bytes) -> DecodedBody:
    """The worker's answer; raises the WireError / BodyTooLarge it reported."""
    status, n_series, n_samples, n_unknown, hist, exem, meta = _REPLY.unpack_from(data)
    if status == _TOO_LARGE:
        size, limit, what = data[_REPLY.size:].decode("utf-8").split(" ", 2)
        raise BodyTooLarge(int(size), int(limit), what)
    if status == _BAD:
        raise WireError(data[_REPLY.size:].decode("utf-8"))
    view = memoryview(data)
    offset = _REPLY.size
    known = np.frombuffer(view, np.int64, n_series, offset)
    offset += 8 * n_series
    series = np.frombuffer(view, np.int64, n_samples, offset)
    ts = np.frombuffer(view, np.int64, n_samples, offset + 8 * n_samples)
    vals = np.frombuffer(view, np.float64, n_samples, offset + 16 * n_samples)
    offset += 24 * n_samples
    unknown, offset = _unpack_keys(view, offset, n_unknown)
    entries = [tuple(e) for e in json.loads(bytes(view[offset:]))] if len(view) > offset else []
    return DecodedBody(known, unknown, series, ts, vals, hist, exem, meta, entries)


# --- worker process -------------------------------------------------------------------------


class _KeyCache:
    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}

    def lookup(self, keys: Sequence[bytes]) -> np.ndarray:
        return np.fromiter(map(self.ids.get, keys, repeat(-1)), dtype=np.int64,
                           count=len(keys))

    def learn(self, pairs: Sequence[tuple[bytes, int]]) -> None:
        if len(self.ids) + len(pairs) > _MAX_CACHED:
            self.ids.clear()
        self.ids.update(pairs)


def decode_body(cache: _KeyCache, proto: int, body: bytes | memoryview,
                max_decoded: int) -> list[bytes]:
    """One job, as the worker runs it: the reply's parts."""
    try:
        raw = decompress_block(bytes(body), max_decoded=max_decoded)
        if proto == PROTO_V1:
            batch = decode_write_request(raw, key_ids=cache.lookup)
            known = batch.key_ids
        else:
            batch = decode_write_request_v2(raw)
            known = cache.lookup(batch.series_keys)
    except BodyTooLarge as exc:
        return encode_error(_TOO_LARGE, f"{exc.size} {exc.limit} {exc.what}")
    except WireError as exc:
        return encode_error(_BAD, str(exc))
    assert known is not None
    return encode_reply(known, batch.series_keys, batch.sample_series, batch.timestamps,
                        batch.values, batch.histograms, batch.exemplars, batch.metadata,
                        batch.metadata_entries)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError
        got += k
    return bytes(buf)


def _frame(parts: Sequence[bytes]) -> list[bytes]:
    """A message on the pipe: its size (big-endian i32, or -1 then u64) and the parts."""
    size = sum(map(len, parts))
    header = struct.pack("!i", size) if size < 0x7FFFFFFF else struct.pack("!iQ", -1, size)
    return [header, *parts]


def serve_jobs(fd: int, cache: _KeyCache,
               handle: Callable[[int, memoryview], Sequence[bytes]],
               send_buffer: int | None = None) -> None:
    """A worker's life (remote-write decode and carbon parse workers alike): jobs in, the
    key ids they teach learned, replies out, until the server closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing the pipe
    sock = socket.socket(fileno=fd)
    if send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    while True:
        try:
            (size,) = struct.unpack("!i", _recv_exactly(sock, 4))
            if size == -1:
                (size,) = struct.unpack("!Q", _recv_exactly(sock, 8))
            data = _recv_exactly(sock, size)
        except (EOFError, ConnectionError):
            return
        kind, learned, body = decode_job(memoryview(data))
        if learned:
            cache.learn(learned)
        sock.sendall(b"".join(_frame(handle(kind, body))))


def worker_main(fd: int, max_decoded: int) -> None:
    """A remote-write decode worker."""
    tune_allocator()
    cache = _KeyCache()
    serve_jobs(fd, cache, lambda proto, body: decode_body(cache, proto, body, max_decoded))


# --- event-loop side --------------------------------------------------------------------------


class _Worker:
    """One process and its pipe; jobs are answered in the order they were sent."""

    def __init__(self, max_decoded: int, main: str = "tsdb.api.decode_workers:worker_main",
                 send_buffer: int | None = None) -> None:
        # A plain child process (not multiprocessing: no resource-tracker process, nothing
        # pickled) that runs ``main`` (module:function, by default worker_main; the carbon
        # listeners use their own) on its end of a socket pair.
        here, there = socket.socketpair()
        if send_buffer:  # large jobs go out in one send (the kernel caps it at wmem_max)
            here.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        module, function = main.split(":")
        code = (f"import sys; from {module} import {function}; "
                f"{function}(int(sys.argv[1]), int(sys.argv[2]))")
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(there.fileno()), str(max_decoded)],
            pass_fds=(there.fileno(),), stdin=subprocess.DEVNULL)
        there.close()
        self._sock = here
        self._sock.setblocking(False)
        self.pending: deque[asyncio.Future[bytes]] = deque()
        self.learn_backlog: list[tuple[bytes, int]] = []
        self.alive = True
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock,
                                                                   limit=1 << 20)
        self._reading = asyncio.create_task(self._read_replies())

    async def submit(self, proto: int, body: bytes) -> bytes:
        assert self._writer is not None
        learned, self.learn_backlog = self.learn_backlog, []
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self._writer.writelines(_frame(encode_job(proto, body, learned)))
        await self._writer.drain()
        return await future

    async def _read_replies(self) -> None:
        assert self._reader is not None
        try:
            while True:
                (size,) = struct.unpack("!i", await self._reader.readexactly(4))
                if size == -1:
                    (size,) = struct.unpack("!Q", await self._reader.readexactly(8))
                data = await self._reader.readexactly(size)
                future = self.pending.popleft()
                if not future.done():
                    future.set_result(data)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.alive = False
            while self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_exception(WorkerLost("remote-write decode worker died"))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()
        if self._reading is not None:
            await asyncio.wait([self._reading], timeout=5)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.process.wait, 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class DecodePool:
    """Worker processes that decode remote-write bodies; jobs go to the least busy one."""

    def __init__(self, workers: int, max_decoded: int) -> None:
        self.size = workers
        self.max_decoded = max_decoded
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        for _ in range(self.size):
            worker = _Worker(self.max_decoded)
            await worker.start()
            self._workers.append(worker)

    async def decode(self, proto: int, body: bytes) -> DecodedBody:
        worker = await self._pick()
        return decode_reply(await worker.submit(proto, body))

    def learn(self, pairs: Sequence[tuple[bytes, int]]) -> None:
        """Key ids the engine assigned: every worker gets them with its next job."""
        for worker in self._workers:
            worker.learn_backlog.extend(pairs)

    async def _pick(self) -> _Worker:
        for i, worker in enumerate(self._workers):
            if not worker.alive:
                log.error("a remote-write decode worker died (exit code %s); starting another",
                          worker.process.poll())
                replacement = _Worker(self.max_decoded)
                self._workers[i] = replacement
                await replacement.start()
        return min(self._workers, key=lambda w: len(w.pending))

    async def close(self) -> None:
        for worker in self._workers:
            await worker.close()
        self._workers = []
