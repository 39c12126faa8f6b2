"""Carbon payloads parsed in worker processes (or inline), answered as arrays.

The same design as the remote-write decoders (:mod:`tsdb.api.decode_workers`, whose process
and pipe handling this reuses): a worker takes a buffer of whole plaintext lines (or one
pickle message), parses it in bulk, looks every series name up in a cache of its own (name
bytes -> series id, taught the ids the engine assigns) and answers with the ids it knows,
the names it does not, the timestamps and values, and what it refused. The event loop only
resolves new names, appends and waits for the commit log.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tsdb.api.decode_workers import (
    _KeyCache,
    _pack_keys,
    _unpack_keys,
    _Worker,
    serve_jobs,
)
from tsdb.memtune import tune_allocator
from wire.carbon_pickle import PickleRefused, load, points
from wire.carbon_plaintext import CarbonBatch, parse_lines

log = logging.getLogger(__name__)

PLAIN, DATAGRAM, PICKLE = 1, 2, 3  # job kinds: TCP lines, UDP datagrams (joined), a pickle

# reply: u8 status | u32 n_points n_unknown n_json | known ids | ts | values | keys | json
_REPLY = struct.Struct("<BIII")
_OK, _REFUSED = 0, 1
PIPE_BUFFER = 4 << 20  # socket-pair send buffers: a payload usually goes in one send


@dataclass
class ParsedPayload:
    """A payload as the listener needs it."""

    known_ids: np.ndarray  # int64 per point: the series id, -1 where the parser did not know it
    unknown_keys: list[bytes]  # the names of the points where known_ids < 0, in order
    timestamps: np.ndarray
    values: np.ndarray
    rejected: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, bytes]] = field(default_factory=list)
    refused: str | None = None  # a pickle the reader refused: the connection is closed


def parse_payload(kind: int, body: bytes, lookup: Callable[[Sequence[bytes]], np.ndarray],
                  now_ms: int | None = None) -> ParsedPayload:
    """Parse one payload and look its names up (``lookup``: names -> ids or -1)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        if kind == PICKLE:
            batch = points(load(body), now_ms)
        else:
            batch = parse_lines(body, now_ms, datagram=kind == DATAGRAM)
    except PickleRefused as exc:
        return _refused(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not take the worker down
        log.exception("carbon: parsing a payload failed")
        return _refused(f"internal error: {exc!r}")
    return _with_ids(batch, lookup(batch.keys))


def _refused(why: str) -> ParsedPayload:
    return ParsedPayload(np.zeros(0, np.int64), [], np.zeros(0, np.int64), np.zeros(0),
                         refused=why)


def _with_ids(batch: CarbonBatch, known: np.ndarray) -> ParsedPayload:
    unknown = [batch.keys[i] for i in np.flatnonzero(known < 0).tolist()]
    return ParsedPayload(known, unknown, batch.timestamps, batch.values, batch.rejected,
                         batch.examples)


def encode_reply(parsed: ParsedPayload) -> list[bytes]:
    if parsed.refused is not None:
        message = parsed.refused.encode("utf-8")
        return [_REPLY.pack(_REFUSED, 0, 0, len(message)), message]
    extra = json.dumps({"rejected": parsed.rejected,
                        "examples": [[r, line.decode("utf-8", "backslashreplace")]
                                     for r, line in parsed.examples]}).encode("utf-8")
    n = len(parsed.known_ids)
    return [_REPLY.pack(_OK, n, len(parsed.unknown_keys), len(extra)),
            np.ascontiguousarray(parsed.known_ids, np.int64).tobytes(),
            np.ascontiguousarray(parsed.timestamps, np.int64).tobytes(),
            np.ascontiguousarray(parsed.values, np.float64).tobytes(),
            _pack_keys(parsed.unknown_keys), extra]


def decode_reply(data: bytes) -> ParsedPayload:
    status, n, n_unknown, n_extra = _REPLY.unpack_from(data)
    if status == _REFUSED:
        return _refused(data[_REPLY.size:].decode("utf-8"))
    view = memoryview(data)
    offset = _REPLY.size
    known = np.frombuffer(view, np.int64, n, offset)
    ts = np.frombuffer(view, np.int64, n, offset + 8 * n)
    values = np.frombuffer(view, np.float64, n, offset + 16 * n)
    unknown, offset = _unpack_keys(view, offset + 24 * n, n_unknown)
    extra = json.loads(bytes(view[offset:offset + n_extra]))
    examples = [(r, line.encode("utf-8", "surrogateescape")) for r, line in extra["examples"]]
    return ParsedPayload(known, unknown, ts, values, extra["rejected"], examples)


def worker_main(fd: int, _unused: int) -> None:
    """A carbon worker: payloads in, parsed arrays out, until the pipe closes."""
    tune_allocator()  # numpy temporaries of every payload: keep them in the heap
    cache = _KeyCache()
    serve_jobs(fd, cache,
               lambda kind, body: encode_reply(parse_payload(kind, bytes(body), cache.lookup)),
               send_buffer=PIPE_BUFFER)


class CarbonPool:
    """Worker processes parsing carbon payloads; each job goes to the least busy one."""

    def __init__(self, workers: int) -> None:
        self.size = workers
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        for _ in range(self.size):
            self._workers.append(await self._spawn())

    @staticmethod
    async def _spawn() -> _Worker:
        worker = _Worker(0, main="tsdb.api.carbon_workers:worker_main",
                         send_buffer=PIPE_BUFFER)
        await worker.start()
        return worker

    async def parse(self, kind: int, body: bytes) -> ParsedPayload:
        """Raises WorkerLost if the worker dies on the job."""
        for i, worker in enumerate(self._workers):
            if not worker.alive:
                self._workers[i] = await self._spawn()
        worker = min(self._workers, key=lambda w: len(w.pending))
        return decode_reply(await worker.submit(kind, body))

    def learn(self, pairs: Sequence[tuple[bytes, int]]) -> None:
        """Name ids the engine assigned: every worker gets them with its next job."""
        for worker in self._workers:
            worker.learn_backlog.extend(pairs)

    async def close(self) -> None:
        for worker in self._workers:
            await worker.close()
        self._workers = []
