"""Plumbing shared by the Prometheus API handlers: form parameters read like Go's
``r.FormValue``, the JSON envelope on every answer (errors included), readiness, CORS, and
the thread pool that keeps queries and index scans off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from tsdb.api.prom_json import ERROR_STATUS, error_body, success_body
from tsdb.api.state import STATE, ServerState
from tsdb.query.promql.errors import QueryError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: threads that run queries and index look-ups (numpy releases the GIL in the heavy parts)
QUERY_THREADS = 4
EXECUTOR = web.AppKey("prom_api_executor", ThreadPoolExecutor)

_CORS = {"Access-Control-Allow-Headers": "Accept, Authorization, Content-Type, Origin",
         "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
         "Access-Control-Expose-Headers": "Date"}
_COMPRESS_ABOVE = 4096


class ApiError(Exception):
    """An error answer: ``error_type`` is Prometheus' ``errorType``, the message its text."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def invalid_param(name: str, err: Exception | str) -> ApiError:
    """Prometheus' ``invalidParamError``: ``invalid parameter "name": <cause>``."""
    return ApiError("bad_data", f'invalid parameter "{name}": {err}')


class Params:
    """A request's parameters like Go's ``r.Form``: values of a form-encoded (or multipart)
    POST body come before those of the URL query string, so the body wins in :meth:`get`."""

    def __init__(self, body: MultiDictProxy | MultiDict, query: MultiDictProxy | MultiDict
                 ) -> None:
        self._body = body
        self._query = query

    @classmethod
    async def read(cls, request: web.Request) -> Params:
        body: MultiDictProxy | MultiDict = MultiDict()
        if request.method == "POST":
            try:
                body = await request.post()
            except ValueError as exc:  # a malformed multipart body
                raise ApiError("bad_data", f"error parsing form values: {exc}") from None
        return cls(body, request.query)

    def get(self, name: str) -> str:
        """First value or ``""`` (``FormValue``); file fields of a multipart body count as
        absent."""
        for source in (self._body, self._query):
            value = source.get(name)
            if isinstance(value, str):
                return value
        return ""

    def getall(self, name: str) -> list[str]:
        return [v for source in (self._body, self._query) for v in source.getall(name, [])
                if isinstance(v, str)]


#: what an endpoint returns: encoded ``data`` JSON, optionally with warnings; None means
#: "no content" (Prometheus answers 204 when an endpoint has no data)
Reply = str | tuple[str, list[str]] | None
Endpoint = Callable[[web.Request, ServerState, Params], Awaitable[Reply]]


def json_response(request: web.Request, status: int, body: str) -> web.Response:
    response = web.Response(status=status, body=body.encode(),
                            headers={"Content-Type": "application/json", **_cors(request)})
    if len(body) > _COMPRESS_ABOVE:
        response.enable_compression()  # only if the client accepts gzip/deflate
    return response


def error_response(request: web.Request, error_type: str, message: str) -> web.Response:
    return json_response(request, ERROR_STATUS.get(error_type, 500),
                         error_body(error_type, message))


def _cors(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    return {**_CORS, "Access-Control-Allow-Origin": origin} if origin else dict(_CORS)


def endpoint(fn: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap an endpoint: readiness check, parameters, the envelope, errors as JSON."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        state: ServerState = request.app[STATE]
        if state.db is None:
            return json_response(request, 503, error_body(
                "unavailable", "the store is starting (replaying its commit log)"))
        try:
            params = await Params.read(request)
            reply = await fn(request, state, params)
        except ApiError as exc:
            return error_response(request, exc.error_type, exc.message)
        except QueryError as exc:
            return error_response(request, exc.error_type, str(exc))
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug: still answer in the API's format
            log.exception("%s %s failed", request.method, request.path)
            return error_response(request, "internal", f"{type(exc).__name__}: {exc}")
        if reply is None:
            return web.Response(status=204, headers=_cors(request))
        data, warnings = (reply, []) if isinstance(reply, str) else reply
        return json_response(request, 200, success_body(data, warnings))

    return handler


async def run_blocking(request: web.Request, fn: Callable[[], _T],
                       timeout_s: float | None = None) -> _T:
    """Run ``fn`` on the query threads; past ``timeout_s`` answer a Prometheus timeout (the
    thread itself runs on until the engine's own deadline stops it)."""
    future = asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], fn)
    try:
        return await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        raise ApiError("timeout", "query timed out in query execution") from None


def setup_executor(app: web.Application) -> None:
    """The query thread pool lives as long as the application."""
    app[EXECUTOR] = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="tsdb-query")

    async def shutdown(app: web.Application) -> None:
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
