"""Dashboard query latency: the store against Prometheus and VictoriaMetrics, same data.

    python benchmarks/query.py --corpus /work/corpus/rw10k             # 10k x 1440 (6 h), 7 reps
    python benchmarks/query.py --series 2000 --points 240 --reps 3      # quick: generated corpus
    python benchmarks/query.py --corpus DIR --peers tsdb,prom --queries cpu,p99 --out res.json
    python benchmarks/query.py --corpus DIR --restart                   # serve from disk
    python benchmarks/query.py --corpus DIR --peers tsdb --py-spy /tmp/prof  # profile the store

In one invocation every peer is started on a fresh data directory (127.0.0.1, free ports),
loaded through its remote-write endpoint with ``rwgen.py send -c K`` (peers one after the
other) and kept running; then the dashboard below is queried against all of them. A peer
whose binary is missing is reported as skipped. Server logs stay in WORKDIR/logs.

Where the data sits: as the load left it, by default. The store seals each complete 2 h
window into a block file as the load goes on and keeps the newest window in its head;
Prometheus likewise cuts 2 h blocks from its head; VictoriaMetrics has everything in parts.
With ``--restart`` every peer is stopped gracefully after loading and started again on its
data dir, so that each serves what it persisted (the store: block files only, no head;
Prometheus: its blocks and the WAL replayed into the head).

Peers, as a user would run them, except:

* the store: ``tsdb serve --retention 0`` (the corpus lies in the past); queryable at once.
* Prometheus 2.42: ``--web.enable-remote-write-receiver``; queryable at once from its head
  (and the 2 h blocks it compacts while loading).
* VictoriaMetrics: ``-search.latencyOffset=0s`` (it would hide the newest 30 s otherwise,
  irrelevant for past data but it keeps the answers comparable) and ``-search.disableCache``:
  without it VictoriaMetrics answers a repeated /api/v1/query_range from its rollup result
  cache, so the repetitions would time a cache lookup, not the query; a dashboard refresh
  also moves the time range, so the cache would mostly serve the unchanged past. The figure
  here is VictoriaMetrics computing every answer, like the two others. After loading,
  ``/internal/force_flush`` makes the in-memory rows searchable.

Before timing, each peer must hold the whole corpus: ``count(count_over_time({__name__=~".+"}
[W]))`` = series and ``sum(count_over_time(...))`` = samples at the end of the data (W
covers it all); then the benchmark waits (bounded, ``--settle-max``) until every peer's
process tree is idle (Prometheus may still be compacting a head block).

Dashboard (Grafana-like panels; time ranges aligned to their step, as Grafana does): range
queries over the corpus' whole span (6 h at step 30 s = 721 points, the step Grafana picks
for a ~720 px wide panel) and over its last hour at step 15 s, instant queries at the end
of the data, and the label / series look-ups of template variables over the whole span.
The corpus has classic histogram buckets (``http_request_duration_seconds_bucket``), so
histogram_quantile is used as dashboards do. Query endpoints are sent as POST forms (Grafana's
default), label values as GET; one query in flight at a time, one keep-alive connection
per peer, no compression (``Accept-Encoding: identity``).

For each query: one warm-up request per peer (not timed), then ``--reps`` rounds, each
round timing every peer once, the peers' order rotating round by round so that a burst of
machine noise falls on all of them alike. Latency = wall time of the HTTP round trip
(request written until the last byte of the JSON answer is read). ``cpu_ms`` = the
server's CPU time (/proc utime+stime of its process, all threads) per request.

Answers: the store is compared with Prometheus strictly (same result type, same label sets,
same timestamps, values within 1e-6 relative, NaN = NaN; label lists and series sets equal);
VictoriaMetrics loosely, only by the number of series / items, since its rate, increase
and *_over_time do not extrapolate like Prometheus' and its label handling differs in
places. Mismatches are listed; they do not change the exit status.

Load: the busy cores of the machine before the timing (``--quiet-wait``) and, during it,
the cores used by anything but the peers and this client (``other_cores_during``) are
reported; compare ratios of one run, not absolute figures across runs.

stderr gets a table per query (median / p90 ms per peer, the store / peer ratios of the
medians) and the median over queries of those ratios; the LAST stdout line is JSON: per
query figures, ``median_ratio_prom`` (target <= 1.0), ``median_ratio_vm``, the same by
kind of query, and the mismatches. ``--out FILE`` also writes every single latency.
Exit status 1 if a peer could not be loaded or verified, or a query failed on the store.
Every process started is stopped (SIGTERM, then SIGKILL) on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ingest  # noqa: E402
from ingest import RUNNING, log, read_stat, stop_process  # noqa: E402

ALL_PEERS = ingest.ALL_PEERS  # tsdb, vm, prom
TARGET_RATIO_PROM = 1.0
REL_TOL = 1e-6
PEER_NAMES = {"tsdb": "tsdb", "vm": "VictoriaMetrics", "prom": "Prometheus"}


# ------------------------------------------------------------------------------ dashboard


@dataclass
class Query:
    name: str
    kind: str  # range | instant | metadata
    path: str
    params: dict
    method: str = "POST"

    @property
    def expr(self) -> str:
        return self.params.get("query") or self.params.get("match[]") or ""


def nice_step(span_s: int, max_points: int) -> int:
    """The smallest multiple of the 15 s scrape interval giving at most max_points + 1."""
    return max(15, math.ceil(span_s / max_points / 15) * 15)


def duration(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def dashboard(man: dict, max_points: int) -> tuple[list[Query], dict]:
    tmin_s, tmax_s = man["tmin_ms"] / 1000, man["tmax_ms"] / 1000
    span = math.ceil((tmax_s - man["start_ms"] / 1000) / 60) * 60  # 6 h for the default corpus
    step_l = nice_step(span, max_points)
    end = math.ceil(tmax_s / step_l) * step_l  # just after the last sample: "now"
    start_l = end - math.ceil(span / step_l) * step_l
    step_s = 15
    start_s = max(end - 3600, start_l)
    rng_l = {"start": start_l, "end": end, "step": step_l}
    rng_s = {"start": start_s, "end": end, "step": step_s}
    meta = {"start": start_l, "end": end}

    def rq(name, expr, rng, tag):
        return Query(f"{name}@{tag}", "range", "/api/v1/query_range", {"query": expr, **rng})

    long_, short = f"{duration(end - start_l)}/{step_l}s", f"{duration(end - start_s)}/{step_s}s"
    queries = [
        rq("cpu_busy_by_instance",
           'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))', rng_l, long_),
        rq("http_rps_by_job_code", "sum by (job, code) (rate(http_requests_total[5m]))",
           rng_l, long_),
        rq("http_p99_by_handler", "histogram_quantile(0.99, sum by (le, handler) "
           "(rate(http_request_duration_seconds_bucket[5m])))", rng_l, long_),
        rq("mem_used_pct",
           "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
           rng_l, long_),
        rq("net_rx_regex", "sum by (instance) (rate(node_network_receive_bytes_total"
           '{device=~"eth.*",instance=~"node-000[0-4].*"}[5m]))', rng_l, long_),
        rq("top5_pod_cpu", "topk(5, sum by (namespace, pod) "
           "(rate(container_cpu_usage_seconds_total[5m])))", rng_l, long_),
        rq("load1_max_over_time", "max_over_time(node_load1[10m])", rng_l, long_),
        rq("pod_mem_avg_by_ns", "avg by (namespace) (container_memory_working_set_bytes)",
           rng_l, long_),
        rq("http_5xx_by_handler", 'sum by (handler) (rate(http_requests_total{code=~"5.."}[1m]))',
           rng_s, short),
        rq("restarts_increase_by_ns", "sum by (namespace) "
           "(increase(kube_pod_container_status_restarts_total[1h]))", rng_s, short),
        rq("pod_cpu_p90_by_ns", "quantile by (namespace) "
           "(0.9, rate(container_cpu_usage_seconds_total[1m]))", rng_s, short),
        Query("top10_instance_rx@instant", "instant", "/api/v1/query",
              {"query": "topk(10, sum by (instance) (rate(node_network_receive_bytes_total[5m])))",
               "time": end}),
        Query("up_count_by_job@instant", "instant", "/api/v1/query",
              {"query": "count by (job) (up == 1)", "time": end}),
        Query("label_names", "metadata", "/api/v1/labels", dict(meta)),
        Query("metric_names", "metadata", "/api/v1/label/__name__/values", dict(meta), "GET"),
        Query("instance_values{job=node}", "metadata", "/api/v1/label/instance/values",
              {"match[]": 'up{job="node"}', **meta}, "GET"),
        Query("series_cpu_idle_regex", "metadata", "/api/v1/series",
              {"match[]": 'node_cpu_seconds_total{instance=~"node-0000[0-4].*",mode="idle"}',
               **meta}),
    ]
    window_h = math.ceil((end - tmin_s) / 3600) + 1
    times = {"start_long": start_l, "start_short": start_s, "end": end, "step_long": step_l,
             "step_short": step_s, "check_window": f"{window_h}h"}
    return queries, times


# ------------------------------------------------------------------------------ answers


def parse_answer(path: str, body: bytes) -> dict:
    """A peer's answer in a comparable form: {"type", "items"} or {"error"}."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        return {"error": f"not JSON: {exc}: {body[:200]!r}"}
    if doc.get("status") != "success":
        return {"error": f"{doc.get('errorType')}: {doc.get('error')}"[:300]}
    data = doc.get("data")
    if path.endswith(("/query", "/query_range")):
        kind = data["resultType"]
        if kind in ("scalar", "string"):
            t, v = data["result"]
            return {"type": kind, "items": {(): [(round(float(t) * 1000),
                                                  float(v) if kind == "scalar" else v)]}}
        items: dict[tuple, list] = {}
        for r in data["result"]:
            key = tuple(sorted(r["metric"].items()))
            pts = r["values"] if "values" in r else [r["value"]]
            items[key] = [(round(float(t) * 1000), float(v)) for t, v in pts]
        return {"type": kind, "items": items}
    if path.endswith("/series"):
        return {"type": "series", "items": {tuple(sorted(s.items())) for s in data}}
    return {"type": "list", "items": sorted(data)}


