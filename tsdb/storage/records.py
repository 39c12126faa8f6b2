"""Payloads of the engine's commit-log records (framing is the commit log's business).

SERIES  (type 1): a batch of new series        -- see docs/format/commitlog.md
    u32 count | i64 sid[count] | u32 key_len[count] | key bytes back to back
SAMPLES (type 2): a batch of samples of one namespace
    u8 namespace id | 3 zero bytes | u32 count | i32 sid[count] | i64 t[count] | f64 v[count]

All integers little-endian. Arrays are written straight from numpy and read back zero-copy.
"""

from __future__ import annotations

import struct

import numpy as np

SERIES = 1
SAMPLES = 2

_U32 = struct.Struct("<I")
_SAMPLES_HEAD = struct.Struct("<B3xI")


class BadRecord(ValueError):
    pass


def encode_series(sids: np.ndarray, keys: list[bytes]) -> list[bytes]:
    lengths = np.fromiter((len(k) for k in keys), dtype="<u4", count=len(keys))
    return [_U32.pack(len(keys)), np.asarray(sids, "<i8").tobytes(), lengths.tobytes(),
            b"".join(keys)]


def decode_series(payload: bytes | memoryview) -> tuple[np.ndarray, list[bytes]]:
    buf = memoryview(payload)
    if len(buf) < 4:
        raise BadRecord("series record shorter than its header")
    (n,) = _U32.unpack_from(buf, 0)
    if len(buf) < 4 + 12 * n:
        raise BadRecord("series record shorter than its arrays")
    sids = np.frombuffer(buf, "<i8", n, 4).astype(np.int64)
    lengths = np.frombuffer(buf, "<u4", n, 4 + 8 * n).astype(np.int64)
    ends = np.cumsum(lengths) + 4 + 12 * n
    if n and ends[-1] != len(buf):
        raise BadRecord("series record keys do not match their lengths")
    starts = ends - lengths
    raw = bytes(buf)
    return sids, [raw[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def encode_samples(ns_id: int, sid: np.ndarray, t: np.ndarray, v: np.ndarray) -> list[bytes]:
    return [_SAMPLES_HEAD.pack(ns_id, len(sid)), np.asarray(sid, "<i4").tobytes(),
            np.asarray(t, "<i8").tobytes(), np.asarray(v, "<f8").tobytes()]


def decode_samples(payload: bytes | memoryview) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    buf = memoryview(payload)
    if len(buf) < _SAMPLES_HEAD.size:
        raise BadRecord("samples record shorter than its header")
    ns_id, n = _SAMPLES_HEAD.unpack_from(buf, 0)
    if len(buf) != _SAMPLES_HEAD.size + 20 * n:
        raise BadRecord(f"samples record of {n} samples has {len(buf)} bytes")
    off = _SAMPLES_HEAD.size
    sid = np.frombuffer(buf, "<i4", n, off).astype(np.int64)
    t = np.frombuffer(buf, "<i8", n, off + 4 * n).astype(np.int64)
    v = np.frombuffer(buf, "<f8", n, off + 12 * n).astype(np.float64)
    return ns_id, sid, t, v
