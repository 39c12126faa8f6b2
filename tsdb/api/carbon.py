"""Carbon listeners: plaintext over TCP and UDP, pickle over TCP, batched into the engine.

Every payload (the whole lines of a TCP read, a few coalesced datagrams, one pickle message)
is parsed in bulk by a worker process (:mod:`tsdb.api.carbon_workers`; inline when there are
none); the event loop resolves names new to the workers, and adds the points to a batch
that is appended to the engine (commit log, then head) every ``FLUSH_INTERVAL_S`` or every
``FLUSH_POINTS`` points, whichever comes first: one ``Database.append`` per batch, never
one per line. Points are counted as ingested once their batch is durable.

Carbon answers nothing: a bad line is counted (``tsdb_carbon_lines_rejected_total``),
logged at most every few seconds per reason, and skipped; the connection stays open. A
pickle message the reader refuses (an opcode outside the data-only subset, a bad shape, a
frame over the limit) closes its connection, with an error logged. While the engine's head
is over its memory budget, or too many points wait for the commit log, the TCP listeners
stop reading (pushing back on the senders) and datagrams are dropped (and counted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np

from tsdb.api.carbon_resolver import CarbonResolver
from tsdb.api.carbon_workers import (
    DATAGRAM,
    PICKLE,
    PLAIN,
    CarbonPool,
    ParsedPayload,
    parse_payload,
)
from tsdb.api.decode_workers import WorkerLost
from tsdb.api.metrics import Metrics
from tsdb.storage.database import Database
from wire.carbon_pickle import FRAME_HEADER, MAX_FRAME
from wire.carbon_plaintext import LINE_TOO_LONG, NAN_VALUE, LineBuffer

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.1
FLUSH_POINTS = 100_000
READ_SIZE = 4 << 20  # bytes a TCP connection buffers before it stops reading (one payload)
MAX_INFLIGHT = 2  # payloads of one connection being parsed at once (kept in order)
MAX_UNDURABLE = 2_000_000  # points appended but not yet durable before reading pauses
DATAGRAM_DELAY_S = 0.02  # datagrams are coalesced this long (or up to READ_SIZE bytes)
INVALID_NAME = "invalid_name"
INVALID_PICKLE = "invalid_pickle"  # a whole message; its connection is closed
PICKLE_TOO_LARGE = "pickle_too_large"
DATAGRAM_DROPPED = "udp_overload"  # a datagram dropped while parsing lags behind


class _Refused(Exception):
    """A payload refused as a whole (a pickle the reader refuses)."""


class LogLimiter:
    """At most one warning per key every ``every_s`` seconds; the rest are counted."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        log.warning("%s%s", message, f" ({skipped} more like it not logged)" if skipped else "")


