"""Remote write 1.0: decompressed ``prometheus.WriteRequest`` bytes -> plain numpy arrays.

Prometheus sends ~2000 ``TimeSeries`` per request, each holding its full label set and
exactly one sample. Building protobuf objects for that costs ~10 ms per request, so the
decoder works on bytes (design.md, "Hot-path habits"):

1. parse with ``WriteRequestRaw`` (``timeseries`` as ``repeated bytes``): no objects built;
2. join the series bytes and check, for all series at once, that each ends in exactly one
   ``Sample`` record in the shape gogo-protobuf writes: ``12 10 09 <8-byte double> 10
   <6-byte varint>`` (18 bytes) or, for value 0.0, ``12 07 10 <6-byte varint>`` (9 bytes).
   Timestamps between 1971 and 2109 take 6 varint bytes. Tags, lengths and varint
   continuation bits are checked with masks on little-endian words;
3. the bytes before the sample are the series key. Keys the caller already knows
   (``key_ids``) were checked when first seen; the others are walked with numpy, all in
   step (one iteration per label, at most 64): tag ``0x0a``, minimal 1- or 2-byte length,
   and the walk must end exactly where the sample starts;
4. series that fail any check (several samples, exemplars, histograms, unknown fields,
   another field order, other varint sizes...) take the reference path: the full generated
   schema (``TimeSeriesRaw``: labels as bytes, everything else parsed and validated).

Both paths give identical results on every input (or both raise WireError);
``decode_write_request(body, fast_path=False)`` runs the reference path alone (tests
compare the two).

A series key is the concatenation of the series' ``Label`` records (tag 0x0a, minimal
length varint, payload) in wire order, payload bytes untouched. Equal keys mean equal label
sets; the converse holds for canonical writers (Prometheus), so a store interns by key and
resolves a key it has not seen with ``parse_label_bytes``. The label payloads are not
validated here: ``parse_label_bytes`` does that (strict UTF-8) once per new key, so invalid
labels surface when the store first meets the key, never silently.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wire.messages import join7, parse_message
from wire.proto import raw_pb2, types_pb2

__all__ = ["WriteBatch", "decode_write_request", "parse_label_bytes"]


@dataclass
class WriteBatch:
    """The float samples of one write request and the series each belongs to."""

    # One key per TimeSeries message, in wire order (a label set may repeat): its Label records.
    series_keys: list[bytes]
    sample_series: np.ndarray  # int64 per sample: index into series_keys
    timestamps: np.ndarray  # int64 ms per sample
    values: np.ndarray  # float64 per sample, raw bits preserved (stale-marker NaNs intact)
    histograms: int = 0  # native histogram samples seen (not decoded yet)
    exemplars: int = 0
    metadata: int = 0  # MetricMetadata entries seen
    # Per key, what ``key_ids`` answered (-1: unknown); None when it was not consulted.
    key_ids: np.ndarray | None = None
    # (metric family name, type enum number, help, unit) per MetricMetadata (1.0 only)
    metadata_entries: list[MetadataEntry] = field(default_factory=list)


MetadataEntry = tuple[str, int, str, str]


#: A cache of series keys the caller has met before: ids (>= 0) for known keys, -1 for others.
KeyIds = Callable[[Sequence[bytes]], np.ndarray]


def decode_write_request(body: bytes, *, fast_path: bool = True,
                         key_ids: KeyIds | None = None) -> WriteBatch:
    """Decode a snappy-decompressed ``prometheus.WriteRequest``; WireError if malformed.

    ``key_ids`` lets the fast path skip checking the label records of keys the caller
    already knows: a key it knows was checked the first time (it came out of this decoder,
    so it consists of well-formed Label records only), and equal bytes need no new check.
    Its answers are returned in ``WriteBatch.key_ids``.
    """
    if not fast_path:
        return _decode_reference(body)
    request = parse_message(raw_pb2.WriteRequestRaw, body, "WriteRequest")
    series = list(request.timeseries)
    n_metadata = len(request.metadata)
    if not series:
        batch = _empty_batch(n_metadata)
        batch.key_ids = None if key_ids is None else np.empty(0, np.int64)
    else:
        scan = _scan_single_sample(series, key_ids)
        if np.count_nonzero(scan.fast) == len(series):
            batch = WriteBatch(scan.keys, np.arange(len(series), dtype=np.int64),
                               scan.timestamps, scan.values, metadata=n_metadata,
                               key_ids=scan.ids)
        else:
            batch = _merge_slow_series(series, scan, n_metadata)
    if n_metadata:
        batch.metadata_entries = _metadata_entries(
            parse_message(raw_pb2.WriteRequestMetadata, body, "WriteRequest").metadata)
    return batch


def parse_label_bytes(raw: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a series key, in wire order; WireError unless strict UTF-8."""
    labels = parse_message(types_pb2.Labels, raw, "label set").labels
    return [(label.name, label.value) for label in labels]


# --- reference path ---------------------------------------------------------------------


