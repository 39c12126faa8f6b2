"""/api/v1/query and /api/v1/query_range over HTTP: parameter checks in Prometheus 2.42's
order and words, error types and HTTP status codes, query limits from the configuration."""

from __future__ import annotations

from tests.api_server import api_server
from tests.support import run_async

T0 = 1_704_580_200_000  # 2024-01-06T22:30:00Z
T0_S = T0 // 1000
A = (("__name__", "a"), ("job", "x"))
B = (("__name__", "b"), ("job", "x"))


async def load(api) -> None:
    await api.write([(A, [(T0 + i * 15_000, float(i)) for i in range(40)]),
                     (B, [(T0 + i * 15_000, 2.0) for i in range(40)])])


def rng(start=T0_S, end=T0_S + 600, step="60", **extra):
    return {"query": "a", "start": str(start), "end": str(end), "step": step, **extra}


@run_async
async def test_range_parameter_errors(tmp_path):
    async with api_server(tmp_path) as api:
        err = api.error
        r = "/api/v1/query_range"
        assert await err(r, {"query": "a", "end": "1", "step": "1"}) == \
            (400, "bad_data", 'invalid parameter "start": cannot parse "" to a valid timestamp')
        assert await err(r, rng(end="x")) == \
            (400, "bad_data", 'invalid parameter "end": cannot parse "x" to a valid timestamp')
        assert await err(r, rng(start=T0_S, end=T0_S - 1)) == \
            (400, "bad_data", 'invalid parameter "end": end timestamp must not be before '
                              'start time')
        assert await err(r, rng(step="x")) == \
            (400, "bad_data", 'invalid parameter "step": cannot parse "x" to a valid duration')
        assert await err(r, rng(step="1.5m")) == \
            (400, "bad_data", 'invalid parameter "step": cannot parse "1.5m" to a valid '
                              'duration')
        for step in ("0", "-15", "0s"):
            assert await err(r, rng(step=step)) == \
                (400, "bad_data", 'invalid parameter "step": zero or negative query resolution '
                                  'step widths are not accepted. Try a positive integer')
        assert await err(r, rng(start=0, end=11001, step="1")) == \
            (400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                              "Try decreasing the query resolution (?step=XX)")
        assert await err(r, rng(timeout="soon")) == \
            (400, "bad_data", 'invalid parameter "timeout": cannot parse "soon" to a valid '
                              'duration')
        # the same checks for a form body
        assert (await err(r, rng(step="0"), method="POST"))[0] == 400


@run_async
async def test_instant_parameter_errors(tmp_path):
    async with api_server(tmp_path) as api:
        assert await api.error("/api/v1/query", {"query": "a", "time": "x"}) == \
            (400, "bad_data", 'invalid parameter "time": Invalid time value for \'time\': '
                              'cannot parse "x" to a valid timestamp')
        assert await api.error("/api/v1/query", {"query": "a", "timeout": "1h1h"}) == \
            (400, "bad_data", 'invalid parameter "timeout": cannot parse "1h1h" to a valid '
                              'duration')


@run_async
async def test_query_errors_types_and_status(tmp_path):
    async with api_server(tmp_path) as api:
        await load(api)
        status, etype, msg = await api.error("/api/v1/query", {"query": "sum(", "time": "1"})
        assert (status, etype) == (400, "bad_data")
        assert msg.startswith('invalid parameter "query": 1:5: parse error: ')
        # range queries report the parse error as it is
        status, etype, msg = await api.error("/api/v1/query_range", rng(query="sum("))
        assert (status, etype) == (400, "bad_data") and msg.startswith("1:5: parse error: ")
        status, etype, _ = await api.error("/api/v1/query", {"query": "", "time": "1"})
        assert (status, etype) == (400, "bad_data")
        # a range vector is not a valid range query result
        status, etype, _ = await api.error("/api/v1/query_range", rng(query="a[5m]"))
        assert (status, etype) == (400, "bad_data")
        # valid, but fails while evaluating: two series with the same labels once the
        # name is dropped
        status, etype, msg = await api.error(
            "/api/v1/query", {"query": '{__name__=~"a|b"} + 1', "time": str(T0_S + 60)})
        assert (status, etype) == (422, "execution")
        assert "same labelset" in msg
        status, etype, _ = await api.error("/api/v1/query", {"query": "a", "timeout": "0s",
                                                             "time": str(T0_S)})
        assert (status, etype) == (503, "timeout")


