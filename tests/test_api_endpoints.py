"""The Prometheus API's series discovery and status endpoints over HTTP, with data written
through remote write: parameters, errors (type, HTTP status, message) and answers as
Prometheus 2.42 gives them."""

from __future__ import annotations

from tests.api_server import api_server
from tests.support import run_async

T0 = 1_704_580_200_000  # 2024-01-06T22:30:00Z

UP_A = (("__name__", "up"), ("instance", "a:9100"), ("job", "node"))
UP_B = (("__name__", "up"), ("instance", "b:9100"), ("job", "node"))
REQS = (("__name__", "http_requests_total"), ("http.status", "200"), ("job", "api"),
        ("method", "GET"))
TEMP = (("__name__", "temperature_celsius"), ("city", "Zürich"), ("job", "sensors"))
OLD = (("__name__", "old_metric"), ("job", "gone"))


async def load(api) -> None:
    await api.write([
        (UP_A, [(T0 + i * 15_000, 1.0) for i in range(20)]),
        (UP_B, [(T0 + i * 15_000, 0.0) for i in range(20)]),
        (REQS, [(T0 + i * 15_000, float(i)) for i in range(20)]),
        (TEMP, [(T0 + i * 15_000, -3.5) for i in range(20)]),
        (OLD, [(T0 - 86_400_000, 1.0)]),
    ])


def as_dicts(*label_sets):
    return [dict(ls) for ls in label_sets]


