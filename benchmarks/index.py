"""Series index benchmark: node-exporter-like series, add time, memory, select latency.

    python benchmarks/index.py                 # 100k and 1M series, one subprocess each
    python benchmarks/index.py --sizes 200000  # other sizes

Every size runs in a fresh interpreter so its resident-memory delta (VmRSS) is not skewed by
the previous one. Memory per series = RSS growth from just before the keys are built until
after the first query (postings built), divided by the series count: it covers the key dict,
interned strings, pair rows and postings. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tsdb.storage.index import SeriesIndex  # noqa: E402
from tsdb.storage.labels import Labels, Matcher, labels_from_key, labels_key  # noqa: E402
from tsdb.storage.series_registry import SeriesRegistry  # noqa: E402

MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
DISKS = ["nvme0n1", "nvme1n1", "sda", "sdb"]
NICS = ["docker0", "eth0", "eth1", "lo", "veth1a2b3c", "wlan0"]
MOUNTS = [
    ("/dev/nvme0n1p1", "ext4", "/"),
    ("/dev/nvme0n1p2", "ext4", "/home"),
    ("/dev/sda1", "xfs", "/data"),
    ("tmpfs", "tmpfs", "/run"),
    ("tmpfs", "tmpfs", "/dev/shm"),
    ("/dev/sdb1", "xfs", "/backup"),
]
UNITS = [f"svc-{i:02d}.service" for i in range(50)]
STATES = ["activating", "active", "deactivating", "failed", "inactive"]
COLLECTORS = [f"collector{i:02d}" for i in range(40)]
HANDLERS = [f"/api/v1/h{i}" for i in range(10)]
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]


def host_template() -> list[tuple[tuple[str, str], ...]]:
    """Per-host series as (extra label pairs incl. __name__), ~1,000 of them."""
    out: list[tuple[tuple[str, str], ...]] = []
    for cpu in range(16):
        for mode in MODES:
            out.append((("__name__", "node_cpu_seconds_total"), ("cpu", str(cpu)), ("mode", mode)))
        for mode in ("nice", "user"):
            out.append(
                (("__name__", "node_cpu_guest_seconds_total"), ("cpu", str(cpu)), ("mode", mode))
            )
        for kind in ("dropped", "processed", "times_squeezed"):
            out.append((("__name__", f"node_softnet_{kind}_total"), ("cpu", str(cpu))))
    for m in range(12):
        for dev in DISKS:
            out.append((("__name__", f"node_disk_metric{m}_total"), ("device", dev)))
    for m in range(16):
        for dev in NICS:
            out.append((("__name__", f"node_network_metric{m}_total"), ("device", dev)))
    for m in range(7):
        for dev, fstype, mnt in MOUNTS:
            out.append(
                (
                    ("__name__", f"node_filesystem_metric{m}"),
                    ("device", dev),
                    ("fstype", fstype),
                    ("mountpoint", mnt),
                )
            )
    for prefix, count in (
        ("node_memory", 60),
        ("node_vmstat", 40),
        ("node_netstat", 50),
        ("go_metric", 25),
        ("process_metric", 15),
    ):
        for m in range(count):
            out.append((("__name__", f"{prefix}{m}"),))
    for col in COLLECTORS:
        out.append((("__name__", "node_scrape_collector_duration_seconds"), ("collector", col)))
        out.append((("__name__", "node_scrape_collector_success"), ("collector", col)))
    for unit in UNITS:
        for state in STATES:
            out.append((("__name__", "node_systemd_unit_state"), ("name", unit), ("state", state)))
    for handler in HANDLERS:
        for le in BUCKETS:
            out.append(
                (
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("handler", handler),
                    ("le", le),
                )
            )
    return out


def generate(n: int, first_host: int = 0) -> list[Labels]:
    template = host_template()
    out: list[Labels] = []
    host = first_host
    while len(out) < n:
        base = (
            ("instance", f"10.{host // 65536 % 256}.{host // 256 % 256}.{host % 256}:9100"),
            ("job", "node"),
            ("env", "prod" if host % 5 else "staging"),
            ("region", f"region-{host % 4}"),
            ("cluster", f"cluster-{host // 50}"),
        )
        for extra in template:
            out.append(tuple(sorted(base + extra)))
            if len(out) == n:
                break
        host += 1
    return out


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    """Median wall time in ms over ``repeat`` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), result


QUERIES = {
    "name": [Matcher("__name__", "=", "node_cpu_seconds_total")],
    "name+instance": [
        Matcher("__name__", "=", "node_cpu_seconds_total"),
        Matcher("instance", "=", "10.0.0.42:9100"),
    ],
    "name+mode!=+instance=~prefix": [
        Matcher("__name__", "=", "node_cpu_seconds_total"),
        Matcher("mode", "!=", "idle"),
        Matcher("instance", "=~", "10.0.0.4.*"),
    ],
    "job+name=~prefix": [
        Matcher("job", "=", "node"),
        Matcher("__name__", "=~", "node_disk_.*"),
    ],
    "instance=~alternation(3)": [
        Matcher("__name__", "=", "node_memory1"),
        Matcher("instance", "=~", "10.0.0.1:9100|10.0.0.2:9100|10.0.0.3:9100"),
    ],
    "instance=~alternation+name": [
        Matcher("__name__", "=~", "node_memory.*"),
        Matcher("instance", "=~", "(10.0.0.1:9100|10.0.0.2:9100|10.0.0.3:9100)"),
    ],
    "name+env!~+cluster=": [
        Matcher("__name__", "=", "node_filesystem_metric1"),
        Matcher("env", "!~", "stag.*"),
        Matcher("cluster", "=", "cluster-1"),
    ],
    "all(__name__=~.+)": [Matcher("__name__", "=~", ".+")],
    'name+absent(le="")': [
        Matcher("__name__", "=~", "http_request_duration_seconds_bucket|node_memory1"),
        Matcher("le", "=", ""),
    ],
}


