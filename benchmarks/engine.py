"""Storage engine: write throughput with the commit log on, select speed, memory per series.

    python benchmarks/engine.py --corpus /tmp/rw10k [--clients 8] [--no-fsync]

* ``write_msamples_per_s``: the corpus' samples replayed in-process as batches of 2000
  samples (one per series, like Prometheus' remote-write requests) by ``--clients``
  concurrent writers on one asyncio loop, the way the HTTP server will run them: each
  appends a batch and awaits its group commit (fsync on unless ``--no-fsync``) before the
  next. Series are created before the clock starts.
* ``select_msamples_per_s``: after a flush, every series over the whole range, selected and
  decoded from the block files.
* ``rss_bytes_per_series_100k`` / ``_1m``: a fresh process creates that many series with
  node-exporter-like labels and writes one sample each; resident memory growth minus the
  raw samples (20 bytes each in the head), divided by the series count.
JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tsdb.memtune import tune_allocator  # noqa: E402
from tsdb.storage.database import Database  # noqa: E402
from tsdb.storage.labels import Matcher, labels_key  # noqa: E402
from tsdb.storage.options import DatabaseOptions, NamespaceOptions  # noqa: E402

BATCH = 2000


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def db_options(fsync: bool) -> DatabaseOptions:
    return DatabaseOptions(fsync=fsync, namespaces=(NamespaceOptions(retention_ms=0),))


def bench_write_select(corpus: str, clients: int, fsync: bool) -> dict:
    from rwcorpus import load_corpus_samples

    labels, ts, vals, offsets = load_corpus_samples(corpus)
    n_series = len(labels)
    counts = np.diff(offsets)
    # request order: step by step, 2000 series per batch, like the corpus' requests
    series = np.repeat(np.arange(n_series), counts)
    step = np.arange(len(ts)) - np.repeat(offsets[:-1], counts)
    order = np.lexsort((series, step))
    b_sid, b_t, b_v = series[order], ts[order], vals[order]
    bounds = list(range(0, len(order), BATCH)) + [len(order)]

    with tempfile.TemporaryDirectory(dir=os.environ.get("TSDB_BENCH_DIR")) as tmp:
        db = Database(tmp, db_options(fsync))
        sids = db.series_ids_for_keys([labels_key(tuple(map(tuple, ls))) for ls in labels])
        b_sid = sids[b_sid]
        next_batch = iter(range(len(bounds) - 1))

        async def client() -> None:
            # what a remote-write handler does: append on the event loop, then await the
            # group commit that makes the batch durable
            for i in next_batch:
                a, b = bounds[i], bounds[i + 1]
                result = db.append(b_sid[a:b], b_t[a:b], b_v[a:b])
                await db.wait_durable_async(result.position)

        async def run_clients() -> None:
            await asyncio.gather(*(client() for _ in range(clients)))

        t0 = time.perf_counter()
        asyncio.run(run_clients())
        write_s = time.perf_counter() - t0
        fsyncs = db.commitlog.stats().get("fsyncs", 0)

        t0 = time.perf_counter()
        db.flush(force=True)
        flush_s = time.perf_counter() - t0
        disk = db.disk_bytes()

        everything = [Matcher("__name__", "=~", ".+")]
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            res = db.select(everything, int(ts.min()), int(ts.max()))
            best = min(best, time.perf_counter() - t0)
        if len(res.t) != len(ts):
            raise SystemExit(f"select returned {len(res.t)} samples, wrote {len(ts)}")
        db.close()
    return {
        "samples": len(ts),
        "write_msamples_per_s": round(len(ts) / write_s / 1e6, 3),
        "write_clients": clients,
        "fsync": fsync,
        "fsyncs": fsyncs,
        "flush_seconds": round(flush_s, 2),
        "block_bytes_per_sample": round(disk / len(ts), 4),
        "select_msamples_per_s": round(len(ts) / best / 1e6, 2),
    }


def node_labels(i: int) -> tuple[tuple[str, str], ...]:
    host = i // 200
    k = i % 200
    return (("__name__", "node_metric_%d" % (k % 40)), ("cpu", str(k // 40)),
            ("instance", "node-%06d:9100" % host), ("job", "node"),
            ("mode", ("idle", "user", "system", "iowait", "irq")[k % 5]))


def rss_per_series(n: int) -> float:
    """Run in a fresh process: resident bytes per series beyond the raw head samples."""
    tune_allocator()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TSDB_BENCH_DIR")) as tmp:
        db = Database(tmp, db_options(False))
        base = rss_bytes()
        for a in range(0, n, 10_000):
            # keys are made here so that the ones the index keeps are counted
            keys = [labels_key(node_labels(i)) for i in range(a, min(n, a + 10_000))]
            sids = db.series_ids_for_keys(keys)
            db.write(sids, np.full(len(sids), 1_700_000_000_000), np.ones(len(sids)))
            del keys
        grown = rss_bytes() - base
        raw_samples = n * 20
        db.commitlog.close()
    return (grown - raw_samples) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", help="rwgen corpus directory")
    ap.add_argument("--clients", type=int, default=8,
                    help="concurrent writers (like remote-write connections)")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--rss-only", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--skip-rss", action="store_true")
    args = ap.parse_args()
    if args.rss_only:
        print(json.dumps({"rss_bytes_per_series": rss_per_series(args.rss_only)}))
        return
    tune_allocator()
    summary: dict = {}
    if args.corpus:
        summary.update(bench_write_select(args.corpus, args.clients, not args.no_fsync))
    if not args.skip_rss:
        for n, name in ((100_000, "100k"), (1_000_000, "1m")):
            out = subprocess.run([sys.executable, __file__, "--rss-only", str(n)],
                                 check=True, capture_output=True, text=True).stdout
            value = json.loads(out.strip().splitlines()[-1])["rss_bytes_per_series"]
            summary[f"rss_bytes_per_series_{name}"] = round(value)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