@run_async
async def test_labels_and_values(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        everything = ["__name__", "city", "http.status", "instance", "job", "method"]
        assert await api.ok("/api/v1/labels") == everything
        assert await api.ok("/api/v1/labels", method="POST") == everything
        # the time range: OLD's only sample is a day earlier
        assert await api.ok("/api/v1/label/job/values") == ["api", "gone", "node", "sensors"]
        assert await api.ok("/api/v1/label/job/values", {"start": str(T0 // 1000)}) == \
            ["api", "node", "sensors"]
        assert await api.ok("/api/v1/label/job/values",
                            {"start": "2024-01-06T00:00:00Z",
                             "end": "2024-01-06T01:00:00Z"}) == []
        assert await api.ok("/api/v1/label/__name__/values") == \
            ["http_requests_total", "old_metric", "temperature_celsius", "up"]
        assert await api.ok("/api/v1/label/city/values") == ["Zürich"]
        assert await api.ok("/api/v1/label/nonexistent/values") == []
        # Grafana's U__ escaping of names outside the legacy charset
        assert await api.ok("/api/v1/label/U__http_2e_status/values") == ["200"]
        # the unbounded times client libraries send
        assert await api.ok("/api/v1/labels", {"start": "-292273086-05-16T16:47:06Z",
                                               "end": "292277025-08-18T07:12:54.999999999Z"}) \
            == everything


@run_async
async def test_limit_truncates_with_a_warning(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        status, doc, _ = await api.call("/api/v1/label/__name__/values", {"limit": "2"})
        assert status == 200 and doc["data"] == ["http_requests_total", "old_metric"]
        assert doc["warnings"] == ["results truncated due to limit"]
        status, doc, _ = await api.call("/api/v1/labels", {"limit": "40000"})
        assert status == 200 and "warnings" not in doc and len(doc["data"]) == 6
        status, doc, _ = await api.call("/api/v1/series", {"match[]": "up", "limit": "1"})
        assert doc["data"] == as_dicts(UP_A) and doc["warnings"]
        assert await api.error("/api/v1/labels", {"limit": "-1"}) == \
            (400, "bad_data", 'invalid parameter "limit": limit must be non-negative')


@run_async
async def test_match_selectors(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        assert await api.ok("/api/v1/labels", {"match[]": "up"}) == \
            ["__name__", "instance", "job"]
        assert await api.ok("/api/v1/labels", [("match[]", "up"),
                                               ("match[]", '{job="sensors"}')]) == \
            ["__name__", "city", "instance", "job"]
        assert await api.ok("/api/v1/label/instance/values",
                            {"match[]": 'up{instance=~"b.*"}'}) == ["b:9100"]
        assert await api.ok("/api/v1/label/job/values",
                            [("match[]", "up"), ("match[]", "http_requests_total")]) == \
            ["api", "node"]
        assert await api.ok("/api/v1/series", {"match[]": "up"}) == as_dicts(UP_A, UP_B)
        # several match[], overlapping: each series once, sorted by labels
        got = await api.ok("/api/v1/series", [("match[]", '{job=~"node|api"}'),
                                              ("match[]", 'up{instance="a:9100"}')])
        assert got == as_dicts(REQS, UP_A, UP_B)
        # a form body and the query string are merged, as Go's r.Form does
        got = await api.ok("/api/v1/series?match[]=temperature_celsius",
                           {"match[]": "up", "start": str(T0 // 1000)}, method="POST")
        assert got == as_dicts(TEMP, UP_A, UP_B)
        assert await api.ok("/api/v1/series", {"match[]": "nonexistent"}) == []
        assert await api.ok("/api/v1/series", {"match[]": "old_metric",
                                               "end": str(T0 // 1000 - 3600)}) == as_dicts(OLD)


@run_async
async def test_discovery_errors(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        assert await api.error("/api/v1/series") == \
            (400, "bad_data", "no match[] parameter provided")
        assert await api.error("/api/v1/series", {"match[]": "up", "start": "x"}) == \
            (400, "bad_data", 'invalid parameter "start": Invalid time value for \'start\': '
                              'cannot parse "x" to a valid timestamp')
        status, etype, msg = await api.error("/api/v1/series", {"match[]": "up{"})
        assert (status, etype) == (400, "bad_data")
        assert msg.startswith('invalid parameter "match[]": 1:')
        assert await api.error("/api/v1/series", {"match[]": '{job=~".*"}'}) == \
            (400, "bad_data", 'invalid parameter "match[]": match[] must contain at least one '
                              'non-empty matcher')
        # the label endpoints report match[] errors without the parameter prefix
        assert await api.error("/api/v1/labels", {"match[]": '{job=""}'}) == \
            (400, "bad_data", "match[] must contain at least one non-empty matcher")
        status, etype, msg = await api.error("/api/v1/label/job/values", {"match[]": "up{"})
        assert (status, etype) == (400, "bad_data") and msg.startswith("1:")
        assert await api.error("/api/v1/labels", {"end": "yesterday"}) == \
            (400, "bad_data", 'invalid parameter "end": Invalid time value for \'end\': '
                              'cannot parse "yesterday" to a valid timestamp')
        # the path takes legacy names only (others come U__-escaped)
        assert await api.error("/api/v1/label/http.status/values") == \
            (400, "bad_data", 'invalid label name: "http.status"')
        assert await api.error("/api/v1/label/1abc/values") == \
            (400, "bad_data", 'invalid label name: "1abc"')
        # end before start: nothing is in range, no error
        backwards = {"start": str(T0 // 1000 + 60), "end": str(T0 // 1000)}
        assert await api.ok("/api/v1/labels", backwards) == []
        assert await api.ok("/api/v1/label/job/values", backwards) == []
        assert await api.ok("/api/v1/series", {**backwards, "match[]": "up"}) == []
        # label values is GET only: POST answers 405, Grafana's cue to retry with GET
        async with api.session.post(f"{api.url}/api/v1/label/job/values") as r:
            assert r.status == 405


@run_async
async def test_metadata(tmp_path):
    async with api_server(tmp_path) as api:
        assert await api.ok("/api/v1/metadata") == {}
        api.state.metadata.update([
            ("up", 2, "1 if the target is up", ""),
            ("http_requests_total", 1, "Requests served.", ""),
            ("http_requests_total", 1, "Requests served (v2).", ""),
            ("node_memory_bytes", "gauge", "Memory.", "bytes"),
        ])
        got = await api.ok("/api/v1/metadata")
        assert got == {
            "http_requests_total": [
                {"type": "counter", "help": "Requests served (v2).", "unit": ""},
                {"type": "counter", "help": "Requests served.", "unit": ""}],
            "node_memory_bytes": [{"type": "gauge", "help": "Memory.", "unit": "bytes"}],
            "up": [{"type": "gauge", "help": "1 if the target is up", "unit": ""}]}
        assert await api.ok("/api/v1/metadata", {"metric": "up"}) == {"up": got["up"]}
        assert await api.ok("/api/v1/metadata", {"metric": "nope"}) == {}
        assert list(await api.ok("/api/v1/metadata", {"limit": "2"})) == \
            ["http_requests_total", "node_memory_bytes"]
        assert await api.ok("/api/v1/metadata", {"limit": "0"}) == {}
        assert len((await api.ok("/api/v1/metadata",
                                 {"limit_per_metric": "1"}))["http_requests_total"]) == 1
        assert await api.error("/api/v1/metadata", {"limit": "x"}) == \
            (400, "bad_data", "limit must be a number")
        async with api.session.post(f"{api.url}/api/v1/metadata") as r:
            assert r.status == 405
    # saved on shutdown, loaded on the next start
    async with api_server(tmp_path) as api:
        assert (await api.ok("/api/v1/metadata", {"metric": "up"}))["up"][0]["type"] == "gauge"


@run_async
async def test_status_and_stub_endpoints(tmp_path):
    async with api_server(tmp_path) as api:
        info = await api.ok("/api/v1/status/buildinfo")
        assert info["version"] == "2.42.0" and "features" not in info
        assert set(info) == {"version", "revision", "branch", "buildUser", "buildDate",
                             "goVersion"}
        runtime = await api.ok("/api/v1/status/runtimeinfo")
        assert runtime["startTime"].endswith("Z") and runtime["storageRetention"] == "forever"
        flags = await api.ok("/api/v1/status/flags")
        assert flags["query.lookback-delta"] == "5m" and flags["query.timeout"] == "2m"
        assert flags["query.max-samples"] == "50000000"
        assert "global:" in (await api.ok("/api/v1/status/config"))["yaml"]
        assert await api.ok("/api/v1/rules") == {"groups": []}
        assert await api.ok("/api/v1/rules", {"type": "record"}) == {"groups": []}
        assert await api.error("/api/v1/rules", {"type": "x"}) == \
            (400, "bad_data", 'invalid parameter "type": not supported value "x"')
        assert await api.ok("/api/v1/alerts") == {"alerts": []}
        assert await api.ok("/api/v1/targets") == {"activeTargets": [], "droppedTargets": []}
        assert await api.ok("/api/v1/targets/metadata") == []
        async with api.session.options(f"{api.url}/api/v1/query",
                                       headers={"Origin": "http://grafana:3000"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "http://grafana:3000"
        async with api.session.get(f"{api.url}/api/v1/labels",
                                   headers={"Origin": "http://grafana:3000"}) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "http://grafana:3000"


@run_async
async def test_not_ready_answers_json_503(tmp_path):
    async with api_server(tmp_path) as api:
        db, api.state.db = api.state.db, None
        try:
            status, etype, _ = await api.error("/api/v1/labels")
            assert (status, etype) == (503, "unavailable")
        finally:
            api.state.db = db


@run_async
async def test_large_answers_are_compressed_for_clients_that_accept_it(tmp_path):
    async with api_server(tmp_path) as api:
        await api.write([((("__name__", f"metric_{i:04d}_with_a_long_name"),), [(T0, 1.0)])
                         for i in range(300)])
        async with api.session.get(f"{api.url}/api/v1/label/__name__/values",
                                   headers={"Accept-Encoding": "gzip"},
                                   auto_decompress=False) as r:
            assert r.headers.get("Content-Encoding") == "gzip"
        names = await api.ok("/api/v1/label/__name__/values")
        assert len(names) == 300
