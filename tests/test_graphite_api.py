"""The graphite-web API over a real socket: the production app and a real Database in a temp
dir (carbon-style series written into the engine directly, Prometheus series through remote
write). Answers are checked the way Grafana's Graphite data source reads them."""

from __future__ import annotations

import json

import numpy as np

from tests.api_server import Api, api_server
from tests.support import run_async
from tsdb.storage.labels import validate_labels
from wire.graphite_names import path_labels

T0 = 1_700_000_000  # a multiple of 10 s
WINDOW = {"from": str(T0), "until": str(T0 + 60)}


def put(api: Api, name: str, values: list[float | None], step: int = 10, **tags) -> None:
    """Points at T0 + step, T0 + 2 step, ... (None = no point)."""
    db = api.state.db
    sid = db.series_ids([validate_labels(path_labels(name, tags))])[0]
    pts = [(T0 + (i + 1) * step, v) for i, v in enumerate(values) if v is not None]
    db.write(np.full(len(pts), sid, np.int64), np.array([t * 1000 for t, _ in pts], np.int64),
             np.array([v for _, v in pts], float))


async def dataset(api: Api) -> None:
    put(api, "servers.web01.cpu.user", [1, 2, 3, 4, 5, 6])
    put(api, "servers.web02.cpu.user", [10, None, 30, None, 50, None])
    put(api, "servers.web01.cpu.system", [0.5] * 6)
    put(api, "servers.web01.disk.sda.reads", [1] * 6)
    put(api, "special.inf", [float("inf"), float("-inf"), 1, 1, 1, 1])
    put(api, "disk.used", [100] * 6, dc="eu", host="web01")
    put(api, "disk.used", [200] * 6, dc="us", host="db01")


async def get(api: Api, path: str, params=None, method: str = "GET", data=None
              ) -> tuple[int, str, str]:
    url = api.url + path
    request = (api.session.get(url, params=params) if method == "GET" else
               api.session.post(url, params=params, data=data))
    async with request as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def render(api: Api, *targets: str, method: str = "GET", **params) -> list[dict]:
    form = [("format", "json"), *WINDOW.items(), *params.items(),
            *[("target", t) for t in targets]]
    status, ctype, body = await (get(api, "/render", form) if method == "GET" else
                                 get(api, "/render", method="POST", data=form))
    assert status == 200 and ctype.startswith("application/json"), (status, body)
    return json.loads(body)