def size_of(ans: dict) -> int | None:
    return None if "error" in ans else len(ans["items"])


def points_of(ans: dict) -> int | None:
    if "error" in ans or not isinstance(ans["items"], dict):
        return None
    return sum(len(v) for v in ans["items"].values())


def close(a: float, b: float) -> bool:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def fmt_key(key: tuple) -> str:
    return "{" + ",".join(f"{k}={v!r}" for k, v in key) + "}"


def compare(ref: dict, got: dict, strict: bool) -> str | None:
    """None if ``got`` agrees with the reference answer, else what differs."""
    if "error" in ref or "error" in got:
        return f"error: {got.get('error') or ref.get('error')}"
    if ref["type"] != got["type"]:
        return f"result type {got['type']} vs {ref['type']}"
    r_items, g_items = ref["items"], got["items"]
    if not strict:
        return None if len(r_items) == len(g_items) else \
            f"{len(g_items)} items vs {len(r_items)}"
    if ref["type"] == "list":
        if r_items == g_items:
            return None
        missing, extra = sorted(set(r_items) - set(g_items)), sorted(set(g_items) - set(r_items))
        return f"{len(g_items)} vs {len(r_items)} items; missing {missing[:3]}, extra {extra[:3]}"
    missing = [k for k in r_items if k not in g_items]
    extra = [k for k in g_items if k not in r_items]
    if missing or extra:
        eg = fmt_key(missing[0]) if missing else fmt_key(extra[0])
        return (f"{len(g_items)} vs {len(r_items)} series: {len(missing)} missing, "
                f"{len(extra)} extra (e.g. {'missing' if missing else 'extra'} {eg})")
    if ref["type"] == "series":
        return None
    bad_ts, bad_val, worst, example = 0, 0, 0.0, ""
    for key, r_pts in r_items.items():
        g_pts = g_items[key]
        if [t for t, _ in r_pts] != [t for t, _ in g_pts]:
            bad_ts += 1
            if not example:
                example = (f"{fmt_key(key)}: {len(g_pts)} vs {len(r_pts)} points, "
                           f"timestamps differ")
            continue
        for (t, rv), (_, gv) in zip(r_pts, g_pts, strict=True):
            if not close(rv, gv):
                bad_val += 1
                rel = abs(rv - gv) / max(abs(rv), abs(gv)) if math.isfinite(rv - gv) else math.inf
                worst = max(worst, rel)
                if not example:
                    example = f"{fmt_key(key)} @{t / 1000:.3f}: {gv!r} vs {rv!r}"
    if bad_ts or bad_val:
        return (f"{bad_ts} series with other timestamps, {bad_val} values off (max rel "
                f"{worst:.3g}); e.g. {example}")
    return None


