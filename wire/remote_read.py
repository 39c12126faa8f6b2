"""Remote read (shared/spec/remote-read.md): request bytes -> plain values, answers -> bytes.

* :func:`decode_read_request` parses a snappy-decompressed ``prometheus.ReadRequest`` with
  the generated schema (requests are tiny) into plain dataclasses.
* :func:`encode_read_response` writes a ``ReadResponse`` for the SAMPLES answer. The bulk of
  it is ``Sample`` records, which numpy writes all at once as byte rows
  ``12 len | 09 <8-byte double> | 10 <timestamp varint>``: the value and the timestamp are
  always written (proto3 would omit 0.0 and 0; decoders read both forms alike), so a record
  is 12 bytes plus the varint, and when every timestamp has the same varint length (any
  response whose samples lie between 1971 and 2109) the records are one contiguous slice
  of a fixed-width row matrix. Labels and the per-series/per-query framing are written in
  Python, once per series.
* STREAMED_XOR_CHUNKS: :func:`stream_frames` cuts the series into Prometheus XOR chunks with
  one :func:`wire.xor_chunk.encode_xor_chunks` call and yields frames
  ``uvarint L | CRC32-C big-endian | ChunkedReadResponse`` holding exactly one
  ``ChunkedSeries`` each; :func:`encode_chunked_series_frames` frames one series' chunks
  (e.g. chunks already stored). :func:`iter_frames` reads such a stream back.

Chunked messages are written canonically (zero fields omitted, fields in number order), so
they equal the generated classes' ``SerializeToString`` output byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import crc32c
import numpy as np

from wire.errors import WireError
from wire.messages import label_record, parse_message
from wire.proto import remote_pb2
from wire.varint import decode_uvarint, encode_uvarint
from wire.xor_chunk import encode_xor_chunks

__all__ = [
    "DEFAULT_CLIENT_FRAME_LIMIT", "MAX_FRAME_BYTES", "SAMPLES", "STREAMED_CONTENT_TYPE",
    "STREAMED_XOR_CHUNKS", "XOR_ENCODING", "ChunkSource", "Query", "ReadHints", "ReadRequest",
    "SeriesData",
    "decode_read_request", "encode_chunked_series_frames", "encode_read_response",
    "iter_frames", "label_set_order", "stream_frames",
]

#: ``ReadRequest.ResponseType`` values.
SAMPLES = 0
STREAMED_XOR_CHUNKS = 1

#: Content-Type of a STREAMED_XOR_CHUNKS answer; clients match it byte for byte (spec §4.1).
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

#: Frame size Prometheus aims at (--storage.remote.read-max-bytes-in-frame), labels + chunks.
MAX_FRAME_BYTES = 1 << 20

#: Frames a client accepts by default (remote_read.chunked_read_limit).
DEFAULT_CLIENT_FRAME_LIMIT = 50_000_000

#: ``Chunk.Encoding.XOR``
XOR_ENCODING = 1

#: One series: sorted (name, value) pairs, int64 ms timestamps, float64 values.
SeriesData = tuple[Sequence[tuple[str, str]], np.ndarray, np.ndarray]

U64 = np.uint64


# --- request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadHints:
    """``ReadHints``: advisory; results must stay correct when they are ignored."""

    step_ms: int
    func: str
    start_ms: int
    end_ms: int
    grouping: tuple[str, ...]
    by: bool
    range_ms: int


@dataclass(frozen=True)
class Query:
    start_ms: int  # inclusive
    end_ms: int  # inclusive
    matchers: list[tuple[int, str, str]]  # (type: EQ=0 NEQ=1 RE=2 NRE=3, name, value), AND-ed
    hints: ReadHints | None


@dataclass(frozen=True)
class ReadRequest:
    queries: list[Query]
    # ResponseType values in preference order; empty means SAMPLES (spec §2.1)
    accepted_response_types: list[int]


def decode_read_request(body: bytes) -> ReadRequest:
    """Decode a snappy-decompressed ``prometheus.ReadRequest``; WireError if malformed.

    Enum values are passed through as ints, unknown ones included (proto3 enums are open):
    the caller decides what it supports.
    """
    request = parse_message(remote_pb2.ReadRequest, body, "ReadRequest")
    queries = []
    for q in request.queries:
        hints = None
        if q.HasField("hints"):
            h = q.hints
            hints = ReadHints(h.step_ms, h.func, h.start_ms, h.end_ms, tuple(h.grouping), h.by,
                              h.range_ms)
        matchers = [(m.type, m.name, m.value) for m in q.matchers]
        queries.append(Query(q.start_timestamp_ms, q.end_timestamp_ms, matchers, hints))
    return ReadRequest(queries, list(request.accepted_response_types))


# --- SAMPLES response -------------------------------------------------------------------


def encode_read_response(results: Sequence[Sequence[SeriesData]]) -> bytes:
    """Serialized ``ReadResponse`` (not compressed): one ``QueryResult`` per entry of
    ``results``, one ``TimeSeries`` per series, labels and samples in the given order (the
    caller sorts labels and trims samples to the query range). Every ``Sample`` carries its
    value and timestamp, zeros included."""
    series = [s for result in results for s in result]
    labels = [_labels_bytes(lbls) for lbls, _, _ in series]
    ts, vals, offsets = _concat_samples(series)
    records, record_ends = _sample_records(ts, vals)

    pieces: list[bytes | memoryview] = []
    view = memoryview(records)  # type: ignore[arg-type]
    bounds = record_ends[offsets].tolist()  # byte range of each series' samples
    i = 0
    for result in results:
        query_pieces = []
        query_len = 0
        for _ in range(len(result)):
            a, b = bounds[i], bounds[i + 1]
            series_len = len(labels[i]) + (b - a)
            head = b"\x0a" + encode_uvarint(series_len)
            query_pieces += (head, labels[i], view[a:b])
            query_len += len(head) + series_len
            i += 1
        pieces.append(b"\x0a" + encode_uvarint(query_len))
        pieces += query_pieces
    return b"".join(pieces)


def _concat_samples(series: Sequence[SeriesData]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All timestamps (int64) and values (float64) back to back, and CSR offsets of the series.

    Only lossless casts are accepted (ints for timestamps, floats for values; TypeError
    otherwise); values are copied bit for bit, NaN payloads included.
    """
    ts_parts = [np.empty(0, np.int64), *(t for _, t, _ in series)]
    val_parts = [np.empty(0, np.float64), *(v for _, _, v in series)]
    counts = np.fromiter(map(len, ts_parts), dtype=np.int64, count=len(ts_parts))
    val_counts = np.fromiter(map(len, val_parts), dtype=np.int64, count=len(val_parts))
    if not np.array_equal(counts, val_counts):
        i = int(np.flatnonzero(counts != val_counts)[0]) - 1
        raise ValueError(f"series {i}: {counts[i + 1]} timestamps but {val_counts[i + 1]} values")
    ts = np.concatenate(ts_parts, dtype=np.int64, casting="safe")
    vals = np.concatenate(val_parts, dtype=np.float64, casting="safe")
    if ts.ndim != 1 or vals.ndim != 1:
        raise ValueError("timestamps and values must be 1-d arrays")
    return ts, vals, np.cumsum(counts)


