"""The calls Grafana's Prometheus data source makes, replayed with Grafana's parameters
(methods, time formats, form bodies, escaping) against the store with remote-written data.

Grafana's behaviour is described in ../shared/spec/prometheus-http-api.md §1.
"""

from __future__ import annotations

import math

from tests.api_server import api_server
from tests.support import run_async

T0 = 1_704_580_200_000  # 2024-01-06T22:30:00Z, on a 15 s and 60 s grid
T0_S = T0 // 1000
SCRAPES = 120  # 30 minutes at 15 s

NODE_A = (("__name__", "node_load1"), ("instance", "a:9100"), ("job", "node"))
NODE_B = (("__name__", "node_load1"), ("instance", "b:9100"), ("job", "node"))
UP_A = (("__name__", "up"), ("instance", "a:9100"), ("job", "node"))
REQS_GET = (("__name__", "http_requests_total"), ("http.status", "200"), ("job", "api"),
            ("method", "GET"))
REQS_POST = (("__name__", "http_requests_total"), ("http.status", "500"), ("job", "api"),
             ("method", "POST"))


async def load(api) -> None:
    scrape = [T0 + i * 15_000 for i in range(SCRAPES)]
    await api.write([
        (NODE_A, [(t, 0.5 + i / 100) for i, t in enumerate(scrape)]),
        (NODE_B, [(t, 2.0) for t in scrape]),
        (UP_A, [(t, 1.0) for t in scrape]),
        # counters: +15 and +3 per scrape, i.e. 1/s and 0.2/s
        (REQS_GET, [(t, 15.0 * i) for i, t in enumerate(scrape)]),
        (REQS_POST, [(t, 3.0 * i) for i, t in enumerate(scrape)]),
    ], metadata=[("node_load1", 2, "1m load average.", ""),
                 ("http_requests_total", 1, "Total HTTP requests.", "")])


@run_async
async def test_health_check(tmp_path):
    """"Save & test": instant query 1+1 at time=4, by GET (front end) and POST (back end)."""
    async with api_server(tmp_path) as api:
        for method in ("GET", "POST"):
            status, _, body = await api.call("/api/v1/query", {"query": "1+1", "time": "4"},
                                             method)
            assert status == 200
            assert body == '{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}'


@run_async
async def test_settings_page_probes(tmp_path):
    async with api_server(tmp_path) as api:
        info = await api.ok("/api/v1/status/buildinfo")
        assert info["version"] == "2.42.0"
        assert "features" not in info  # else Grafana takes the server for Mimir
        # exemplars probe: query=test, start/end in milliseconds
        status, doc, body = await api.call("/api/v1/query_exemplars", {
            "query": "test", "start": str(T0), "end": str(T0 + 3_600_000)})
        assert status == 200 and body == '{"status":"success","data":[]}'
        assert await api.ok("/api/v1/query_exemplars", {"query": "up", "start": str(T0_S),
                                                        "end": str(T0_S + 60)},
                            method="POST") == []
        assert await api.ok("/api/v1/rules") == {"groups": []}


@run_async
async def test_metric_browser_and_label_pickers(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        span = {"start": str(T0_S), "end": str(T0_S + 1800)}
        # metric names
        assert await api.ok("/api/v1/label/__name__/values", span) == \
            ["http_requests_total", "node_load1", "up"]
        assert await api.ok("/api/v1/label/__name__/values",
                            {**span, "match[]": '{job="node"}', "limit": "40000"}) == \
            ["node_load1", "up"]
        # label names for a metric (POST first; GET is the fallback)
        for method in ("POST", "GET"):
            assert await api.ok("/api/v1/labels", {**span, "match[]": "node_load1"},
                                method) == ["__name__", "instance", "job"]
        # label values for the picker, narrowed by the labels already chosen
        assert await api.ok("/api/v1/label/instance/values",
                            {**span, "match[]": 'node_load1{job="node"}'}) == \
            ["a:9100", "b:9100"]
        # a label name outside the legacy charset arrives U__-escaped
        assert await api.ok("/api/v1/label/U__http_2e_status/values",
                            {**span, "match[]": "http_requests_total"}) == ["200", "500"]
        # series lookups (older-server fallback, metrics() variables)
        series = await api.ok("/api/v1/series", {**span, "match[]": '{__name__="up"}'},
                              method="POST")
        assert series == [dict(UP_A)]


@run_async
async def test_metadata_hints_from_remote_write(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        assert (await api.ok("/api/v1/metadata"))["node_load1"] == \
            [{"type": "gauge", "help": "1m load average.", "unit": ""}]


def points(series) -> list[tuple[float, float]]:
    return [(t, float(v)) for t, v in series["values"]]


@run_async
async def test_panel_range_queries(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        start, end = T0_S + 600, T0_S + 1500  # aligned to the step, as Grafana sends them
        data = await api.ok("/api/v1/query_range", {
            "query": "sum by (method) (rate(http_requests_total[5m]))",
            "start": str(start), "end": str(end), "step": "60"}, method="POST")
        assert data["resultType"] == "matrix"
        by_method = {s["metric"]["method"]: points(s) for s in data["result"]}
        assert set(by_method) == {"GET", "POST"}
        steps = [start + 60 * k for k in range(16)]
        for method, rate in (("GET", 1.0), ("POST", 0.2)):
            assert [t for t, _ in by_method[method]] == steps
            assert all(math.isclose(v, rate, rel_tol=1e-9) for _, v in by_method[method])
        # unaligned times with fractional seconds and a step in seconds as a decimal: the
        # steps are start + k*step, never aligned by the server
        data = await api.ok("/api/v1/query_range", {
            "query": "node_load1", "start": f"{start + 0.123}", "end": f"{start + 45.5}",
            "step": "15.5", "timeout": "60s"})
        for s in data["result"]:
            assert [t for t, _ in s["values"]] == [start + 0.123, start + 15.623, start + 31.123]
        # a scalar expression as a range query: one series without labels
        data = await api.ok("/api/v1/query_range", {"query": "1+1", "start": str(start),
                                                    "end": str(start + 120), "step": "1m"})
        assert data == {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[start, "2"], [start + 60, "2"], [start + 120, "2"]]}]}


@run_async
async def test_explore_instant_queries_and_variables(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        t = T0_S + 600
        # Grafana's back end sends times with up to 9 fractional digits
        data = await api.ok("/api/v1/query", {"query": "node_load1", "time": f"{t}.000000000"},
                            method="POST")
        assert data == {"resultType": "vector", "result": [
            {"metric": dict(NODE_A), "value": [t, "0.9"]},
            {"metric": dict(NODE_B), "value": [t, "2"]}]}
        # query_result() variables
        data = await api.ok("/api/v1/query", {
            "query": "topk(1, node_load1)", "time": "2024-01-06T22:40:00.000Z"})
        assert [s["metric"]["instance"] for s in data["result"]] == ["b:9100"]
        # between scrapes: the sample before, at the query's timestamp
        data = await api.ok("/api/v1/query", {"query": "up", "time": f"{t + 7.5}"})
        assert data["result"] == [{"metric": dict(UP_A), "value": [t + 7.5, "1"]}]
        # annotations-style query with a query string and a form body at once
        data = await api.ok("/api/v1/query_range?query=up&step=60",
                            {"start": str(t), "end": str(t + 60)}, method="POST")
        assert [points(s) for s in data["result"]] == [[(t, 1.0), (t + 60, 1.0)]]