class WriteBatcher:
    """Points from every carbon connection, appended to the engine in batches."""

    def __init__(self, db: Database, metrics: Metrics, head_limit_bytes: int,
                 max_points: int = FLUSH_POINTS, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.db = db
        self.metrics = metrics
        self.head_limit_bytes = head_limit_bytes
        self.max_points = max_points
        self.interval_s = interval_s
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending = 0  # points waiting for the next append
        self.undurable = 0  # points appended, commit log not yet synced
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: set[asyncio.Task[None]] = set()
        self._ingested = metrics.samples_ingested.labels("carbon")

    def add(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        if not len(sids):
            return
        self._parts.append((sids, ts, values))
        self.pending += len(sids)
        if self.pending >= self.max_points:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        parts, self._parts, self.pending = self._parts, [], 0
        sids, ts, values = (np.concatenate(column) for column in zip(*parts, strict=True))
        result = self.db.append(sids, ts, values)
        for reason, count in result.rejected.items():
            self.metrics.samples_rejected.labels(reason).inc(count)
        if result.accepted:
            self.undurable += result.accepted
            task = asyncio.create_task(self._count_when_durable(result.position,
                                                                result.accepted))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    async def _count_when_durable(self, position: int, accepted: int) -> None:
        try:
            await self.db.wait_durable_async(position)
            self._ingested.inc(accepted)
        finally:
            self.undurable -= accepted

    def full(self) -> bool:
        """Too many points wait for the commit log, or the head is over its budget."""
        return (self.undurable > MAX_UNDURABLE
                or self.db.head_bytes() > self.head_limit_bytes)

    async def room(self) -> None:
        """Returns when the listeners may read more (see the module doc)."""
        while self.full():
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self.flush()
        if self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, ingest: CarbonIngest) -> None:
        self.ingest = ingest

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.ingest.on_datagram(data, addr)


class _PlaintextConnection(asyncio.Protocol):
    """Reads of one plaintext TCP connection, handed over as lists of chunks (no stream
    buffer copying them around); reading pauses while READ_SIZE bytes wait."""

    def __init__(self, ingest: CarbonIngest) -> None:
        self.ingest = ingest
        self.transport: asyncio.Transport | None = None
        self.source = "?"
        self._chunks: list[bytes] = []
        self._size = 0
        self._eof = False
        self._paused = False
        self._wakeup = asyncio.Event()
        self.stopped = False  # the server stops: what is read is stored, a partial line not

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.source = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.ingest.track(asyncio.ensure_future(self.ingest.serve_plaintext(self)))

    def stop(self) -> None:
        """Read no more; the handler stores what was read and ends."""
        if self.transport is not None and not self._eof:
            self.transport.pause_reading()
        self.stopped = self._eof = True
        self._wakeup.set()

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= READ_SIZE and not self._paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self._paused = True
        self._wakeup.set()

    def eof_received(self) -> bool:
        self._eof = True
        self._wakeup.set()
        return True  # we close once everything read is stored

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wakeup.set()

    async def next_chunks(self, parsing: asyncio.Future | None) -> tuple[list[bytes], bool]:
        """The reads since the last call and whether the stream ended, once there is a read,
        the end, or ``parsing`` (the oldest payload in flight) is done."""
        if parsing is not None:
            parsing.add_done_callback(lambda _: self._wakeup.set())
        while not self._chunks and not self._eof and not (parsing and parsing.done()):
            self._wakeup.clear()
            await self._wakeup.wait()
        chunks, self._chunks, self._size = self._chunks, [], 0
        if self._paused and self.transport is not None and not self._eof:
            self.transport.resume_reading()
            self._paused = False
        return chunks, self._eof

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class CarbonIngest:
    """The carbon listeners of one server over one engine."""

    def __init__(self, db: Database, metrics: Metrics, head_limit_bytes: int,
                 pool: CarbonPool | None = None) -> None:
        self.db = db
        self.metrics = metrics
        self.pool = pool
        self.resolver = CarbonResolver(db)
        self.batcher = WriteBatcher(db, metrics, head_limit_bytes)
        self.logs = LogLimiter()
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._handlers: set[asyncio.Task] = set()
        self._connections: set[_PlaintextConnection] = set()
        self._pickle_streams: dict[asyncio.Task, tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]] = {}
        self._datagrams: list[bytes] = []
        self._datagram_flushes = 0
        self._datagram_bytes = 0
        self._datagram_timer: asyncio.TimerHandle | None = None
        self._rejected = metrics.carbon_rejected

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, plaintext: tuple[str, int] | None,
                    pickle: tuple[str, int] | None) -> None:
        """Listen: plaintext on TCP and UDP at ``plaintext``, pickle on TCP at ``pickle``."""
        loop = asyncio.get_running_loop()
        if plaintext is not None:
            host, port = plaintext
            self._servers.append(await loop.create_server(
                lambda: _PlaintextConnection(self), host, port, reuse_address=True,
                backlog=1024))
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(host, port))
            log.info("carbon plaintext on %s:%d (TCP and UDP)", host, port)
        if pickle is not None:
            host, port = pickle
            self._servers.append(await asyncio.start_server(
                self._tracked(self._serve_pickle), host, port, limit=MAX_FRAME + 4,
                reuse_address=True, backlog=1024))
            log.info("carbon pickle on %s:%d", host, port)

    def track(self, task: asyncio.Task) -> None:
        """A task :meth:`close` waits for (a connection's handler, a datagram parse)."""
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _tracked(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                         Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """A stream handler registered for :meth:`close`, closing its connection at the end."""
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            self._pickle_streams[task] = (reader, writer)
            try:
                await handler(reader, writer)
            finally:
                self._handlers.discard(task)
                self._pickle_streams.pop(task, None)
                writer.close()
        return run

    async def close(self, timeout: float = 10.0) -> None:
        """Stop listening and reading, store what was read (for up to ``timeout`` s; a
        partial line or pickle frame is dropped), and wait until it is durable."""
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp.close()
        for conn in list(self._connections):
            conn.stop()
        for task, (reader, writer) in list(self._pickle_streams.items()):
            writer.transport.pause_reading()
            reader.feed_eof()  # its handler ends at the next frame
            del self._pickle_streams[task]
        if self._handlers:
            _, late = await asyncio.wait(list(self._handlers), timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        await self._flush_datagrams()
        await self.batcher.close()

    # -- parsing and storing ---------------------------------------------------------------

    async def _parse(self, kind: int, body: bytes) -> ParsedPayload:
        if self.pool is not None:
            return await self.pool.parse(kind, body)
        return parse_payload(kind, body, self.resolver.lookup)

    def _reject(self, reason: str, count: int, example: str | None = None) -> None:
        self._rejected.labels(reason).inc(count)
        if example is not None and reason != NAN_VALUE:
            self.logs.warning(reason, example)

    def _store(self, parsed: ParsedPayload, source: str) -> None:
        """Count what the parser refused, resolve new names, hand the points to the batch.
        Raises _Refused for a payload refused as a whole (its connection is closed)."""
        if parsed.refused is not None:
            raise _Refused(parsed.refused)
        for reason, count in parsed.rejected.items():
            shown = [line for r, line in parsed.examples if r == reason]
            self._reject(reason, count, f"carbon: {count} line(s) from {source} refused "
                         f"({reason}), e.g. {shown[0]!r}" if shown else None)
        sids = parsed.known_ids
        ts, values = parsed.timestamps, parsed.values
        if parsed.unknown_keys:
            created, learned, invalid = self.resolver.resolve(parsed.unknown_keys)
            if learned and self.pool is not None:
                self.pool.learn(learned)
            sids = sids.copy()
            sids[sids < 0] = created
            if invalid:
                valid = sids >= 0
                name, why = next(iter(invalid.items()))
                bad = len(valid) - int(np.count_nonzero(valid))
                self._reject(INVALID_NAME, bad, f"carbon: {bad} point(s) from {source} with "
                             f"an invalid series name refused, e.g. {name[:200]!r}: {why}")
                sids, ts, values = sids[valid], ts[valid], values[valid]
        self.batcher.add(sids, ts, values)

    # -- plaintext over TCP -----------------------------------------------------------------

    async def serve_plaintext(self, conn: _PlaintextConnection) -> None:
        """One plaintext TCP connection: whole lines out of its reads, parsed (at most
        MAX_INFLIGHT payloads at once) and stored in order."""
        self.metrics.carbon_connections.labels("plaintext").inc()
        self._connections.add(conn)
        lines = LineBuffer()
        inflight: deque[asyncio.Future[ParsedPayload]] = deque()
        try:
            while True:
                await self.batcher.room()
                chunks, eof = await conn.next_chunks(inflight[0] if inflight else None)
                chunk, dropped = lines.feed(chunks)
                if eof and not conn.stopped:
                    chunk += lines.flush()
                if dropped:
                    self._reject(LINE_TOO_LONG, dropped, f"carbon: a line from {conn.source} "
                                 f"is longer than {lines.max_line} bytes; dropped")
                if chunk:
                    inflight.append(asyncio.ensure_future(self._parse(PLAIN, chunk)))
                while inflight and (eof or len(inflight) >= MAX_INFLIGHT
                                    or inflight[0].done()):
                    self._store(await inflight.popleft(), conn.source)
                if eof:
                    return
        except (ConnectionError, WorkerLost) as exc:
            log.warning("carbon: connection from %s ended: %s", conn.source, exc)
        except _Refused as exc:
            log.error("carbon: closing the connection from %s: %s", conn.source, exc)
        finally:
            for future in inflight:
                future.cancel()
            self._connections.discard(conn)
            conn.close()

    # -- plaintext over UDP -----------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: tuple) -> None:
        if not data:
            return
        if self._datagram_flushes >= MAX_INFLIGHT * 2 or self.batcher.full():
            self._reject(DATAGRAM_DROPPED, 1, "carbon: UDP datagrams arrive faster than they "
                         "are parsed and stored; dropping some")
            return
        self._datagrams.append(data if data.endswith(b"\n") else data + b"\n")
        self._datagram_bytes += len(data) + 1
        if self._datagram_bytes >= READ_SIZE:
            self._spawn_datagram_flush()
        elif self._datagram_timer is None:
            self._datagram_timer = asyncio.get_running_loop().call_later(
                DATAGRAM_DELAY_S, self._spawn_datagram_flush)

    def _spawn_datagram_flush(self) -> None:
        self.track(asyncio.ensure_future(self._flush_datagrams()))

    async def _flush_datagrams(self) -> None:
        if self._datagram_timer is not None:
            self._datagram_timer.cancel()
            self._datagram_timer = None
        if not self._datagrams:
            return
        body = b"".join(self._datagrams)
        self._datagrams, self._datagram_bytes = [], 0
        self._datagram_flushes += 1
        try:
            self._store(await self._parse(DATAGRAM, body), "UDP")
        except (WorkerLost, _Refused) as exc:
            log.warning("carbon: datagrams lost: %s", exc)
        finally:
            self._datagram_flushes -= 1

    # -- pickle over TCP --------------------------------------------------------------------

    async def _serve_pickle(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        source = _peer(writer)
        self.metrics.carbon_connections.labels("pickle").inc()
        try:
            while True:
                await self.batcher.room()
                try:
                    head = await reader.readexactly(FRAME_HEADER.size)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        log.error("carbon pickle: %s closed inside a frame header", source)
                    return
                (size,) = FRAME_HEADER.unpack(head)
                if size > MAX_FRAME:
                    self._rejected.labels(PICKLE_TOO_LARGE).inc()
                    log.error("carbon pickle: %s announced a message of %d bytes (limit %d); "
                              "closing the connection", source, size, MAX_FRAME)
                    return
                body = await reader.readexactly(size)
                try:
                    self._store(await self._parse(PICKLE, body), source)
                except _Refused as exc:
                    self._rejected.labels(INVALID_PICKLE).inc()
                    log.error("carbon pickle: refused a message from %s (%s); closing the "
                              "connection", source, exc)
                    return
        except asyncio.IncompleteReadError:
            log.error("carbon pickle: %s closed inside a message", source)
        except (ConnectionError, WorkerLost) as exc:
            log.warning("carbon pickle: connection from %s ended: %s", source, exc)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
