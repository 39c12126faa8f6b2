"""POST /api/v1/write: Prometheus remote write 1.0 and 2.0.

The answer is 204 only once every accepted sample is durable in the commit log. Invalid
input is answered with 400 and a message naming the problem (valid series of the same
request are still written, as the spec recommends), an unsupported format with 415, a body
over the limit with 413, and a head over its memory budget with 429 + Retry-After.
"""

from __future__ import annotations

import logging

import numpy as np
from aiohttp import web

from tsdb.api.decode_workers import PROTO_V1, PROTO_V2, DecodedBody, WorkerLost
from tsdb.api.state import STATE, ServerState
from wire.errors import BodyTooLarge, WireError
from wire.remote_write import decode_write_request
from wire.remote_write_v2 import decode_write_request_v2
from wire.snappy_block import decompress_block

log = logging.getLogger(__name__)

V1 = "prometheus.WriteRequest"
V2 = "io.prometheus.write.v2.Request"


def negotiate(content_type: str | None) -> str:
    """The protobuf message a Content-Type asks for (spec §7.2); ValueError if unknown."""
    if not content_type:
        return V1
    media, *params = [part.strip() for part in content_type.split(";")]
    if media.lower() != "application/x-protobuf":
        raise ValueError(f"unsupported content type {content_type!r}: expected "
                         "application/x-protobuf")
    proto = V1
    for param in params:
        name, _, value = (x.strip() for x in param.partition("="))
        if name.lower() == "proto":
            proto = value.strip('"')
    if proto not in (V1, V2):
        raise ValueError(f"unsupported remote-write message {proto!r}: expected {V1} or {V2}")
    return proto


def _written_headers(samples: int, histograms: int = 0, exemplars: int = 0) -> dict[str, str]:
    return {"X-Prometheus-Remote-Write-Samples-Written": str(samples),
            "X-Prometheus-Remote-Write-Histograms-Written": str(histograms),
            "X-Prometheus-Remote-Write-Exemplars-Written": str(exemplars)}


async def handle_write(request: web.Request) -> web.Response:
    state: ServerState = request.app[STATE]
    try:
        proto = negotiate(request.headers.get("Content-Type"))
    except ValueError as exc:
        return web.Response(status=415, text=str(exc))
    headers = _written_headers(0) if proto == V2 else {}
    encoding = request.headers.get("Content-Encoding", "snappy").strip().lower()
    if encoding != "snappy":
        return web.Response(status=415, headers=headers,
                            text=f"unsupported Content-Encoding {encoding!r}: expected snappy")
    if state.db is None:
        return web.Response(status=503, headers={**headers, "Retry-After": "1"},
                            text="the store is starting (replaying its commit log)")
    limit = state.config.max_request_size
    if request.content_length is not None and request.content_length > limit:
        return web.Response(status=413, headers=headers,
                            text=f"request body of {request.content_length} bytes exceeds "
                                 f"the limit of {limit} bytes")
    body = await request.read()
    try:
        if state.decoders is not None:
            decoded = await state.decoders.decode(PROTO_V1 if proto == V1 else PROTO_V2, body)
        else:
            decoded = _decode_inline(state, proto, body, limit)
    except BodyTooLarge as exc:
        return web.Response(status=413, headers=headers, text=str(exc))
    except WireError as exc:
        return web.Response(status=400, headers=headers, text=f"bad remote-write body: {exc}")
    except WorkerLost as exc:
        return web.Response(status=503, headers={**headers, "Retry-After": "1"}, text=str(exc))
    if state.db.head_bytes() > state.config.head_memory_limit_bytes:
        return web.Response(status=429, headers={**headers, "Retry-After": "5"},
                            text="the store's head is over its memory budget; retry later")
    return await _store(state, decoded, proto)


def _decode_inline(state: ServerState, proto: str, body: bytes, limit: int) -> DecodedBody:
    raw = decompress_block(body, max_decoded=limit)
    if proto == V1:
        batch = decode_write_request(raw, key_ids=state.resolver.lookup)
        known = batch.key_ids
    else:
        batch = decode_write_request_v2(raw)
        known = state.resolver.lookup(batch.series_keys)
    unknown = [batch.series_keys[i] for i in np.flatnonzero(known < 0).tolist()]
    return DecodedBody(known, unknown, batch.sample_series, batch.timestamps, batch.values,
                       batch.histograms, batch.exemplars, batch.metadata, batch.metadata_entries)


def _series_ids(state: ServerState, decoded: DecodedBody) -> tuple[np.ndarray, str | None]:
    """Series id per key: the decoder's answer, and the engine's for keys new to it."""
    sids = decoded.known_ids
    if not decoded.unknown_keys:
        return sids, None
    created, problem = state.resolver.resolve(decoded.unknown_keys)
    sids = sids.copy()
    sids[sids < 0] = created
    if state.decoders is not None:
        valid = np.flatnonzero(created >= 0).tolist()
        state.decoders.learn([(decoded.unknown_keys[i], int(created[i])) for i in valid])
    return sids, problem


async def _store(state: ServerState, batch: DecodedBody, proto: str) -> web.Response:
    metrics = state.metrics
    if batch.metadata_entries and state.metadata is not None:
        state.metadata.update(batch.metadata_entries)
    unsupported_metadata = batch.metadata - len(batch.metadata_entries)  # 2.0's, for now
    for kind, count in (("histogram", batch.histograms), ("exemplar", batch.exemplars),
                        ("metadata", unsupported_metadata)):
        if count:
            metrics.unsupported.labels(kind).inc(count)
    problems: list[str] = []
    sids, problem = _series_ids(state, batch)
    sample_sids = sids[batch.sample_series] if len(sids) else sids
    valid = sample_sids >= 0
    invalid = len(valid) - int(np.count_nonzero(valid))
    ts, vals = batch.timestamps, batch.values
    if invalid:
        metrics.samples_rejected.labels("invalid_labels").inc(invalid)
        problems.append(f"{invalid} samples of series with invalid labels ({problem})")
        sample_sids, ts, vals = sample_sids[valid], ts[valid], vals[valid]
    result = state.db.append(sample_sids, ts, vals)
    if result.accepted:
        await state.db.wait_durable_async(result.position)
        metrics.samples_ingested.labels("remote_write").inc(result.accepted)
    for reason, count in result.rejected.items():
        metrics.samples_rejected.labels(reason).inc(count)
        problems.append(f"{count} samples {reason.replace('_', ' ')}")
    headers = _written_headers(result.accepted) if proto == V2 else {}
    if proto == V2 and batch.histograms:
        problems.append(f"{batch.histograms} native histogram samples are not supported")
    if problems:
        return web.Response(status=400, headers=headers,
                            text=f"wrote {result.accepted} samples; refused: "
                                 + "; ".join(problems))
    return web.Response(status=204, headers=headers)
