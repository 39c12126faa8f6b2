"""The graphite-web HTTP API Grafana's Graphite data source uses: ``/render``,
``/metrics/find``, ``/metrics/expand``, ``/metrics/index.json``, ``/tags/...``,
``/functions``, ``/version`` and ``/events/get_data``; also under ``/api/v1/graphite``
(M3's prefix).

Parameters are graphite-web's: the URL query and a form body merged (a repeated
parameter keeps every value, a single one takes the last), ``target``/``target[]``,
``expr``/``expr[]``. Answers and errors follow graphite-web 1.1.8: render and find errors
are plain text (400 for bad parameters and unknown functions, 500 when evaluation fails;
graphite answers HTML there), the tag and function endpoints answer ``{"error": ...}``.
Evaluation and encoding run on the query threads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import MultiDict

from tsdb.api.graphite_format import encode_csv, encode_json, encode_raw
from tsdb.api.prom_http import EXECUTOR, setup_executor
from tsdb.api.state import STATE, ServerState
from tsdb.query.graphite import finder
from tsdb.query.graphite.consolidate import consolidate
from tsdb.query.graphite.fetch import GraphiteStore, Resolutions
from tsdb.query.graphite.render import Renderer
from tsdb.query.graphite.timespec import parse_attime, timezone, whole_seconds
from wire.graphite_names import InvalidName, graphite_identity, parse_sent_name, path_labels

log = logging.getLogger(__name__)

#: what ``/version`` answers (Grafana enables tags and ``/functions`` from 1.1 on)
GRAPHITE_VERSION = "1.1.10"
PREFIXES = ("", "/api/v1/graphite")
_CORS = {"Access-Control-Allow-Origin": "*",
         "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
         "Access-Control-Allow-Headers": "Accept, Authorization, Content-Type, Origin"}


class GraphiteApiError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Params:
    """graphite-web's ``request.GET.copy(); update(request.POST)``: lists keep every value
    (URL first), a single value is the last one given."""

    def __init__(self, query: MultiDict, body: MultiDict) -> None:
        self.items: MultiDict = MultiDict()
        for source in (query, body):
            for k, v in source.items():
                if isinstance(v, str):
                    self.items.add(k, v)

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.items.getall(name, [])
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.items.getall(name, [])

    def either(self, name: str) -> list[str]:
        """``name`` values, else ``name[]`` values (PHP/jQuery spelling)."""
        return self.getlist(name) or self.getlist(name + "[]")


async def read_params(request: web.Request) -> Params:
    body: MultiDict = MultiDict()
    if request.method == "POST":
        try:
            body = MultiDict(await request.post())
        except ValueError:
            raise GraphiteApiError("malformed form body") from None
    return Params(MultiDict(request.query), body)


def _renderer(state: ServerState) -> Renderer:
    if state.graphite is None:
        config = state.config
        resolutions = Resolutions(config.graphite_resolution_rules,
                                  config.graphite_default_step_s)
        state.graphite = Renderer(GraphiteStore(state.db, resolutions))
    return state.graphite


Handler = Callable[[web.Request, ServerState, Params], Awaitable[web.StreamResponse]]


def endpoint(json_errors: bool) -> Callable[[Handler], Callable[[web.Request],
                                                               Awaitable[web.StreamResponse]]]:
    """Readiness, parameters, and errors as plain text (render, find) or JSON (tags,
    functions: graphite's ``jsonResponse``)."""

    def wrap(fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            state: ServerState = request.app[STATE]
            try:
                if state.db is None:
                    raise GraphiteApiError("the store is starting (replaying its commit log)",
                                           503)
                params = await read_params(request)
                return await fn(request, state, params)
            except web.HTTPException:
                raise
            except Exception as exc:
                status = getattr(exc, "status", None)
                if not isinstance(status, int) or not 400 <= status < 600:
                    status = 400 if json_errors and isinstance(exc, ValueError) else 500
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                if status >= 500:
                    log.warning("%s %s: %s", request.method, request.path, message,
                                exc_info=not isinstance(exc, GraphiteApiError | ValueError))
                if json_errors:
                    return _json(request, {"error": message}, status=status)
                return web.Response(status=status, text=message, headers=_CORS)

        return handler

    return wrap


def _json(request: web.Request, data: Any, params: Params | None = None,
          status: int = 200) -> web.Response:
    pretty = params is not None and bool(params.get("pretty"))
    body = json.dumps(data, indent=2 if pretty else None)
    jsonp = params.get("jsonp") if params is not None else None
    if jsonp:
        return web.Response(status=status, text=f"{jsonp}({body})",
                            content_type="text/javascript", headers=_CORS)
    return web.Response(status=status, text=body, content_type="application/json",
                        headers=_CORS)


async def _blocking(request: web.Request, state: ServerState, fn: Callable[[], Any]) -> Any:
    future = asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], fn)
    try:
        return await asyncio.wait_for(future, state.config.query_timeout_s)
    except TimeoutError:
        raise GraphiteApiError("query timed out", 500) from None


