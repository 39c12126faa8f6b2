"""POST /api/v1/read: Prometheus remote read, SAMPLES and STREAMED_XOR_CHUNKS."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiohttp import web

from tsdb.api.state import STATE, ServerState
from tsdb.storage.labels import Matcher
from wire.errors import BodyTooLarge, WireError
from wire.remote_read import (
    STREAMED_CONTENT_TYPE,
    decode_read_request,
    encode_read_response,
    stream_frames,
)
from wire.snappy_block import compress_block, decompress_block

log = logging.getLogger(__name__)

SAMPLES = 0
STREAMED_XOR_CHUNKS = 1
_OPS = {0: "=", 1: "!=", 2: "=~", 3: "!~"}
#: like Prometheus' --storage.remote.read-sample-limit (SAMPLES responses only)
SAMPLE_LIMIT = 50_000_000


_NO_TIMES = np.zeros(0, np.int64)
_NO_VALUES = np.zeros(0, np.float64)


class BadQuery(ValueError):
    pass


def to_matchers(raw: list[tuple[int, str, str]]) -> list[Matcher]:
    matchers = []
    for mtype, name, value in raw:
        if mtype not in _OPS:
            raise BadQuery(f"unknown matcher type {mtype}")
        try:
            matchers.append(Matcher(name, _OPS[mtype], value))
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
    return matchers


def _all_frames(index: int, series: list) -> list[bytes]:
    return list(stream_frames(index, series))


async def handle_read(request: web.Request) -> web.StreamResponse:
    state: ServerState = request.app[STATE]
    if state.db is None:
        return web.Response(status=503, headers={"Retry-After": "1"},
                            text="the store is starting (replaying its commit log)")
    body = await request.read()
    try:
        req = decode_read_request(decompress_block(body, max_decoded=state.config.max_request_size))
        queries = [(q, to_matchers(q.matchers)) for q in req.queries]
    except BodyTooLarge as exc:
        return web.Response(status=413, text=str(exc))
    except (WireError, BadQuery) as exc:
        return web.Response(status=400, text=f"bad remote-read request: {exc}")
    accepted = list(req.accepted_response_types) or [SAMPLES]
    chosen = next((t for t in accepted if t in (SAMPLES, STREAMED_XOR_CHUNKS)), None)
    if chosen is None:
        return web.Response(status=400, text=f"none of the accepted response types {accepted} "
                                             "is supported (SAMPLES=0, STREAMED_XOR_CHUNKS=1)")
    loop = asyncio.get_running_loop()
    db = state.db

    def run(query, matchers):
        if not matchers:  # like Prometheus: a selector needs a matcher; no full dumps
            return []
        if query.hints is not None and query.hints.func == "series":
            # a metadata lookup (/api/v1/series): labels suffice, no block is decoded
            return [(labels, _NO_TIMES, _NO_VALUES) for labels in
                    db.series_labels(matchers, query.start_ms, query.end_ms)]
        res = db.select(matchers, query.start_ms, query.end_ms)
        return [res.series(i) for i in range(len(res))]

    if chosen == SAMPLES:
        results = []
        total = 0
        for query, matchers in queries:
            series = await loop.run_in_executor(None, run, query, matchers)
            total += sum(len(t) for _, t, _ in series)
            if total > SAMPLE_LIMIT:
                return web.Response(status=400,
                                    text=f"exceeded sample limit ({SAMPLE_LIMIT})")
            results.append(series)
        payload = await loop.run_in_executor(
            None, lambda: compress_block(encode_read_response(results)))
        return web.Response(body=payload, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})

    response = web.StreamResponse(headers={"Content-Type": STREAMED_CONTENT_TYPE})
    await response.prepare(request)
    for index, (query, matchers) in enumerate(queries):
        series = await loop.run_in_executor(None, run, query, matchers)
        frames = await loop.run_in_executor(None, _all_frames, index, series)
        for frame in frames:
            await response.write(frame)
    await response.write_eof()
    return response
