"""Benchmark wire.xor_chunk: encode speed and size on realistic Prometheus-like series.

10k series x 480 samples (2 h at a 15 s scrape, ±5 ms jitter) by default: counters (integer
and fractional increments), gauges with decimals, memory-like gauges, constants. Sizes are
compared with Prometheus' own greedy XOR-window policy (a bit-cost model, on a subset) and
with other window group sizes. The last line printed is a JSON summary.

    python benchmarks/xor_chunk.py [--series N] [--samples N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from wire import xor_chunk
from wire.xor_chunk import _chunk_layout, _encode, encode_xor_chunks


def make_series(n_series: int, n_samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n_series, n_samples)
    start = 1_700_000_000_000 + rng.integers(0, 15_000, n_series)
    ts = start[:, None] + np.arange(n_samples) * 15_000 + rng.integers(-5, 6, shape)

    kind = rng.choice(5, n_series, p=[0.25, 0.15, 0.25, 0.15, 0.20])
    vals = np.empty(shape)
    # 0: integer counters (requests, bytes)
    rate = rng.lognormal(3, 2, (n_series, 1))
    counters = np.cumsum(rng.poisson(rate, shape), axis=1).astype(np.float64)
    # 1: fractional counters (cpu seconds): sums of decimal increments, rounding noise kept
    cpu = np.cumsum(np.round(rng.gamma(2, 0.05, shape), 2), axis=1)
    # 2: gauges with two decimals (temperatures, ratios, latencies)
    walk = 50 + np.cumsum(rng.normal(0, 0.3, shape), axis=1)
    gauges = np.round(walk, 2)
    # 3: memory-like gauges, multiples of 4096 that change now and then
    pages = 10_000 + np.cumsum(rng.integers(-50, 51, shape) * (rng.random(shape) < 0.3), axis=1)
    memory = pages.astype(np.float64) * 4096
    # 4: constants (up, build_info, config values)
    constants = np.broadcast_to(rng.integers(0, 3, (n_series, 1)), shape).astype(np.float64)
    for k, source in enumerate([counters, cpu, gauges, memory, constants]):
        vals[kind == k] = source[kind == k]

    offsets = np.arange(n_series + 1, dtype=np.int64) * n_samples
    return ts.reshape(-1).astype(np.int64), vals.reshape(-1), offsets, kind


def greedy_bits(ts: np.ndarray, bits: np.ndarray) -> int:
    """Bit length of one chunk with Prometheus' sequential greedy window policy."""

    def varint_bits(u: int) -> int:
        return 8 * max(1, -(-u.bit_length() // 7))

    def dod_bits(d: int) -> int:
        for n, total in ((14, 16), (17, 20), (20, 24)):
            if -(2 ** (n - 1) - 1) <= d <= 2 ** (n - 1):
                return total
        return 68

    t = [int(v) for v in ts]
    v = [int(b) for b in bits]
    total = 16 + varint_bits(((t[0] << 1) ^ (t[0] >> 63)) & (2**64 - 1)) + 64
    window = None
    for i in range(1, len(t)):
        delta = t[i] - t[i - 1]
        if i == 1:
            total += varint_bits(delta)
        else:
            dod = delta - (t[i - 1] - t[i - 2])
            total += 1 if dod == 0 else dod_bits(dod)
        x = v[i] ^ v[i - 1]
        if x == 0:
            total += 1
            continue
        lead = min(64 - x.bit_length(), 31)
        trail = (x & -x).bit_length() - 1
        if window and lead >= window[0] and trail >= window[1]:
            total += 2 + 64 - window[0] - window[1]
        else:
            window = (lead, trail)
            total += 13 + 64 - lead - trail
    return total


def greedy_bytes(ts, vals, offsets, max_samples: int) -> int:
    _, starts, sizes = _chunk_layout(offsets, max_samples)
    bits = vals.view(np.uint64)
    return sum(
        -(-greedy_bits(ts[s : s + n], bits[s : s + n]) // 8)
        for s, n in zip(starts.tolist(), sizes.tolist(), strict=True)
    )


def timed(fn, repeat: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds per run, and page faults of the last run. The first run is a
    warm-up: its fresh memory is slow to touch."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return wall, cpu, faults


def encode_in_batches(ts, vals, offsets, max_samples: int, batch: int) -> int:
    """Encode ``batch`` series per call (as a remote-read server streaming frames would)."""
    total = 0
    for first in range(0, len(offsets) - 1, batch):
        seg = offsets[first : first + batch + 1]
        lo, hi = int(seg[0]), int(seg[-1])
        total += len(encode_xor_chunks(ts[lo:hi], vals[lo:hi], seg - lo, max_samples).data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=480)
    parser.add_argument("--max-samples", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500, help="series per call, batched run")
    parser.add_argument("--greedy-series", type=int, default=300)
    args = parser.parse_args()

    ts, vals, offsets, kind = make_series(args.series, args.samples)
    n = len(ts)
    print(f"{args.series} series x {args.samples} samples = {n / 1e6:.2f} M samples, "
          f"max_samples={args.max_samples}, window group={xor_chunk.WINDOW_GROUP}")

    def run():
        return encode_xor_chunks(ts, vals, offsets, args.max_samples)

    wall, cpu, faults = timed(run, args.repeat)
    enc = run()
    rate = {
        "best_wall": n / min(wall) / 1e6,
        "median_wall": n / float(np.median(wall)) / 1e6,
        "best_cpu": n / min(cpu) / 1e6,
    }
    print(f"encode, one call: {rate['best_wall']:.1f} M samples/s best wall "
          f"({min(wall) * 1e3:.0f} ms), {rate['median_wall']:.1f} median wall, "
          f"{rate['best_cpu']:.1f} best CPU time; {faults} page faults per call")
    b_wall, b_cpu, _ = timed(
        lambda: encode_in_batches(ts, vals, offsets, args.max_samples, args.batch), args.repeat
    )
    rate["batched_best_wall"] = n / min(b_wall) / 1e6
    rate["batched_best_cpu"] = n / min(b_cpu) / 1e6
    print(f"encode, {args.batch} series per call: {rate['batched_best_wall']:.1f} M samples/s "
          f"best wall, {rate['batched_best_cpu']:.1f} best CPU time")

    chunk_bytes = np.diff(enc.offsets)
    head = np.frombuffer(enc.data, dtype=np.uint8)[enc.offsets[:-1, None] + [0, 1]]
    chunk_samples = head[:, 0].astype(np.int64) << 8 | head[:, 1]
    assert chunk_samples.sum() == n
    bytes_per_sample = len(enc.data) / n
    print(f"size: {len(enc.data) / 1e6:.2f} MB, {bytes_per_sample:.3f} bytes/sample, "
          f"{len(enc.series)} chunks, largest {chunk_bytes.max()} bytes, "
          f"{int((chunk_bytes > 1024).sum())} chunks over 1024 bytes")
    names = ["int counter", "frac counter", "gauge 2dp", "memory", "constant"]
    per_kind = {}
    for k, name in enumerate(names):
        sel = kind[enc.series] == k
        per_kind[name] = round(float(chunk_bytes[sel].sum() / chunk_samples[sel].sum()), 3)
    print("bytes/sample by kind:", per_kind)

    sweep = {}
    for group in (1, 2, 4, 6, 8, 10, 12, 16, 32, 64):
        size = len(_encode(ts, vals, offsets, args.max_samples, group).data)
        sweep[group] = round(size / n, 4)
    print("window group -> bytes/sample:", sweep)

    # Prometheus' greedy policy on a subset (pure Python cost model, same chunk cuts)
    m = min(args.greedy_series, args.series)
    sub_n = int(offsets[m])
    sub = (ts[:sub_n], vals[:sub_n], offsets[: m + 1])
    ours = len(encode_xor_chunks(*sub, args.max_samples).data)
    greedy = greedy_bytes(*sub, args.max_samples)
    print(f"first {m} series: ours {ours / sub_n:.3f} B/sample, Prometheus greedy "
          f"{greedy / sub_n:.3f} B/sample ({(ours / greedy - 1) * 100:+.1f}%)")

    print(json.dumps({
        "samples": n,
        "series": args.series,
        "max_samples": args.max_samples,
        "window_group": xor_chunk.WINDOW_GROUP,
        "encode_msamples_per_s": {k: round(v, 2) for k, v in rate.items()},
        "page_faults_per_call": faults,
        "bytes_per_sample": round(bytes_per_sample, 4),
        "bytes_per_sample_by_kind": per_kind,
        "chunks": len(enc.series),
        "largest_chunk_bytes": int(chunk_bytes.max()),
        "group_sweep_bytes_per_sample": {str(g): b for g, b in sweep.items()},
        "greedy_subset_series": m,
        "subset_bytes_per_sample_ours": round(ours / sub_n, 4),
        "subset_bytes_per_sample_greedy": round(greedy / sub_n, 4),
    }))


if __name__ == "__main__":
    main()
