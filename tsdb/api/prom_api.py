"""The Prometheus HTTP API under ``/api/v1``: its routes, and the endpoints that describe the
server (build and runtime info, flags, config) or that Grafana probes for features the store
does not have (rules, alerts, targets: empty lists).

Methods per route are Prometheus 2.42's: ``label/<name>/values`` and the status endpoints are
GET only, so a POST gets 405, which is Grafana's cue to retry with GET.
"""

from __future__ import annotations

import os
import platform
import threading
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

from aiohttp import web

from tsdb.api import metadata_api, query_api
from tsdb.api.prom_http import ApiError, Params, Reply, endpoint, invalid_param, setup_executor
from tsdb.api.prom_json import encode_json
from tsdb.api.state import ServerState

#: the Prometheus release whose API and PromQL semantics the store follows; Grafana reads
#: it to decide which API features it may use (e.g. ``match[]`` on label endpoints)
PROMETHEUS_VERSION = "2.42.0"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _tsdb_version() -> str:
    try:
        return importlib_metadata.version("tsdb")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


@endpoint
async def handle_buildinfo(request: web.Request, state: ServerState, params: Params) -> Reply:
    # no "features" object: a non-empty one makes Grafana take the server for Mimir
    return encode_json({"version": PROMETHEUS_VERSION, "revision": f"tsdb-{_tsdb_version()}",
                        "branch": "HEAD", "buildUser": "tsdb", "buildDate": "",
                        "goVersion": f"python{platform.python_version()}"})


@endpoint
async def handle_runtimeinfo(request: web.Request, state: ServerState, params: Params
                             ) -> Reply:
    started = _rfc3339(state.started_at)
    retention = state.config.retention
    return encode_json({
        "startTime": started, "CWD": os.getcwd(), "reloadConfigSuccess": True,
        "lastConfigTime": started, "corruptionCount": 0,
        "goroutineCount": threading.active_count(), "GOMAXPROCS": os.cpu_count() or 1,
        "GOGC": "", "GODEBUG": "",
        "storageRetention": "forever" if retention.strip() in ("0", "") else retention})


@endpoint
async def handle_flags(request: web.Request, state: ServerState, params: Params) -> Reply:
    """Our settings under the names of the Prometheus flags they correspond to."""
    c = state.config
    return encode_json({
        "storage.tsdb.path": c.data_dir, "web.listen-address": c.listen,
        "storage.tsdb.retention.time": c.retention, "query.timeout": c.query_timeout,
        "query.max-samples": str(c.query_max_samples), "query.lookback-delta": c.lookback_delta,
    })


@endpoint
async def handle_config(request: web.Request, state: ServerState, params: Params) -> Reply:
    # the store scrapes nothing and evaluates no rules: Prometheus' defaults
    yaml = ("global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n"
            "  evaluation_interval: 1m\n")
    return encode_json({"yaml": yaml})


@endpoint
async def handle_rules(request: web.Request, state: ServerState, params: Params) -> Reply:
    kind = request.query.get("type", "").lower()
    if kind not in ("", "alert", "record"):
        raise invalid_param("type", f'not supported value "{kind}"')
    return '{"groups":[]}'


@endpoint
async def handle_alerts(request: web.Request, state: ServerState, params: Params) -> Reply:
    return '{"alerts":[]}'


@endpoint
async def handle_targets(request: web.Request, state: ServerState, params: Params) -> Reply:
    return '{"activeTargets":[],"droppedTargets":[]}'


@endpoint
async def handle_targets_metadata(request: web.Request, state: ServerState, params: Params
                                  ) -> Reply:
    limit = params.get("limit")
    if limit and not limit.lstrip("+-").isdigit():
        raise ApiError("bad_data", "limit must be a number")
    return "[]"


@endpoint
async def handle_alertmanagers(request: web.Request, state: ServerState, params: Params
                               ) -> Reply:
    return '{"activeAlertmanagers":[],"droppedAlertmanagers":[]}'


@endpoint
async def handle_options(request: web.Request, state: ServerState, params: Params) -> Reply:
    return None  # 204 with the CORS headers


def add_routes(app: web.Application) -> None:
    """Register the ``/api/v1`` query, discovery and status endpoints on ``app``."""
    setup_executor(app)
    get_post = [
        ("/api/v1/query", query_api.handle_query),
        ("/api/v1/query_range", query_api.handle_query_range),
        ("/api/v1/query_exemplars", query_api.handle_query_exemplars),
        ("/api/v1/format_query", query_api.handle_format_query),
        ("/api/v1/labels", metadata_api.handle_labels),
        ("/api/v1/series", metadata_api.handle_series),
    ]
    for path, handler in get_post:
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
        app.router.add_route("OPTIONS", path, handle_options)
    get_only = [
        ("/api/v1/label/{name}/values", metadata_api.handle_label_values),
        ("/api/v1/metadata", metadata_api.handle_metadata),
        ("/api/v1/status/buildinfo", handle_buildinfo),
        ("/api/v1/status/runtimeinfo", handle_runtimeinfo),
        ("/api/v1/status/flags", handle_flags),
        ("/api/v1/status/config", handle_config),
        ("/api/v1/rules", handle_rules),
        ("/api/v1/alerts", handle_alerts),
        ("/api/v1/targets", handle_targets),
        ("/api/v1/targets/metadata", handle_targets_metadata),
        ("/api/v1/alertmanagers", handle_alertmanagers),
    ]
    for path, handler in get_only:
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, handle_options)

    async def save_metadata(app: web.Application) -> None:
        from tsdb.api.state import STATE

        if app[STATE].metadata is not None:
            app[STATE].metadata.save()

    app.on_cleanup.append(save_metadata)
