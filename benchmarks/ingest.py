"""Remote-write ingest over HTTP: the store against VictoriaMetrics and Prometheus.

    python benchmarks/ingest.py --corpus /work/corpus/rw10k            # 10k x 1440, 3 rounds
    python benchmarks/ingest.py --points 120 --runs 1                   # quick: 10k x 120
    python benchmarks/ingest.py --corpus DIR --peers tsdb --runs 1 --py-spy /tmp/prof

Every run starts one peer on a fresh data directory (127.0.0.1, a free port), replays the
whole corpus with ``rwgen.py send -c K`` (K keep-alive connections; a block of series is
never in flight twice) and stops the peer. Peers alternate run by run (tsdb, vm, prom,
tsdb, vm, prom, ...) so that the noise of a shared machine falls on all of them alike; the
ratios come from one invocation. A peer whose binary is missing is reported as skipped.

Per run:

* ``samples_per_s``: rwgen's summary (accepted samples / wall time of the send). The run
  is valid only if every request got a 2xx, no request failed, the accepted samples equal
  the corpus' samples and (where the peer exposes it) the server's own counter agrees.
* ``cpu_s_per_m``: CPU seconds of the server's whole process tree during the send, per
  million samples. Method: a thread reads /proc every ``--sample-interval`` seconds and
  sums, over every live process of the tree (the server, its descendants by parent link,
  and anything in the session it was started in), utime + stime + cutime + cstime. That sum
  is a cumulative counter of the tree: when a child exits and its parent reaps it, the
  child's time moves into the parent's cutime/cstime, so nothing is lost or counted twice;
  a tree process that exits while its parent is outside the tree (an orphan re-parented to
  init) has its last-seen times added to a separate tally. The send's window is
  [end - rwgen elapsed_s, end], ``end`` being when rwgen printed its summary; the counter
  is interpolated at both ends.
* ``cpu_s_per_m_to_exit``: the same from the start of the send until the server has made
  everything durable and exited: for the store SIGTERM (it flushes every head window to
  block files and empties its commit log), for VictoriaMetrics /internal/force_flush then
  SIGTERM, for Prometheus SIGTERM. The end figure is exact for everything the server
  reaped: ``wait4`` returns the rusage of the server and of every descendant it waited for;
  the orphan tally and the last-seen times of tree processes still alive when the server
  has exited are added (those are then stopped by pid).
* ``peak_rss_mib``: the larger of the root process' VmHWM (its exact peak) and the peak of
  the tree's summed VmRSS as sampled, over the server's whole life (start, send, stop).
* ``bytes_per_sample``: allocated bytes (du) of the whole data directory / corpus samples,
  after a graceful stop (store, Prometheus) or after /internal/force_flush once its size has
  stopped changing (VictoriaMetrics; the size after its stop is reported too). Prometheus'
  figure is its data dir as SIGTERM leaves it: mostly WAL and head chunks, since a fresh
  Prometheus compacts only the oldest 2 h windows during a short replay.

Also checked: the store's commit log must be (nearly) empty after its graceful stop. Before
each send the benchmark waits (``--quiet-wait``, bounded) for the machine to go quiet; the
table shows the busy cores seen then (``busy``) and the cores used by anything but server
and client during the send (``other``): a run with ``other`` well above 0 was disturbed.
Server and rwgen logs stay in WORKDIR/logs.

stderr gets a table per run and the medians; the LAST stdout line is JSON: medians per
peer and the ratios store / peer of the medians (``samples_per_s_ratio_vm``: target >= 0.45,
``cpu_s_per_m_ratio_vm``: <= 1.5, ``bytes_per_sample_ratio_vm``: <= 1.0, the same with
``_prom``), with the per-round ratios beside them. Exit status 1 if a run failed its checks.
Every process started is stopped (SIGTERM, then SIGKILL) on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOAD_DIR = Path(os.environ.get("TSDB_LOAD_DIR", REPO.parent / "shared" / "load"))
TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ALL_PEERS = ("tsdb", "vm", "prom")
TARGETS = {"samples_per_s": (">=", 0.45), "cpu_s_per_m": ("<=", 1.5),
           "bytes_per_sample": ("<=", 1.0)}

#: every server and client started, so that nothing outlives the benchmark
RUNNING: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ /proc


def read_stat(pid: int) -> tuple | None:
    """(ppid, session, starttime, cpu_self_s, cpu_children_s, rss_bytes) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[1]), int(fields[3]), int(fields[19]),
            (int(fields[11]) + int(fields[12])) / TCK,
            (int(fields[13]) + int(fields[14])) / TCK, int(fields[21]) * PAGE)


