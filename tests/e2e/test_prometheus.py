"""End-to-end proofs with a real Prometheus 2.42 writing to and reading from the store.

1. Everything Prometheus stored is in the store, bit for bit (remote write -> remote read).
2. A Prometheus that only remote-reads from the store answers PromQL exactly like the one
   that scraped the data.
4. STREAMED_XOR_CHUNKS answers decode (independent decoder) to exactly the SAMPLES answers.
(3, the crash, is in test_crash.py.)
"""

from __future__ import annotations

import pytest

from tests.e2e import remote_read_client as rr
from tests.e2e.checks import (
    ALL_SERIES,
    describe_diff,
    now_ms,
    sample_count,
    stale_marker_count,
    wait_store_matches,
)
from tests.e2e.remote_read_client import (
    SAMPLES,
    SAMPLES_CONTENT_TYPE,
    STREAMED_CONTENT_TYPE,
    STREAMED_XOR_CHUNKS,
)

pytestmark = pytest.mark.e2e

SCRAPES = 30

NAN_BITS = 0x7FF8000000000001  # what Prometheus' text parser makes of "NaN"
NEG_ZERO_BITS = 0x8000000000000000

# -0.0 cannot travel through Prometheus' remote write 1.0 nor its SAMPLES answers: its
# protobuf marshaller omits a double field that compares equal to 0 (proto3 default), so
# -0.0 arrives as +0.0. Prometheus' own TSDB (and so its XOR chunks and PromQL) keeps -0.
# The edge-case exporter still exposes a -0 series; comparisons that would show the sign
# through the scraping Prometheus' PromQL or chunks leave that one series out.


def _window(stack) -> tuple[int, int]:
    stack.wait_scrapes(SCRAPES)
    return stack.window_start(), now_ms() - 1000


def _values_of(series, name: str, **labels) -> set[int]:
    return {v for k, s in series.items() if dict(k).get("__name__") == name
            and all(dict(k).get(n) == val for n, val in labels.items()) for _, v in s}


def test_store_holds_every_sample_prometheus_stored(stack):
    """Proof 1: after a few dozen scrapes, Prometheus' own TSDB (read through its own
    remote-read endpoint) and the store hold the same series with the same samples."""
    start, end = _window(stack)
    expected, _ = wait_store_matches(stack.prom.port, stack.store.port, start, end)

    # the window is not vacuous: all jobs, edge-case values and stale markers
    jobs = {dict(k).get("job") for k in expected}
    assert {"prometheus", "node", "edge", "tsdb"} <= jobs
    # Prometheus could scrape the store's own /metrics every time
    assert _values_of(expected, "up", job="tsdb") == {0x3FF0000000000000}  # 1.0
    assert sample_count(expected) > 10_000
    assert stale_marker_count(expected) >= 5
    assert _values_of(expected, "e2e_edge", kind="nan") == {NAN_BITS}
    assert _values_of(expected, "e2e_edge", kind="min_subnormal") == {1}


# PromQL range queries compared between the scraping Prometheus and the reading one.
PROMQL = [
    "up",
    "node_load1",
    'node_cpu_seconds_total{mode="user"}',
    '{__name__=~"node_cpu.*",mode!="idle"}',
    '{__name__=~"node_(load|memory_Mem).*",__name__!~".*15"}',
    'rate(node_cpu_seconds_total[1m])',
    'irate(node_network_receive_bytes_total[10s])',
    "sum by (job) (rate(prometheus_http_requests_total[1m]))",
    'sum by (job, cpu) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))',
    'sum by (mode) (rate(node_cpu_seconds_total{mode!~"idle|iowait"}[30s]))',
    'count by (__name__) ({__name__=~".+"})',
    "count by (job) (up)",
    "histogram_quantile(0.9, sum by (le) "
    "(rate(prometheus_http_request_duration_seconds_bucket[1m])))",
    "max_over_time(scrape_duration_seconds[20s])",
    "changes(scrape_samples_scraped[1m])",
    "resets(e2e_flapping_total[1m])",
    "e2e_flapping_total",
    'e2e_edge{kind!="neg_zero"}',
    "e2e_sometimes",
    'e2e_edge{kind=~"neg_tiny|neg_inf|pos_inf|nan|zero|escapes"} * -1',
    "timestamp(up)",
    'up{job="node", nonexistent=""}',
    "deriv(process_resident_memory_bytes[30s])",
    "topk(3, go_goroutines)",
    'absent(nonexistent_metric{job="node"})',
]