def _int_param(params: Params, name: str, default: int) -> int:
    if name not in params:
        return default
    value = params.get(name)
    try:
        return int(value or "")
    except ValueError as exc:
        raise GraphiteApiError(f"Invalid parameters (Invalid int value {value!r} for param "
                               f"{name}: {exc})") from None


# -- /render ----------------------------------------------------------------------------


def _times(params: Params) -> tuple[int, int, int, Any]:
    """(start, end, now) in whole seconds and the timezone (graphite's ``parseOptions``)."""
    tz = timezone(params.get("tz"))
    now = parse_attime(params.get("now") or "", None, tz) if "now" in params else time.time()
    until = parse_attime(params.get("until") or "", now, tz) if "until" in params else now
    since = parse_attime(params.get("from") or "", now, tz) if "from" in params else \
        parse_attime("-1d", now, tz)
    start, end = min(since, until), max(since, until)
    if start == end:
        raise ValueError("Invalid empty time range")
    return whole_seconds(start), whole_seconds(end), whole_seconds(now), tz


@endpoint(json_errors=False)
async def handle_render(request: web.Request, state: ServerState, params: Params
                        ) -> web.Response:
    try:
        start, end, now, tz = _times(params)
        xff = float(params.get("xFilesFactor") or 0)
    except Exception as exc:
        raise GraphiteApiError(f"Invalid parameters ({exc})") from None
    fmt = params.get("format")
    if fmt is None:
        fmt = "raw" if "rawData" in params else "json"
    if fmt not in ("json", "csv", "raw"):
        raise GraphiteApiError(f"format {fmt!r} is not supported (json, csv, raw)")
    mdp_text = params.get("maxDataPoints") or ""
    max_points = int(mdp_text) if mdp_text.isdigit() else None
    targets = params.either("target")
    template = {k[9:-1]: v for k, v in params.items.items()
                if k.startswith("template[") and k.endswith("]")}
    renderer = _renderer(state)

    def run() -> str:
        try:
            notes: dict[str, Any] = {}
            lists = renderer.render(targets, start, end, now, xff, max_points, template,
                                    getattr(tz, "key", None), notes)
        except Exception as exc:
            if getattr(exc, "status", None) == 400:
                raise GraphiteApiError(f"Invalid parameters ({exc}); targets: "
                                       f"\"{', '.join(targets)}\"") from None
            raise
        if fmt == "json":
            final_xff = notes.get("xFilesFactor")
            rendered = consolidate(lists, max_points,
                                   xff if final_xff is None else float(final_xff))
            return encode_json(rendered, "noNullPoints" in params, bool(params.get("pretty")))
        rendered = consolidate(lists, None, xff)
        return encode_csv(rendered, tz) if fmt == "csv" else encode_raw(rendered)

    body = await _blocking(request, state, run)
    if fmt == "json":
        jsonp = params.get("jsonp") if "format" in params else None
        if jsonp:
            return web.Response(text=f"{jsonp}({body})", content_type="text/javascript",
                                headers=_CORS)
        response = web.Response(text=body, content_type="application/json", headers=_CORS)
    else:
        response = web.Response(text=body, content_type="text/csv" if fmt == "csv" else
                                "text/plain", headers=_CORS)
    if len(body) > 4096:
        response.enable_compression()
    return response


# -- /metrics ---------------------------------------------------------------------------


def _find_times(params: Params) -> None:
    """Validate ``tz``/``now``/``from``/``until`` as graphite-web does (the whisper finder
    then ignores the range)."""
    tz = timezone(params.get("tz"))
    now = time.time()
    for name in ("now", "from", "until"):
        value = params.get(name)
        if value is None or (name != "now" and value == "-1"):
            continue
        try:
            t = parse_attime(value, None if name == "now" else now, tz)
        except Exception as exc:
            raise GraphiteApiError(f"Invalid parameters (Invalid value {value!r} for param "
                                   f"{name}: {exc})") from None
        if name == "now":
            now = t


