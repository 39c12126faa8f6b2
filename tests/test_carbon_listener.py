"""The carbon listeners of `tsdb serve` over real sockets and a real data directory:
plaintext on TCP and UDP, pickle on TCP, what is refused and counted, PromQL reading it."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import struct
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from tests.support import free_port, run_async
from tsdb.api.server import serve
from tsdb.config import ConfigError, ServerConfig, load_config

T0 = 1_767_225_600  # seconds
WORKERS = pytest.mark.parametrize("workers", ["0", "1"], ids=["inline", "worker"])


@dataclass
class Store:
    url: str
    session: aiohttp.ClientSession
    plaintext_port: int
    pickle_port: int

    async def metric(self, name: str, labels: str = "") -> float:
        async with self.session.get(f"{self.url}/metrics") as r:
            text = await r.text()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + ("{" if labels else "")) and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def rejected(self) -> dict[str, float]:
        async with self.session.get(f"{self.url}/metrics") as r:
            text = await r.text()
        out = {}
        for line in text.splitlines():
            if line.startswith("tsdb_carbon_lines_rejected_total{"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                out[reason] = float(line.rsplit(" ", 1)[1])
        return out

    async def wait_ingested(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        got = 0.0
        while time.monotonic() < deadline:
            got = await self.metric("tsdb_samples_ingested_total", 'protocol="carbon"')
            if got >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{got} of {n} carbon points ingested after {timeout} s")

    async def api(self, path: str, **params) -> list | dict:
        async with self.session.get(f"{self.url}{path}", params=params) as r:
            doc = await r.json()
        assert r.status == 200 and doc["status"] == "success", doc
        return doc["data"]

    async def series(self, match: str) -> list[dict[str, str]]:
        data = await self.api("/api/v1/series", **{"match[]": match, "start": "0"})
        return sorted(data, key=lambda s: sorted(s.items()))

    async def tcp(self, *chunks: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.plaintext_port)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return reader, writer

    async def send_pickle(self, writer: asyncio.StreamWriter, message: bytes) -> None:
        writer.write(struct.pack("!L", len(message)) + message)
        await writer.drain()


@asynccontextmanager
async def carbon_store(tmp_path, workers: str = "0"):
    plaintext, pickles = free_port(), free_port()
    config = ServerConfig(data_dir=str(tmp_path / "data"), listen=f"127.0.0.1:{free_port()}",
                          retention="0", fsync=False, decode_workers=0,
                          carbon_listen=f"127.0.0.1:{plaintext}",
                          carbon_pickle_listen=f"127.0.0.1:{pickles}", carbon_workers=workers)
    started = asyncio.Event()
    task = asyncio.create_task(serve(config, started))
    await asyncio.wait_for(started.wait(), 30)
    try:
        async with aiohttp.ClientSession() as session:
            yield Store(f"http://{config.listen}", session, plaintext, pickles)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 10.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionResetError:
        return True


@WORKERS
@run_async
async def test_plaintext_over_tcp_keeps_the_connection_through_bad_lines(tmp_path, workers):
    async with carbon_store(tmp_path, workers) as store:
        reader, writer = await store.tcp(
            b"servers.web01.cpu.user 12.5 %d\n" % T0,
            b"servers.web01.cpu.user 12.7 %d\nservers.web0" % (T0 + 60),  # a partial line...
            b"2.cpu.user 1e3 %d.5\n" % T0,  # ...completed by the next read
            b"this line is bad\nservers.web01.cpu.user nan %d\n" % T0,
            b"a..b 1 %d\nbad.value x %d\nbad.ts 1 yesterday\n" % (T0, T0))
        await store.wait_ingested(3)
        writer.write(b"servers.web01.cpu.user -4 %d\r\n" % (T0 + 120))  # still open
        await writer.drain()
        await store.wait_ingested(4)
        writer.write_eof()
        assert await closed_by_server(reader)  # once everything it sent is read
        writer.close()
        assert await store.rejected() == {"invalid_line": 1, "nan_value": 1,
                                          "invalid_name": 1, "invalid_value": 1,
                                          "invalid_timestamp": 1}
        assert await store.series('{__g0__="servers"}') == [
            {"__g0__": "servers", "__g1__": "web01", "__g2__": "cpu", "__g3__": "user"},
            {"__g0__": "servers", "__g1__": "web02", "__g2__": "cpu", "__g3__": "user"}]
        data = await store.api("/api/v1/query_range", query='{__g1__="web01"}',
                               start=str(T0), end=str(T0 + 120), step="60")
        assert data["result"][0]["values"] == [[T0, "12.5"], [T0 + 60, "12.7"],
                                               [T0 + 120, "-4"]]
        data = await store.api("/api/v1/query", query='{__g1__="web02"}', time=str(T0 + 1))
        assert data["result"][0]["value"] == [T0 + 1, "1000"]  # stored at T0 + 0.5 s
        assert await store.metric("tsdb_carbon_connections_total",
                                  'listener="plaintext"') == 1


@WORKERS
@run_async
async def test_promql_reads_carbon_paths_by_node(tmp_path, workers):
    async with carbon_store(tmp_path, workers) as store:
        lines = []
        for i, path in enumerate(["a.b.c", "a.b.cd", "a.x.cpu", "a.b.c.d", "a.b.x", "z.b.c"]):
            lines += [f"{path} {i + step / 10} {T0 + 60 * step}" for step in range(3)]
        _, writer = await store.tcp(("\n".join(lines) + "\n").encode())
        await store.wait_ingested(len(lines))
        writer.close()
        data = await store.api("/api/v1/query_range", query='{__g0__="a",__g2__=~"c.*"}',
                               start=str(T0), end=str(T0 + 120), step="60")
        got = {".".join(s["metric"][f"__g{i}__"] for i in range(len(s["metric"]))):
               [(t, float(v)) for t, v in s["values"]] for s in data["result"]}
        assert got == {path: [(T0 + 60 * step, i + step / 10) for step in range(3)]
                       for i, path in enumerate(["a.b.c", "a.b.cd", "a.x.cpu", "a.b.c.d"])}
        # exactly three nodes: the next node label must be absent
        data = await store.api("/api/v1/query", query='count({__g0__="a",__g3__=""})',
                               time=str(T0 + 120))
        assert data["result"][0]["value"][1] == "4"


@run_async
async def test_tagged_series_are_one_series_whatever_the_spelling(tmp_path):
    async with carbon_store(tmp_path) as store:
        _, writer = await store.tcp(
            b"disk.used;rack=a1;dc=eu 1 %d\n" % T0,
            b"disk.used;dc=eu;rack=a1 2 %d\n" % (T0 + 60),
            b'disk.used{dc="eu",rack="a1"} 3 %d\n' % (T0 + 120),
            b"~disk.used;dc=eu;rack=a1;dc=eu 4 %d\n" % (T0 + 180),
            b"disk.used;rack 5 %d\ndisk.used;rack=~x 6 %d\n" % (T0, T0))
        await store.wait_ingested(4)
        writer.close()
        assert await store.series('{__g0__="disk"}') == [
            {"__g0__": "disk", "__g1__": "used", "dc": "eu", "rack": "a1"}]
        data = await store.api("/api/v1/query_range", query='{rack="a1"}', start=str(T0),
                               end=str(T0 + 180), step="60")
        assert [v for _, v in data["result"][0]["values"]] == ["1", "2", "3", "4"]
        assert await store.rejected() == {"invalid_name": 2}


@WORKERS
@run_async
async def test_udp_datagrams(tmp_path, workers):
    async with carbon_store(tmp_path, workers) as store:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"udp.a 1 %d\nudp.b 2 %d" % (T0, T0), ("127.0.0.1", store.plaintext_port))
            udp.sendto(b"udp.c 3 %d\rudp.d 4 -1\nbad\n" % T0, ("127.0.0.1", store.plaintext_port))
        await store.wait_ingested(4)
        series = await store.series('{__g0__="udp"}')
        assert [s["__g1__"] for s in series] == ["a", "b", "c", "d"]
        data = await store.api("/api/v1/query", query='{__g1__="d"}')  # -1: now
        assert abs(data["result"][0]["value"][0] - time.time()) < 60
        assert await store.rejected() == {"invalid_line": 1}


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@WORKERS
@run_async
async def test_pickle_is_read_without_running_code(tmp_path, workers):
    marker = tmp_path / "code-ran"
    async with carbon_store(tmp_path, workers) as store:
        reader, writer = await asyncio.open_connection("127.0.0.1", store.pickle_port)
        await store.send_pickle(writer, pickle.dumps(
            [("pickled.a", (T0, 1.5)), ("pickled.b;t=1", (T0, 2)), ("bad",)], protocol=2))
        await store.send_pickle(writer, pickle.dumps([("pickled.c", (T0, 3.0))], protocol=0))
        await store.wait_ingested(3)
        await store.send_pickle(writer, pickle.dumps(
            [("pickled.d", (T0, _RunsCode(str(marker))))], protocol=2))
        assert await closed_by_server(reader)  # refused: the connection is closed
        writer.close()
        assert not marker.exists()
        # the server goes on serving, on this listener and the others
        reader, writer = await asyncio.open_connection("127.0.0.1", store.pickle_port)
        await store.send_pickle(writer, pickle.dumps([("pickled.e", (T0, 5))], protocol=4))
        _, plain = await store.tcp(b"plain.after 1 %d\n" % T0)
        await store.wait_ingested(5)
        writer.close()
        plain.close()
        assert [s["__g1__"] for s in await store.series('{__g0__="pickled"}')] == [
            "a", "b", "c", "e"]
        assert not marker.exists()
        assert await store.rejected() == {"invalid_pickle_item": 1, "invalid_pickle": 1}


@run_async
async def test_pickle_frames_over_the_limit_close_the_connection(tmp_path):
    async with carbon_store(tmp_path) as store:
        reader, writer = await asyncio.open_connection("127.0.0.1", store.pickle_port)
        writer.write(struct.pack("!L", (1 << 20) + 1))
        await writer.drain()
        assert await closed_by_server(reader)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", store.pickle_port)
        writer.write(b"\x00\x00\x00\x10garbage-garbage!")  # not a pickle at all
        await writer.drain()
        assert await closed_by_server(reader)
        writer.close()
        assert await store.rejected() == {"pickle_too_large": 1, "invalid_pickle": 1}


@run_async
async def test_a_graceful_stop_stores_what_was_received_but_no_partial_line(tmp_path):
    lines = b"".join(b"stop.s%d 1 %d\n" % (i, T0) for i in range(5000))
    async with carbon_store(tmp_path, "1") as store:
        # connections still open at the stop, one of them inside a line
        _, writer = await store.tcp(lines, b"stop.partial 12 17")
        _, pickles = await asyncio.open_connection("127.0.0.1", store.pickle_port)
        await store.send_pickle(pickles, pickle.dumps([("stop.pickled", (T0, 1))], 2))
        await asyncio.sleep(0.2)  # received, maybe still in the batch
        started = time.monotonic()
    assert time.monotonic() - started < 5
    writer.close()
    pickles.close()
    async with carbon_store(tmp_path) as store:  # same data dir
        data = await store.api("/api/v1/query", query='count({__g0__="stop"})', time=str(T0))
        assert data["result"][0]["value"][1] == "5001"
        assert await store.series('{__g1__="partial"}') == []


def test_listener_settings(tmp_path):
    config = load_config()
    assert config.carbon_listen_address == ("0.0.0.0", 2003)
    assert config.carbon_pickle_listen_address == ("0.0.0.0", 2004)
    off = load_config(None, {"carbon_listen": "", "carbon_pickle_listen": ""})
    assert off.carbon_listen_address is None and off.carbon_pickle_listen_address is None
    path = tmp_path / "tsdb.yml"
    path.write_text("carbon_listen: 127.0.0.1:12003\ncarbon_pickle_listen:\ncarbon_workers: 0\n")
    from_file = load_config(str(path))
    assert from_file.carbon_listen_address == ("127.0.0.1", 12003)
    assert from_file.carbon_pickle_listen_address is None
    assert from_file.carbon_worker_count == 0
    with pytest.raises(ConfigError):
        load_config(None, {"carbon_listen": "2003"})
    with pytest.raises(ConfigError):
        load_config(None, {"carbon_workers": "-1"})
