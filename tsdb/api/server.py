"""The aiohttp application and the process lifecycle of ``tsdb serve``.

Start: listen at once (healthy), open the engine in a thread (commit-log replay), then ready.
Stop (SIGTERM/SIGINT): stop accepting, let in-flight requests finish, flush every head to
block files and close the commit log, so the next start replays nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tsdb.api.carbon import CarbonIngest
from tsdb.api.carbon_workers import CarbonPool
from tsdb.api.decode_workers import DecodePool
from tsdb.api.graphite_api import add_routes as add_graphite_routes
from tsdb.api.prom_api import add_routes as add_prom_api_routes
from tsdb.api.remote_read import handle_read
from tsdb.api.remote_write import handle_write
from tsdb.api.state import STATE, ServerState
from tsdb.config import ServerConfig
from tsdb.memtune import tune_allocator
from tsdb.storage.database import Database

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as exc:
        code = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[STATE].metrics.request_latency(name, code).observe(
            time.perf_counter() - started)


async def handle_healthy(request: web.Request) -> web.Response:
    return web.Response(text="tsdb is healthy.\n")


async def handle_ready(request: web.Request) -> web.Response:
    if request.app[STATE].ready:
        return web.Response(text="tsdb is ready.\n")
    return web.Response(status=503, text="tsdb is not ready: replaying the commit log.\n")


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(state: ServerState) -> web.Application:
    # aiohttp itself answers 413 above client_max_size; the handlers check the same limit
    app = web.Application(middlewares=[_observe],
                          client_max_size=state.config.max_request_size)
    app[STATE] = state
    app.router.add_get("/-/healthy", handle_healthy)
    app.router.add_get("/-/ready", handle_ready)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_post("/api/v1/write", handle_write)
    app.router.add_post("/api/v1/prom/remote/write", handle_write)  # M3's path
    app.router.add_post("/api/v1/read", handle_read)
    add_prom_api_routes(app)  # query, series discovery, status
    add_graphite_routes(app)  # graphite-web's render, metrics, tags and functions API
    return app


async def _start_carbon(state: ServerState, db: Database) -> None:
    """The carbon listeners (plaintext TCP + UDP, pickle TCP), if any is configured."""
    config = state.config
    plaintext, pickle = config.carbon_listen_address, config.carbon_pickle_listen_address
    if plaintext is None and pickle is None:
        return
    pool = None
    if config.carbon_worker_count:
        pool = CarbonPool(config.carbon_worker_count)
        await pool.start()
    state.carbon = CarbonIngest(db, state.metrics, config.head_memory_limit_bytes, pool)
    try:
        await state.carbon.start(plaintext, pickle)
    except OSError as exc:
        log.error("cannot listen for carbon (%s); --carbon-listen '' and "
                  "--carbon-pickle-listen '' turn the listeners off", exc)
        raise SystemExit(2) from None


async def serve(config: ServerConfig, started: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    tune_allocator()
    state = ServerState(config)
    app = create_app(state)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=30)
    await runner.setup()
    host, port = config.listen_address
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    log.info("listening on %s:%d, data in %s", host, port, config.data_dir)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        opened = time.monotonic()
        db = await loop.run_in_executor(
            None, lambda: Database(config.data_dir, config.database_options()))
        db.start_background_flush(config.flush_interval_s)
        if config.decode_worker_count:
            pool = DecodePool(config.decode_worker_count, config.max_request_size)
            await pool.start()
            state.decoders = pool
        state.attach(db)
        await _start_carbon(state, db)
        log.info("ready after %.1f s (%d series, %d samples replayed)",
                 time.monotonic() - opened, db.series_count, db.stats["replayed_samples"])
        if started is not None:
            started.set()
        await stop.wait()
        log.info("stopping: finishing requests, flushing heads")
    finally:
        await runner.cleanup()
        if state.carbon is not None:
            await state.carbon.close()
            if state.carbon.pool is not None:
                await state.carbon.pool.close()
        if state.decoders is not None:
            await state.decoders.close()
        if state.db is not None:
            await loop.run_in_executor(None, state.db.close)
            log.info("stopped cleanly")