@endpoint(json_errors=False)
async def handle_find(request: web.Request, state: ServerState, params: Params
                      ) -> web.Response:
    fmt = params.get("format") or "treejson"
    leaves_only = _int_param(params, "leavesOnly", 0)
    _int_param(params, "local", 0)
    wildcards = _int_param(params, "wildcards", 0)
    _find_times(params)
    position = _int_param(params, "position", -1)
    automatic_variants = _int_param(params, "automatic_variants", 0)
    query = params.get("query")
    if query is None:
        raise GraphiteApiError("Invalid parameters (Missing required parameter 'query')")
    if query == "":
        raise GraphiteApiError("Invalid parameters (Required parameter 'query' is empty)")
    base_path = query.rsplit(".", 1)[0] + "." if "." in query else ""
    if fmt == "completer":
        query = query.replace("..", "*.")
        if not query.endswith("*"):
            query += "*"
        if automatic_variants:
            parts = query.split(".")
            query = ".".join(f"{{{p}}}" if "," in p and "{" not in p else p for p in parts)
    if fmt not in ("treejson", "completer", "json", "nodelist"):
        return web.Response(status=400, text="Invalid value for 'format' parameter",
                            headers=_CORS)
    store = _renderer(state).store

    def run() -> Any:
        if fmt == "treejson" and not wildcards:
            branches, leaves = finder.child_names(store, query)
            if leaves_only:
                branches = []
            return _tree_json(base_path, branches, leaves)
        nodes = finder.find_nodes(store, query, bool(leaves_only))
        by_name = sorted(nodes, key=lambda n: n.name)
        if fmt == "treejson":
            seen: set[str] = set()
            branches, leaves = [], []
            for node in by_name:
                if node.name not in seen:
                    seen.add(node.name)
                    (leaves if node.is_leaf else branches).append(node.name)
            out = _tree_json(base_path, branches, leaves)
            if len(nodes) > 1 and wildcards:
                flags = _BRANCH if any(not n.is_leaf for n in nodes) else _LEAF
                out.insert(0, {"text": "*", "id": base_path + "*", **flags})
            return out
        if fmt == "nodelist":
            return {"nodes": sorted({n.path.split(".")[position] for n in nodes})}
        if fmt == "json":
            return [{"path": n.path, "is_leaf": n.is_leaf,
                     **({"intervals": []} if n.is_leaf else {})}
                    for n in sorted(nodes, key=lambda n: n.path)]
        results = [{"path": n.path + ("" if n.is_leaf else "."), "name": n.name,
                    "is_leaf": str(int(n.is_leaf))} for n in by_name]
        if len(results) > 1 and wildcards:
            results.append({"name": "*"})
        return {"metrics": results}

    data = await _blocking(request, state, run)
    response = _json(request, data, params)
    response.headers["Cache-Control"] = "no-cache"
    return response


_BRANCH = {"allowChildren": 1, "expandable": 1, "leaf": 0}
_LEAF = {"allowChildren": 0, "expandable": 0, "leaf": 1}


def _tree_json(base_path: str, branches: list[str], leaves: list[str]) -> list[dict]:
    return ([{"text": n, "id": base_path + n, **_BRANCH} for n in branches] +
            [{"text": n, "id": base_path + n, **_LEAF} for n in leaves])


@endpoint(json_errors=False)
async def handle_expand(request: web.Request, state: ServerState, params: Params
                        ) -> web.Response:
    group_by_expr = _int_param(params, "groupByExpr", 0)
    leaves_only = _int_param(params, "leavesOnly", 0)
    queries = params.getlist("query")
    store = _renderer(state).store

    def run() -> Any:
        results = {q: finder.expand(store, q, bool(leaves_only)) for q in queries}
        if group_by_expr:
            return results
        return sorted({p for paths in results.values() for p in paths})

    data = await _blocking(request, state, run)
    return _json(request, {"results": data}, params)


@endpoint(json_errors=False)
async def handle_index(request: web.Request, state: ServerState, params: Params
                       ) -> web.Response:
    store = _renderer(state).store
    return _json(request, await _blocking(request, state, lambda: finder.index(store)), params)


# -- /tags ------------------------------------------------------------------------------


def _limit(params: Params, name: str = "limit") -> int | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise GraphiteApiError(f"invalid {name} {value!r}") from None


