"""Proof 3: the store is SIGKILLed while Prometheus keeps writing and comes back on the same
data dir; Prometheus' retries fill the gap and nothing acknowledged is lost. A second SIGKILL
lands while Prometheus pushes the backlog of the first outage, and a final SIGTERM restart
checks the graceful path keeps everything too."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.checks import now_ms, read_all, read_all_matching, wait_store_matches

pytestmark = pytest.mark.e2e


def _counter(prom, name: str) -> float:
    result = prom.query(f'sum({name}{{remote_name="tsdb"}})')["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_sigkill_and_restart_lose_nothing(crash_stack):
    stack = crash_stack
    store = stack.store
    stack.wait_scrapes(5)
    # the store has acknowledged writes before the crash
    assert read_all(store.port, stack.window_start(), now_ms()), "nothing reached the store"

    time.sleep(random.uniform(0, 1))  # land anywhere in a batch / group commit
    store.proc.kill()
    killed_ms = now_ms()
    time.sleep(4)
    store.restart()
    restarted_ms = now_ms()
    # a second crash while Prometheus pushes its backlog of the outage (in batches of 500):
    # as soon as the first samples of the outage are in, so that it lands among writes
    deadline = time.monotonic() + 20
    while not any(t > killed_ms for s in read_all_matching(
            store.port, killed_ms, now_ms(), [("__name__", "=", "up")]).values() for t, _ in s):
        assert time.monotonic() < deadline, "Prometheus did not resend the outage"
        time.sleep(0.05)
    store.proc.kill()
    time.sleep(2)
    store.restart()

    # a window from before Prometheus started until well after the restart
    end = now_ms() + 4_000
    expected, _ = wait_store_matches(stack.prom.port, store.port, stack.window_start(), end,
                                     timeout=45)
    # the outage is inside the window and Prometheus did retry through it
    up_node = [s for k, s in expected.items()
               if dict(k).get("__name__") == "up" and dict(k).get("job") == "node"]
    assert any(killed_ms + 1000 < t < restarted_ms - 1000 for t, _ in up_node[0])
    assert _counter(stack.prom, "prometheus_remote_storage_samples_retried_total") > 0
    assert _counter(stack.prom, "prometheus_remote_storage_samples_failed_total") == 0

    # a graceful stop (SIGTERM) exits cleanly, and a restart serves the same samples again
    status = store.proc.stop(timeout=30)
    assert status == 0, f"tsdb serve exited with status {status} on SIGTERM"
    store.restart()
    again = read_all(store.port, stack.window_start(), end)
    assert again == expected, "samples changed across a graceful restart"