def run(n: int) -> dict[str, object]:
    t0 = time.perf_counter()
    label_sets = generate(n)
    gen_s = time.perf_counter() - t0
    gc.collect()
    rss0 = rss_bytes()

    index = SeriesIndex()
    t0 = time.perf_counter()
    keys = [labels_key(ls) for ls in label_sets]
    keys_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.add(np.arange(n), label_sets, keys=keys)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.select(QUERIES["name"])
    first_query_ms = (time.perf_counter() - t0) * 1e3
    del keys
    gc.collect()
    rss1 = rss_bytes()

    select_ms: dict[str, float] = {}
    matched: dict[str, int] = {}
    for name, matchers in QUERIES.items():
        ms, result = timed(lambda m=matchers: index.select(m))
        select_ms[name] = round(ms, 3)
        matched[name] = len(result)  # type: ignore[arg-type]

    probe = [labels_key(ls) for ls in label_sets[-2000:]]
    lookup_ms, _ = timed(lambda: index.lookup(probe))
    some = index.select(QUERIES["name+mode!=+instance=~prefix"])
    labels_of_ms, _ = timed(lambda: index.labels_of(some[:1000]))
    values_ms, _ = timed(lambda: index.label_values("instance"))
    values_sub_ms, _ = timed(lambda: index.label_values("mode", some))
    names_sub_ms, _ = timed(lambda: index.label_names(some))

    # Steady ingestion: a new host (1k series) arrives, then a dashboard query runs.
    newcomers = generate(1000, first_host=10**6)
    incr: list[float] = []
    for i in range(5):
        batch = [
            tuple(p if p[0] != "instance" else ("instance", f"new-{i}") for p in ls)
            for ls in newcomers
        ]
        t0 = time.perf_counter()
        index.add(np.arange(len(index), len(index) + len(batch)), batch)
        index.select(QUERIES["name+instance"])
        incr.append((time.perf_counter() - t0) * 1e3)

    startup = measure_startup(label_sets)

    return {
        "series": n,
        "labels_per_series": round(sum(map(len, label_sets)) / n, 2),
        "generate_s": round(gen_s, 2),
        "keys_s": round(keys_s, 2),
        "add_s": round(add_s, 2),
        "first_query_ms": round(first_query_ms, 1),
        "rss_bytes_per_series": round((rss1 - rss0) / n),
        "memory_usage_per_series": {k: round(v / n, 1) for k, v in index.memory_usage().items()},
        "select_ms": select_ms,
        "select_matched": matched,
        "lookup_2000_keys_ms": round(lookup_ms, 3),
        "labels_of_1000_ms": round(labels_of_ms, 3),
        "label_values_instance_ms": round(values_ms, 3),
        "label_values_mode_restricted_ms": round(values_sub_ms, 3),
        "label_names_restricted_ms": round(names_sub_ms, 3),
        "add_1000_then_query_ms": round(statistics.median(incr), 2),
        **startup,
    }


def measure_startup(label_sets: list[Labels]) -> dict[str, float]:
    """The start-up path: series.reg -> keys -> label sets -> index."""
    n = len(label_sets)
    keys = [labels_key(ls) for ls in label_sets]
    with tempfile.TemporaryDirectory() as tmp:
        registry = SeriesRegistry(tmp)
        t0 = time.perf_counter()
        registry.append(np.arange(n), keys)
        registry.sync()
        append_s = time.perf_counter() - t0
        registry.close()
        size = (Path(tmp) / "series.reg").stat().st_size
        del keys
        t0 = time.perf_counter()
        sids, loaded_keys = SeriesRegistry(tmp).load()
        load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    SeriesIndex().add(sids, None, keys=loaded_keys)  # straight from the key bytes
    add_s = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    for k in loaded_keys:  # what building label tuples first would cost on top
        labels_from_key(k)
    decode_s = time.perf_counter() - t0
    return {
        "registry_append_sync_s": round(append_s, 2),
        "registry_bytes_per_series": round(size / n, 1),
        "registry_load_s": round(load_s, 2),
        "add_from_keys_s": round(add_s, 2),
        "startup_total_s": round(load_s + add_s, 2),
        "labels_from_key_all_s": round(decode_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run(args.sizes[0])))
        return
    results = []
    for n in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--single", "--sizes", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"--- {n:,} series ({result['labels_per_series']} labels each)")
        for key, value in result.items():
            if key not in ("series", "labels_per_series"):
                print(f"  {key}: {value}")
    print(json.dumps({"benchmark": "index", "results": results}))


if __name__ == "__main__":
    main()