def _only(request: web.Request, *methods: str) -> None:
    if request.method not in methods:
        raise web.HTTPMethodNotAllowed(request.method, list(methods))


@endpoint(json_errors=True)
async def handle_tag_list(request: web.Request, state: ServerState, params: Params
                          ) -> web.Response:
    _only(request, "GET")
    store = _renderer(state).store
    tag_filter, limit = request.query.get("filter"), _limit(Params(request.query, {}))
    tags = await _blocking(request, state, lambda: finder.list_tags(store, tag_filter, limit))
    return _json(request, [{"tag": t} for t in tags], params)


@endpoint(json_errors=True)
async def handle_tag_details(request: web.Request, state: ServerState, params: Params
                             ) -> web.Response:
    _only(request, "GET")
    tag = request.match_info["tag"]
    store = _renderer(state).store
    value_filter, limit = params.get("filter"), _limit(params)
    values = await _blocking(request, state,
                             lambda: finder.list_values(store, tag, value_filter, limit))
    exists = values or await _blocking(request, state,
                                       lambda: tag in finder.list_tags(store))
    if not exists:
        return _json(request, None, params)
    return _json(request, {"tag": tag, "values": [{"value": v, "count": c}
                                                  for v, c in values]}, params)


@endpoint(json_errors=True)
async def handle_find_series(request: web.Request, state: ServerState, params: Params
                             ) -> web.Response:
    _only(request, "GET", "POST")
    exprs = params.either("expr")
    if not exprs:
        raise GraphiteApiError("no tag expressions specified")
    store = _renderer(state).store
    return _json(request, await _blocking(request, state,
                                          lambda: finder.find_series(store, exprs)), params)


@endpoint(json_errors=True)
async def handle_autocomplete_tags(request: web.Request, state: ServerState, params: Params
                                   ) -> web.Response:
    _only(request, "GET", "POST")
    exprs, prefix, limit = params.either("expr"), params.get("tagPrefix"), _limit(params)
    store = _renderer(state).store
    return _json(request, await _blocking(
        request, state, lambda: finder.auto_complete_tags(store, exprs, prefix, limit)), params)


@endpoint(json_errors=True)
async def handle_autocomplete_values(request: web.Request, state: ServerState,
                                     params: Params) -> web.Response:
    _only(request, "GET", "POST")
    exprs, prefix, limit = params.either("expr"), params.get("valuePrefix"), _limit(params)
    tag = params.get("tag")
    if not tag:
        raise GraphiteApiError("no tag specified")
    store = _renderer(state).store
    return _json(request, await _blocking(
        request, state,
        lambda: finder.auto_complete_values(store, exprs, tag, prefix, limit)), params)


@endpoint(json_errors=True)
async def handle_tag_series(request: web.Request, state: ServerState, params: Params
                            ) -> web.Response:
    """carbon registers series here (``tagMultiSeries``); the store indexes series as it
    ingests them, so this only answers the canonical names."""
    _only(request, "POST")
    multi = request.path.endswith("tagMultiSeries")
    paths = params.either("path") if multi else [p for p in [params.get("path")] if p]
    if not paths:
        raise GraphiteApiError("no path specified" if not multi else "no paths specified")
    names = []
    for path in paths:
        try:
            name, tags = parse_sent_name(path)
            names.append(graphite_identity(path_labels(name, tags))[0])
        except InvalidName as exc:
            raise GraphiteApiError(str(exc)) from None
    return _json(request, names if multi else names[0], params)


# -- /functions, /version, /events --------------------------------------------------------


_INF = "__graphite_inf__"


def _finite(value: Any) -> Any:
    """Infinite floats as a marker (written as 1e9999, graphite's jsonInfinityEncoder)."""
    if isinstance(value, float) and math.isinf(value):
        return _INF if value > 0 else "-" + _INF
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _signature(name: str, params: list[dict]) -> str:
    parts = []
    for p in params:
        if p.get("multiple"):
            parts.append("*" + p["name"])
        elif "default" in p:
            parts.append(f"{p['name']}={p['default']!r}")
        elif not p.get("required"):
            parts.append(f"{p['name']}=None")
        else:
            parts.append(p["name"])
    return f"{name}({', '.join(parts)})"


