"""Carbon plaintext ingest over TCP: the store against carbon-cache and VictoriaMetrics.

    python benchmarks/carbon.py                          # 10k series x 720 points, 3 rounds
    python benchmarks/carbon.py --points 240 --runs 1    # quick
    python benchmarks/carbon.py --peers tsdb --runs 1 --py-spy /tmp/prof

Every run starts one peer on a fresh data directory (127.0.0.1, free ports) and sends the
same carbongen corpus (``../shared/load/carbongen.py send -c K``: K TCP connections, each
block of series in time order). Peers alternate run by run (tsdb, vm, carbon, tsdb, ...) so
that the noise of a shared machine falls on all alike; ratios come from one invocation.
A peer whose binary is missing is reported as skipped.

``points_per_s`` counts until stored: corpus points / (time the server holds them all -
start of the send). "Holds": the store's ``tsdb_samples_ingested_total{protocol="carbon"}``
(counted once the commit log is fsynced) reaches the points sent; VictoriaMetrics'
``vm_rows_inserted_total{type="graphite"}`` reaches them (in memory, not necessarily on
disk); carbon-cache has no such counter: the time its process tree went idle (< 0.05 CPU s
per second, 3 s in a row) with a whisper file per series, as ../shared/load/measure.py
does. ``socket_points_per_s`` is carbongen's own figure (what the sockets took in).

carbon-cache is Debian's ``graphite-carbon`` run by the system python3, with
MAX_CACHE_SIZE, MAX_UPDATES_PER_SECOND and MAX_CREATES_PER_MINUTE at ``inf``, one whisper
archive at the sending interval covering the corpus, and its own metrics off.
VictoriaMetrics runs with ``-graphiteListenAddr``.

CPU is the server's whole process tree (benchmarks/ingest.py's sampler) from the start of
the send until stored, per million points. The corpus is generated in WORKDIR with
timestamps ending now (whisper drops points older than its retention), unless --corpus.
Logs stay in WORKDIR/logs. stderr gets a table; the LAST stdout line is JSON: medians per
peer, ratios store / peer (``points_per_s_ratio_carbon``: target >= 3,
``points_per_s_ratio_vm``: target >= 0.5) and the same ratios per round. Exit status 1 if
a run failed its checks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ingest  # noqa: E402
from ingest import (  # noqa: E402
    LOAD_DIR,
    REPO,
    RUNNING,
    Server,
    busy_cores,
    du_bytes,
    free_port,
    log,
    machine_jiffies,
    median,
    metric_sum,
    ratio,
    stop_process,
    wait_quiet,
)

ALL_PEERS = ("tsdb", "vm", "carbon")
TARGETS = {"carbon": 3.0, "vm": 0.5}  # points_per_s ratio store / peer, at least

CARBON_CONF = """[cache]
STORAGE_DIR = {root}/storage/
LOCAL_DATA_DIR = {root}/storage/whisper/
WHITELISTS_DIR = {root}/storage/lists/
CONF_DIR = {root}/conf/
LOG_DIR = {root}/log/
PID_DIR = {root}/
ENABLE_LOGROTATION = False
DATABASE = whisper
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query_port}
CARBON_METRIC_INTERVAL = 0
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = True
ENABLE_TAGS = False
"""


class TcpServer(Server):
    """A peer without an HTTP readiness endpoint: ready when its TCP port accepts."""

    def start(self, timeout: float) -> None:
        with open(self.log_path, "ab") as logf:
            logf.write(f"==== start: {shlex.join(self.argv)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env,
                                         start_new_session=True)
        RUNNING.append(self.proc)
        self.sampler = ingest.TreeSampler(self.pid, self.sample_interval).start()
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer} exited with {self.proc.returncode} before "
                                   f"ready; log {self.log_path}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.peer} not ready after {timeout} s; log {self.log_path}")


def tsdb_server(a, root: Path, carbon_port: int, log_path: Path) -> Server:
    datadir = root / "data"
    port = free_port()
    argv = shlex.split(a.tsdb_cmd.format(datadir=shlex.quote(str(datadir)), port=port,
                                         carbon_port=carbon_port))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return Server("tsdb", argv, datadir, port, "/-/ready", log_path, a.sample_interval,
                  cwd=REPO, env=env)


def vm_server(a, root: Path, carbon_port: int, log_path: Path) -> Server:
    datadir = root / "data"
    port = free_port()
    argv = [a.vm_bin, f"-storageDataPath={datadir}", f"-httpListenAddr=127.0.0.1:{port}",
            f"-graphiteListenAddr=127.0.0.1:{carbon_port}", "-retentionPeriod=100y"]
    return Server("vm", argv, datadir, port, "/health", log_path, a.sample_interval)


def carbon_server(a, root: Path, carbon_port: int, log_path: Path, man: dict) -> Server:
    for sub in ("conf", "storage/whisper", "storage/lists", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "conf" / "carbon.conf").write_text(CARBON_CONF.format(
        root=root, port=carbon_port, pickle_port=free_port(), query_port=free_port()))
    # one archive at the sending interval, covering the corpus plus two hours of slack
    # (whisper silently drops points older than its retention)
    step = max(1, man["interval_ms"] // 1000)
    span_h = math.ceil((time.time() * 1000 - man["start_ms"]) / 3_600_000) + 2
    (root / "conf" / "storage-schemas.conf").write_text(
        f"[default]\npattern = .*\nretentions = {step}s:{span_h}h\n")
    argv = [a.carbon_bin, f"--config={root / 'conf' / 'carbon.conf'}", "--nodaemon",
            f"--logdir={root / 'log'}", f"--pidfile={root / 'carbon.pid'}", "start"]
    return TcpServer("carbon", argv, root / "storage" / "whisper", carbon_port, "", log_path,
                     a.sample_interval, cwd=root)


COUNTERS = {"tsdb": ("tsdb_samples_ingested_total", 'protocol="carbon"'),
            "vm": ("vm_rows_inserted_total", 'type="graphite"')}


def send(a, corpus: Path, port: int, log_path: Path) -> tuple[dict, float]:
    """carbongen.py send; its JSON summary and the monotonic time the summary appeared."""
    return ingest.run_sender([sys.executable, str(LOAD_DIR / "carbongen.py"), "send",
                              "--corpus", str(corpus), "--addr", f"127.0.0.1:{port}",
                              "-c", str(a.concurrency), "--max-seconds", str(a.max_seconds)],
                             log_path)


def wait_counted(srv: Server, peer: str, n: int, timeout: float) -> tuple[float | None, float]:
    """(monotonic time the server's counter reached n, or None; the last count seen)."""
    name, match = COUNTERS[peer]
    t_end = time.monotonic() + timeout
    counted = 0.0
    while time.monotonic() < t_end:
        counted = metric_sum(srv.base, name, match) or 0.0
        if counted >= n:
            return time.monotonic(), counted
        time.sleep(0.05)
    return None, counted


def whisper_files(root: Path) -> int:
    return sum(sum(1 for f in files if f.endswith(".wsp")) for _, _, files in os.walk(root))


def wait_carbon_idle(srv: Server, n_series: int, timeout: float) -> tuple[float | None, int]:
    """carbon-cache: (monotonic time its tree went idle with every whisper file made)."""
    assert srv.sampler is not None
    t_end = time.monotonic() + timeout
    idle_since = None
    prev = srv.sampler.sample()
    files = 0
    while time.monotonic() < t_end:
        time.sleep(1.0)
        t, cpu = time.monotonic(), srv.sampler.sample()
        files = whisper_files(srv.datadir)
        if cpu - prev < 0.05 and files >= n_series:
            idle_since = idle_since or t - 1.0
            if t - idle_since >= 3.0:
                return idle_since, files
        else:
            idle_since = None
        prev = cpu
    return None, files


WHISPER_COUNT = r"""
import json, os, random, sys, whisper
root, sample = sys.argv[1], int(sys.argv[2])
files = [os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs if f.endswith('.wsp')]
random.seed(1)
files = random.sample(files, min(sample, len(files)))
points = sum(sum(v is not None for v in whisper.fetch(f, 0)[1]) for f in files)
print(json.dumps({"files": len(files), "points": points}))
"""


def run_one(a, peer: str, rnd: int, corpus: Path, man: dict, work: Path) -> dict:
    root = work / f"{peer}-{rnd}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    carbon_port = free_port()
    log_path = logs / f"{peer}-{rnd}.log"
    if peer == "carbon":
        srv = carbon_server(a, root, carbon_port, log_path, man)
    else:
        srv = (tsdb_server if peer == "tsdb" else vm_server)(a, root, carbon_port, log_path)
    n = man["total_points"]
    res: dict = {"peer": peer, "round": rnd}
    spy = None
    try:
        srv.start(a.ready_timeout)
        time.sleep(1.0)
        res["busy_cores_before"] = wait_quiet(a.quiet_cores, a.quiet_wait) if a.quiet_wait else None
        if a.py_spy and peer == "tsdb":
            spy = ingest.start_py_spy(a, srv.pid, rnd)
        j0 = machine_jiffies()
        summary, t_sent = send(a, corpus, carbon_port, logs / f"carbongen-{peer}-{rnd}.log")
        t_start = t_sent - summary["elapsed_s"]
        if peer == "carbon":
            t_stored, files = wait_carbon_idle(srv, man["series"], a.max_seconds)
            res["whisper_files"] = files
            counted = None
        else:
            t_stored, counted = wait_counted(srv, peer, summary["points_sent"], a.max_seconds)
        j1 = machine_jiffies()
        if spy is not None:
            ingest.stop_py_spy(spy)
            spy = None
        assert srv.sampler is not None
        srv.sampler.sample()
        cpu0 = srv.sampler.cpu_at(t_start)
        stored_s = (t_stored - t_start) if t_stored else None
        cpu = srv.sampler.cpu_at(t_stored) - cpu0 if t_stored else None
        res.update({
            "points_sent": summary["points_sent"], "errors": summary["errors"],
            "socket_points_per_s": summary["points_per_s"], "send_s": summary["elapsed_s"],
            "stored_s": round(stored_s, 3) if stored_s else None,
            "points_per_s": round(n / stored_s) if stored_s else None,
            "server_counted": counted, "client_cpu_s": summary["client_cpu_s"],
            "cpu_s": round(cpu, 3) if cpu is not None else None,
            "cpu_s_per_m": round(cpu / n * 1e6, 3) if cpu is not None else None,
        })
        if stored_s and cpu is not None:
            res["other_cores_during"] = round(busy_cores(j0, j1) - cpu / stored_s
                                              - summary["client_cpu_s"] / stored_s, 2)
        if peer == "vm":
            ingest.http_get(srv.base + "/internal/force_flush", timeout=300)
        if peer == "carbon" and a.whisper_check:
            check = subprocess.run(["/usr/bin/python3", "-c", WHISPER_COUNT, str(srv.datadir),
                                    str(a.whisper_check)], capture_output=True, text=True,
                                   timeout=600)
            res["whisper_check"] = (json.loads(check.stdout.strip().splitlines()[-1])
                                    if check.returncode == 0 else {"error": check.stderr[-300:]})
        res.update(srv.stop(a.stop_timeout))
        res["disk_bytes"] = du_bytes(srv.datadir)
        res["bytes_per_point"] = round(res["disk_bytes"] / n, 3)
        res["peak_rss_mib"] = round(max(srv.sampler.hwm, srv.sampler.rss_peak) / 2**20, 1)
    finally:
        if spy is not None:
            ingest.stop_py_spy(spy)
        if srv.sampler is not None:
            srv.sampler.stop()
        if srv.proc is not None and srv.proc.returncode is None:
            stop_process(srv.proc, a.stop_timeout)
            if srv.proc in RUNNING:
                RUNNING.remove(srv.proc)
            if srv.sampler is not None:
                srv.sampler.kill_leftovers()
    problems = []
    if res.get("errors"):
        problems.append(f"send errors {res['errors']}")
    if res.get("points_sent") != n:
        problems.append(f"sent {res.get('points_sent')} of {n} points")
    if res.get("stored_s") is None:
        problems.append("never held every point (counter short or never idle) within "
                        f"{a.max_seconds} s (counted {res.get('server_counted')})")
    check = res.get("whisper_check")
    if check and "points" in check and check["points"] < check["files"] * man["points"]:
        problems.append(f"whisper holds {check['points']} points in {check['files']} files, "
                        f"expected {check['files'] * man['points']}")
    res["problems"] = problems
    res["ok"] = not problems
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return res


def ensure_corpus(a, work: Path) -> tuple[Path, dict]:
    corpus = Path(a.corpus) if a.corpus else work / f"carbon-{a.series}x{a.points}"
    if not (corpus / "manifest.json").exists():
        log(f"generating corpus {corpus} ({a.series} series x {a.points} points, ending now)")
        subprocess.run([sys.executable, str(LOAD_DIR / "carbongen.py"), "gen", "--out",
                        str(corpus), "--series", str(a.series), "--points", str(a.points),
                        "--seed", str(a.seed)], check=True, stdout=subprocess.DEVNULL)
    return corpus, json.loads((corpus / "manifest.json").read_text())


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summarize(a, runs: list[dict], peers: list[str], skipped: dict) -> tuple[dict, dict]:
    keys = ("points_per_s", "socket_points_per_s", "cpu_s_per_m", "peak_rss_mib",
            "bytes_per_point")
    out: dict = {}
    for peer in peers:
        if peer in skipped:
            out[peer] = {"skipped": skipped[peer]}
            continue
        mine = [r for r in runs if r["peer"] == peer]
        ok = [r for r in mine if r.get("ok")]
        out[peer] = {k: median([r.get(k) for r in ok]) for k in keys}
        out[peer].update(runs=len(mine), runs_ok=len(ok))
    ratios: dict = {}
    meets: dict = {}
    for peer, target in TARGETS.items():
        other, mine = out.get(peer), out.get("tsdb")
        if not other or not mine or "skipped" in other or "skipped" in mine:
            continue
        for key in ("points_per_s", "cpu_s_per_m"):
            name = f"{key}_ratio_{peer}"
            ratios[name] = ratio(mine.get(key), other.get(key))
            per_round = []
            for rnd in range(1, a.runs + 1):
                x = {r["peer"]: r for r in runs if r["round"] == rnd and r.get("ok")}
                m, o = x.get("tsdb"), x.get(peer)
                per_round.append(ratio(m.get(key), o.get(key)) if m and o else None)
            ratios[name + "_rounds"] = per_round
        value = ratios[f"points_per_s_ratio_{peer}"]
        if value is not None:
            meets[f"points_per_s_ratio_{peer}"] = value >= target
    if meets:
        ratios["meets_targets"] = meets
    return out, ratios


def print_table(runs: list[dict], peers_out: dict, ratios: dict) -> None:
    print(f"{'round':>5} {'peer':<6} {'points/s':>10} {'socket/s':>10} {'stored s':>8} "
          f"{'cpu s/M':>8} {'rss MiB':>8} {'B/point':>8} {'busy':>5} {'other':>5}  ok",
          file=sys.stderr)
    for r in runs:
        cells = [format(r["round"], ">5"), format(r["peer"], "<6")]
        for key, spec, width in (("points_per_s", ",.0f", 10), ("socket_points_per_s", ",.0f", 10),
                                 ("stored_s", ".2f", 8), ("cpu_s_per_m", ".3f", 8),
                                 ("peak_rss_mib", ".0f", 8), ("bytes_per_point", ".3f", 8),
                                 ("busy_cores_before", ".2f", 5),
                                 ("other_cores_during", ".2f", 5)):
            cells.append(format(fmt(r.get(key), spec), f">{width}"))
        ok = "yes" if r.get("ok") else "NO: " + "; ".join(r.get("problems", ["error"]))
        print(" ".join(cells) + "  " + ok, file=sys.stderr)
    print("medians (valid runs):", file=sys.stderr)
    for peer, m in peers_out.items():
        if "skipped" in m:
            print(f"  {peer:<6} skipped: {m['skipped']}", file=sys.stderr)
            continue
        print(f"  {peer:<6} {fmt(m['points_per_s'], ',.0f'):>10} points/s stored  "
              f"{fmt(m['cpu_s_per_m'], '.3f')} cpu s/M  {fmt(m['peak_rss_mib'], '.0f')} MiB  "
              f"[{m['runs_ok']}/{m['runs']} runs ok]", file=sys.stderr)
    for key, value in ratios.items():
        if not key.endswith("_rounds") and key != "meets_targets":
            print(f"  {key:<28} {fmt(value, '.3f')}  rounds {ratios.get(key + '_rounds')}",
                  file=sys.stderr)
    if "meets_targets" in ratios:
        print(f"  meets targets: {ratios['meets_targets']}", file=sys.stderr)


def _report(peer: str, r: dict) -> None:
    if r.get("points_per_s"):
        log(f"  {peer}: {r['points_per_s']:,.0f} points/s stored "
            f"({r['socket_points_per_s']:,.0f}/s on the socket), "
            f"cpu {fmt(r.get('cpu_s_per_m'), '.3f')} s/M, "
            f"rss {fmt(r.get('peak_rss_mib'), '.0f')} MiB"
            f"{'' if r['ok'] else ', PROBLEMS: ' + '; '.join(r['problems'])}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="carbongen corpus directory (default: generated in "
                                     "WORKDIR, timestamps ending now)")
    ap.add_argument("--series", type=int, default=10_000, help="when generating (default 10k)")
    ap.add_argument("--points", type=int, default=720, help="when generating (default 720)")
    ap.add_argument("--seed", type=int, default=1, help="when generating")
    ap.add_argument("--peers", default="tsdb,vm,carbon", help="any of tsdb,vm,carbon")
    ap.add_argument("--runs", type=int, default=3, help="rounds; each round runs every peer")
    ap.add_argument("-c", "--concurrency", type=int, default=4, help="carbongen connections")
    ap.add_argument("--tsdb-cmd", default=None,
                    help="command line for the store, with {datadir}, {port} and "
                         "{carbon_port} (default: this checkout's `python -m tsdb.cli serve`)")
    ap.add_argument("--vm-bin", default=shutil.which("victoria-metrics"))
    ap.add_argument("--carbon-bin", default=shutil.which("carbon-cache"))
    ap.add_argument("--workdir", default=os.environ.get("TSDB_BENCH_DIR"),
                    help="data dirs, logs, the corpus (default: a temp dir, removed at the "
                         "end unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    ap.add_argument("--out", help="also write the full results (every run) as JSON here")
    ap.add_argument("--max-seconds", type=float, default=900,
                    help="limit of a send, and of the wait until stored")
    ap.add_argument("--ready-timeout", type=float, default=120)
    ap.add_argument("--stop-timeout", type=float, default=600)
    ap.add_argument("--whisper-check", type=int, default=200,
                    help="carbon-cache: whisper files whose points are counted (0: none)")
    ap.add_argument("--sample-interval", type=float, default=0.1, help="/proc sampling, s")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before each send wait up to this long for the machine to quiet "
                         "down (0: don't)")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--py-spy", metavar="DIR", help="record the store with py-spy (slows it)")
    ap.add_argument("--py-spy-rate", type=int, default=200)
    ap.add_argument("--py-spy-native", action="store_true")
    a = ap.parse_args()
    if a.tsdb_cmd is None:
        a.tsdb_cmd = (shlex.quote(sys.executable) + " -m tsdb.cli serve --data-dir {datadir} "
                      "--listen 127.0.0.1:{port} --carbon-listen 127.0.0.1:{carbon_port} "
                      "--carbon-pickle-listen '' --retention 0")
    peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        ap.error(f"unknown peers {unknown}; known: {','.join(ALL_PEERS)}")
    if not (LOAD_DIR / "carbongen.py").exists():
        ap.error(f"{LOAD_DIR}/carbongen.py not found (set TSDB_LOAD_DIR)")
    skipped = ingest.skipped_peers(a, peers)
    ingest.interrupt_on_signals()
    temp = None
    if a.workdir is None:
        temp = a.workdir = tempfile.mkdtemp(prefix="tsdb-carbon-")
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    interrupted = False
    corpus, man = Path(a.corpus or ""), {"series": None, "total_points": None}
    try:
        corpus, man = ensure_corpus(a, work)
        log(f"corpus {corpus}: {man['series']} series, {man['total_points']:,} points, "
            f"{man['bytes'] / 1e6:.0f} MB; peers {','.join(peers)}, {a.runs} rounds, "
            f"-c {a.concurrency}")
        ingest.alternate_rounds(a, peers, skipped, runs,
                                lambda peer, rnd: run_one(a, peer, rnd, corpus, man, work),
                                _report)
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping what runs, summarizing finished runs")
    finally:
        ingest.stop_leftovers()
        if temp and not a.keep:
            shutil.rmtree(temp, ignore_errors=True)
    peers_out, ratios = summarize(a, runs, peers, skipped)
    print_table(runs, peers_out, ratios)
    result = {"corpus": str(corpus), "series": man["series"], "points": man["total_points"],
              "rounds": a.runs, "concurrency": a.concurrency, "machine_cores": os.cpu_count(),
              "peers": peers_out, **ratios, "runs": runs}
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    if interrupted:
        return 130
    return 0 if runs and all(r.get("ok") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
