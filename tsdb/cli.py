"""Command line: ``tsdb demo`` shows the engine at work, ``tsdb inspect`` describes a data
directory."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from tsdb.memtune import tune_allocator
from tsdb.storage.blockfile import BlockFile
from tsdb.storage.database import Database
from tsdb.storage.labels import Matcher
from tsdb.storage.options import DatabaseOptions, NamespaceOptions, parse_duration_ms


def _demo_series(n: int) -> tuple[list[tuple[tuple[str, str], ...]], np.ndarray]:
    """node-exporter-like label sets and a value kind per series (0 counter, 1 gauge)."""
    modes = ("idle", "user", "system", "iowait")
    labels = []
    for i in range(n):
        host, k = divmod(i, 50)
        name = "node_cpu_seconds_total" if k < 40 else f"node_hwmon_temp_{k - 40}_celsius"
        ls = [("__name__", name), ("instance", f"node-{host:05d}:9100"), ("job", "node")]
        if k < 40:
            ls += [("cpu", str(k // 4)), ("mode", modes[k % 4])]
        labels.append(tuple(sorted(ls)))
    kind = np.array([0 if i % 50 < 40 else 1 for i in range(n)])
    return labels, kind


def cmd_demo(args: argparse.Namespace) -> int:
    tune_allocator()
    steps = int(parse_duration_ms(args.duration) // 15_000)
    labels, kind = _demo_series(args.series)
    n = len(labels)
    rng = np.random.default_rng(1)
    start = (int(time.time() * 1000) - steps * 15_000) // 15_000 * 15_000
    options = DatabaseOptions(namespaces=(NamespaceOptions(retention_ms=0),))
    db = Database(args.data_dir, options)
    sids = db.series_ids(labels)
    values = np.where(kind == 0, rng.integers(0, 10**6, n), 1.0).astype(float)
    written = 0
    t0 = time.perf_counter()
    for step in range(steps):
        # one scrape per host: its series share a timestamp (a few ms of jitter per host)
        ts = start + step * 15_000 + np.repeat(rng.integers(-5, 6, n // 50 + 1), 50)[:n]
        # exposition prints short decimals: counters in centiseconds, gauges rounded
        values = np.round(np.where(kind == 0, values + rng.poisson(30, n) / 100,
                                   np.abs(values + rng.normal(0, 0.05, n))), 2)
        for a in range(0, n, 2000):
            db.write(sids[a:a + 2000], ts[a:a + 2000], values[a:a + 2000])
        written += n
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    db.flush(force=True)
    flush_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = db.select([Matcher("job", "=", "node")], start - 60_000, start + steps * 15_000)
    select_s = time.perf_counter() - t0
    summary = {
        "series": n, "samples": written,
        "write_samples_per_s": round(written / write_s),
        "flush_seconds": round(flush_s, 2),
        "select_samples": len(res.t), "select_samples_per_s": round(len(res.t) / select_s),
        "bytes_on_disk_per_sample": round(db.disk_bytes() / max(written, 1), 3),
        "data_dir": os.path.abspath(args.data_dir),
    }
    db.close()
    print(json.dumps(summary))
    return 0 if len(res.t) >= written else 1


def cmd_inspect(args: argparse.Namespace) -> int:
    root = Path(args.data_dir)
    doc = json.loads((root / "tsdb.json").read_text())
    print(f"data dir {root}: {doc['shards']} virtual shards")
    log_dir = root / "commitlog"
    segments = sorted(log_dir.glob("*.log")) if log_dir.exists() else []
    print(f"commit log: {len(segments)} segments, {sum(p.stat().st_size for p in segments)} bytes")
    for ns_dir in sorted((root / "namespaces").glob("*")):
        print(f"namespace {ns_dir.name}")
        for path in sorted((ns_dir / "blocks").glob("*.blk"), key=lambda p: p.name):
            bf = BlockFile(path)
            m = bf.meta
            print(f"  {path.name}: {m['series']} series, {m['samples']} samples, "
                  f"{bf.size} bytes ({bf.size / max(m['samples'], 1):.3f} B/sample), "
                  f"time {m['min_time']}..{m['max_time']}")
            bf.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from tsdb.api.server import serve
    from tsdb.config import ConfigError, load_config

    try:
        config = load_config(args.config, {"data_dir": args.data_dir, "listen": args.listen,
                                           "retention": args.retention,
                                           "query_timeout": args.query_timeout,
                                           "query_max_samples": args.query_max_samples,
                                           "lookback_delta": args.lookback_delta,
                                           "decode_workers": args.decode_workers,
                                           "carbon_listen": args.carbon_listen,
                                           "carbon_pickle_listen": args.carbon_pickle_listen,
                                           "carbon_workers": args.carbon_workers})
    except ConfigError as exc:
        print(f"tsdb serve: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                    "%(message)s")
    ap = argparse.ArgumentParser(prog="tsdb")
    sub = ap.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("serve", help="run the store (remote write/read over HTTP)")
    srv.add_argument("--data-dir", help="data directory (default ./data)")
    srv.add_argument("--listen", help="HOST:PORT for HTTP (default 0.0.0.0:9201)")
    srv.add_argument("--retention", help="how long to keep data, e.g. 30d; 0 = forever "
                                         "(default 15d)")
    srv.add_argument("--config", help="YAML file with settings; flags override it")
    srv.add_argument("--query-timeout", help="maximum time a PromQL query may take "
                                             "(default 2m)")
    srv.add_argument("--query-max-samples", type=int,
                     help="maximum samples one PromQL query may load (default 50000000)")
    srv.add_argument("--lookback-delta", help="how far back an instant vector selector "
                                              "looks for a sample (default 5m)")
    srv.add_argument("--decode-workers", help="processes that decode remote-write bodies; 0 "
                                              "decodes in the event loop (default: auto, one "
                                              "per core beyond the first, at most 4)")
    srv.add_argument("--carbon-listen", help="HOST:PORT for carbon plaintext over TCP and UDP; "
                                             "'' turns it off (default 0.0.0.0:2003)")
    srv.add_argument("--carbon-pickle-listen", help="HOST:PORT for the carbon pickle protocol; "
                                                    "'' turns it off (default 0.0.0.0:2004)")
    srv.add_argument("--carbon-workers", help="processes that parse carbon payloads; 0 parses "
                                              "in the event loop (default: auto, one per "
                                              "core, at most 4)")
    srv.set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="write, flush and read back a synthetic workload")
    demo.add_argument("--data-dir", default="./data")
    demo.add_argument("--series", type=int, default=10_000)
    demo.add_argument("--duration", default="2h", help="span of data to write, e.g. 6h")
    demo.set_defaults(func=cmd_demo)
    inspect = sub.add_parser("inspect", help="describe a data directory")
    inspect.add_argument("--data-dir", default="./data")
    inspect.set_defaults(func=cmd_inspect)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