@run_async
async def test_max_samples_and_lookback_come_from_the_configuration(tmp_path):
    async with api_server(tmp_path, query_max_samples=10, lookback_delta="1m") as api:
        await load(api)
        last = T0_S + 39 * 15
        status, etype, msg = await api.error("/api/v1/query", {"query": "a[1h]",
                                                               "time": str(last)})
        assert (status, etype) == (422, "execution")
        assert "too many samples" in msg
        assert await api.ok("/api/v1/query", {"query": "a", "time": str(last + 59)}) == \
            {"resultType": "vector", "result": [
                {"metric": {"__name__": "a", "job": "x"}, "value": [last + 59, "39"]}]}
        assert await api.ok("/api/v1/query", {"query": "a", "time": str(last + 61)}) == \
            {"resultType": "vector", "result": []}


@run_async
async def test_values_and_timestamps_as_prometheus_prints_them(tmp_path):
    async with api_server(tmp_path) as api:
        t = T0 + 600_000
        await api.write([((("__name__", "v"), ("k", name)), [(t, value)]) for name, value in [
            ("int", 3.0), ("frac", 0.1), ("tiny", 1e-7), ("small", 1.5e-5), ("big", 1e21),
            ("large", 1e16), ("neg", -2.5), ("nan", float("nan")), ("inf", float("inf")),
            ("ninf", float("-inf")), ("zero", 0.0)]])
        data = await api.ok("/api/v1/query", {"query": "v", "time": f"{t / 1000 + 0.05:.3f}"})
        got = {s["metric"]["k"]: s["value"] for s in data["result"]}
        ts = t / 1000 + 0.05
        assert got == {"int": [ts, "3"], "frac": [ts, "0.1"], "tiny": [ts, "1e-07"],
                       "small": [ts, "0.000015"], "big": [ts, "1e+21"],
                       "large": [ts, "10000000000000000"], "neg": [ts, "-2.5"],
                       "nan": [ts, "NaN"], "inf": [ts, "+Inf"], "ninf": [ts, "-Inf"],
                       "zero": [ts, "0"]}
        status, _, raw = await api.call("/api/v1/query", {"query": "v{k='int'}",
                                                          "time": f"{t / 1000 + 0.5}"})
        assert f'"value":[{t // 1000 + 0}.500,"3"]' in raw


@run_async
async def test_format_query_and_exemplars(tmp_path):
    async with api_server(tmp_path) as api:
        assert await api.ok("/api/v1/format_query",
                            {"query": "sum  by(job)(rate(a[5m] ))"}) == \
            "sum by (job) (rate(a[5m]))"
        status, etype, msg = await api.error("/api/v1/format_query", {"query": "sum("},
                                             method="POST")
        assert (status, etype) == (400, "bad_data")
        assert msg.startswith('invalid parameter "query": 1:5: parse error')
        ex = "/api/v1/query_exemplars"
        assert await api.ok(ex, {"query": "rate(a[5m])"}) == []
        # nothing to select: Prometheus answers 204 No Content
        status, _, body = await api.call(ex, {"query": "1 + 1"})
        assert (status, body) == (204, "")
        assert await api.error(ex, {"query": "a", "start": "10", "end": "5"}) == \
            (400, "bad_data", "end timestamp must not be before start timestamp")
        status, etype, msg = await api.error(ex, {"query": "a{"})
        assert (status, etype) == (400, "bad_data") and msg.startswith("1:")