@run_async
async def test_render_json(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        out = await render(api, "servers.*.cpu.user")
        assert [s["target"] for s in out] == ["servers.web01.cpu.user", "servers.web02.cpu.user"]
        assert out[0]["tags"] == {"name": "servers.web01.cpu.user"}
        assert out[0]["datapoints"][0] == [1.0, T0 + 10]
        assert out[1]["datapoints"][:2] == [[10.0, T0 + 10], [None, T0 + 20]]
        assert len(out[0]["datapoints"]) == 6  # from exclusive, until inclusive
        tagged = await render(api, "seriesByTag('name=disk.used', 'dc=eu')")
        assert [(s["target"], s["tags"]) for s in tagged] == [
            ("disk.used;dc=eu;host=web01", {"dc": "eu", "host": "web01", "name": "disk.used"})]
        status, _, body = await get(api, "/render", [("target", "special.inf"),
                                                     ("format", "json"), *WINDOW.items()])
        assert '[1e9999, ' in body.replace(",", ", ") and "Infinity" not in body
        assert json.loads(body)[0]["datapoints"][1][0] == float("-inf")


@run_async
async def test_render_post_form_and_parameters(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        # Grafana: POST form, repeated target; target[] spelling; URL and body merged
        out = await render(api, "servers.web02.cpu.user", "servers.web01.cpu.user",
                           method="POST", maxDataPoints="2")
        assert [s["target"] for s in out] == ["servers.web02.cpu.user", "servers.web01.cpu.user"]
        # 60 s in at most 2 points: 3 values per point, buckets aligned on 30 s (graphite's
        # nudge: T0 + 10 moves to T0 + 40 and drops two values)
        assert out[1]["datapoints"] == [[4.0, T0 + 40], [6.0, T0 + 70]]
        status, _, body = await get(api, "/render", [("format", "json"), *WINDOW.items()],
                                    method="POST", data=[("target[]", "servers.web01.cpu.user")])
        assert status == 200 and json.loads(body)[0]["target"] == "servers.web01.cpu.user"
        sparse = await render(api, "servers.web02.cpu.user", noNullPoints="1")
        assert sparse[0]["datapoints"] == [[10.0, T0 + 10], [30.0, T0 + 30], [50.0, T0 + 50]]
        one = await render(api, "servers.web01.cpu.user", maxDataPoints="1")
        assert one[0]["datapoints"] == [[3.5, T0 + 10]]
        status, ctype, body = await get(api, "/render", [
            ("target", "servers.web01.cpu.user"), ("format", "json"), ("jsonp", "cb"),
            *WINDOW.items()])
        assert ctype.startswith("text/javascript") and body.startswith("cb([{")
        # Grafana 11.6+ wraps every target to find its ref id in the name
        wrapped = await render(api, "aliasSub(servers.web01.cpu.user, '(^.*$)', '\\1 A')")
        assert wrapped[0]["target"] == "servers.web01.cpu.user A"
        assert (await render(api, "constantLine(100)", **{"from": "-1h", "until": "now"})
                )[0]["target"] == "100.0"
        assert await render(api, "nothing.here") == []


@run_async
async def test_render_formats(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        status, ctype, body = await get(api, "/render", [
            ("target", "servers.web02.cpu.user"), ("format", "csv"), *WINDOW.items()])
        assert ctype.startswith("text/csv")
        assert body.splitlines()[:2] == ["servers.web02.cpu.user,2023-11-14 22:13:30,10.0",
                                         "servers.web02.cpu.user,2023-11-14 22:13:40,"]
        status, ctype, body = await get(api, "/render", [
            ("target", "servers.web02.cpu.user"), ("format", "raw"), *WINDOW.items()])
        assert body == (f"servers.web02.cpu.user,{T0 + 10},{T0 + 70},10|"
                        "10.0,None,30.0,None,50.0,None\n")
        status, _, body = await get(api, "/render", [
            ("target", "servers.web02.cpu.user"), ("format", "png"), *WINDOW.items()])
        assert status == 400


@run_async
async def test_render_errors(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        base = [("format", "json"), *WINDOW.items()]
        status, _, body = await get(api, "/render", [*base, ("target", "nosuch(a.b)")])
        assert status == 400 and "unknown function: nosuch" in body
        status, _, body = await get(api, "/render", [*base, ("target", "sumSeries(a.b")])
        assert (status, body) == (200, "[]")  # graphite ignores what follows a valid prefix
        status, _, _ = await get(api, "/render", [*base, ("target", ")")])
        assert status == 500
        status, _, body = await get(api, "/render", [("target", "a.b"), ("from", "10"),
                                                      ("until", "10")])
        assert status == 400 and "Invalid empty time range" in body
        status, _, _ = await get(api, "/render", [("target", "a.b"), ("from", "-5m")])
        assert status == 400
        status, _, _ = await get(api, "/render", [*base, ("target", "seriesByTag('dc!=x')")])
        assert status == 500  # no expression requires a value
        swapped = await render(api, "servers.web01.cpu.user",
                               **{"from": WINDOW["until"], "until": WINDOW["from"]})
        assert len(swapped[0]["datapoints"]) == 6


async def find(api: Api, query: str, **params) -> list | dict:
    status, _, body = await get(api, "/metrics/find", {"from": "-1", "until": "-1", **params},
                                method="POST", data={"query": query})
    assert status == 200, body
    return json.loads(body)


@run_async
async def test_metrics_find_and_expand(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        nodes = await find(api, "servers.*.*")
        assert [(n["id"], n["leaf"], n["expandable"]) for n in nodes] == [
            ("servers.*.cpu", 0, 1), ("servers.*.disk", 0, 1)]
        nodes = await find(api, "servers.web01.cpu.*")
        assert [(n["text"], n["id"], n["leaf"], n["allowChildren"]) for n in nodes] == [
            ("system", "servers.web01.cpu.system", 1, 0),
            ("user", "servers.web01.cpu.user", 1, 0)]
        top = await find(api, "*")
        assert [n["text"] for n in top] == ["_tagged", "servers", "special"]
        assert await find(api, "disk.*") == []  # tagged series are not in the tree
        assert (await find(api, "servers.web0?", format="completer"))["metrics"] == [
            {"path": "servers.web01.", "name": "web01", "is_leaf": "0"},
            {"path": "servers.web02.", "name": "web02", "is_leaf": "0"}]
        assert await find(api, "servers.web01.cpu.*", format="nodelist") == {
            "nodes": ["system", "user"]}
        as_json = await find(api, "special.*", format="json")
        assert [(n["path"], n["is_leaf"]) for n in as_json] == [("special.inf", True)]
        wild = await find(api, "servers.web01.cpu.*", wildcards="1")
        assert wild[0]["text"] == "*" and wild[0]["id"] == "servers.web01.cpu.*"
        status, _, _ = await get(api, "/metrics/find", {"format": "treejson"})
        assert status == 400
        status, _, body = await get(api, "/metrics/expand", [("query", "servers.*.cpu"),
                                                             ("query", "special.*")])
        assert json.loads(body) == {"results": ["servers.web01.cpu", "servers.web02.cpu",
                                                "special.inf"]}
        status, _, body = await get(api, "/metrics/expand", {"query": "servers.web01.*",
                                                             "groupByExpr": "1"})
        assert json.loads(body) == {"results": {"servers.web01.*": [
            "servers.web01.cpu", "servers.web01.disk"]}}
        status, _, body = await get(api, "/metrics/index.json")
        assert "servers.web01.cpu.user" in json.loads(body)
        # M3's prefix serves the same API
        status, _, body = await get(api, "/api/v1/graphite/metrics/find", {"query": "special.*"})
        assert json.loads(body)[0]["id"] == "special.inf"


@run_async
async def test_tags(tmp_path):
    async with api_server(tmp_path) as api:
        await dataset(api)
        await api.write([((("__name__", "node_load1"), ("instance", "h:9100")),
                          [((T0 + 10) * 1000, 0.25)])])
        async def js(path, params=None):
            status, _, body = await get(api, path, params)
            return status, json.loads(body)
        status, tags = await js("/tags")
        assert status == 200 and [t["tag"] for t in tags] == ["dc", "host", "instance", "name"]
        status, detail = await js("/tags/dc")
        assert detail == {"tag": "dc", "values": [{"value": "eu", "count": 1},
                                                  {"value": "us", "count": 1}]}
        assert (await js("/tags/nosuchtag"))[1] is None
        assert (await js("/tags/findSeries", [("expr", "name=disk.used")]))[1] == [
            "disk.used;dc=eu;host=web01", "disk.used;dc=us;host=db01"]
        assert (await js("/tags/findSeries"))[0] == 400
        assert (await js("/tags/autoComplete/tags", [("expr", "name=disk.used")]))[1] == [
            "dc", "host"]
        assert (await js("/tags/autoComplete/tags", {"tagPrefix": "d"}))[1] == ["dc"]
        assert (await js("/tags/autoComplete/values",
                         [("expr", "name=disk.used"), ("tag", "host")]))[1] == ["db01", "web01"]
        assert (await js("/tags/autoComplete/values", {"tag": "dc", "valuePrefix": "u"}
                         ))[1] == ["us"]
        assert (await js("/tags/autoComplete/values", {"tag": "name", "limit": "2"}))[1] == [
            "disk.used", "node_load1"]
        assert (await js("/tags/autoComplete/values"))[0] == 400
        out = await render(api, "seriesByTag('name=node_load1')")
        assert out[0]["target"] == "node_load1;instance=h:9100"
        assert out[0]["datapoints"][0] == [0.25, T0 + 10]
        status, _, body = await get(api, "/tags/tagMultiSeries", method="POST",
                                    data=[("path", "a.b;z=1;c=2"), ("path", "x")])
        assert json.loads(body) == ["a.b;c=2;z=1", "x"]


@run_async
async def test_functions_version_events(tmp_path):
    async with api_server(tmp_path) as api:
        status, ctype, body = await get(api, "/functions")
        assert status == 200 and "Infinity" not in body
        index = json.loads(body)
        assert {"aliasSub", "sumSeries", "seriesByTag", "constantLine"} <= set(index)
        assert index["seriesByTag"]["params"][0]["multiple"] is True
        info = index["aliasSub"]
        assert info["function"].startswith("aliasSub(") and info["group"]
        grouped = json.loads((await get(api, "/functions", {"grouped": "1"}))[2])
        assert "aliasSub" in grouped[info["group"]]
        status, _, body = await get(api, "/functions/aliasSub")
        assert json.loads(body)["name"] == "aliasSub"
        status, _, body = await get(api, "/functions/nosuch")
        assert status == 404 and json.loads(body) == {"error": "Function not found: nosuch"}
        status, _, body = await get(api, "/version")
        assert status == 200 and body.strip() == "1.1.10"
        status, _, body = await get(api, "/events/get_data", {"from": "-1h"})
        assert (status, body) == (200, "[]")
        async with api.session.post(api.url + "/functions") as r:
            assert r.status == 405


@run_async
async def test_not_ready(tmp_path):
    async with api_server(tmp_path) as api:
        api.state.db, db = None, api.state.db
        try:
            status, _, _ = await get(api, "/render", {"target": "a.b"})
            assert status == 503
        finally:
            api.state.db = db
