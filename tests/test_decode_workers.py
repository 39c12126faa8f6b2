"""Remote-write decoding in worker processes: the pipe formats, the key cache the workers
learn, errors carried back, and a worker that dies."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import snappy
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.api.decode_workers import (
    PROTO_V1,
    DecodePool,
    WorkerLost,
    decode_job,
    decode_reply,
    encode_job,
    encode_reply,
)
from wire.errors import BodyTooLarge, WireError
from wire.proto import remote_pb2

T0 = 1_767_225_600_000


def body_of(names: list[str], t: int = T0) -> bytes:
    req = remote_pb2.WriteRequest()
    for i, name in enumerate(names):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        ts.samples.add(timestamp=t, value=float(i))
    return snappy.compress(req.SerializeToString())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20),
       st.lists(st.tuples(st.integers(-2**62, 2**62), st.floats(allow_nan=False)), max_size=20),
       st.binary(max_size=200))
def test_job_and_reply_formats_round_trip(keys, samples, body):
    learned = [(k, i) for i, k in enumerate(keys)]
    proto, got_learned, got_body = decode_job(memoryview(b"".join(encode_job(2, body,
                                                                             learned))))
    assert (proto, got_learned, bytes(got_body)) == (2, learned, body)

    known = np.array([i if i % 3 else -1 for i in range(len(keys))], np.int64)
    n = len(samples)
    series = np.arange(n, dtype=np.int64) % max(len(keys), 1)
    ts = np.array([t for t, _ in samples], np.int64)
    vals = np.array([v for _, v in samples], np.float64)
    reply = decode_reply(b"".join(encode_reply(known, keys, series, ts, vals, 1, 2, 3)))
    assert reply.known_ids.tolist() == known.tolist()
    assert reply.unknown_keys == [k for k, i in zip(keys, known, strict=True) if i < 0]
    assert reply.sample_series.tolist() == series.tolist()
    assert reply.timestamps.tolist() == ts.tolist()
    assert reply.values.tobytes() == vals.tobytes()
    assert (reply.histograms, reply.exemplars, reply.metadata) == (1, 2, 3)


async def _pool_session():
    pool = DecodePool(1, max_decoded=1 << 16)
    await pool.start()
    try:
        first = await pool.decode(PROTO_V1, body_of(["a", "b", "c"]))
        assert first.known_ids.tolist() == [-1, -1, -1]
        assert len(first.unknown_keys) == 3
        assert first.timestamps.tolist() == [T0] * 3
        assert first.values.tolist() == [0.0, 1.0, 2.0]

        pool.learn([(first.unknown_keys[0], 7), (first.unknown_keys[2], 9)])
        second = await pool.decode(PROTO_V1, body_of(["a", "b", "c"], T0 + 1))
        assert second.known_ids.tolist() == [7, -1, 9]
        assert second.unknown_keys == [first.unknown_keys[1]]

        with pytest.raises(WireError, match="snappy"):
            await pool.decode(PROTO_V1, b"\x10garbage")
        with pytest.raises(BodyTooLarge, match="declared decoded size"):
            await pool.decode(PROTO_V1, b"\x80\x80\x10" + b"\x00" * 10)

        # a worker that dies fails its job (Prometheus retries on 503) and is replaced
        worker = pool._workers[0]
        worker.process.kill()
        with pytest.raises(WorkerLost):
            for _ in range(200):
                await pool.decode(PROTO_V1, body_of(["a"]))
                await asyncio.sleep(0.01)
        fresh = await pool.decode(PROTO_V1, body_of(["a", "c"]))
        assert pool._workers[0] is not worker
        assert fresh.known_ids.tolist() == [-1, -1]  # a new worker starts with no keys
    finally:
        await pool.close()


def test_pool_decodes_learns_reports_errors_and_replaces_a_dead_worker():
    asyncio.run(_pool_session())
