"""Comparisons between what Prometheus holds and what the store holds."""

from __future__ import annotations

import time

from tests.e2e import remote_read_client as rr
from tests.e2e.remote_read_client import STALE_NAN_BITS, SeriesSet

ALL_SERIES = [("__name__", "=~", ".+")]


def now_ms() -> int:
    return int(time.time() * 1000)


def read_all(port: int, start: int, end: int, accepted: list[int] | None = None) -> SeriesSet:
    """Every series with samples in [start, end] through remote read (SAMPLES unless
    ``accepted`` says otherwise)."""
    results, _ = rr.read(port, [(start, end, ALL_SERIES)], accepted)
    return results[0]


def sample_count(series: SeriesSet) -> int:
    return sum(len(s) for s in series.values())


def stale_marker_count(series: SeriesSet) -> int:
    return sum(1 for s in series.values() for _, v in s if v == STALE_NAN_BITS)


def describe_diff(expected: SeriesSet, got: SeriesSet, limit: int = 15) -> str:
    """Human-readable difference, values as hex bits."""
    lines = []
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing:
        lines.append(f"{len(missing)} series missing from the store, e.g.:")
        lines += [f"  {dict(k)} ({len(expected[k])} samples)" for k in missing[:limit]]
    if extra:
        lines.append(f"{len(extra)} series in the store that Prometheus does not have, e.g.:")
        lines += [f"  {dict(k)} ({len(got[k])} samples)" for k in extra[:limit]]
    differing = [k for k in expected if k in got and expected[k] != got[k]]
    if differing:
        lines.append(f"{len(differing)} series with different samples, e.g.:")
    for k in differing[:limit]:
        want, have = dict(expected[k]), dict(got[k])
        lost = sorted(set(want) - set(have))
        added = sorted(set(have) - set(want))
        changed = sorted(t for t in set(want) & set(have) if want[t] != have[t])
        lines.append(f"  {dict(k)}: {len(want)} expected, {len(have)} in store")
        if lost:
            lines.append(f"    missing timestamps ({len(lost)}): {lost[:8]}")
        if added:
            lines.append(f"    extra timestamps ({len(added)}): {added[:8]}")
        for t in changed[:5]:
            lines.append(f"    t={t}: value bits {want[t]:#018x} expected, {have[t]:#018x} "
                         f"in store")
    n_exp, n_got = sample_count(expected), sample_count(got)
    lines.append(f"totals: Prometheus {len(expected)} series / {n_exp} samples, store "
                 f"{len(got)} series / {n_got} samples")
    return "\n".join(lines)


def wait_store_matches(prom_port: int, store_port: int, start: int, end: int,
                       timeout: float = 30.0) -> tuple[SeriesSet, SeriesSet]:
    """Wait until the store holds exactly Prometheus' samples for [start, end], reading both
    through remote read; returns (Prometheus', store's). ``end`` must be in the past by
    then: first waits until no scrape that started at or before ``end`` can still be
    running, and until the store has ``up`` samples 2 s past ``end`` (remote write has
    reached it), then compares, re-reading while remote-write shards catch up."""
    while now_ms() < end + 2500:
        time.sleep(0.2)
    deadline = time.monotonic() + timeout
    expected = read_all(prom_port, start, end)
    assert expected, "Prometheus has no samples in the window at all"
    up_targets = {k for k in expected if dict(k).get("__name__") == "up"}
    while True:
        up_now = read_all_matching(store_port, end, end + 60_000, [("__name__", "=", "up")])
        if all(k in up_now and up_now[k][-1][0] >= end + 2000 for k in up_targets):
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the store never received `up` samples 2 s past t1={end}: "
                f"{ {dict(k)['job']: (v[-1][0] if v else None) for k, v in up_now.items()} }")
        time.sleep(0.5)
    while True:
        got = read_all(store_port, start, end)
        if got == expected:
            return expected, got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout:.0f}s the store does not hold Prometheus' samples of "
                f"[{start}, {end}]:\n{describe_diff(expected, got)}")
        time.sleep(1.0)


def read_all_matching(port: int, start: int, end: int, matchers: list) -> SeriesSet:
    results, _ = rr.read(port, [(start, end, matchers)])
    return results[0]
