"""Series discovery endpoints: ``/api/v1/series``, ``/api/v1/labels``,
``/api/v1/label/<name>/values`` and ``/api/v1/metadata`` (what Grafana's metric browser,
label pickers and template variables call).

Parameters and errors follow Prometheus 2.42; ``limit`` (Prometheus 2.54+, sent by Grafana)
truncates the answer and adds the warning ``results truncated due to limit``.
"""

from __future__ import annotations

import re

from aiohttp import web

from tsdb.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ParamError,
    go_quote,
    parse_limit,
    parse_time_param,
)
from tsdb.api.prom_http import ApiError, Params, Reply, endpoint, invalid_param, run_blocking
from tsdb.api.prom_json import encode_json, encode_labels
from tsdb.api.state import ServerState
from tsdb.query.promql.errors import QueryError
from tsdb.storage.labels import Labels, Matcher

TRUNCATED = "results truncated due to limit"
_ESCAPED_CODE_POINT = re.compile(r"_([0-9a-fA-F]{1,6})_")
_LEGACY_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_match_sets(selectors: list[str]) -> list[list[Matcher]]:
    """``match[]`` values to matcher lists; a bad_data QueryError if one is invalid or
    could select every series."""
    if not selectors:
        return []
    from tsdb.query.promql.parser import parse_match_params

    return parse_match_params(selectors)


def unescape_label_name(name: str) -> str:
    """Undo the ``U__`` escaping Grafana applies to label names outside the legacy charset
    in URL paths (``U__http_2e_status`` -> ``http.status``): ``__`` is ``_``, ``_<hex>_`` a
    code point. Anything malformed is taken literally, as Prometheus does."""
    if not name.startswith("U__"):
        return name
    out: list[str] = []
    body, i = name[3:], 0
    while i < len(body):
        ch = body[i]
        if ch != "_":
            out.append(ch)
            i += 1
            continue
        if body.startswith("__", i):
            out.append("_")
            i += 2
            continue
        m = _ESCAPED_CODE_POINT.match(body, i)
        if not m:
            return name
        code = int(m.group(1), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return name
        out.append(chr(code))
        i = m.end()
    return "".join(out)


def _time_range(params: Params) -> tuple[int, int]:
    """``start`` and ``end``, unbounded by default. When ``end`` is before ``start`` nothing
    is in range (Prometheus answers empty lists then, no error)."""
    times = []
    for name, default in (("start", MIN_TIME_MS), ("end", MAX_TIME_MS)):
        try:
            times.append(parse_time_param(params.get(name), name, default))
        except ParamError as exc:
            raise invalid_param(name, exc) from None
    return times[0], times[1]


def _limit(params: Params) -> int:
    try:
        return parse_limit(params.get("limit"))
    except ParamError as exc:
        raise invalid_param("limit", exc) from None


def _match_sets_or_bad_data(params: Params) -> list[list[Matcher]]:
    """For the label endpoints, whose match[] errors are not wrapped as parameter errors."""
    try:
        return parse_match_sets(params.getall("match[]"))
    except QueryError as exc:
        raise ApiError("bad_data", str(exc)) from None


def _truncate(items: list, limit: int) -> tuple[list, list[str]]:
    if limit and len(items) > limit:
        return items[:limit], [TRUNCATED]
    return items, []


@endpoint
async def handle_labels(request: web.Request, state: ServerState, params: Params) -> Reply:
    start, end = _time_range(params)
    match_sets = _match_sets_or_bad_data(params)
    limit = _limit(params)
    db = state.db

    def names() -> list[str]:
        if end < start:
            return []
        if not match_sets:
            return db.label_names((), start, end)
        found: set[str] = set()
        for matchers in match_sets:
            found.update(db.label_names(matchers, start, end))
        return sorted(found)

    result, warnings = _truncate(await run_blocking(request, names), limit)
    return encode_json(result), warnings


@endpoint
async def handle_label_values(request: web.Request, state: ServerState, params: Params
                              ) -> Reply:
    raw_name = request.match_info["name"]
    # Prometheus 2.42 takes only legacy names in the path; names outside that charset
    # reach us U__-escaped (Prometheus 3's scheme, which Grafana uses)
    if not _LEGACY_LABEL_NAME.fullmatch(raw_name):
        raise ApiError("bad_data", f"invalid label name: {go_quote(raw_name)}")
    name = unescape_label_name(raw_name)
    start, end = _time_range(params)
    match_sets = _match_sets_or_bad_data(params)
    limit = _limit(params)
    db = state.db

    def values() -> list[str]:
        if end < start:
            return []
        if not match_sets:
            return db.label_values(name, (), start, end)
        found: set[str] = set()
        for matchers in match_sets:
            found.update(db.label_values(name, matchers, start, end))
        return sorted(found)

    result, warnings = _truncate(await run_blocking(request, values), limit)
    return encode_json(result), warnings


@endpoint
async def handle_series(request: web.Request, state: ServerState, params: Params) -> Reply:
    selectors = params.getall("match[]")
    if not selectors:
        raise ApiError("bad_data", "no match[] parameter provided")
    start, end = _time_range(params)
    try:
        match_sets = parse_match_sets(selectors)
    except QueryError as exc:
        raise invalid_param("match[]", exc) from None
    limit = _limit(params)
    db = state.db

    def series() -> list[Labels]:
        if end < start:
            return []
        found: set[Labels] = set()
        for matchers in match_sets:
            found.update(db.series_labels(matchers, start, end))
        return sorted(found)

    result, warnings = _truncate(await run_blocking(request, series), limit)
    return "[" + ",".join(map(encode_labels, result)) + "]", warnings


def _int_param(params: Params, name: str, default: int) -> int:
    text = params.get(name)
    if not text:
        return default
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ApiError("bad_data", f"{name} must be a number")
    return int(text)


@endpoint
async def handle_metadata(request: web.Request, state: ServerState, params: Params) -> Reply:
    limit = _int_param(params, "limit", -1)
    limit_per_metric = _int_param(params, "limit_per_metric", -1)
    assert state.metadata is not None
    found = state.metadata.query(params.get("metric") or None, limit, limit_per_metric)
    return encode_json(found)
