"""A real carbon sender: Debian's carbon-c-relay relays plaintext lines to `tsdb serve`, over
TCP and over UDP, and everything it relayed is readable through the Prometheus API.

carbon-c-relay missing FAILS the test (scripts/test.sh installs it)."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.harness import Proc, Store, free_port, http_get, require_binary

pytestmark = pytest.mark.e2e

T0 = 1_767_225_600  # a fixed past minute; the store keeps everything (--retention 0)
STEPS = 30
HOSTS = 40


def _lines() -> tuple[list[str], dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]]:
    """The lines sent, and per label set the (ms, value) points the store must hold."""
    lines: list[str] = []
    expected: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}

    def add(path: str, labels: dict[str, str], t: int, value: float, text: str) -> None:
        lines.append(f"{path} {text} {t}")
        key = tuple(sorted(labels.items()))
        expected.setdefault(key, []).append((t * 1000, value))

    for step in range(STEPS):
        t = T0 + 10 * step
        for h in range(HOSTS):
            value = round(h * 1.25 - step / 4, 2)
            add(f"relay.tcp.host{h:02d}.load", {"__g0__": "relay", "__g1__": "tcp",
                                                "__g2__": f"host{h:02d}", "__g3__": "load"},
                t, value, repr(value))
            add(f"relay.tagged;host=h{h};dc=eu-{h % 3}", {"__g0__": "relay", "__g1__": "tagged",
                                                          "host": f"h{h}", "dc": f"eu-{h % 3}"},
                t, float(step * 1000 + h), str(step * 1000 + h))
        add("relay.udp.counter", {"__g0__": "relay", "__g1__": "udp", "__g2__": "counter"},
            t, float(step), str(step))
    return lines, expected


def _api(store: Store, path: str, **params) -> dict:
    status, body = http_get(store.port, f"{path}?{urllib.parse.urlencode(params)}", 30.0)
    doc = json.loads(body)
    assert status == 200 and doc["status"] == "success", body[:500]
    return doc["data"]


def _ingested(store: Store) -> float:
    _, body = http_get(store.port, "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith('tsdb_samples_ingested_total{protocol="carbon"}'))


def _wait_port(port: int, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"carbon-c-relay exited:\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"carbon-c-relay does not listen on {port}:\n{proc.log_tail()}")


def test_carbon_c_relay_relays_everything_readably(tmp_path: Path):
    binary = require_binary("carbon-c-relay", "carbon-c-relay")
    store = Store(tmp_path / "data", tmp_path, name="relay-tsdb")
    relay = None
    try:
        relay_port = free_port()
        config = tmp_path / "relay.conf"
        config.write_text(
            f"listen type linemode 127.0.0.1:{relay_port} proto tcp ;\n"
            f"cluster tsdb_tcp forward 127.0.0.1:{store.carbon_port} ;\n"
            f"cluster tsdb_udp forward 127.0.0.1:{store.carbon_port} proto udp ;\n"
            "match ^relay\\.udp\\. send to tsdb_udp stop ;\n"
            "match * send to tsdb_tcp stop ;\n")
        # -s: submission mode, no statistics of its own in the stream
        relay = Proc("carbon-c-relay", [binary, "-f", str(config), "-s", "-H", "e2e"],
                     tmp_path / "carbon-c-relay.log")
        _wait_port(relay_port, relay)

        lines, expected = _lines()
        with socket.create_connection(("127.0.0.1", relay_port)) as sender:
            for i in range(0, len(lines), 500):
                sender.sendall(("\n".join(lines[i:i + 500]) + "\n").encode())
                time.sleep(0.01)  # UDP forwarding: no bursts the kernel would drop
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _ingested(store) < len(lines):
            time.sleep(0.2)
        assert _ingested(store) == len(lines), (
            f"{_ingested(store)} of {len(lines)} points arrived:\n{relay.log_tail()}")

        series = _api(store, "/api/v1/series", **{"match[]": '{__g0__="relay"}', "start": "0"})
        assert sorted(tuple(sorted(s.items())) for s in series) == sorted(expected)
        data = _api(store, "/api/v1/query_range", query='{__g0__="relay"}', start=str(T0),
                    end=str(T0 + 10 * (STEPS - 1)), step="10")
        got = {tuple(sorted(s["metric"].items())):
               [(int(t * 1000), float(v)) for t, v in s["values"]] for s in data["result"]}
        assert got == expected
    finally:
        if relay is not None:
            relay.stop()
        store.proc.stop(timeout=30)
