"""Block codec on the remote-write corpus: size and speed, next to Prometheus' XOR chunks.

    python ../shared/load/rwgen.py gen --out /tmp/rw10k --series 10000 --points 1440 \
        --seed 1 --start-ms 1767225600000
    python benchmarks/codec.py --corpus /tmp/rw10k

The samples are cut into 2 h block windows like the engine does; every window is encoded as
one block (all series) and written with the block container, so ``bytes_per_sample`` counts
the whole file: headers, per-series metadata, timestamp columns and values. Speeds are for
one core (this process, one thread), best of ``--repeat`` runs. JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rwcorpus import load_corpus_samples  # noqa: E402

from tsdb.encoding.block import BlockDecoder, encode_segments  # noqa: E402
from tsdb.memtune import tune_allocator  # noqa: E402
from tsdb.storage.blockfile import BlockFile, write_block  # noqa: E402
from tsdb.storage.samples import series_offsets  # noqa: E402
from wire.xor_chunk import encode_xor_chunks  # noqa: E402

BLOCK_MS = 2 * 3600 * 1000
# Prometheus stores each chunk on disk as uvarint length + 1 byte encoding + data + CRC32
PROM_CHUNK_FRAMING = 2 + 1 + 4


def windows(ts: np.ndarray, vals: np.ndarray, offsets: np.ndarray):
    """Per 2 h window: (counts, ts, vals) with series in order, samples in time order."""
    series = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    win = ts // BLOCK_MS
    order = np.lexsort((ts, series, win))
    win_sorted = win[order]
    bounds = np.flatnonzero(np.diff(win_sorted)) + 1
    for idx in np.split(order, bounds):
        _, seg_off = series_offsets(series[idx])
        yield np.diff(seg_off), ts[idx], vals[idx]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tune_allocator()
    _, ts, vals, offsets = load_corpus_samples(args.corpus)
    parts = list(windows(ts, vals, offsets))
    n_samples = sum(len(p[1]) for p in parts)

    best_enc = best_dec = float("inf")
    file_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            enc_s = dec_s = 0.0
            file_bytes = 0
            for i, (counts, t, v) in enumerate(parts):
                t0 = time.perf_counter()
                sections = encode_segments(counts, t, v)
                enc_s += time.perf_counter() - t0
                path = os.path.join(tmp, f"{i}.blk")
                file_bytes += write_block(path, {"window": i}, sections, fsync=False)
                decoder = BlockDecoder(BlockFile(path).sections)
                t0 = time.perf_counter()
                dt, dv = decoder.decode()
                dec_s += time.perf_counter() - t0
                if rep == 0 and not (np.array_equal(dt, t) and
                                     np.array_equal(dv.view(np.uint64), v.view(np.uint64))):
                    raise SystemExit(f"window {i}: decoded samples differ from the input")
            best_enc, best_dec = min(best_enc, enc_s), min(best_dec, dec_s)
            print(f"run {rep}: encode {n_samples / enc_s / 1e6:.2f} M/s, "
                  f"decode {n_samples / dec_s / 1e6:.2f} M/s", file=sys.stderr)

    # Prometheus XOR chunks of the same samples, cut per window like Prometheus' head does
    prom_bytes = 0
    for counts, t, v in parts:
        seg = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=seg[1:])
        chunks = encode_xor_chunks(t, v, seg, max_samples=120)
        prom_bytes += len(chunks.data) + PROM_CHUNK_FRAMING * (len(chunks.offsets) - 1)

    summary = {
        "samples": n_samples,
        "series": len(offsets) - 1,
        "blocks": len(parts),
        "bytes_per_sample": round(file_bytes / n_samples, 4),
        "prom_xor_bytes_per_sample": round(prom_bytes / n_samples, 4),
        "encode_msamples_per_s": round(n_samples / best_enc / 1e6, 2),
        "decode_msamples_per_s": round(n_samples / best_dec / 1e6, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
