"""A real aiohttp server (the production app on a real socket) over a real Database in a temp
dir, for the Prometheus API tests; data goes in through the real remote-write endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import snappy
from aiohttp import web

from tests.support import free_port
from tsdb.api.server import create_app
from tsdb.api.state import ServerState
from tsdb.config import ServerConfig
from tsdb.storage.database import Database
from wire.proto import remote_pb2

RW_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}




@dataclass
class Api:
    url: str
    session: aiohttp.ClientSession
    state: ServerState

    async def write(self, series, metadata=()) -> None:
        """Remote-write ``[(labels, [(t_ms, v), ...]), ...]`` (labels as sorted pairs) and
        ``metadata`` as ``(family, type number, help, unit)`` tuples."""
        req = remote_pb2.WriteRequest()
        for labels, samples in series:
            ts = req.timeseries.add()
            for name, value in labels:
                ts.labels.add(name=name, value=value)
            for t, v in samples:
                ts.samples.add(timestamp=t, value=v)
        for family, mtype, help_text, unit in metadata:
            req.metadata.add(metric_family_name=family, type=mtype, help=help_text, unit=unit)
        async with self.session.post(f"{self.url}/api/v1/write", headers=RW_HEADERS,
                                     data=snappy.compress(req.SerializeToString())) as r:
            assert r.status == 204, await r.text()

    async def call(self, path: str, params=None, method: str = "GET", **kwargs
                   ) -> tuple[int, dict, str]:
        """(HTTP status, parsed JSON, raw body) of an API call; POST sends a form body."""
        if method == "GET":
            request = self.session.get(f"{self.url}{path}", params=params, **kwargs)
        else:
            request = self.session.request(method, f"{self.url}{path}", data=params, **kwargs)
        async with request as r:
            text = await r.text()
            if r.status == 204:
                return r.status, {}, text
            assert r.headers["Content-Type"].startswith("application/json"), (r.status, text)
            return r.status, json.loads(text), text

    async def ok(self, path: str, params=None, method: str = "GET"):
        """The ``data`` of a successful call."""
        status, doc, text = await self.call(path, params, method)
        assert status == 200 and doc["status"] == "success", text
        return doc["data"]

    async def error(self, path: str, params=None, method: str = "GET") -> tuple[int, str, str]:
        """(HTTP status, errorType, error) of a failing call."""
        status, doc, text = await self.call(path, params, method)
        assert doc["status"] == "error", text
        assert set(doc) <= {"status", "errorType", "error", "warnings"}, text
        return status, doc["errorType"], doc["error"]


@asynccontextmanager
async def api_server(tmp_path, **settings) -> AsyncIterator[Api]:
    config = ServerConfig(data_dir=str(tmp_path / "data"), listen=f"127.0.0.1:{free_port()}",
                          retention="0", fsync=False, **settings)
    state = ServerState(config)
    app = create_app(state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = config.listen_address
    await web.TCPSite(runner, host, port).start()
    loop = asyncio.get_running_loop()
    db = await loop.run_in_executor(None, lambda: Database(config.data_dir,
                                                           config.database_options()))
    state.attach(db)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(f"http://{host}:{port}", session, state)
    finally:
        await runner.cleanup()
        await loop.run_in_executor(None, db.close)