def _decode_reference(body: bytes) -> WriteBatch:
    """Full generated-schema parse of every series (slow, obviously correct)."""
    request = parse_message(raw_pb2.WriteRequestView, body, "WriteRequest")
    keys: list[bytes] = []
    counts: list[int] = []
    all_ts: list[np.ndarray] = [np.empty(0, np.int64)]
    all_vals: list[np.ndarray] = [np.empty(0, np.float64)]
    histograms = exemplars = 0
    for ts in request.timeseries:
        keys.append(_label_key(ts))
        t, v = _samples_of(ts)
        counts.append(len(t))
        all_ts.append(t)
        all_vals.append(v)
        histograms += len(ts.histograms)
        exemplars += len(ts.exemplars)
    sample_series = np.repeat(np.arange(len(keys), dtype=np.int64),
                              np.array(counts, dtype=np.int64))
    return WriteBatch(keys, sample_series, np.concatenate(all_ts), np.concatenate(all_vals),
                      histograms, exemplars, len(request.metadata),
                      metadata_entries=_metadata_entries(request.metadata))


def _metadata_entries(metadata) -> list[MetadataEntry]:
    return [(m.metric_family_name, m.type, m.help, m.unit) for m in metadata]


def _merge_slow_series(series: list[bytes], scan: _Scan, n_metadata: int) -> WriteBatch:
    """Decode the series the fast path could not vouch for; merge in wire order."""
    keys = scan.keys
    counts = scan.fast.astype(np.int64)
    slow_ts: list[np.ndarray] = []
    slow_vals: list[np.ndarray] = []
    histograms = exemplars = 0
    for i in np.flatnonzero(~scan.fast).tolist():
        ts = parse_message(raw_pb2.TimeSeriesRaw, series[i], "WriteRequest", f"timeseries[{i}]")
        keys[i] = _label_key(ts)
        t, v = _samples_of(ts)
        counts[i] = len(t)
        slow_ts.append(t)
        slow_vals.append(v)
        histograms += len(ts.histograms)
        exemplars += len(ts.exemplars)

    if scan.ids is not None:
        scan.ids[~scan.fast] = -1
    sample_series = np.repeat(np.arange(len(series), dtype=np.int64), counts)
    from_fast = np.repeat(scan.fast, counts)
    timestamps = np.empty(len(sample_series), dtype=np.int64)
    bits = np.empty(len(sample_series), dtype=np.uint64)
    timestamps[from_fast] = scan.timestamps[scan.fast]
    bits[from_fast] = scan.values.view(np.uint64)[scan.fast]
    timestamps[~from_fast] = np.concatenate(slow_ts)
    bits[~from_fast] = np.concatenate(slow_vals).view(np.uint64)
    return WriteBatch(keys, sample_series, timestamps, bits.view(np.float64),
                      histograms, exemplars, n_metadata, scan.ids)


def _label_key(ts: raw_pb2.TimeSeriesRaw) -> bytes:
    # Serializing only the raw label payloads re-frames them canonically: 0x0a, length.
    return raw_pb2.TimeSeriesRaw(labels=ts.labels).SerializeToString()


def _samples_of(ts: raw_pb2.TimeSeriesRaw) -> tuple[np.ndarray, np.ndarray]:
    samples = ts.samples
    n = len(samples)
    t = np.fromiter((s.timestamp for s in samples), dtype=np.int64, count=n)
    v = np.fromiter((s.value for s in samples), dtype=np.float64, count=n)
    return t, v


def _empty_batch(n_metadata: int) -> WriteBatch:
    return WriteBatch([], np.empty(0, np.int64), np.empty(0, np.int64),
                      np.empty(0, np.float64), metadata=n_metadata)


# --- fast path --------------------------------------------------------------------------

_WINDOW = 24  # bytes of tail read per series: the 18-byte sample record, rounded to words
_PAD = bytes(_WINDOW)  # lets every gather below read past the end of the last series


def _label_advance_table() -> np.ndarray:
    """Bytes taken by a Label record whose length varint starts with bytes (b1, b2).

    Indexed by ``b1 | b2 << 8``. Only minimal 1- and 2-byte lengths are accepted; any
    other header maps to a huge advance, which never fits inside a series.
    """
    b1 = np.arange(1 << 16) & 0xFF
    b2 = np.arange(1 << 16) >> 8
    advance = np.full(1 << 16, 1 << 40, dtype=np.int64)
    one = b1 < 0x80
    advance[one] = 2 + b1[one]
    two = ~one & (b2 > 0) & (b2 < 0x80)
    advance[two] = 3 + ((b1[two] & 0x7F) | (b2[two] << 7))
    return advance


