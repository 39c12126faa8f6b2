"""The HTTP server over real sockets and a real data directory: remote write and read,
status codes and messages, metrics, graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import aiohttp
import numpy as np
import pytest
import snappy

from tests.support import free_port, run_async
from tsdb.api.server import serve
from tsdb.config import ServerConfig
from wire.proto import remote_pb2, write_v2_pb2

T0 = 1_767_225_600_000
STALE = float(np.uint64(0x7FF0000000000002).view(np.float64))
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}



@asynccontextmanager
async def running(tmp_path, **settings):
    settings = {"carbon_listen": "", "carbon_pickle_listen": "", **settings}  # 2003/2004: off
    config = ServerConfig(data_dir=str(tmp_path / "data"), listen=f"127.0.0.1:{free_port()}",
                          retention="0", fsync=False, **settings)
    started = asyncio.Event()
    task = asyncio.create_task(serve(config, started))
    await asyncio.wait_for(started.wait(), 30)
    url = f"http://{config.listen}"
    try:
        async with aiohttp.ClientSession() as session:
            yield url, session
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def write_request(series) -> bytes:
    req = remote_pb2.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return snappy.compress(req.SerializeToString())


def read_request(matchers, start, end, types=(0,)) -> bytes:
    req = remote_pb2.ReadRequest()
    q = req.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
    for mtype, name, value in matchers:
        q.matchers.add(type=mtype, name=name, value=value)
    req.accepted_response_types.extend(types)
    return snappy.compress(req.SerializeToString())


async def read_samples(session, url, matchers, start, end):
    async with session.post(f"{url}/api/v1/read", data=read_request(matchers, start, end),
                            headers={"Content-Encoding": "snappy",
                                     "Content-Type": "application/x-protobuf"}) as r:
        assert r.status == 200, await r.text()
        resp = remote_pb2.ReadResponse.FromString(snappy.uncompress(await r.read()))
    out = {}
    for ts in resp.results[0].timeseries:
        labels = tuple((lab.name, lab.value) for lab in ts.labels)
        out[labels] = [(s.timestamp, np.float64(s.value).view(np.uint64).item())
                       for s in ts.samples]
    return out



def bits(v: float) -> int:
    return np.float64(v).view(np.uint64).item()


UP = (("__name__", "up"), ("instance", "a:9100"), ("job", "node"))
LOAD = (("__name__", "node_load1"), ("instance", "a:9100"), ("job", "node"))


DECODE_MODES = pytest.mark.parametrize("decode_workers", ["0", "1"],
                                       ids=["inline-decode", "decode-worker"])


@DECODE_MODES
@run_async
async def test_write_then_read_back_exact_bits(tmp_path, decode_workers):
    async with running(tmp_path, decode_workers=decode_workers) as (url, session):
        body = write_request([(UP, [(T0, 1.0)]), (LOAD, [(T0, 0.25)]),
                              (UP, [(T0 + 15000, STALE)]), (LOAD, [(T0 + 15000, -0.0)])])
        async with session.post(f"{url}/api/v1/write", data=body, headers=HEADERS) as r:
            assert r.status == 204, await r.text()
        # a retried identical batch is accepted and does not duplicate anything
        async with session.post(f"{url}/api/v1/write", data=body, headers=HEADERS) as r:
            assert r.status == 204
        got = await read_samples(session, url, [(2, "__name__", ".+")], T0, T0 + 60000)
        assert got == {UP: [(T0, bits(1.0)), (T0 + 15000, 0x7FF0000000000002)],
                       LOAD: [(T0, bits(0.25)), (T0 + 15000, bits(-0.0))]}
        only_up = await read_samples(session, url, [(0, "job", "node"), (1, "__name__",
                                                                          "node_load1")],
                                     T0, T0 + 60000)
        assert list(only_up) == [UP]


@DECODE_MODES
@run_async
async def test_errors_name_the_problem(tmp_path, decode_workers):
    async with running(tmp_path, max_request_bytes="64KiB",
                       decode_workers=decode_workers) as (url, session):
        post = session.post
        async with post(f"{url}/api/v1/write", data=b"x",
                        headers={**HEADERS, "Content-Type": "text/plain"}) as r:
            assert r.status == 415 and "content type" in await r.text()
        async with post(f"{url}/api/v1/write", data=b"x",
                        headers={**HEADERS, "Content-Encoding": "gzip"}) as r:
            assert r.status == 415 and "Content-Encoding" in await r.text()
        async with post(f"{url}/api/v1/write", data=b"\x05abc", headers=HEADERS) as r:
            assert r.status == 400 and "snappy" in (await r.text()).lower()
        async with post(f"{url}/api/v1/write", data=snappy.compress(b"\x0a\x05\xff"),
                        headers=HEADERS) as r:
            assert r.status == 400
        # declared decoded size above the limit: refused before decompressing
        huge = snappy.compress(b"\0" * (1 << 20))
        async with post(f"{url}/api/v1/write", data=huge, headers=HEADERS) as r:
            assert r.status == 413, await r.text()
        async with post(f"{url}/api/v1/write", data=os.urandom(100 << 10), headers=HEADERS) as r:
            assert r.status == 413
        dup = (("__name__", "x"), ("a", "1"), ("a", "2"))
        body = write_request([(dup, [(T0, 1.0)]), (UP, [(T0, 7.0)])])
        async with post(f"{url}/api/v1/write", data=body, headers=HEADERS) as r:
            text = await r.text()
            assert r.status == 400 and "duplicate" in text and "a" in text
        unsorted = (("__name__", "x"), ("b", "1"), ("a", "2"))
        async with post(f"{url}/api/v1/write", data=write_request([(unsorted, [(T0, 1.0)])]),
                        headers=HEADERS) as r:
            assert r.status == 400 and "not sorted" in await r.text()
        nameless = (("job", "x"),)
        async with post(f"{url}/api/v1/write", data=write_request([(nameless, [(T0, 1.0)])]),
                        headers=HEADERS) as r:
            assert r.status == 400 and "__name__" in await r.text()
        # the valid series of that request was written
        got = await read_samples(session, url, [(0, "__name__", "up")], T0, T0)
        assert got == {UP: [(T0, bits(7.0))]}
        # a metadata-only request (what Prometheus sends every minute) is fine
        req = remote_pb2.WriteRequest()
        req.metadata.add(metric_family_name="up", help="target up", type=1)
        async with post(f"{url}/api/v1/write", data=snappy.compress(req.SerializeToString()),
                        headers=HEADERS) as r:
            assert r.status == 204
        async with session.get(f"{url}/metrics") as r:
            text = await r.text()
        assert 'tsdb_samples_rejected_total{reason="invalid_labels"} 3.0' in text
        assert 'tsdb_samples_ingested_total{protocol="remote_write"} 1.0' in text
        assert "tsdb_commitlog_fsync_seconds_count" in text
        assert 'handler="/api/v1/write"' in text


@DECODE_MODES
@run_async
async def test_remote_write_2_with_written_headers(tmp_path, decode_workers):
    async with running(tmp_path, decode_workers=decode_workers) as (url, session):
        req = write_v2_pb2.Request()
        req.symbols.extend(["", "__name__", "up", "job", "node"])
        ts = req.timeseries.add()
        ts.labels_refs.extend([1, 2, 3, 4])
        ts.samples.add(value=1.0, timestamp=T0)
        ts.samples.add(value=2.0, timestamp=T0 + 1000)
        headers = {**HEADERS, "X-Prometheus-Remote-Write-Version": "2.0.0",
                   "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}
        async with session.post(f"{url}/api/v1/write", headers=headers,
                                data=snappy.compress(req.SerializeToString())) as r:
            assert r.status == 204, await r.text()
            assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "2"
            assert r.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
        got = await read_samples(session, url, [(0, "job", "node")], T0, T0 + 1000)
        assert got == {(("__name__", "up"), ("job", "node")): [(T0, bits(1.0)),
                                                               (T0 + 1000, bits(2.0))]}
        bad = {**headers, "Content-Type": "application/x-protobuf;proto=foo.Bar"}
        async with session.post(f"{url}/api/v1/write", headers=bad, data=b"") as r:
            assert r.status == 415


@run_async
async def test_head_over_memory_budget_answers_429(tmp_path):
    async with running(tmp_path, head_memory_limit="1") as (url, session):
        body = write_request([(UP, [(T0, 1.0)])])
        async with session.post(f"{url}/api/v1/write", data=body, headers=HEADERS) as r:
            assert r.status == 204  # the head was empty
        async with session.post(f"{url}/api/v1/write", data=body, headers=HEADERS) as r:
            assert r.status == 429 and r.headers["Retry-After"]


def test_serve_stops_gracefully_and_restart_replays_nothing(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "tsdb.cli", "serve", "--data-dir", str(data),
           "--listen", f"127.0.0.1:{port}", "--retention", "0",
           "--carbon-listen", "", "--carbon-pickle-listen", ""]

    def start():
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                import urllib.request
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready") as r:
                    if r.status == 200:
                        return proc
            except OSError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError(proc.stderr.read())

    import urllib.request
    proc = start()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/write",
                                 data=write_request([(UP, [(T0, 3.0)])]), headers=HEADERS)
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped cleanly" in err
    assert list((data / "namespaces" / "default" / "blocks").glob("*.blk"))
    proc = start()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "0 samples replayed" in err, err