# ------------------------------------------------------------------------------ client


def server_cpu_s(pid: int) -> float:
    st = read_stat(pid)
    return st[3] if st else math.nan


def peak_rss_mib(pid: int) -> float:
    return round(ingest.vm_hwm_bytes(pid) / 2**20, 1)


class Client:
    """One keep-alive connection to a peer; times requests and the server's CPU."""

    def __init__(self, peer: str, srv: ingest.Server, timeout: float) -> None:
        self.peer, self.srv, self.timeout = peer, srv, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.srv.port,
                                                   timeout=self.timeout)
            self.conn.connect()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, q: Query) -> tuple[int, bytes, float, float]:
        """(status, body, wall seconds, server CPU seconds) of one request."""
        form = urllib.parse.urlencode(q.params)
        if q.method == "GET":
            url, body, headers = f"{q.path}?{form}", None, {}
        else:
            url, body = q.path, form.encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for attempt in (1, 2):
            conn = self._connect()  # a reconnect is not timed
            try:
                cpu0 = server_cpu_s(self.srv.pid)
                t0 = time.perf_counter()
                conn.request(q.method, url, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                dt = time.perf_counter() - t0
                cpu1 = server_cpu_s(self.srv.pid)
            except (http.client.HTTPException, ConnectionError) as exc:
                self.close()  # the server closed an idle keep-alive connection: once more
                if attempt == 2:
                    raise RuntimeError(f"{self.peer} {q.name}: {exc!r}") from exc
                continue
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, data, dt, cpu1 - cpu0
        raise AssertionError("unreachable")


def ask(client: Client, path: str, params: dict, method: str = "POST") -> dict:
    q = Query("check", "check", path, params, method)
    status, body, _, _ = client.call(q)
    ans = parse_answer(path, body)
    if status != 200 and "error" not in ans:
        ans = {"error": f"HTTP {status}"}
    return ans


def scalar_of(ans: dict) -> float:
    if "error" in ans:
        raise RuntimeError(ans["error"])
    return next(iter(ans["items"].values()))[0][1] if ans["items"] else 0.0


def held(client: Client, times: dict) -> tuple[int, float, float]:
    """(metric names, series, samples) the peer holds over the corpus' span. count_over_time
    drops the metric name, and series of different names may share the other labels, so
    the counts are taken name by name."""
    names = ask(client, "/api/v1/label/__name__/values",
                {"start": times["start_long"], "end": times["end"]}, "GET")
    if "error" in names:
        raise RuntimeError(names["error"])
    n_series = n_samples = 0.0
    for name in names["items"]:
        sel = f"count_over_time({name}[{times['check_window']}])"
        at = {"time": times["end"]}
        n_series += scalar_of(ask(client, "/api/v1/query", {"query": f"count({sel})", **at}))
        n_samples += scalar_of(ask(client, "/api/v1/query", {"query": f"sum({sel})", **at}))
    return len(names["items"]), n_series, n_samples


# ------------------------------------------------------------------------------ peers


def start_peer(a, peer: str, work: Path) -> ingest.Server:
    root = work / peer
    shutil.rmtree(root, ignore_errors=True)
    datadir = root / "data"
    datadir.mkdir(parents=True)
    srv = ingest.SERVERS[peer](a, datadir, ingest.free_port(), work / "logs" / f"{peer}.log")
    if peer == "vm":
        srv.argv += ["-search.latencyOffset=0s", "-search.disableCache"]
    srv.start(a.ready_timeout)
    assert srv.sampler is not None
    srv.sampler.stop()  # no /proc scans in the background while timing; sampled on demand
    return srv


def load_and_verify(a, peer: str, srv: ingest.Server, client: Client, corpus: Path, man: dict,
                    times: dict, work: Path) -> dict:
    """Remote-write the corpus into the peer (then restart it with --restart) and check that
    it holds all of it."""
    summary, _ = ingest.send(a, corpus, srv.base + "/api/v1/write",
                             work / "logs" / f"rwgen-{peer}.log")
    info = {"load_samples_per_s": summary["samples_per_s"], "load_s": summary["elapsed_s"],
            "load_non2xx": summary["non2xx"], "load_errors": summary["errors"]}
    log(f"  {peer}: loaded {summary['samples_accepted']:,} samples in "
        f"{summary['elapsed_s']:.1f} s ({summary['samples_per_s']:,.0f}/s)")
    if a.restart:
        srv.stop(a.stop_timeout)
        client.close()
        t0 = time.monotonic()
        srv.start(a.ready_timeout)
        assert srv.sampler is not None
        srv.sampler.stop()
        info["restart_ready_s"] = round(time.monotonic() - t0, 2)
        log(f"  {peer}: restarted, ready after {info['restart_ready_s']} s")
    return {**info, **verify(a, peer, srv, client, man, times)}


def verify(a, peer: str, srv: ingest.Server, client: Client, man: dict, times: dict) -> dict:
    """Wait (bounded) until the peer shows every series and sample of the corpus."""
    info: dict = {}
    t_end = time.monotonic() + a.settle_max
    while True:
        if peer == "vm":
            st, body = ingest.http_get(srv.base + "/internal/force_flush", timeout=300)
            if st != 200:
                raise RuntimeError(f"vm force_flush: {st} {body[:200]!r}")
        t0 = time.monotonic()
        n_names, n_series, n_samples = held(client, times)
        info.update(names_seen=n_names, series_seen=n_series, samples_seen=n_samples,
                    check_s=round(time.monotonic() - t0, 2))
        if n_series == man["series"] and n_samples == man["samples"]:
            break
        if time.monotonic() > t_end:
            raise RuntimeError(f"{peer} holds {n_series} series / {n_samples} samples, "
                               f"expected {man['series']} / {man['samples']}")
        log(f"  {peer}: {n_series} series / {n_samples} samples so far; waiting")
        time.sleep(2.0)
    log(f"  {peer}: holds all {n_series:,.0f} series ({n_names} names) and "
        f"{n_samples:,.0f} samples "
        f"(check {info['check_s']} s)")
    return info


def settle(servers: dict[str, ingest.Server], max_s: float, idle_cores: float = 0.1) -> dict:
    """Wait (bounded) until no peer's process tree uses more than idle_cores."""
    t_end = time.monotonic() + max_s
    while True:
        c0 = {p: s.sampler.sample() for p, s in servers.items()}
        time.sleep(2.0)
        busy = {p: round((s.sampler.sample() - c0[p]) / 2.0, 2) for p, s in servers.items()}
        if all(v <= idle_cores for v in busy.values()) or time.monotonic() > t_end:
            return busy


# ------------------------------------------------------------------------------ timing


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def run_query(q: Query, clients: dict[str, Client], reps: int) -> dict:
    res: dict = {"kind": q.kind, "path": q.path, "expr": q.expr}
    answers: dict[str, dict] = {}
    lat: dict[str, list[float]] = {p: [] for p in clients}
    cpu: dict[str, list[float]] = {p: [] for p in clients}
    peers = list(clients)
    for p in peers:  # warm-up, also the answer compared
        status, body, dt, _ = clients[p].call(q)
        answers[p] = parse_answer(q.path, body)
        if status != 200 and "error" not in answers[p]:
            answers[p] = {"error": f"HTTP {status}"}
        res[p] = {"warmup_ms": round(dt * 1000, 2), "bytes": len(body),
                  "results": size_of(answers[p]), "points": points_of(answers[p])}
        if "error" in answers[p]:
            res[p]["error"] = answers[p]["error"]
    for i in range(reps):
        for p in peers[i % len(peers):] + peers[:i % len(peers)]:
            if "error" in answers[p]:
                continue
            _, _, dt, c = clients[p].call(q)
            lat[p].append(dt)
            cpu[p].append(c)
    for p in peers:
        if lat[p]:
            res[p].update(median_ms=round(statistics.median(lat[p]) * 1000, 2),
                          p90_ms=round(quantile(lat[p], 0.9) * 1000, 2),
                          cpu_ms=round(statistics.fmean(cpu[p]) * 1000, 1),
                          lat_ms=[round(x * 1000, 2) for x in lat[p]])
    if "tsdb" in clients:
        for p, strict in (("prom", True), ("vm", False)):
            if p in clients:
                diff = compare(answers[p], answers["tsdb"], strict)
                res[f"agree_{p}"] = diff is None
                if diff:
                    res[f"diff_{p}"] = diff
                res[f"ratio_{p}"] = ingest.ratio(res["tsdb"].get("median_ms"),
                                                 res[p].get("median_ms"))
    return res


# ------------------------------------------------------------------------------ py-spy


PROJECT_FRAME = re.compile(r"\((tsdb|wire)/")
# innermost frames of a thread that waits (py-spy's idle detection misses these)
IDLE_LEAF = re.compile(r"^(\w*Selector\.select \(selectors|_worker \(concurrent/futures/"
                       r"|(Condition\.)?wait \(threading|Event\.wait )")


def summarize_py_spy(path: Path, top: int) -> list[tuple[str, float, float]]:
    """The store's own functions by share of py-spy's busy samples: (function, inclusive %,
    deepest %). "deepest" counts the samples where the function is the innermost frame of
    the project (tsdb/, wire/), i.e. its own code and the numpy / stdlib calls it makes."""
    incl: dict[str, int] = {}
    deepest: dict[str, int] = {}
    total = 0
    strip_line = re.compile(r":\d+\)$")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if IDLE_LEAF.match(frames[-1]):
            continue
        n = int(count)
        total += n
        frames = [strip_line.sub(")", f) for f in frames if PROJECT_FRAME.search(f)]
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
        if frames:
            deepest[frames[-1]] = deepest.get(frames[-1], 0) + n
    if not total:
        return []
    best = sorted(set(sorted(incl, key=lambda f: -incl[f])[:top])
                  | set(sorted(deepest, key=lambda f: -deepest[f])[:top]),
                  key=lambda f: (-deepest.get(f, 0), -incl[f]))
    return [(f, round(100 * incl[f] / total, 1), round(100 * deepest.get(f, 0) / total, 1))
            for f in best]


# ------------------------------------------------------------------------------ report


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(queries: dict, peers: list[str], summary: dict, peer_info: dict) -> None:
    for p, info in peer_info.items():
        if "skipped" in info or "failed" in info:
            print(f"{p}: {'skipped' if 'skipped' in info else 'FAILED'}: "
                  f"{info.get('skipped') or info.get('failed')}", file=sys.stderr)
    cols = "".join(f" {p + ' med':>10} {'p90':>8}" for p in peers)
    ratios = "".join(f" {'/' + p:>6}" for p in peers if p != "tsdb")
    print(f"{'query':<36}{cols}{ratios}  agree", file=sys.stderr)
    for name, r in queries.items():
        cells = "".join(f" {fmt(r.get(p, {}).get('median_ms'), '.1f'):>10}"
                        f" {fmt(r.get(p, {}).get('p90_ms'), '.1f'):>8}" for p in peers)
        rat = "".join(f" {fmt(r.get(f'ratio_{p}'), '.2f'):>6}" for p in peers if p != "tsdb")
        agree = []
        for p in ("prom", "vm"):
            if f"agree_{p}" in r:
                agree.append(f"{p}:" + ("ok" if r[f"agree_{p}"] else "NO"))
        errs = [f"{p} error" for p in peers if "error" in r.get(p, {})]
        print(f"{name[:36]:<36}{cells}{rat}  {' '.join(agree + errs)}", file=sys.stderr)
    for p in ("prom", "vm"):
        if f"median_ratio_{p}" in summary:
            by_kind = " ".join(f"{k} {fmt(v, '.2f')}"
                               for k, v in summary[f"median_ratio_{p}_by_kind"].items())
            print(f"median over queries of tsdb/{p}: {fmt(summary[f'median_ratio_{p}'], '.3f')}"
                  f"  ({by_kind})", file=sys.stderr)
    for name, r in queries.items():
        for p in ("prom", "vm"):
            if r.get(f"diff_{p}"):
                print(f"  mismatch {name} vs {p}: {r[f'diff_{p}']}", file=sys.stderr)
        for p in peers:
            if r.get(p, {}).get("error"):
                print(f"  error {name} on {p}: {r[p]['error']}", file=sys.stderr)


def summarize(queries: dict, peers_present: list[str]) -> dict:
    out: dict = {}
    for p in ("prom", "vm"):
        if p not in peers_present or "tsdb" not in peers_present:
            continue
        vals = [r.get(f"ratio_{p}") for r in queries.values()]
        med = ingest.median(vals)
        out[f"median_ratio_{p}"] = None if med is None else round(med, 3)
        kinds = sorted({r["kind"] for r in queries.values()})
        by_kind = {k: ingest.median([r.get(f"ratio_{p}") for r in queries.values()
                                     if r["kind"] == k]) for k in kinds}
        out[f"median_ratio_{p}_by_kind"] = {k: None if v is None else round(v, 3)
                                            for k, v in by_kind.items()}
        good = [v for v in vals if v]
        out[f"geomean_ratio_{p}"] = round(math.exp(statistics.fmean(map(math.log, good))), 3) \
            if good else None
    if out.get("median_ratio_prom") is not None:
        out["meets_targets"] = {"median_ratio_prom": out["median_ratio_prom"] <= TARGET_RATIO_PROM}
    return out


# ------------------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="rwgen corpus directory (generated there if missing; "
                                     "default WORKDIR/rw-SERIESxPOINTS-sSEED)")
    ap.add_argument("--series", type=int, default=10_000, help="when generating (default 10k)")
    ap.add_argument("--points", type=int, default=1440,
                    help="when generating (default 1440 = 6 h at 15 s)")
    ap.add_argument("--seed", type=int, default=1, help="when generating")
    ap.add_argument("--start-ms", type=int, default=1767225600000, help="when generating")
    ap.add_argument("--peers", default="tsdb,vm,prom", help="any of tsdb,vm,prom")
    ap.add_argument("--reps", type=int, default=7, help="timed requests per query and peer")
    ap.add_argument("--queries", help="only the queries whose name contains one of these "
                                      "comma-separated strings")
    ap.add_argument("--max-points", type=int, default=720,
                    help="points per series of the full-span range queries (sets their step)")
    ingest.add_peer_arguments(ap)
    ap.add_argument("--out", help="also write the full results (every latency) as JSON here")
    ap.add_argument("--restart", action="store_true",
                    help="restart every peer after loading (graceful stop, start on the same "
                         "data dir): each serves what it persisted (the store: block files "
                         "only; Prometheus: blocks + its WAL replayed into the head)")
    ap.add_argument("--max-seconds", type=float, default=1800, help="rwgen send limit")
    ap.add_argument("--query-timeout", type=float, default=300, help="per request, seconds")
    ap.add_argument("--ready-timeout", type=float, default=120)
    ap.add_argument("--stop-timeout", type=float, default=300,
                    help="seconds after SIGTERM before SIGKILL")
    ap.add_argument("--settle-max", type=float, default=120,
                    help="after loading, wait at most this long for all the data to be "
                         "visible (VictoriaMetrics) and for the peers to go idle")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before timing wait up to this long for the machine to quiet down")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--py-spy", metavar="DIR",
                    help="record the store with py-spy while timing (raw collapsed stacks in "
                         "DIR/tsdb-query.txt, top functions on stderr; slows the store: not "
                         "for the figures)")
    ap.add_argument("--py-spy-rate", type=int, default=200)
    ap.add_argument("--py-spy-native", action="store_true")
    a = ap.parse_args()
    a.sample_interval = 1.0  # ingest.Server's sampler; stopped once the peer is up
    if a.tsdb_cmd is None:
        a.tsdb_cmd = (shlex.quote(sys.executable) + " -m tsdb.cli serve --data-dir {datadir} "
                      "--listen 127.0.0.1:{port} --retention 0 --carbon-listen '' "
                      "--carbon-pickle-listen ''")
    peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        ap.error(f"unknown peers {unknown}; known: {','.join(ALL_PEERS)}")
    if not (ingest.LOAD_DIR / "rwgen.py").exists():
        ap.error(f"{ingest.LOAD_DIR}/rwgen.py not found (set TSDB_LOAD_DIR)")
    skipped = ingest.skipped_peers(a, peers)
    ingest.interrupt_on_signals()

    temp = None
    if a.workdir is None:
        temp = a.workdir = tempfile.mkdtemp(prefix="tsdb-query-")
    work = Path(a.workdir)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    servers: dict[str, ingest.Server] = {}
    clients: dict[str, Client] = {}
    peer_info: dict[str, dict] = {p: {"skipped": w} for p, w in skipped.items()}
    results: dict[str, dict] = {}
    machine: dict = {}
    failed, interrupted = False, False
    corpus, man = Path(a.corpus or ""), {"series": None, "samples": None}
    times: dict = {}
    spy = None
    try:
        corpus, man = ingest.ensure_corpus(a)
        queries, times = dashboard(man, a.max_points)
        if a.queries:
            wanted = [s.strip() for s in a.queries.split(",") if s.strip()]
            queries = [q for q in queries if any(w in q.name for w in wanted)]
        log(f"corpus {corpus}: {man['series']} series, {man['samples']:,} samples; peers "
            f"{','.join(peers)}; {len(queries)} queries x {a.reps} reps; range "
            f"{times['start_long']}..{times['end']} step {times['step_long']} s")
        for peer in peers:
            if peer in skipped:
                continue
            log(f"{peer}: start and load")
            try:
                srv = start_peer(a, peer, work)
                servers[peer] = srv
                clients[peer] = Client(peer, srv, a.query_timeout)
                peer_info[peer] = load_and_verify(a, peer, srv, clients[peer], corpus, man,
                                                  times, work)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                log(f"  {peer} failed: {exc}")
                peer_info[peer] = {"failed": str(exc)[:300]}
                failed = True
                if peer in servers:
                    clients.pop(peer).close()
                    dead = servers.pop(peer)
                    stop_process(dead.proc, a.stop_timeout)
                    if dead.proc in RUNNING:
                        RUNNING.remove(dead.proc)
        busy = settle(servers, a.settle_max)
        log(f"peers' cores before timing: {busy}")
        machine["busy_cores_before"] = (ingest.wait_quiet(a.quiet_cores, a.quiet_wait)
                                        if a.quiet_wait else None)
        machine["loadavg_before"] = Path("/proc/loadavg").read_text().split()[:3]
        log(f"machine busy cores before timing: {machine['busy_cores_before']}, load "
            f"{' '.join(machine['loadavg_before'])}")
        if a.py_spy and "tsdb" in servers:
            spy = ingest.start_py_spy(a, servers["tsdb"].pid, "query")
        j0 = ingest.machine_jiffies()
        cpu0 = {p: s.sampler.sample() for p, s in servers.items()}
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for q in queries:
            try:
                r = run_query(q, clients, a.reps)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001
                r = {"kind": q.kind, "path": q.path, "expr": q.expr,
                     "tsdb": {"error": str(exc)[:300]}}
            results[q.name] = r
            line = "  ".join(f"{p} {fmt(r.get(p, {}).get('median_ms'), '.1f')}"
                             for p in clients)
            log(f"  {q.name:<36} {line} ms")
            if "error" in r.get("tsdb", {}):
                failed = True
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        peers_cpu = sum(s.sampler.sample() - cpu0[p] for p, s in servers.items())
        client_cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
        during = ingest.busy_cores(j0, ingest.machine_jiffies())
        machine.update(timing_s=round(wall, 1), busy_cores_during=round(during, 2),
                       other_cores_during=round(during - (peers_cpu + client_cpu)
                                                / max(wall, 1e-9), 2),
                       loadavg_after=Path("/proc/loadavg").read_text().split()[:3])
        if spy is not None:
            ingest.stop_py_spy(spy)
            raw = Path(a.py_spy) / "tsdb-query.txt"
            spy = None
            if raw.exists():
                log(f"py-spy: the store's functions by share of samples while timing "
                    f"(inclusive, deepest project frame), {raw}:")
                for f, inc, own in summarize_py_spy(raw, 20):
                    log(f"  {inc:5.1f}% {own:5.1f}%  {f}")
        for p, s in servers.items():
            peer_info[p]["peak_rss_mib"] = peak_rss_mib(s.pid)
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping what runs, summarizing what was timed")
    except Exception as exc:  # noqa: BLE001
        failed = True
        log(f"failed: {exc}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # cleanup is bounded: let it finish
        if spy is not None:
            ingest.stop_py_spy(spy)
        for c in clients.values():
            c.close()
        for p, s in servers.items():
            try:
                s.stop(a.stop_timeout)
            except Exception as exc:  # noqa: BLE001
                log(f"stopping {p}: {exc}")
        if not a.keep:
            for p in peers:
                shutil.rmtree(work / p, ignore_errors=True)  # data dirs; logs stay
        for p in list(RUNNING):
            log(f"stopping leftover process {p.pid}")
            stop_process(p)
        if temp and not a.keep:
            shutil.rmtree(temp, ignore_errors=True)
    present = [p for p in peers if p in clients]
    summary = summarize(results, present)
    print_table(results, present, summary, peer_info)
    mismatches = [f"{name} vs {p}: {r[f'diff_{p}']}" for name, r in results.items()
                  for p in ("prom", "vm") if r.get(f"diff_{p}")]
    result = {
        "corpus": str(corpus), "series": man["series"], "samples": man["samples"],
        "reps": a.reps, "times": times, "machine_cores": os.cpu_count(), "machine": machine,
        "peers": peer_info, **summary,
        "queries": {n: {k: ({kk: vv for kk, vv in v.items() if kk != "lat_ms"}
                            if isinstance(v, dict) else v) for k, v in r.items()}
                    for n, r in results.items()},
        "mismatches": mismatches,
    }
    if a.out:
        Path(a.out).write_text(json.dumps({**result, "queries": results}, indent=1))
    print(json.dumps(result))
    if interrupted:
        return 130
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