def test_promql_through_remote_read_matches_prometheus(stack, reader):
    """Proof 2: a Prometheus whose only storage is remote read from the store evaluates range
    queries exactly like the Prometheus that scraped the data (its local TSDB)."""
    start, end = _window(stack)
    # every sample either Prometheus can see for [end - 5 m lookback, end] is in the store
    wait_store_matches(stack.prom.port, stack.store.port, stack.window_start(), end)
    q_start = (end - 45_000) // 1000 * 1000
    q_end = end // 1000 * 1000
    failures = []
    for query in PROMQL:
        want = stack.prom.query_range(query, q_start, q_end, "1s")
        got = reader.query_range(query, q_start, q_end, "1s")
        assert "warnings" not in want, (query, want["warnings"])
        assert "warnings" not in got, f"{query}: remote read failed: {got['warnings']}"
        result = want["data"]["result"]
        if not query.startswith("absent("):
            assert result, f"{query}: no data on the scraping Prometheus; the test is vacuous"
        if got["data"] != want["data"]:
            failures.append(_describe_promql_diff(query, want["data"], got["data"]))
    # /api/v1/series goes through remote read too (with hints func="series")
    for match in ['{__name__=~".+"}', '{job="edge"}', 'up{job!="tsdb"}']:
        params = {"match[]": match, "start": f"{q_start / 1000:.3f}", "end": f"{q_end / 1000:.3f}"}
        want = stack.prom.api("/api/v1/series", **params)
        got = reader.api("/api/v1/series", **params)
        assert "warnings" not in got, f"series {match}: remote read failed: {got['warnings']}"
        assert want["data"], f"series {match}: nothing on the scraping Prometheus"
        if got["data"] != want["data"]:
            w = {tuple(sorted(x.items())) for x in want["data"]}
            g = {tuple(sorted(x.items())) for x in got["data"]}
            failures.append(f"/api/v1/series {match} differs: missing through the store "
                            f"{sorted(w - g)[:5]}, only through the store {sorted(g - w)[:5]}")
    assert not failures, "\n\n".join(failures)


def _describe_promql_diff(query: str, want: dict, got: dict) -> str:
    lines = [f"query {query!r} differs:"]
    w = {tuple(sorted(r["metric"].items())): r["values"] for r in want["result"]}
    g = {tuple(sorted(r["metric"].items())): r["values"] for r in got["result"]}
    for k in sorted(set(w) | set(g)):
        if k not in g:
            lines.append(f"  missing through the store: {dict(k)}")
        elif k not in w:
            lines.append(f"  only through the store: {dict(k)}")
        elif w[k] != g[k]:
            wd, gd = dict(map(tuple, w[k])), dict(map(tuple, g[k]))
            diffs = [(t, wd.get(t), gd.get(t)) for t in sorted(set(wd) | set(gd))
                     if wd.get(t) != gd.get(t)]
            lines.append(f"  {dict(k)}: {len(diffs)} points differ, e.g. "
                         f"(t, scraping, through store) {diffs[:4]}")
    return "\n".join(lines[:40])


