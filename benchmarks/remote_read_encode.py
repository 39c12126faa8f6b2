"""Benchmark wire.remote_read: encode speed of both remote-read answers.

1000 series x 480 samples by default (2 h at a 15 s scrape, ±5 ms jitter; realistic label
sets, value shapes from benchmarks/xor_chunk.py), given the way the HTTP layer gets them
from a select: a list of (labels, timestamps, values) per query.

* SAMPLES: ``encode_read_response`` (uncompressed ReadResponse), then the snappy block the
  handler sends, for scale;
* STREAMED_XOR_CHUNKS: ``stream_frames`` (sorting, XOR chunk cutting, framing, CRC), and the
  chunk encoding alone (``encode_xor_chunks`` on the same samples) to show the framing cost.

The last line printed is a JSON summary: best of --repeat runs, wall clock and CPU, and the
minor page faults of the last run (large fresh numpy arrays fault their pages in when the
allocator hands out new memory rather than reusing freed memory; that depends on what the
process did before, hence the SAMPLES figure measured twice).

    python benchmarks/remote_read_encode.py [--series N] [--samples N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.xor_chunk import make_series  # noqa: E402
from wire.remote_read import encode_read_response, iter_frames, stream_frames  # noqa: E402
from wire.snappy_block import compress_block  # noqa: E402
from wire.xor_chunk import encode_xor_chunks  # noqa: E402


def make_query_result(n_series: int, n_samples: int, seed: int = 0):
    ts, vals, offsets, _ = make_series(n_series, n_samples, seed)
    rng = np.random.default_rng(seed)
    metrics = [f"node_metric_{k}_total" for k in range(40)]
    series = []
    for i in range(n_series):
        labels = [("__name__", metrics[i % len(metrics)]), ("cpu", str(i // 40 % 16)),
                  ("instance", f"host-{rng.integers(0, 50):02d}.example.org:9100"),
                  ("job", "node"), ("mode", ("idle", "user", "system", "iowait")[i % 4]),
                  ("series", str(i))]
        a, b = offsets[i], offsets[i + 1]
        series.append((labels, ts[a:b], vals[a:b]))
    return series


def timed(fn, repeat: int) -> tuple[float, float, int]:
    """Best wall and best CPU seconds over ``repeat`` runs after one warm-up run, and the
    minor page faults of the last run."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return min(wall), min(cpu), faults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=480)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    series = make_query_result(args.series, args.samples)
    n = sum(len(t) for _, t, _ in series)
    ts = np.concatenate([t for _, t, _ in series])
    vals = np.concatenate([v for _, _, v in series])
    offsets = np.cumsum([0] + [len(t) for _, t, _ in series])

    figures = {}
    for name, fn in [
        ("samples_encode", lambda: encode_read_response([series])),
        ("samples_encode_snappy", lambda: compress_block(encode_read_response([series]))),
        ("streamed_frames", lambda: list(stream_frames(0, series))),
        ("xor_chunks_only", lambda: encode_xor_chunks(ts, vals, offsets, 120)),
        ("samples_encode_after_streaming", lambda: encode_read_response([series])),
    ]:
        wall, cpu, faults = timed(fn, args.repeat)
        figures[name] = {"ms": round(wall * 1e3, 2), "cpu_ms": round(cpu * 1e3, 2),
                         "msamples_per_s": round(n / wall / 1e6, 1), "page_faults": faults}
        print(f"{name:30s} {wall * 1e3:8.2f} ms  {n / wall / 1e6:6.1f} M samples/s "
              f"(cpu {cpu * 1e3:.2f} ms, {faults} page faults)")

    body = encode_read_response([series])
    frames = list(stream_frames(0, series))
    stream_bytes = sum(map(len, frames))
    assert len(list(iter_frames(b"".join(frames)))) == len(frames)
    print(f"SAMPLES body {len(body)} bytes ({len(body) / n:.2f}/sample, snappy "
          f"{len(compress_block(body)) / n:.2f}/sample); stream {stream_bytes} bytes in "
          f"{len(frames)} frames ({stream_bytes / n:.2f}/sample)")
    print(json.dumps({"series": args.series, "samples_per_series": args.samples,
                      "samples": n, "samples_body_bytes": len(body),
                      "stream_bytes": stream_bytes, "frames": len(frames), **figures}))


if __name__ == "__main__":
    main()
