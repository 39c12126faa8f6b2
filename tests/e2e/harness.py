"""Processes for the end-to-end tests: the store (`tsdb serve`), Prometheus, node-exporter,
and a small in-process exporter of edge-case values. Every process logs to a file so that a
failing test can show what each peer said."""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]

# Every process started by this module, so that a failure report can show their logs and
# the session can make sure none outlives it.
RUNNING: list[Proc] = []



def require_binary(name: str, package: str) -> str:
    """Path of a peer's binary. A missing peer FAILS the test (never skips): CI must not go
    green without the real Prometheus and node-exporter."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: the end-to-end tests need the Debian package "
                    f"'{package}' (scripts/test.sh installs it)", pytrace=False)
    return path


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")
        try:
            log.write(f"==== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env)
        finally:
            log.close()
        if self not in RUNNING:
            RUNNING.append(self)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap (the crash of test 3)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self in RUNNING:
            RUNNING.remove(self)
        return self.popen.returncode

    def log_tail(self, max_bytes: int = 12_000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as exc:
            return f"(no log: {exc})"
        if len(data) > max_bytes:
            data = b"...\n" + data[-max_bytes:]
        return data.decode(errors="replace")

    def wait_http_ok(self, port: int, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited with status {self.popen.returncode} "
                                     f"before {path} answered 200:\n{self.log_tail()}")
            try:
                status, body = http_get(port, path, timeout=2.0)
                if status == 200:
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {path} not 200 after {timeout}s ({last}):\n"
                             f"{self.log_tail()}")


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class Store:
    """`tsdb serve` on a data dir; can be killed and restarted on the same dir and port."""

    def __init__(self, data_dir: Path, log_dir: Path, name: str = "tsdb") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.carbon_port = free_port()  # plaintext, TCP and UDP
        self.carbon_pickle_port = free_port()
        self.name = name
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = Proc(name, [sys.executable, "-m", "tsdb.cli", "serve",
                                "--data-dir", str(data_dir),
                                "--listen", f"127.0.0.1:{self.port}", "--retention", "0",
                                "--carbon-listen", f"127.0.0.1:{self.carbon_port}",
                                "--carbon-pickle-listen",
                                f"127.0.0.1:{self.carbon_pickle_port}"],
                         log_dir / f"{name}.log", cwd=REPO, env=env)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.proc.wait_http_ok(self.port, "/-/ready", timeout)

    def restart(self) -> None:
        self.proc.start()
        self.wait_ready()


# --------------------------------------------------------------------------------------------
# node-exporter
# --------------------------------------------------------------------------------------------

# Fast collectors with stable series sets; node_cpu_* gives the regex matchers something to
# chew on (node_cpu_seconds_total and node_cpu_guest_seconds_total both carry `mode`).
NODE_COLLECTORS = ["cpu", "loadavg", "meminfo", "stat", "vmstat", "netdev", "time", "uname",
                   "filefd", "sockstat"]


class NodeExporter:
    def __init__(self, log_dir: Path) -> None:
        binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
        self.port = free_port()
        self.proc = Proc("node-exporter", [
            binary, f"--web.listen-address=127.0.0.1:{self.port}",
            "--collector.disable-defaults", *[f"--collector.{c}" for c in NODE_COLLECTORS],
            "--log.level=warn",
        ], log_dir / "node-exporter.log")
        self.proc.wait_http_ok(self.port, "/metrics", 30.0)


# --------------------------------------------------------------------------------------------
# An exporter of edge cases, in this process
# --------------------------------------------------------------------------------------------


def _edge_case_page(n: int, rng: random.Random) -> str:
    """One scrape: float values whose bits are easy to lose (NaN payload, -0, subnormals,
    huge and tiny magnitudes, short decimals next to full-precision ones), label values with
    escapes and non-ASCII, and a series that appears on every other scrape only, so that
    Prometheus writes a stale marker (NaN 0x7ff0000000000002) on the scrapes between."""
    esc = 'quote \\" backslash \\\\ newline \\n ünïcödé ✓'
    lines = [
        "# TYPE e2e_edge gauge",
        'e2e_edge{kind="nan"} NaN',
        'e2e_edge{kind="pos_inf"} +Inf',
        'e2e_edge{kind="neg_inf"} -Inf',
        'e2e_edge{kind="neg_zero"} -0',
        'e2e_edge{kind="zero"} 0',
        'e2e_edge{kind="min_subnormal"} 5e-324',
        'e2e_edge{kind="max"} 1.7976931348623157e+308',
        'e2e_edge{kind="neg_tiny"} -2.2250738585072014e-308',
        f'e2e_edge{{kind="tenths"}} {n / 10!r}',
        f'e2e_edge{{kind="cents"}} {round(1000 + n * 0.37, 2)!r}',
        f'e2e_edge{{kind="random"}} {rng.uniform(-1e6, 1e6)!r}',
        f'e2e_edge{{kind="step_nan"}} {"NaN" if n % 3 == 0 else n}',
        f'e2e_edge{{kind="big_int"}} {2**53 + 2 * n}',
        f'e2e_edge{{kind="escapes",text="{esc}"}} {n}',
        "# TYPE e2e_flapping_total counter",
        f'e2e_flapping_total{{phase="{"even" if n % 2 == 0 else "odd"}"}} {n}',
    ]
    if n % 4 == 0:
        lines.append(f"e2e_sometimes {n}")
    return "\n".join(lines) + "\n"


class EdgeCaseExporter:
    """HTTP exporter on a thread; each scraper (by `?scraper=` parameter) has its own
    scrape counter so that two Prometheus servers scraping it both see the same pattern."""

    def __init__(self) -> None:
        counts: dict[str, int] = {}
        rngs: dict[str, random.Random] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                who = query.get("scraper", [""])[0]
                with lock:
                    n = counts.get(who, 0)
                    counts[who] = n + 1
                    rng = rngs.setdefault(who, random.Random(n))
                    body = _edge_case_page(n, rng).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="e2e-edge-exporter")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------


def _yaml(obj) -> str:
    # JSON is YAML; no PyYAML needed to write a config
    return json.dumps(obj, indent=1)


class Prometheus:
    """A Prometheus 2.42 server with a generated config."""

    def __init__(self, name: str, work_dir: Path, config: dict, port: int | None = None) -> None:
        binary = require_binary("prometheus", "prometheus")
        self.name = name
        self.port = port or free_port()
        self.dir = work_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "prometheus.yml").write_text(_yaml(config))
        self.proc = Proc(name, [
            binary, f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            # the default 30 s would make the test's first Prometheus shutdown slow
            "--storage.remote.flush-deadline=1s",
            "--log.level=info",
        ], work_dir / f"{name}.log", cwd=self.dir)
        self.proc.wait_http_ok(self.port, "/-/ready", 60.0)

    # -- HTTP API ----------------------------------------------------------------------------

    def api(self, path: str, **params) -> dict:
        qs = urllib.parse.urlencode(params)
        status, body = http_get(self.port, f"{path}?{qs}", timeout=60.0)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"{self.name} {path} {params}: {status} {body[:1000]!r}")
        return doc

    def query_range(self, query: str, start_ms: int, end_ms: int, step: str) -> dict:
        return self.api("/api/v1/query_range", query=query, start=f"{start_ms / 1000:.3f}",
                        end=f"{end_ms / 1000:.3f}", step=step)

    def query(self, query: str, time_ms: int | None = None) -> dict:
        params = {"query": query}
        if time_ms is not None:
            params["time"] = f"{time_ms / 1000:.3f}"
        return self.api("/api/v1/query", **params)


def scraping_config(name: str, node_port: int, edge_port: int, prom_port: int,
                    store_port: int, max_samples_per_send: int = 2000) -> dict:
    """Prometheus that scrapes itself, node-exporter, the edge-case exporter and the store's
    own /metrics every second and remote-writes everything to the store with a fast queue."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "prometheus",
             "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}]},
            {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
            {"job_name": "edge", "params": {"scraper": [name]},
             "static_configs": [{"targets": [f"127.0.0.1:{edge_port}"]}]},
            {"job_name": "tsdb", "static_configs": [{"targets": [f"127.0.0.1:{store_port}"]}]},
        ],
        "remote_write": [{
            "url": f"http://127.0.0.1:{store_port}/api/v1/write",
            "name": "tsdb",
            "remote_timeout": "10s",
            "queue_config": {"batch_send_deadline": "1s", "min_backoff": "50ms",
                             "max_backoff": "1s",
                             "max_samples_per_send": max_samples_per_send},
        }],
        # A remote_read endpoint that is never queried: `required_matchers` names a label
        # that no selector uses. It puts this Prometheus on the query path of the one that
        # reads from the store: with a remote querier beside the local TSDB, Prometheus
        # merges them and so selects series in label order. Without it the local head may
        # hand series over in creation order, and float sums could then differ in the last
        # bit between the two servers for reasons that have nothing to do with the store.
        # Its URL is a closed port, so a request would show up as a warning.
        "remote_read": [{
            "url": f"http://127.0.0.1:{free_port()}/never",
            "name": "same-merge-path",
            "read_recent": True,
            "required_matchers": {"e2e_never_used": "x"},
        }],
    }


def reading_config(store_port: int) -> dict:
    """Prometheus that scrapes nothing and reads everything from the store."""
    return {
        "global": {"scrape_interval": "1m", "evaluation_interval": "1m"},
        "remote_read": [{
            "url": f"http://127.0.0.1:{store_port}/api/v1/read",
            "name": "tsdb",
            "read_recent": True,
            "remote_timeout": "30s",
        }],
    }