# Continuation bits of a varint of n bytes (n = 1..10), split like _uvarint_words' words.
_CONT_LO = np.array([0] + [sum(0x80 << 8 * k for k in range(min(n - 1, 8))) for n in range(1, 11)],
                    dtype=U64)
_CONT_HI = np.array([0x80 if n == 10 else 0 for n in range(11)], dtype=U64)
#: _VARINT_MIN[n - 1] is the smallest uint64 whose varint takes n bytes (n = 2..10)
_VARINT_MIN = np.array([1 << 7 * k for k in range(1, 10)], dtype=U64)


def _uvarint_lengths(u: np.ndarray) -> np.ndarray | int:
    """Bytes of the LEB128 varint of each uint64; an int when they are all equal."""
    if len(u) == 0:
        return 1
    lo, hi = (int(np.searchsorted(_VARINT_MIN, x, side="right")) + 1 for x in (u.min(), u.max()))
    if lo == hi:  # the length grows with the value
        return lo
    return np.searchsorted(_VARINT_MIN, u, side="right").astype(np.int64) + 1


def _uvarint_words(u: np.ndarray, nbytes: np.ndarray | int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """LEB128 bytes of each uint64 as little-endian words: bytes 0-7, and bytes 8-9 (None
    when no varint is longer than 8 bytes).

    The low 56 bits are spread from 7-bit groups into byte lanes with three shift/mask steps,
    in place (fresh arrays cost page faults); continuation bits come from a table indexed
    by the varint length.
    """
    x = np.bitwise_and(u, U64(0x00FF_FFFF_FFFF_FFFF))
    part = np.empty_like(x)
    for keep, move, shift in ((0x0FFF_FFFF, 0x00FF_FFFF_F000_0000, 4),
                              (0x0000_3FFF_0000_3FFF, 0x0FFF_C000_0FFF_C000, 2),
                              (0x007F_007F_007F_007F, 0x3F80_3F80_3F80_3F80, 1)):
        np.bitwise_and(x, U64(move), out=part)
        part <<= U64(shift)
        x &= U64(keep)
        x |= part
    x |= _CONT_LO[nbytes]
    if np.max(nbytes, initial=0) <= 8:
        return x, None
    top = np.right_shift(u, U64(56), out=part)  # byte 8 holds bits 56-62, byte 9 bit 63
    hi = (top & U64(0x7F)) | ((top >> U64(7)) << U64(8)) | _CONT_HI[nbytes]
    return x, hi


def _uvarint_matrix(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 10) uint8 LEB128 bytes of each uint64 (zero padded) and the int64 lengths."""
    nbytes = np.broadcast_to(_uvarint_lengths(u), u.shape).astype(np.int64)
    lo, hi = _uvarint_words(u, nbytes)
    out = np.zeros((len(u), 2), dtype="<u8")
    out[:, 0] = lo
    if hi is not None:
        out[:, 1] = hi
    return out.view(np.uint8)[:, :10], nbytes


_ROW_COLUMNS = np.arange(24)


def _sample_records(ts: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Sample`` records (tag and length included) of all samples back to back, as uint8,
    and the end offset of every record with a leading 0 (length n + 1).

    A record is ``12 L 09 v0..v7 10 t0..t(k-1)`` with k the timestamp's varint length and
    L = 10 + k. As three little-endian words of a 24-byte row:
    w0 = 12 | L << 8 | 09 << 16 | v << 24, w1 = v >> 40 | 10 << 24 | t0-3 << 32,
    w2 = t4-7 | t8-9 << 32.
    """
    n = len(ts)
    tu = ts.view(U64)
    bits = vals.view(U64)
    nbytes = _uvarint_lengths(tu)
    t_lo, t_hi = _uvarint_words(tu, nbytes)
    head = U64(0x12 | 0x09 << 16) | ((U64(10) + np.asarray(nbytes, dtype=U64)) << U64(8))
    w0 = np.left_shift(bits, U64(24))
    w0 |= head
    w1 = np.right_shift(bits, U64(40))
    w1 |= U64(0x10 << 24)
    w1 |= t_lo << U64(32)
    w2 = np.right_shift(t_lo, U64(32), out=t_lo)
    if t_hi is not None:
        w2 |= t_hi << U64(32)
    if isinstance(nbytes, int):
        return _fixed_width_records(n, 12 + nbytes, w0, w1, w2)
    rows = np.empty((n, 3), dtype="<u8")
    rows[:, 0], rows[:, 1], rows[:, 2] = w0, w1, w2
    widths = 12 + nbytes
    ends = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(widths, out=ends[1:])
    return rows.view(np.uint8)[_ROW_COLUMNS < widths[:, None]], ends


def _fixed_width_records(n: int, width: int, w0: np.ndarray, w1: np.ndarray,
                         w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``width`` (13..22) bytes given as 24-byte rows (three words), stored as three
    unaligned strided word writes: bytes 8-15, bytes 0-7, then the row's last 8 bytes.

    For width < 16 the first store spills into the next row's first bytes; the second
    store rewrites those, and every other overlap receives the same bytes twice.
    """
    if width < 16:
        last = (w0 >> U64(8 * (width - 8))) | (w1 << U64(8 * (16 - width)))
    elif width == 16:
        last = w1
    else:  # w2 is not needed any more
        last = np.left_shift(w2, U64(8 * (24 - width)), out=w2)
        last |= w1 >> U64(8 * (width - 16))
    out = np.empty(n * width + 8, dtype=np.uint8)
    for offset, words in ((8, w1), (0, w0), (width - 8, last)):
        np.ndarray((n,), "<u8", out, offset, (width,))[...] = words
    return out[:n * width], np.arange(n + 1, dtype=np.int64) * width


# Label records are the same few strings over and over (job, instance, __name__ ...).
_LABEL_CACHE: dict[tuple[str, str], tuple[bytes, int]] = {}
_LABEL_CACHE_MAX = 100_000


def _label_records(labels: Iterable[tuple[str, str]]) -> list[tuple[bytes, int]]:
    cache = _LABEL_CACHE
    out = []
    for pair in labels:
        record = cache.get(pair) if type(pair) is tuple else None
        if record is None:
            if len(cache) >= _LABEL_CACHE_MAX:
                cache.clear()
            name, value = pair
            record = cache[name, value] = label_record(name, value)
        out.append(record)
    return out


def _labels_bytes(labels: Iterable[tuple[str, str]]) -> bytes:
    """The ``Label`` records (field 1 of TimeSeries and ChunkedSeries) of a label set."""
    return b"".join([record for record, _ in _label_records(labels)])


# --- STREAMED_XOR_CHUNKS ----------------------------------------------------------------


class ChunkSource(Protocol):
    """Chunks back to back, like :class:`wire.xor_chunk.XorChunks`."""

    data: bytes  # all chunks back to back
    offsets: np.ndarray  # int64, n_chunks + 1 byte offsets into data
    min_time: np.ndarray  # int64 ms per chunk, inclusive
    max_time: np.ndarray  # int64 ms per chunk, inclusive


@dataclass(frozen=True)
class _ChunkRecords:
    """``Chunk`` records (field 2 of ChunkedSeries) of chunks [start, stop) of a ChunkSource,
    back to back: ``12 len [08 min_time] [10 max_time] 18 <encoding> 22 len <data>``."""

    start: int
    records: memoryview
    ends: list[int]  # end offset of each record, with a leading 0
    sizes: list[int]  # Chunk message sizes (Prometheus' Chunk.Size()), for the frame budget


def _chunk_records(chunks: ChunkSource, start: int, stop: int,
                   encoding: int = XOR_ENCODING) -> _ChunkRecords:
    """All records at once: headers as columns of a byte matrix compacted by a mask, then
    headers and data interleaved by a second mask."""
    if not 0 <= encoding < 0x80:
        raise ValueError(f"chunk encoding {encoding} out of range")
    offsets = np.asarray(chunks.offsets[start:stop + 1], dtype=np.int64)
    mins = np.asarray(chunks.min_time[start:stop], dtype=np.int64).view(U64)
    maxs = np.asarray(chunks.max_time[start:stop], dtype=np.int64).view(U64)
    data_len = np.diff(offsets)
    n = len(data_len)
    min_bytes, min_n = _uvarint_matrix(mins)
    max_bytes, max_n = _uvarint_matrix(maxs)
    len_bytes, len_n = _uvarint_matrix(data_len.view(U64))
    has_min, has_max = mins != 0, maxs != 0  # proto3 leaves zeros out
    sizes = has_min * (1 + min_n) + has_max * (1 + max_n) + 2 + (1 + len_n) + data_len
    size_bytes, size_n = _uvarint_matrix(sizes.view(U64))

    def const(byte: int, present: np.ndarray | bool = True) -> tuple[np.ndarray, np.ndarray]:
        return np.full((n, 1), byte, np.uint8), np.broadcast_to(present, (n,))[:, None]

    def varint(matrix: np.ndarray, length: np.ndarray,
               present: np.ndarray | bool = True) -> tuple[np.ndarray, np.ndarray]:
        return matrix, (np.arange(10) < length[:, None]) & np.asarray(present)[..., None]

    columns = [const(0x12), varint(size_bytes, size_n),
               const(0x08, has_min), varint(min_bytes, min_n, has_min),
               const(0x10, has_max), varint(max_bytes, max_n, has_max),
               const(0x18), const(encoding), const(0x22), varint(len_bytes, len_n)]
    matrix = np.concatenate([c for c, _ in columns], axis=1)
    present = np.concatenate([np.broadcast_to(p, c.shape) for c, p in columns], axis=1)
    header_len = np.count_nonzero(present, axis=1)

    pieces = np.empty(2 * n, dtype=np.int64)  # header, data, header, data...
    pieces[0::2] = header_len
    pieces[1::2] = data_len
    is_header = np.repeat(np.tile([True, False], n), pieces)
    records = np.empty(len(is_header), dtype=np.uint8)
    records[is_header] = matrix[present]
    records[~is_header] = np.frombuffer(chunks.data, np.uint8, int(offsets[-1] - offsets[0]),
                                        int(offsets[0])) if n else []
    ends = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(header_len + data_len, out=ends[1:])
    return _ChunkRecords(start, memoryview(records), ends.tolist(), sizes.tolist())


def encode_chunked_series_frames(query_index: int, labels: Sequence[tuple[str, str]],
                                 chunks: ChunkSource, start: int = 0, stop: int | None = None,
                                 *, encoding: int = XOR_ENCODING,
                                 max_frame_bytes: int = MAX_FRAME_BYTES) -> list[bytes]:
    """Frames carrying chunks ``[start, stop)`` of ``chunks`` as one series.

    One ``ChunkedSeries`` per frame; the series is split over several frames only when its
    labels and chunks exceed ``max_frame_bytes``, exactly where Prometheus' server splits
    (a frame is closed once it reaches the budget, so it may overshoot by one chunk). No
    frame for a series without chunks. Chunks must be in ascending ``min_time`` order.
    """
    stop = len(chunks.offsets) - 1 if stop is None else stop
    if not 0 <= start <= stop <= len(chunks.offsets) - 1:
        raise ValueError(f"chunk range [{start}, {stop}) outside the {len(chunks.offsets) - 1} "
                         "chunks given")
    records = _chunk_records(chunks, start, stop, encoding)
    return _series_frames(query_index, labels, records, start, stop, max_frame_bytes)


def _series_frames(query_index: int, labels: Sequence[tuple[str, str]], records: _ChunkRecords,
                   start: int, stop: int, max_frame_bytes: int) -> list[bytes]:
    label_records = _label_records(labels)
    label_bytes = b"".join([record for record, _ in label_records])
    # like Prometheus: the labels' message sizes count against the frame budget
    budget = max_frame_bytes - sum(size for _, size in label_records)
    tail = b"\x10" + encode_uvarint(query_index & 0xFFFF_FFFF_FFFF_FFFF) if query_index else b""
    ends, sizes = records.ends, records.sizes
    first, last = start - records.start, stop - records.start
    frames = []
    while first < last:
        end = first  # take chunks until the budget is used up (the last one may overshoot)
        left = budget
        while end < last:
            left -= sizes[end]
            end += 1
            if left <= 0:
                break
        chunk_bytes = records.records[ends[first]:ends[end]]
        series_len = len(label_bytes) + len(chunk_bytes)
        message = b"".join([b"\x0a", encode_uvarint(series_len), label_bytes, chunk_bytes, tail])
        frames.append(b"".join([encode_uvarint(len(message)),
                                crc32c.crc32c(message).to_bytes(4, "big"), message]))
        first = end
    return frames


def label_set_order(label_sets: Sequence[Sequence[tuple[str, str]]]) -> list[int]:
    """Indexes of ``label_sets`` in the order the TSDB sorts label sets (spec §4.3 rule 2):
    pair by pair, name then value, byte-wise; a prefix sorts first.

    Python compares str by code point, which is the byte order of their UTF-8 encodings.
    """
    return sorted(range(len(label_sets)), key=lambda i: tuple(map(tuple, label_sets[i])))


def stream_frames(query_index: int, series: Sequence[SeriesData], *, max_samples: int = 120,
                  max_frame_bytes: int = MAX_FRAME_BYTES) -> Iterator[bytes]:
    """STREAMED_XOR_CHUNKS frames of one query's series: sorted by label set, cut into XOR
    chunks of at most ``max_samples`` samples (evenly sized), one ``ChunkedSeries`` per frame.

    Timestamps must increase strictly within a series (ValueError otherwise, before the first
    frame is yielded). Series without samples are skipped.
    """
    order = label_set_order([labels for labels, _, _ in series])
    ordered = [series[i] for i in order]
    ts, vals, offsets = _concat_samples(ordered)
    chunks = encode_xor_chunks(ts, vals, offsets, max_samples)
    n_chunks = len(chunks.offsets) - 1
    records = _chunk_records(chunks, 0, n_chunks)
    chunk_bounds = np.searchsorted(chunks.series, np.arange(len(ordered) + 1)).tolist()
    for i, (labels, _, _) in enumerate(ordered):
        first, stop = chunk_bounds[i], chunk_bounds[i + 1]
        if first < stop:
            yield from _series_frames(query_index, labels, records, first, stop,
                                      max_frame_bytes)


def iter_frames(data: bytes, max_frame_bytes: int = DEFAULT_CLIENT_FRAME_LIMIT
                ) -> Iterator[bytes]:
    """The ``ChunkedReadResponse`` messages of a framed stream, CRC-checked; WireError on a
    truncated frame, a bad checksum or a frame over ``max_frame_bytes``."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        length, body = decode_uvarint(view, pos)
        if length > max_frame_bytes:
            raise WireError(f"frame at byte {pos} declares {length} bytes, over the limit of "
                            f"{max_frame_bytes}")
        if length == 0:
            raise WireError(f"empty frame at byte {pos}")
        end = body + 4 + length
        if end > len(view):
            raise WireError(f"truncated frame at byte {pos}: needs {end - pos} bytes, "
                            f"{len(view) - pos} left")
        message = bytes(view[body + 4:end])
        want = int.from_bytes(view[body:body + 4], "big")
        got = crc32c.crc32c(message)
        if got != want:
            raise WireError(f"frame at byte {pos}: CRC32-C {got:08x} does not match "
                            f"{want:08x}")
        yield message
        pos = end