def vm_hwm_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # busy, total (idle + iowait are not busy)


def busy_cores(j0: tuple[int, int], j1: tuple[int, int]) -> float:
    return (j1[0] - j0[0]) / max(j1[1] - j0[1], 1) * (os.cpu_count() or 1)


class TreeSampler:
    """CPU and RSS of a process tree, sampled from /proc in a thread (see the module doc)."""

    def __init__(self, root: int, interval: float) -> None:
        self.root = root
        self.interval = interval
        self.points: list[tuple[float, float]] = []  # (monotonic time, cumulative cpu s)
        self.rss_peak = 0
        self.hwm = 0
        self.max_procs = 0
        self.orphan_cpu = 0.0
        self._known: dict[int, tuple] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _tree(self) -> dict[int, tuple]:
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = read_stat(int(name))
                if st is not None:
                    stats[int(name)] = st
        children: dict[int, list[int]] = {}
        for pid, st in stats.items():
            children.setdefault(st[0], []).append(pid)
        tree = {}
        todo = [self.root] if self.root in stats else []
        while todo:
            pid = todo.pop()
            tree[pid] = stats[pid]
            todo.extend(children.get(pid, ()))
        for pid, st in stats.items():
            known = self._known.get(pid)
            if pid not in tree and (st[1] == self.root or (known and known[2] == st[2])):
                tree[pid] = st  # same session, or seen in the tree before (re-parented)
        return tree

    def sample(self) -> float:
        with self._lock:
            tree = self._tree()
            t = time.monotonic()
            for pid, st in self._known.items():
                now = tree.get(pid)
                if now is None or now[2] != st[2]:  # gone (reaped) or the pid was reused
                    # not reaped by a tree process: its time would be lost (the root is
                    # reaped by us, and Server.stop takes its total from wait4)
                    if pid != self.root and st[0] not in tree:
                        self.orphan_cpu += st[3] + st[4]
            self._known = tree
            cpu = sum(st[3] + st[4] for st in tree.values()) + self.orphan_cpu
            if self.points and cpu < self.points[-1][1]:
                cpu = self.points[-1][1]  # a reap seen half-way through a scan
            self.points.append((t, cpu))
            self.rss_peak = max(self.rss_peak, sum(st[5] for st in tree.values()))
            self.max_procs = max(self.max_procs, len(tree))
            if self.root in tree:
                self.hwm = max(self.hwm, vm_hwm_bytes(self.root))
            return cpu

    def kill_leftovers(self) -> tuple[list[int], float]:
        """Once the root has exited: stop what is left of its tree (by pid), so that no
        process the benchmark started outlives its run. Returns the pids signalled and the
        CPU seconds they had used (which the root's rusage does not hold)."""
        with self._lock:
            tree = self._tree()
        left = [pid for pid in tree if pid != self.root]
        cpu = sum(tree[pid][3] + tree[pid][4] for pid in left)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            t_end = time.monotonic() + 5
            while sig == signal.SIGTERM and time.monotonic() < t_end and any(
                    read_stat(pid) for pid in left):
                time.sleep(0.1)
        return left, cpu

    def cpu_at(self, t: float) -> float:
        """The cumulative CPU counter at monotonic time t (linear between samples)."""
        with self._lock:
            pts = list(self.points)
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, c0), (t1, c1) in zip(pts, pts[1:], strict=False):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / max(t1 - t0, 1e-9)
        return pts[-1][1]


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metric_sum(base: str, name: str, match: str = "") -> float | None:
    """Sum of a metric over the label sets containing ``match`` on a /metrics page."""
    try:
        _, body = http_get(base + "/metrics", timeout=30)
    except OSError:
        return None
    total, found = 0.0, False
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{") \
                and match in line:
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def du_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def du_breakdown(path: Path) -> dict[str, int]:
    """Allocated bytes per top-level entry of a data directory (files grouped as '.')."""
    out: dict[str, int] = {}
    if not path.exists():
        return out
    for entry in sorted(path.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            out[entry.name] = du_bytes(entry)
        else:
            out["."] = out.get(".", 0) + entry.lstat().st_blocks * 512
    return out


def median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def wait_quiet(max_cores: float, timeout: float, window: float = 2.0) -> float:
    """Wait (bounded) until the machine is using fewer than max_cores; the busy cores seen."""
    t_end = time.monotonic() + timeout
    while True:
        j0 = machine_jiffies()
        time.sleep(window)
        busy = busy_cores(j0, machine_jiffies())
        if busy < max_cores or time.monotonic() >= t_end:
            return round(busy, 2)


def stop_process(p: subprocess.Popen, timeout: float = 20.0) -> None:
    """Emergency stop of one started process (by its pid): SIGTERM, then SIGKILL."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------------------ servers


class Server:
    def __init__(self, peer: str, argv: list[str], datadir: Path, port: int, ready_path: str,
                 log_path: Path, sample_interval: float, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.peer, self.argv, self.datadir, self.port = peer, argv, datadir, port
        self.base = f"http://127.0.0.1:{port}"
        self.ready_path, self.log_path, self.cwd, self.env = ready_path, log_path, cwd, env
        self.sample_interval = sample_interval
        self.proc: subprocess.Popen | None = None
        self.sampler: TreeSampler | None = None
        self.cpu_at_exit: float | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float) -> None:
        with open(self.log_path, "ab") as logf:
            logf.write(f"==== start: {shlex.join(self.argv)}\n".encode())
            logf.flush()
            # own session: Ctrl-C in the terminal reaches only us, and we stop it by pid
            self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env,
                                         start_new_session=True)
        RUNNING.append(self.proc)
        self.sampler = TreeSampler(self.pid, self.sample_interval).start()
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer} exited with {self.proc.returncode} before "
                                   f"ready; log {self.log_path}:\n{self.log_tail()}")
            try:
                if http_get(self.base + self.ready_path, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.peer} not ready after {timeout} s; log {self.log_path}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float) -> dict:
        """SIGTERM, wait for the exit (SIGKILL after ``timeout``); the tree's CPU at exit from
        wait4's rusage (the server and every descendant it reaped)."""
        assert self.proc is not None and self.sampler is not None
        t0 = time.monotonic()
        killed = False
        if self.proc.returncode is not None:  # died earlier and reaped: no rusage left
            self.sampler.stop()
            self.cpu_at_exit = self.sampler.points[-1][1]
            return {"exit_code": self.proc.returncode, "stop_s": 0.0, "killed": False}
        os.kill(self.pid, signal.SIGTERM)
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if not killed and time.monotonic() - t0 > timeout:
                log(f"  {self.peer} still running {timeout:.0f} s after SIGTERM: SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                killed = True
            self.sampler.sample()
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        stop_s = time.monotonic() - t0
        self.sampler.sample()
        self.sampler.stop()
        left, left_cpu = self.sampler.kill_leftovers()
        if left:
            log(f"  {self.peer}: stopped {len(left)} processes its tree left behind: {left}")
        self.cpu_at_exit = ru.ru_utime + ru.ru_stime + self.sampler.orphan_cpu + left_cpu
        if self.proc in RUNNING:
            RUNNING.remove(self.proc)
        return {"exit_code": self.proc.returncode, "stop_s": round(stop_s, 2),
                "killed": killed}


def tsdb_server(a, datadir: Path, port: int, log_path: Path) -> Server:
    argv = shlex.split(a.tsdb_cmd.format(datadir=shlex.quote(str(datadir)), port=port))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return Server("tsdb", argv, datadir, port, "/-/ready", log_path, a.sample_interval,
                  cwd=REPO, env=env)


def vm_server(a, datadir: Path, port: int, log_path: Path) -> Server:
    argv = [a.vm_bin, f"-storageDataPath={datadir}", f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y"]
    return Server("vm", argv, datadir, port, "/health", log_path, a.sample_interval)


def prom_server(a, datadir: Path, port: int, log_path: Path) -> Server:
    cfg = datadir.parent / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    argv = [a.prom_bin, f"--config.file={cfg}", f"--storage.tsdb.path={datadir}",
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=36500d"]
    return Server("prom", argv, datadir, port, "/-/ready", log_path, a.sample_interval)


SERVERS = {"tsdb": tsdb_server, "vm": vm_server, "prom": prom_server}
# the server's own count of samples received, to cross-check rwgen's
COUNTERS = {"tsdb": ("tsdb_samples_ingested_total", 'protocol="remote_write"'),
            "vm": ("vm_rows_inserted_total", 'type="promremotewrite"'),
            "prom": ("prometheus_tsdb_head_samples_appended_total", "")}


# ------------------------------------------------------------------------------ one run


def run_sender(argv: list[str], log_path: Path) -> tuple[dict, float]:
    """Run a load generator's ``send`` (rwgen.py, carbongen.py); its JSON summary and the
    monotonic time the summary appeared."""
    with open(log_path, "ab") as errf:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf,
                             stdin=subprocess.DEVNULL, text=True)
    RUNNING.append(p)
    try:
        summary, t_end = None, None
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith("{"):
                t_end = time.monotonic()
                summary = json.loads(line)
        p.wait(60)
    finally:
        stop_process(p)
        RUNNING.remove(p)
    if summary is None or t_end is None:
        raise RuntimeError(f"{Path(argv[1]).name} send printed no summary "
                           f"(exit {p.returncode}); see {log_path}")
    return summary, t_end


def send(a, corpus: Path, url: str, log_path: Path) -> tuple[dict, float]:
    """rwgen.py send; its JSON summary and the monotonic time the summary appeared."""
    return run_sender([sys.executable, str(LOAD_DIR / "rwgen.py"), "send", "--corpus",
                       str(corpus), "--url", url, "-c", str(a.concurrency), "--max-seconds",
                       str(a.max_seconds)], log_path)


def run_one(a, peer: str, rnd: int, corpus: Path, man: dict, work: Path) -> dict:
    root = work / f"{peer}-{rnd}"
    shutil.rmtree(root, ignore_errors=True)
    datadir = root / "data"
    datadir.mkdir(parents=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    srv = SERVERS[peer](a, datadir, free_port(), logs / f"{peer}-{rnd}.log")
    n = man["samples"]
    res: dict = {"peer": peer, "round": rnd}
    spy = None
    try:
        srv.start(a.ready_timeout)
        time.sleep(1.0)
        res["busy_cores_before"] = wait_quiet(a.quiet_cores, a.quiet_wait) if a.quiet_wait else None
        if a.py_spy and peer == "tsdb":
            spy = start_py_spy(a, srv.pid, rnd)
        j0 = machine_jiffies()
        summary, t_end = send(a, corpus, srv.base + "/api/v1/write",
                              logs / f"rwgen-{peer}-{rnd}.log")
        j1 = machine_jiffies()
        if spy is not None:
            stop_py_spy(spy)
        t_start = t_end - summary["elapsed_s"]
        srv.sampler.sample()
        cpu0, cpu1 = srv.sampler.cpu_at(t_start), srv.sampler.cpu_at(t_end)
        name, match = COUNTERS[peer]
        counted = metric_sum(srv.base, name, match)
        res.update({
            "samples_per_s": summary["samples_per_s"], "elapsed_s": summary["elapsed_s"],
            "requests": summary["requests"], "samples_accepted": summary["samples_accepted"],
            "non2xx": summary["non2xx"], "errors": summary["errors"],
            "lat_p50_ms": summary["lat_p50_ms"], "lat_p99_ms": summary["lat_p99_ms"],
            "client_cpu_s": summary["client_cpu_s"], "server_counted": counted,
            "cpu_send_s": round(cpu1 - cpu0, 3),
            "cpu_s_per_m": round((cpu1 - cpu0) / n * 1e6, 3),
            "server_cores": round((cpu1 - cpu0) / max(summary["elapsed_s"], 1e-9), 2),
        })
        during = busy_cores(j0, j1)
        res["other_cores_during"] = round(
            during - res["server_cores"] - summary["client_cpu_s"] / summary["elapsed_s"], 2)
        # durability, then bytes on disk
        if peer == "vm":
            t0 = time.monotonic()
            res["disk_bytes"] = vm_flushed_size(srv, a.settle_max)
            res["flush_s"] = round(time.monotonic() - t0, 2)
            res["disk_breakdown"] = du_breakdown(datadir)
            res.update(srv.stop(a.stop_timeout))
            # on exit it also saves its caches (cache/), which are not data
            res["disk_bytes_after_stop"] = du_bytes(datadir)
            res["disk_bytes_after_stop_without_cache"] = (res["disk_bytes_after_stop"]
                                                          - du_bytes(datadir / "cache"))
        else:
            res.update(srv.stop(a.stop_timeout))
            res["disk_bytes"] = du_bytes(datadir)
            res["disk_breakdown"] = du_breakdown(datadir)
        res["bytes_per_sample"] = round(res["disk_bytes"] / n, 4)
        res["cpu_to_exit_s"] = round(srv.cpu_at_exit - cpu0, 3)
        res["cpu_s_per_m_to_exit"] = round((srv.cpu_at_exit - cpu0) / n * 1e6, 3)
        res["peak_rss_mib"] = round(max(srv.sampler.hwm, srv.sampler.rss_peak) / 2**20, 1)
        res["max_procs"] = srv.sampler.max_procs
        res["orphan_cpu_s"] = round(srv.sampler.orphan_cpu, 3)
    finally:
        if spy is not None:
            stop_py_spy(spy)
        if srv.sampler is not None:
            srv.sampler.stop()
        if srv.proc is not None and srv.proc.returncode is None:
            stop_process(srv.proc, a.stop_timeout)
            if srv.proc in RUNNING:
                RUNNING.remove(srv.proc)
            if srv.sampler is not None:
                srv.sampler.kill_leftovers()
    problems = []
    if res["non2xx"] or res["errors"]:
        problems.append(f"non-2xx {res['non2xx']} errors {res['errors']}")
    if res["samples_accepted"] != n:
        problems.append(f"accepted {res['samples_accepted']} of {n} samples")
    if counted is not None and int(counted) != n:
        problems.append(f"server counted {int(counted)} of {n} samples")
    if peer == "tsdb" and res["disk_breakdown"].get("commitlog", 0) > 1 << 16:
        problems.append(f"commit log not emptied by the graceful stop "
                        f"({res['disk_breakdown']['commitlog']} bytes)")
    if res["exit_code"] != 0 or res["killed"]:
        problems.append(f"exit code {res['exit_code']}{' (killed)' if res['killed'] else ''}")
    res["problems"] = problems
    res["ok"] = not problems
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return res


def vm_flushed_size(srv: Server, max_s: float) -> int:
    """VictoriaMetrics: du of its data dir once everything is on disk. /internal/force_flush
    right after a send may leave the last rows in memory for several seconds (1.79), so ask
    again every second until data/ has files and the size has not changed for 3 s."""
    t_end = time.monotonic() + max_s
    last, same_since = -1, time.monotonic()
    while True:
        st, body = http_get(srv.base + "/internal/force_flush", timeout=300)
        if st != 200:
            raise RuntimeError(f"vm force_flush: {st} {body[:200]!r}")
        time.sleep(1.0)
        cur = du_bytes(srv.datadir)
        if cur != last or not du_bytes(srv.datadir / "data"):
            last, same_since = cur, time.monotonic()
        elif time.monotonic() - same_since >= 3.0:
            return cur
        if time.monotonic() > t_end:
            log(f"  vm: data dir size still changing after {max_s:.0f} s; measuring now")
            return cur


# ------------------------------------------------------------------------------ py-spy


def start_py_spy(a, pid: int, rnd: int) -> subprocess.Popen | None:
    exe = shutil.which("py-spy")
    if exe is None:
        log("  py-spy not found (pip install py-spy): not profiling")
        return None
    out = Path(a.py_spy)
    out.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(pid), "--rate", str(a.py_spy_rate), "--threads",
            "--nonblocking", "--format", "raw", "-o", str(out / f"tsdb-{rnd}.txt")]
    if a.py_spy_native:
        argv.append("--native")
    with open(out / f"py-spy-{rnd}.log", "ab") as logf:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    RUNNING.append(p)
    time.sleep(1.0)
    log(f"  py-spy recording pid {pid} into {out / f'tsdb-{rnd}.txt'}")
    return p


def stop_py_spy(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            stop_process(p)
    if p in RUNNING:
        RUNNING.remove(p)


# ------------------------------------------------------------------------------ main


def ensure_corpus(a) -> tuple[Path, dict]:
    if a.corpus:
        corpus = Path(a.corpus)
    else:
        corpus = Path(a.workdir) / f"rw-{a.series}x{a.points}-s{a.seed}"
    if not (corpus / "manifest.json").exists():
        if a.corpus and corpus.exists() and any(corpus.iterdir()):
            raise SystemExit(f"{corpus} is not an rwgen corpus (no manifest.json)")
        log(f"generating corpus {corpus} ({a.series} series x {a.points} points)")
        subprocess.run([sys.executable, str(LOAD_DIR / "rwgen.py"), "gen", "--out", str(corpus),
                        "--series", str(a.series), "--points", str(a.points), "--seed",
                        str(a.seed), "--start-ms", str(a.start_ms)],
                       check=True, stdout=subprocess.DEVNULL)
    man = json.loads((corpus / "manifest.json").read_text())
    return corpus, man


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(runs: list[dict], peers_out: dict, ratios: dict) -> None:
    head = (f"{'round':>5} {'peer':<5} {'samples/s':>11} {'cpu s/M':>8} {'to exit':>8} "
            f"{'rss MiB':>8} {'B/sample':>9} {'p99 ms':>8} {'stop s':>7} {'busy':>5} "
            f"{'other':>5}  ok")
    print(head, file=sys.stderr)
    for r in runs:
        cells = [format(r["round"], ">5"), format(r["peer"], "<5")]
        for key, spec, width in (("samples_per_s", ",.0f", 11), ("cpu_s_per_m", ".3f", 8),
                                 ("cpu_s_per_m_to_exit", ".3f", 8), ("peak_rss_mib", ".0f", 8),
                                 ("bytes_per_sample", ".3f", 9), ("lat_p99_ms", ".1f", 8),
                                 ("stop_s", ".1f", 7), ("busy_cores_before", ".2f", 5),
                                 ("other_cores_during", ".2f", 5)):
            cells.append(format(fmt(r.get(key), spec), f">{width}"))
        ok = "yes" if r.get("ok") else "NO: " + "; ".join(r.get("problems", ["error"]))
        print(" ".join(cells) + "  " + ok, file=sys.stderr)
    print("medians (valid runs):", file=sys.stderr)
    for peer, m in peers_out.items():
        if "skipped" in m:
            print(f"  {peer:<5} skipped: {m['skipped']}", file=sys.stderr)
            continue
        print(f"  {peer:<5} {fmt(m['samples_per_s'], ',.0f'):>11} samples/s  "
              f"{fmt(m['cpu_s_per_m'], '.3f')} cpu s/M ({fmt(m['cpu_s_per_m_to_exit'], '.3f')} "
              f"to exit)  {fmt(m['peak_rss_mib'], '.0f')} MiB  "
              f"{fmt(m['bytes_per_sample'], '.3f')} B/sample  "
              f"[{m['runs_ok']}/{m['runs']} runs ok]", file=sys.stderr)
    for key, value in ratios.items():
        if key.endswith("_rounds") or key == "meets_targets":
            continue
        print(f"  {key:<36} {fmt(value, '.3f')}", file=sys.stderr)
    if ratios.get("meets_targets"):
        print(f"  meets targets: {ratios['meets_targets']}", file=sys.stderr)


def summarize(a, runs: list[dict], peers: list[str], skipped: dict) -> tuple[dict, dict]:
    keys = ("samples_per_s", "cpu_s_per_m", "cpu_s_per_m_to_exit", "peak_rss_mib",
            "bytes_per_sample", "lat_p99_ms")
    out: dict = {}
    for peer in peers:
        if peer in skipped:
            out[peer] = {"skipped": skipped[peer]}
            continue
        mine = [r for r in runs if r["peer"] == peer]
        ok = [r for r in mine if r.get("ok")]
        out[peer] = {k: median([r.get(k) for r in ok]) for k in keys}
        out[peer] = {k: None if v is None else round(v, 4) for k, v in out[peer].items()}
        out[peer].update(runs=len(mine), runs_ok=len(ok))
    ratios: dict = {}
    meets: dict = {}
    mine = out.get("tsdb", {})
    for peer in ("vm", "prom"):
        other = out.get(peer)
        if not other or "skipped" in other or "skipped" in mine or not mine:
            continue
        for key in ("samples_per_s", "cpu_s_per_m", "bytes_per_sample", "cpu_s_per_m_to_exit"):
            name = f"{key}_ratio_{peer}"
            ratios[name] = ratio(mine.get(key), other.get(key))
            # the same ratio within each round (runs of a round are back to back)
            per_round = []
            for rnd in range(1, a.runs + 1):
                x = [r for r in runs if r["round"] == rnd and r.get("ok")]
                m = next((r for r in x if r["peer"] == "tsdb"), None)
                o = next((r for r in x if r["peer"] == peer), None)
                per_round.append(ratio(m.get(key), o.get(key)) if m and o else None)
            ratios[name + "_rounds"] = per_round
            if key in TARGETS and ratios[name] is not None:
                op, limit = TARGETS[key]
                meets[name] = ratios[name] >= limit if op == ">=" else ratios[name] <= limit
    if meets:
        ratios["meets_targets"] = meets
    return out, ratios


def add_peer_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every peer benchmark shares: how to start the peers and where."""
    ap.add_argument("-c", "--concurrency", type=int, default=4, help="rwgen connections")
    ap.add_argument("--tsdb-cmd", default=None,
                    help="command line for the store, with {datadir} and {port} (default: "
                         "this checkout's `python -m tsdb.cli serve ... --retention 0`)")
    ap.add_argument("--vm-bin", default=shutil.which("victoria-metrics"))
    ap.add_argument("--prom-bin", default=shutil.which("prometheus"))
    ap.add_argument("--workdir", default=os.environ.get("TSDB_BENCH_DIR"),
                    help="data dirs, logs and a generated corpus (default: a temp dir, "
                         "removed at the end unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep data dirs and logs")


def alternate_rounds(a: argparse.Namespace, peers: list[str], skipped: dict[str, str],
                     runs: list[dict], run_round: Callable[[str, int], dict],
                     report: Callable[[str, dict], None]) -> None:
    """Every round runs every peer in turn (machine noise falls on all alike); a run that
    fails is recorded as such and the others go on. Results are appended to ``runs``."""
    for rnd in range(1, a.runs + 1):
        for peer in peers:
            if peer in skipped:
                continue
            log(f"round {rnd}/{a.runs}: {peer}")
            try:
                r = run_round(peer, rnd)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                log(f"  {peer} run failed: {exc}")
                r = {"peer": peer, "round": rnd, "ok": False, "problems": [str(exc)[:300]]}
            runs.append(r)
            report(peer, r)


def stop_leftovers() -> None:
    """Stop every process a run left behind (signals ignored: the cleanup is bounded)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for p in list(RUNNING):
        log(f"stopping leftover process {p.pid}")
        stop_process(p)


def _report(peer: str, r: dict) -> None:
    if "samples_per_s" not in r:
        return
    disk = " ".join(f"{k}={v / 1e6:.1f}" for k, v in r["disk_breakdown"].items()
                    if v >= 50_000)
    log(f"  {peer}: {r['samples_per_s']:,.0f} samples/s, "
        f"cpu {r['cpu_s_per_m']:.3f} s/M ({r['cpu_s_per_m_to_exit']:.3f} to "
        f"exit), rss {r['peak_rss_mib']:.0f} MiB, "
        f"{r['bytes_per_sample']:.3f} B/sample (MB: {disk}), "
        f"stop {r['stop_s']:.1f} s"
        f"{'' if r['ok'] else ', PROBLEMS: ' + '; '.join(r['problems'])}")


#: peer -> (its binary's option, the Debian package that has it)
PEER_BINARIES = {"vm": ("vm_bin", "victoria-metrics"), "prom": ("prom_bin", "prometheus"),
                 "carbon": ("carbon_bin", "graphite-carbon")}


def skipped_peers(a: argparse.Namespace, peers: list[str]) -> dict[str, str]:
    """Peers whose binary is missing, with the reason (logged)."""
    skipped = {}
    for peer in peers:
        option, package = PEER_BINARIES.get(peer, (None, ""))
        binary = getattr(a, option, None) if option else None
        if option and not (binary and os.access(binary, os.X_OK)):
            skipped[peer] = f"{peer} not installed (Debian package {package})"
    for peer, why in skipped.items():
        log(f"skipping {peer}: {why}")
    return skipped


def interrupt_on_signals() -> None:
    """SIGINT/SIGTERM/SIGHUP raise KeyboardInterrupt, so peers are stopped on the way out.
    SIGINT too: a shell without job control starts background jobs with SIGINT ignored."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="rwgen corpus directory (generated there if missing; "
                                     "default WORKDIR/rw-SERIESxPOINTS-sSEED)")
    ap.add_argument("--series", type=int, default=10_000, help="when generating (default 10k)")
    ap.add_argument("--points", type=int, default=1440, help="when generating (default 1440)")
    ap.add_argument("--seed", type=int, default=1, help="when generating")
    ap.add_argument("--start-ms", type=int, default=1767225600000, help="when generating")
    ap.add_argument("--peers", default="tsdb,vm,prom", help="any of tsdb,vm,prom")
    ap.add_argument("--runs", type=int, default=3, help="rounds; each round runs every peer")
    add_peer_arguments(ap)
    ap.add_argument("--out", help="also write the full results (every run) as JSON here")
    ap.add_argument("--max-seconds", type=float, default=1800, help="rwgen send limit")
    ap.add_argument("--ready-timeout", type=float, default=120)
    ap.add_argument("--stop-timeout", type=float, default=600,
                    help="seconds after SIGTERM before SIGKILL")
    ap.add_argument("--settle-max", type=float, default=60,
                    help="VictoriaMetrics: wait at most this long for its size to settle")
    ap.add_argument("--sample-interval", type=float, default=0.1, help="/proc sampling, s")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before each send wait up to this long for the machine to quiet "
                         "down (0: don't)")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--py-spy", metavar="DIR",
                    help="record the store with py-spy during its sends (raw collapsed "
                         "stacks in DIR; slows it down: not for the figures)")
    ap.add_argument("--py-spy-rate", type=int, default=200)
    ap.add_argument("--py-spy-native", action="store_true")
    a = ap.parse_args()
    if a.tsdb_cmd is None:
        a.tsdb_cmd = (shlex.quote(sys.executable) + " -m tsdb.cli serve --data-dir {datadir} "
                      "--listen 127.0.0.1:{port} --retention 0 --carbon-listen '' "
                      "--carbon-pickle-listen ''")
    peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        ap.error(f"unknown peers {unknown}; known: {','.join(ALL_PEERS)}")
    if not (LOAD_DIR / "rwgen.py").exists():
        ap.error(f"{LOAD_DIR}/rwgen.py not found (set TSDB_LOAD_DIR)")
    skipped = skipped_peers(a, peers)
    interrupt_on_signals()

    temp = None
    if a.workdir is None:
        temp = a.workdir = tempfile.mkdtemp(prefix="tsdb-ingest-")
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    interrupted = False
    corpus, man = Path(a.corpus or ""), {"series": None, "samples": None, "requests": None}
    try:
        corpus, man = ensure_corpus(a)
        log(f"corpus {corpus}: {man['series']} series, {man['samples']:,} samples in "
            f"{man['requests']} requests; peers {','.join(peers)}, {a.runs} rounds, "
            f"-c {a.concurrency}")
        alternate_rounds(a, peers, skipped, runs,
                         lambda peer, rnd: run_one(a, peer, rnd, corpus, man, work), _report)
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping what runs, summarizing finished runs")
    finally:
        stop_leftovers()
        if temp and not a.keep:
            shutil.rmtree(temp, ignore_errors=True)
    peers_out, ratios = summarize(a, runs, peers, skipped)
    print_table(runs, peers_out, ratios)
    result = {
        "corpus": str(corpus), "series": man["series"], "samples": man["samples"],
        "requests": man["requests"], "rounds": a.runs, "concurrency": a.concurrency,
        "machine_cores": os.cpu_count(), "peers": peers_out, **ratios,
        "runs": [{k: v for k, v in r.items() if k != "disk_breakdown"} for r in runs],
    }
    if a.out:
        Path(a.out).write_text(json.dumps({**result, "runs": runs}, indent=1))
    print(json.dumps(result))
    if interrupted:
        return 130
    return 0 if runs and all(r.get("ok") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
