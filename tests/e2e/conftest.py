"""Fixtures of the end-to-end tests: real Prometheus 2.42 and node-exporter processes around a
`tsdb serve` process. One stack (store, a scraping Prometheus, node-exporter) is shared by
the tests that only read; the crash test builds its own store and Prometheus.

A missing binary fails the tests (never skips). When a test fails, the tail of every running
process' log is attached to its report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.checks import now_ms
from tests.e2e.harness import (
    RUNNING,
    EdgeCaseExporter,
    NodeExporter,
    Prometheus,
    Store,
    free_port,
    reading_config,
    require_binary,
    scraping_config,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for proc in list(RUNNING):
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            report.sections.append((f"log of {proc.name} (pid {proc.pid}, {state})",
                                    proc.log_tail()))
    return report


def pytest_sessionfinish(session, exitstatus):
    # processes whose fixture never reached its teardown (a failed start, an interrupt)
    for proc in reversed(list(RUNNING)):
        proc.stop()


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def node_exporter(e2e_dir):
    ne = NodeExporter(e2e_dir)
    yield ne
    ne.proc.stop()


@pytest.fixture(scope="session")
def edge_exporter():
    ex = EdgeCaseExporter()
    yield ex
    ex.close()


@dataclass
class Stack:
    store: Store
    prom: Prometheus  # scrapes, remote-writes to the store
    started_ms: int  # before Prometheus started: no sample of it is older

    def window_start(self) -> int:
        return self.started_ms - 60_000

    def wait_scrapes(self, n: int) -> None:
        """Until Prometheus has scraped node-exporter at least ``n`` times."""
        deadline = time.monotonic() + n * 1.0 + 30
        while time.monotonic() < deadline:
            doc = self.prom.query('count_over_time(up{job="node"}[1h])')
            result = doc["data"]["result"]
            if result and int(result[0]["value"][1]) >= n:
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.prom.name} did not scrape node-exporter {n} times")


def start_stack(name: str, e2e_dir: Path, node_exporter: NodeExporter,
                edge_exporter: EdgeCaseExporter, max_samples_per_send: int = 2000) -> Stack:
    require_binary("prometheus", "prometheus")  # before starting anything
    data_dir = e2e_dir / f"{name}-data"
    store = Store(data_dir, e2e_dir, name=f"{name}-tsdb")
    started = now_ms()
    prom_port = free_port()
    config = scraping_config(name, node_exporter.port, edge_exporter.port, prom_port, store.port,
                             max_samples_per_send)
    prom = Prometheus(f"{name}-prometheus", e2e_dir, config, port=prom_port)
    return Stack(store, prom, started)


def stop_stack(stack: Stack) -> None:
    stack.prom.proc.stop()
    stack.store.proc.stop(timeout=30)


@pytest.fixture(scope="session")
def stack(e2e_dir, node_exporter, edge_exporter):
    s = start_stack("shared", e2e_dir, node_exporter, edge_exporter)
    yield s
    stop_stack(s)
    shutil.rmtree(s.prom.dir / "data", ignore_errors=True)


@pytest.fixture(scope="session")
def reader(e2e_dir, stack) -> Prometheus:
    """A second Prometheus whose only data is remote read from the shared store."""
    prom = Prometheus("reader-prometheus", e2e_dir, reading_config(stack.store.port))
    yield prom
    prom.proc.stop()


@pytest.fixture
def crash_stack(e2e_dir, node_exporter, edge_exporter):
    # Prometheus' default batch size: the backlog after an outage comes in many requests
    s = start_stack("crash", e2e_dir, node_exporter, edge_exporter, max_samples_per_send=500)
    yield s
    stop_stack(s)