_LABEL_ADVANCE = _label_advance_table()
_LABEL_TAG = 0x0A
_MAX_LABELS_WALKED = 64
_DROP_FULL_SAMPLE = operator.itemgetter(slice(None, -18))
_DROP_ZERO_SAMPLE = operator.itemgetter(slice(None, -9))
# The tail of a series is read as three little-endian words: bytes 0-7, 8-15, 16-23.
# Sample with a value: 12 10 | 09 <8-byte double> | 10 <6-byte varint>; as (mask, want):
_FULL_0 = (np.uint64(0x0000_0000_00FF_FFFF), np.uint64(0x0000_0000_0009_1012))
_FULL_1 = (np.uint64(0x8080_8080_FF00_0000), np.uint64(0x8080_8080_1000_0000))
_FULL_2 = (np.uint64(0x8080), np.uint64(0x0080))
# Sample with value 0.0 (omitted by proto3 writers): 12 07 | 10 <6-byte varint>.
_ZERO_0 = (np.uint64(0x8080_8080_80FF_FFFF), np.uint64(0x8080_8080_8010_0712))
_ZERO_1 = (np.uint64(0x80), np.uint64(0x00))


def _u64(value: int) -> np.uint64:
    return np.uint64(value)


@dataclass
class _Scan:
    fast: np.ndarray  # bool per series: labels + one sample, decoded below
    keys: list[bytes]  # label bytes (valid where fast)
    timestamps: np.ndarray  # int64 (valid where fast)
    values: np.ndarray  # float64 (valid where fast)
    ids: np.ndarray | None  # the key_ids answers, if asked


def _scan_single_sample(series: list[bytes], key_ids: KeyIds | None) -> _Scan:
    """Read the one-sample tail of every series; the bytes before it are the key.

    The tail shapes are checked at the end of each series (18 bytes back, or 9 for a zero
    value). The key's Label records are then walked only for keys ``key_ids`` does not
    know; a walk that does not end exactly at the tail sends the series to the slow path.
    """
    lengths = np.fromiter(map(len, series), dtype=np.int64, count=len(series))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    joined = b"".join([*series, _PAD])
    buf = np.frombuffer(joined, dtype=np.uint8)
    # row p: the three little-endian words starting at byte p (unaligned reads)
    word_rows = np.ndarray((len(joined) - _WINDOW + 1, 3), "<u8", joined, 0, (1, 8))

    full_at = np.maximum(ends - 18, starts)
    w0, w1, w2 = np.ascontiguousarray(word_rows[full_at].T)
    full = ((lengths >= 18) & (w0 & _FULL_0[0] == _FULL_0[1])
            & (w1 & _FULL_1[0] == _FULL_1[1]) & (w2 & _FULL_2[0] == _FULL_2[1]))
    values = (w0 >> _u64(24)) | (w1 << _u64(40))  # bytes 3-10: the value (full shape)
    varint = (w1 >> _u64(32)) | (w2 << _u64(32))  # bytes 12-17: the timestamp (full shape)
    label_end = full_at
    fast = full
    keys = list(map(_DROP_FULL_SAMPLE, series))
    if np.count_nonzero(full) != len(full):
        zero_at = np.maximum(ends - 9, starts)
        z0, z1 = np.ascontiguousarray(word_rows[zero_at, :2].T)
        zero = (~full & (lengths >= 9) & (z0 & _ZERO_0[0] == _ZERO_0[1])
                & (z1 & _ZERO_1[0] == _ZERO_1[1]))
        # zero shape: the timestamp at bytes 3-8
        varint = np.where(zero, (z0 >> _u64(24)) | (z1 << _u64(40)), varint)
        values[~full] = 0
        label_end = np.where(zero, zero_at, full_at)
        fast = full | zero
        zero_idx = np.flatnonzero(zero).tolist()
        for i, key in zip(zero_idx, map(_DROP_ZERO_SAMPLE, map(series.__getitem__, zero_idx)),
                          strict=True):
            keys[i] = key
    timestamps = _varint48(varint)

    ids = key_ids(keys) if key_ids is not None else None
    check = fast if ids is None else fast & (ids < 0)
    if np.count_nonzero(check):
        idx = np.flatnonzero(check)
        walked_to = _walk_labels(buf, starts[idx], label_end[idx])
        fast[idx[walked_to != label_end[idx]]] = False
    return _Scan(fast, keys, timestamps, values.view(np.float64), ids)


def _walk_labels(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per series, the offset where its leading run of well-formed Label records ends.

    Stops after ``_MAX_LABELS_WALKED`` records: a series with more labels stops short of its
    sample and takes the slow path (bounded work per request).
    """
    len_byte_1, len_byte_2 = buf[1:], buf[2:]  # at index p: the bytes after a tag at p
    pos = starts.copy()
    for _ in range(_MAX_LABELS_WALKED):
        header = len_byte_1.take(pos) | np.left_shift(len_byte_2.take(pos), 8, dtype=np.uint16)
        nxt = pos + _LABEL_ADVANCE.take(header)
        more = (buf.take(pos) == _LABEL_TAG) & (nxt <= ends)
        if not np.count_nonzero(more):
            return pos
        np.copyto(pos, nxt, where=more)
    return pos


def _varint48(x: np.ndarray) -> np.ndarray:
    """Decode 6-byte varints held in the low 48 bits of uint64 words (little-endian)."""
    return join7(x & _u64(0x7F7F_7F7F_7F7F)).view(np.int64)
