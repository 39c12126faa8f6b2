"""All samples of an rwgen remote-write corpus, grouped per series (for codec/engine benchmarks).

    labels, ts, vals, offsets = load_corpus_samples("/work/corpus/rw10k")
    # series i: labels[i], ts[offsets[i]:offsets[i + 1]], vals[offsets[i]:offsets[i + 1]]

Every body of DIR/bodies.bin is decompressed and decoded with wire.remote_write (the same
code the server runs). Series are numbered by first appearance; a series' samples are
sorted by timestamp (stable: equal timestamps keep arrival order). The result is cached
next to the corpus (DIR/samples-cache.npz and DIR/samples-cache.json); the cache is used
while bodies.bin and index.npy keep their size and mtime.

    python benchmarks/rwcorpus.py DIR      # build or load, print a JSON summary
"""

from __future__ import annotations

import json
import os
import sys
import time
from itertools import repeat
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wire.remote_write import decode_write_request, parse_label_bytes  # noqa: E402
from wire.snappy_block import decompress_block  # noqa: E402

Labels = tuple[tuple[str, str], ...]
CACHE_FORMAT = 1
CACHE_ARRAYS = "samples-cache.npz"
CACHE_META = "samples-cache.json"


def load_corpus_samples(
    corpus_dir: str | os.PathLike[str],
) -> tuple[list[Labels], np.ndarray, np.ndarray, np.ndarray]:
    """(labels per series, int64 ts, float64 values, int64 CSR offsets) of a corpus."""
    corpus = Path(corpus_dir)
    source = _source_stamp(corpus)
    cached = _read_cache(corpus, source)
    if cached is not None:
        return cached
    result = decode_corpus(corpus)
    _write_cache(corpus, source, *result)
    return result


def decode_corpus(corpus: Path) -> tuple[list[Labels], np.ndarray, np.ndarray, np.ndarray]:
    """Decode every request of the corpus and group its samples per series (no cache)."""
    index = np.load(corpus / "index.npy")
    data = (corpus / "bodies.bin").read_bytes()
    key_ids: dict[bytes, int] = {}  # series key -> series id
    label_ids: dict[Labels, int] = {}  # label set -> series id (keys may differ in encoding)
    sid_parts, ts_parts, val_parts = [], [], []
    for off, length in zip(index["off"].tolist(), index["len"].tolist(), strict=True):
        body = decompress_block(data[off:off + length], max_decoded=1 << 31)
        batch = decode_write_request(body)
        ids = np.fromiter(map(key_ids.get, batch.series_keys, repeat(-1)), dtype=np.int64,
                          count=len(batch.series_keys))
        for i in np.flatnonzero(ids < 0).tolist():
            key = batch.series_keys[i]
            sid = key_ids.get(key)
            if sid is None:
                labels = tuple(parse_label_bytes(key))
                sid = key_ids[key] = label_ids.setdefault(labels, len(label_ids))
            ids[i] = sid
        sid_parts.append(ids[batch.sample_series])
        ts_parts.append(batch.timestamps)
        val_parts.append(batch.values)
    del data
    sid = np.concatenate(sid_parts) if sid_parts else np.empty(0, np.int64)
    ts = np.concatenate(ts_parts) if ts_parts else np.empty(0, np.int64)
    vals = np.concatenate(val_parts) if val_parts else np.empty(0, np.float64)
    del sid_parts, ts_parts, val_parts

    order = _group_order(sid, ts)
    ts, vals = ts[order], vals[order]
    counts = np.bincount(sid, minlength=len(label_ids))
    labels_by_id = list(label_ids)
    keep = np.flatnonzero(counts)  # series seen without samples (exemplars only...) are dropped
    offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(counts[keep], out=offsets[1:])
    return [labels_by_id[i] for i in keep.tolist()], ts, vals, offsets


def _group_order(sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Permutation sorting by (series id, timestamp), stable."""
    key = sid.astype(np.uint16) if len(sid) and sid.max() < 1 << 16 else sid  # radix sort
    order = np.argsort(key, kind="stable")
    grouped_ts = ts[order]
    same_series = sid[order][1:] == sid[order][:-1]
    if np.all(grouped_ts[1:][same_series] >= grouped_ts[:-1][same_series]):
        return order  # arrival order was already time order inside every series
    by_time = np.argsort(ts, kind="stable")
    return by_time[np.argsort(key[by_time], kind="stable")]


def _source_stamp(corpus: Path) -> dict[str, list[int]]:
    return {name: [(st := (corpus / name).stat()).st_size, st.st_mtime_ns]
            for name in ("bodies.bin", "index.npy")}


def _read_cache(corpus: Path, source: dict) -> tuple | None:
    try:
        meta = json.loads((corpus / CACHE_META).read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("source") != source:
            return None
        with np.load(corpus / CACHE_ARRAYS) as arrays:
            ts, vals, offsets = arrays["ts"], arrays["vals"], arrays["offsets"]
    except (OSError, ValueError, KeyError):
        return None
    labels = [tuple((name, value) for name, value in pairs) for pairs in meta["labels"]]
    if len(labels) + 1 != len(offsets) or int(offsets[-1]) != len(ts) or len(vals) != len(ts):
        return None
    return labels, ts, vals, offsets


def _write_cache(corpus: Path, source: dict, labels: list[Labels], ts: np.ndarray,
                 vals: np.ndarray, offsets: np.ndarray) -> None:
    try:
        tmp = corpus / f".{CACHE_ARRAYS}.{os.getpid()}.npz"
        np.savez(tmp, ts=ts, vals=vals, offsets=offsets)
        os.replace(tmp, corpus / CACHE_ARRAYS)
        meta = {"format": CACHE_FORMAT, "source": source, "labels": [list(x) for x in labels]}
        tmp = corpus / f".{CACHE_META}.{os.getpid()}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, corpus / CACHE_META)
    except OSError as exc:
        print(f"rwcorpus: not caching ({exc})", file=sys.stderr)


def main() -> None:
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/corpus/rw10k")
    t0 = time.perf_counter()
    labels, ts, vals, offsets = load_corpus_samples(corpus)
    seconds = time.perf_counter() - t0
    print(json.dumps({"corpus": str(corpus), "series": len(labels), "samples": len(ts),
                      "seconds": round(seconds, 3), "tmin": int(ts.min()) if len(ts) else None,
                      "tmax": int(ts.max()) if len(ts) else None}))


if __name__ == "__main__":
    main()
