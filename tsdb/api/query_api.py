"""PromQL endpoints: ``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/query_exemplars``
and ``/api/v1/format_query``.

Parameter checks, their order and their messages are Prometheus 2.42's (``query`` and
``queryRange`` in ``web/api/v1/api.go``). Evaluation and the JSON encoding of the result both
run on the query threads, so a large answer does not stall the event loop.
"""

from __future__ import annotations

import dataclasses
import time

from aiohttp import web

from tsdb.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ParamError,
    parse_duration,
    parse_time,
    parse_time_param,
)
from tsdb.api.prom_http import ApiError, Params, Reply, endpoint, invalid_param, run_blocking
from tsdb.api.prom_json import encode_query_data, encode_string
from tsdb.api.state import ServerState
from tsdb.query.promql.ast import Expr, VectorSelector
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.result import QueryResult

#: Prometheus refuses range queries with more points per series than this
MAX_POINTS = 11_000
_I64_MAX = (1 << 63) - 1
_NS_PER_MS = 1_000_000


def query_engine(state: ServerState, timeout_s: float | None = None):
    """The server's PromQL engine (created on first use with the configured limits), or a
    twin of it with a shorter deadline when a request asks for one (engines are cheap:
    they hold settings, not data)."""
    from tsdb.query.promql.engine import QueryEngine

    config = state.config

    def make(timeout: float) -> QueryEngine:
        return QueryEngine(state.db, lookback_ms=config.lookback_delta_ms, timeout_s=timeout,
                           max_samples=config.query_max_samples)

    if state.engine is None:
        state.engine = make(config.query_timeout_s)
    if timeout_s is not None and timeout_s < config.query_timeout_s:
        return make(timeout_s)
    return state.engine


def _timeout_s(params: Params, state: ServerState) -> float:
    """The ``timeout`` parameter, never above the server's own query timeout."""
    limit = state.config.query_timeout_s
    text = params.get("timeout")
    if not text:
        return limit
    try:
        return min(parse_duration(text) / 1e9, limit)
    except ParamError as exc:
        raise invalid_param("timeout", exc) from None


def _encoded(result: QueryResult) -> tuple[str, list[str]]:
    return encode_query_data(result), list(result.warnings)


@endpoint
async def handle_query(request: web.Request, state: ServerState, params: Params) -> Reply:
    try:
        time_ms = parse_time_param(params.get("time"), "time", int(time.time() * 1000))
    except ParamError as exc:
        raise invalid_param("time", exc) from None
    timeout_s = _timeout_s(params, state)
    query = params.get("query")
    engine = query_engine(state, timeout_s)
    try:
        return await run_blocking(
            request, lambda: _encoded(engine.instant_query(query, time_ms)), timeout_s)
    except QueryError as exc:
        # bad_data comes from parsing and checking the query, which Prometheus reports as
        # a parameter error for instant queries (and plainly for range queries)
        if exc.error_type == "bad_data":
            raise invalid_param("query", exc) from None
        raise


@endpoint
async def handle_query_range(request: web.Request, state: ServerState, params: Params
                             ) -> Reply:
    bounds = []
    for name in ("start", "end"):
        try:
            bounds.append(parse_time(params.get(name)))
        except ParamError as exc:
            raise invalid_param(name, exc) from None
    start_ms, end_ms = bounds
    if end_ms < start_ms:
        raise invalid_param("end", "end timestamp must not be before start time")
    try:
        step_ns = parse_duration(params.get("step"))
    except ParamError as exc:
        raise invalid_param("step", exc) from None
    if step_ns <= 0:
        raise invalid_param("step", "zero or negative query resolution step widths are not "
                                    "accepted. Try a positive integer")
    if min((end_ms - start_ms) * _NS_PER_MS, _I64_MAX) // step_ns > MAX_POINTS:
        raise ApiError("bad_data", "exceeded maximum resolution of 11,000 points per "
                                   "timeseries. Try decreasing the query resolution (?step=XX)")
    timeout_s = _timeout_s(params, state)
    step_ms = max(step_ns // _NS_PER_MS, 1)  # Prometheus truncates to ms as well
    query = params.get("query")
    engine = query_engine(state, timeout_s)
    return await run_blocking(
        request, lambda: _encoded(engine.range_query(query, start_ms, end_ms, step_ms)),
        timeout_s)


def _has_selector(node: object) -> bool:
    """Does the syntax tree select any series (Prometheus' ``ExtractSelectors``)?"""
    if isinstance(node, VectorSelector):
        return True
    if isinstance(node, list):
        return any(map(_has_selector, node))
    if isinstance(node, Expr):
        return any(_has_selector(getattr(node, f.name)) for f in dataclasses.fields(node))
    return False


@endpoint
async def handle_query_exemplars(request: web.Request, state: ServerState, params: Params
                                 ) -> Reply:
    """The store keeps no exemplars: a valid request gets an empty list (Grafana probes this
    endpoint and then offers its exemplar toggle, harmlessly)."""
    bounds = []
    for name, default in (("start", MIN_TIME_MS), ("end", MAX_TIME_MS)):
        try:
            bounds.append(parse_time_param(params.get(name), name, default))
        except ParamError as exc:
            raise invalid_param(name, exc) from None
    if bounds[1] < bounds[0]:
        raise ApiError("bad_data", "end timestamp must not be before start timestamp")
    from tsdb.query.promql.parser import parse_expr

    try:
        expr = parse_expr(params.get("query"))
    except QueryError as exc:
        raise ApiError("bad_data", str(exc)) from None
    if not _has_selector(expr):
        return None  # Prometheus answers 204 when there is nothing to select
    return "[]"


@endpoint
async def handle_format_query(request: web.Request, state: ServerState, params: Params
                              ) -> Reply:
    """The expression printed back in canonical form. Prometheus' ``Pretty`` also splits
    expressions longer than 100 characters over several lines; ours stay on one."""
    from tsdb.query.promql.parser import parse_expr
    from tsdb.query.promql.printer import to_promql

    try:
        expr = parse_expr(params.get("query"))
    except QueryError as exc:
        raise invalid_param("query", exc) from None
    return encode_string(to_promql(expr))