def _streamed_and_samples(port: int, queries, accepted_streamed, max_pad_bits: int = 7):
    streamed, resp = rr.read(port, queries, accepted_streamed, max_pad_bits)
    assert resp.headers.get("content-type") == STREAMED_CONTENT_TYPE, resp.headers
    assert "content-encoding" not in resp.headers, resp.headers
    samples, sresp = rr.read(port, queries, [SAMPLES])
    assert sresp.headers.get("content-type") == SAMPLES_CONTENT_TYPE, sresp.headers
    assert sresp.headers.get("content-encoding") == "snappy", sresp.headers
    return streamed, samples


def test_reference_decoder_reads_prometheus_streams(stack):
    """The test's own decoder (frames, CRCs, XOR chunks) agrees with Prometheus itself:
    Prometheus' STREAMED_XOR_CHUNKS answer decodes to its SAMPLES answer. This is what makes
    proof 4 against the store meaningful."""
    start, end = _window(stack)
    queries = [(start, end, ALL_SERIES)]
    streamed, samples = _streamed_and_samples(stack.prom.port, queries,
                                              [STREAMED_XOR_CHUNKS, SAMPLES], max_pad_bits=8)
    # the one value SAMPLES cannot carry (see NEG_ZERO_BITS above)
    from_chunks = {k: [(t, 0 if v == NEG_ZERO_BITS else v) for t, v in s]
                   for k, s in streamed[0].items()}
    assert samples[0] and from_chunks == samples[0], describe_diff(samples[0], from_chunks)
    assert any(v == NEG_ZERO_BITS for s in streamed[0].values() for _, v in s)


def test_streamed_chunks_equal_samples(stack):
    """Proof 4: the store's STREAMED_XOR_CHUNKS answers, decoded by the independent decoder,
    equal its SAMPLES answers for the same queries (series, labels, timestamps, value bits),
    with the exact Content-Type and valid frame CRCs; and both equal Prometheus' answer."""
    start, end = _window(stack)
    expected, _ = wait_store_matches(stack.prom.port, stack.store.port, start, end)
    # bounds exactly on sample timestamps: both ends are inclusive
    up_node = next(v for k, v in expected.items()
                   if dict(k).get("__name__") == "up" and dict(k).get("job") == "node")
    t_a, t_b = up_node[len(up_node) // 3][0], up_node[len(up_node) // 3 + 4][0]
    cases = [
        # everything, as Prometheus >= 2.55 asks (streamed preferred, samples accepted)
        ([(start, end, ALL_SERIES)], [STREAMED_XOR_CHUNKS, SAMPLES]),
        # several queries in one request: regex and negative matchers, ranges that cut
        # through chunks, a single instant, a range with no data; streamed the only choice
        ([(start, end, [("__name__", "=~", "node_cpu.*"), ("mode", "!=", "idle")]),
          (t_a, t_b, [("job", "=", "node"), ("__name__", "=~", "node_(load|memory).*")]),
          (t_a, t_a, [("job", "=~", "no.*"), ("__name__", "!~", "go_.*|process_.*")]),
          (t_a - 2_500, t_b + 1_500, [("job", "=", "edge")]),
          (start - 3_600_000, start - 1, [("__name__", "=~", ".+")])],
         [STREAMED_XOR_CHUNKS]),
    ]
    for queries, accepted in cases:
        streamed, samples = _streamed_and_samples(stack.store.port, queries, accepted)
        prometheus, _ = rr.read(stack.prom.port, queries)
        for i, (s, x, p) in enumerate(zip(streamed, samples, prometheus, strict=True)):
            assert s == x, f"query {i} {queries[i]}, streamed vs samples:\n{describe_diff(x, s)}"
            assert x == p, f"query {i} {queries[i]}, store vs Prometheus:\n{describe_diff(p, x)}"
        assert samples[0], f"no data for {queries[0]}; the comparison is vacuous"
    assert prometheus[1] and prometheus[2]
    assert all(len(s) == 5 for s in prometheus[1].values()), "t_a, t_b not scrape timestamps"
    assert all(len(s) == 1 for s in prometheus[2].values())
