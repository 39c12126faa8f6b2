"""Remote-write 1.0 decode throughput on an rwgen corpus (2000 single-sample series/request).

    python benchmarks/wire_decode.py [--corpus DIR] [--passes 5]

Without --corpus, a corpus is generated once into $TMPDIR/tsdb-bench-rw10k-60 with
``rwgen.py gen --series 10000 --points 60 --seed 1 --start-ms 1767225600000``.
Reports the best and median pass (wall clock; process CPU time too, which is steadier on a
shared machine) of: snappy block decompression, decode_write_request
(fast path), both together, and the reference (full generated-schema) path on a few
requests. The JSON summary is the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wire.remote_write import decode_write_request  # noqa: E402
from wire.snappy_block import decompress_block  # noqa: E402

RWGEN = Path("/work/shared/load/rwgen.py")
GEN_ARGS = ["--series", "10000", "--points", "60", "--seed", "1", "--start-ms", "1767225600000"]


def ensure_corpus(path: str | None) -> Path:
    """The corpus directory, generated with rwgen when not given."""
    if path:
        return Path(path)
    out = Path(tempfile.gettempdir()) / "tsdb-bench-rw10k-60"
    if not (out / "index.npy").exists():
        subprocess.run([sys.executable, str(RWGEN), "gen", "--out", str(out), *GEN_ARGS],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def load_bodies(corpus: Path) -> list[bytes]:
    """The snappy-compressed request bodies of an rwgen corpus, in order."""
    index = np.load(corpus / "index.npy")
    data = (corpus / "bodies.bin").read_bytes()
    return [data[o:o + n] for o, n in zip(index["off"].tolist(), index["len"].tolist(),
                                           strict=True)]


def timed_passes(fn, items, passes: int) -> tuple[list[float], list[float]]:
    """Wall seconds and process CPU seconds of each pass of fn over items."""
    wall, cpu = [], []
    for _ in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for item in items:
            fn(item)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="rwgen corpus directory (default: generate one)")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--reference-requests", type=int, default=10)
    args = ap.parse_args()

    corpus = ensure_corpus(args.corpus)
    compressed = load_bodies(corpus)
    bodies = [decompress_block(b) for b in compressed]
    batches = [decode_write_request(b) for b in bodies]
    samples = sum(len(b.timestamps) for b in batches)
    series = sum(len(b.series_keys) for b in batches)
    # sanity: the fast path agrees with the reference path on a sample of requests
    ref_bodies = bodies[:: max(1, len(bodies) // args.reference_requests)][:args.reference_requests]
    for body in ref_bodies:
        a, b = decode_write_request(body), decode_write_request(body, fast_path=False)
        assert a.series_keys == b.series_keys and np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.values.view(np.uint64), b.values.view(np.uint64))

    ref_samples = sum(len(decode_write_request(b).timestamps) for b in ref_bodies)

    def rate(timings: tuple[list[float], list[float]], n: int) -> dict[str, float]:
        wall, cpu = timings
        best, median = min(wall), statistics.median(wall)
        n_samples = samples if n == len(bodies) else ref_samples
        return {"best_samples_per_s": round(n_samples / best),
                "median_samples_per_s": round(n_samples / median),
                "best_ms_per_request": round(best / n * 1e3, 4),
                "median_ms_per_request": round(median / n * 1e3, 4),
                "best_cpu_samples_per_s": round(n_samples / min(cpu))}

    results = {
        "snappy": rate(timed_passes(decompress_block, compressed, args.passes), len(bodies)),
        "decode": rate(timed_passes(decode_write_request, bodies, args.passes), len(bodies)),
        "snappy_and_decode": rate(timed_passes(lambda c: decode_write_request(
            decompress_block(c)), compressed, args.passes), len(bodies)),
        "reference_decode": rate(timed_passes(lambda b: decode_write_request(
            b, fast_path=False), ref_bodies, 1), len(ref_bodies)),
    }
    for name, r in results.items():
        print(f"{name:18s} {r['best_samples_per_s'] / 1e6:7.2f} M samples/s  "
              f"{r['best_ms_per_request']:8.3f} ms/request (best of passes; median "
              f"{r['median_ms_per_request']:.3f} ms; CPU-time best "
              f"{r['best_cpu_samples_per_s'] / 1e6:.2f} M samples/s)")
    summary = {"benchmark": "wire_decode", "corpus": str(corpus), "requests": len(bodies),
               "samples": samples, "series_entries": series,
               "uncompressed_bytes": sum(map(len, bodies)),
               "compressed_bytes": sum(map(len, compressed)), "passes": args.passes,
               "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
               **results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