_SERIES_BY_TAG = {
    "name": "seriesByTag", "group": "Special",
    "description": "Returns a SeriesList of series matching all the specified tag "
                   "expressions (tag=spec, tag!=spec, tag=~regex, tag!=~regex; regexes are "
                   "anchored at the start).",
    "params": [{"name": "tagExpressions", "type": "string", "required": True,
                "multiple": True}]}
_CONSTANT_LINE = {
    "name": "constantLine", "group": "Special",
    "description": "Takes a float F.\n\nDraws a horizontal line at value F across the graph.",
    "params": [{"name": "value", "type": "float", "required": True}]}


def function_index(renderer: Renderer) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, fn in sorted((renderer.functions or {}).items()):
        params = [dict(p) for p in getattr(fn, "params", [])]
        signature = getattr(fn, "signature", None)
        if callable(signature):
            signature = signature()
        out[name] = {"name": name,
                     "function": signature or _signature(name, params),
                     "description": getattr(fn, "description", "") or "",
                     "module": "graphite.render.functions",
                     "group": getattr(fn, "group", "Ungrouped") or "Ungrouped",
                     "params": params}
    for info in (_SERIES_BY_TAG, _CONSTANT_LINE):
        if info["name"] not in out and (info is _SERIES_BY_TAG or
                                        renderer.function(info["name"]) is not None):
            out[info["name"]] = {**info, "module": "graphite.render.functions",
                                 "function": _signature(info["name"], info["params"])}
    return out


def _functions_json(request: web.Request, params: Params, data: Any) -> web.Response:
    pretty = bool(params.get("pretty"))
    body = json.dumps(_finite(data), indent=2 if pretty else None, sort_keys=pretty)
    body = body.replace(f'"-{_INF}"', "-1e9999").replace(f'"{_INF}"', "1e9999")
    return web.Response(text=body, content_type="application/json", headers=_CORS)


@endpoint(json_errors=True)
async def handle_functions(request: web.Request, state: ServerState, params: Params
                           ) -> web.Response:
    _only(request, "GET")
    index = function_index(_renderer(state)) if params.get("type") != "pie" else {}
    grouped = (params.get("grouped") or "").lower() in ("1", "true")
    group = params.get("group")
    result: dict[str, Any] = {}
    for name, info in index.items():
        if group is not None and group != info["group"]:
            continue
        if grouped:
            result.setdefault(info["group"], {})[name] = info
        else:
            result[name] = info
    return _functions_json(request, params, result)


@endpoint(json_errors=True)
async def handle_function_details(request: web.Request, state: ServerState, params: Params
                                  ) -> web.Response:
    _only(request, "GET")
    name = request.match_info["name"]
    info = function_index(_renderer(state)).get(name) if params.get("type") != "pie" else None
    if info is None:
        raise GraphiteApiError(f"Function not found: {name}", 404)
    return _functions_json(request, params, info)


async def handle_version(request: web.Request) -> web.Response:
    return web.Response(text=GRAPHITE_VERSION + "\n", headers=_CORS)


async def handle_events(request: web.Request) -> web.Response:
    """No event store: annotations queries get an empty list."""
    return web.Response(text="[]", content_type="application/json", headers=_CORS)


async def handle_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_CORS)


def add_routes(app: web.Application) -> None:
    """Register the graphite-web endpoints at the root and under ``/api/v1/graphite``."""
    if EXECUTOR not in app:
        setup_executor(app)
    get_post = [
        ("/render", handle_render),
        ("/metrics/find", handle_find),
        ("/metrics", handle_find),
        ("/metrics/expand", handle_expand),
        ("/metrics/index.json", handle_index),
        ("/tags/findSeries", handle_find_series),
        ("/tags/autoComplete/tags", handle_autocomplete_tags),
        ("/tags/autoComplete/values", handle_autocomplete_values),
        ("/tags/tagSeries", handle_tag_series),
        ("/tags/tagMultiSeries", handle_tag_series),
        ("/tags", handle_tag_list),
        ("/tags/{tag}", handle_tag_details),
        ("/functions", handle_functions),
        ("/functions/{name}", handle_function_details),
        ("/version", handle_version),
        ("/events/get_data", handle_events),
    ]
    for prefix in PREFIXES:
        for path, handler in get_post:
            for variant in {path, path + "/"} if not path.endswith(".json") else {path}:
                if "{" in variant and variant.endswith("/"):
                    continue
                app.router.add_route("GET", prefix + variant, handler)
                app.router.add_route("POST", prefix + variant, handler)
                app.router.add_route("OPTIONS", prefix + variant, handle_options)

