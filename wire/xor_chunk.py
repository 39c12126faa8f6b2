"""Vectorised writer of Prometheus' XOR chunks (bit layout: shared/spec/xor-chunk.md).

All samples of all series are encoded at once by a fixed number of numpy passes. Each sample
becomes one to three MSB-first fields ("slots"), all slots are packed by a single
:func:`pack_msb` call, and chunk byte offsets follow from the summed slot widths:

* first sample of a chunk: [padding of the previous chunk, count (u16), t0 varint bytes
  0-4] [t0 bytes 5-9] [v0, 64 raw bits]. Chunks end on a byte boundary: the zero padding is
  written as leading zeros of the next chunk's first slot (pack_msb pads the last byte).
* second sample: [Δ1 uvarint bytes 0-4] [Δ1 bytes 5-9, XOR header] [XOR payload].
* other samples: [dod field, XOR header, XOR payload] when that fits 64 bits, else the
  payload in a second slot; a 68-bit dod takes [``1111``, top 60 bits] [low 4 bits, XOR
  header] [XOR payload].

XOR window policy: Prometheus' encoder reuses the current window greedily, which is
sequential. Here each chunk is cut into groups of ``WINDOW_GROUP`` consecutive samples; the
first non-zero XOR of a group opens a window (``11`` record) wide enough for all of the group's
non-zero XORs -- leading zeros of their OR clamped to 31, trailing zeros of their OR -- and the
others reuse it (``10``). Any decoder accepts this: a ``10`` record always fits the window of
the last ``11`` record, and no ``10`` precedes the first ``11`` of a chunk. On realistic data
it is about as compact as the greedy policy (benchmarks/xor_chunk.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding.bitpack import leading_zeros, pack_msb, trailing_zeros

U64 = np.uint64

#: Samples sharing one XOR window (see module docstring; measured in benchmarks/xor_chunk.py).
WINDOW_GROUP = 8

#: Header of a ``11`` record without its leading/significant bits: ``11`` then 11 zero bits.
_NEW_WINDOW = 0b11 << 11

# Delta-of-delta buckets, looked up by the float64 biased exponent of zigzag(dod - 1): a dod
# fits an n-bit bucket (-(2**(n-1) - 1) <= dod <= 2**(n-1)) iff dod - 1 fits n signed bits,
# i.e. iff zigzag(dod - 1) < 2**n, i.e. iff the exponent is below 1023 + n. zigzag(dod - 1)
# == 1 (exponent 1023, nothing else has it) means dod == 0.
_EXPONENT = np.arange(2048)
_BUCKET = np.select(
    [_EXPONENT == 1023, _EXPONENT < 1023 + 14, _EXPONENT < 1023 + 17, _EXPONENT < 1023 + 20],
    [0, 1, 2, 3],
    4,
)
#: width of the whole dod field, prefix shifted over the payload, payload mask
_DOD_WIDTH = np.array([1, 16, 20, 24, 68], dtype=np.uint8)[_BUCKET]
_DOD_PREFIX = np.array([0, 0b10 << 14, 0b110 << 17, 0b1110 << 20, 0], dtype=U64)[_BUCKET]
_DOD_MASK = np.array([0, (1 << 14) - 1, (1 << 17) - 1, (1 << 20) - 1, 0], dtype=U64)[_BUCKET]


@dataclass(frozen=True)
class XorChunks:
    data: bytes  # all chunks back to back
    offsets: np.ndarray  # int64, n_chunks + 1 byte offsets into data
    series: np.ndarray  # int64, index of the input series each chunk belongs to
    min_time: np.ndarray  # int64 ms, first timestamp of each chunk
    max_time: np.ndarray  # int64 ms, last timestamp of each chunk

    def chunk(self, i: int) -> bytes:
        return self.data[int(self.offsets[i]) : int(self.offsets[i + 1])]


def encode_xor_chunks(
    timestamps: np.ndarray,
    values: np.ndarray,
    series_offsets: np.ndarray,
    max_samples: int = 120,
) -> XorChunks:
    """timestamps int64 ms, values float64, sorted by (series, time) with strictly increasing
    time inside each series; series_offsets int64 of length n_series+1 (CSR). Each series is
    cut into chunks of at most max_samples samples (prefer evenly sized chunks, e.g. a
    series of 130 samples -> 65 + 65). Empty series produce no chunk."""
    return _encode(timestamps, values, series_offsets, max_samples, WINDOW_GROUP)


def _encode(
    timestamps: np.ndarray,
    values: np.ndarray,
    series_offsets: np.ndarray,
    max_samples: int,
    group: int,
) -> XorChunks:
    ts = np.ascontiguousarray(timestamps, dtype=np.int64)
    bits = np.ascontiguousarray(values, dtype=np.float64).view(U64)
    offsets = np.asarray(series_offsets, dtype=np.int64)
    _validate(ts, bits, offsets, max_samples)
    series, starts, sizes = _chunk_layout(offsets, max_samples)
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return XorChunks(b"", np.zeros(1, dtype=np.int64), empty, empty, empty.copy())
    n = len(ts)
    seconds = starts[sizes > 1] + 1

    # -- values: XOR with the previous sample, one window per group ------------------------
    xor = np.empty(n, dtype=U64)
    xor[0] = 0
    np.bitwise_xor(bits[1:], bits[:-1], out=xor[1:])
    xor[starts] = 0
    head, head_w, body, body_w = _xor_fields(xor, starts, sizes, group)
    del xor  # became ``body``

    # -- timestamps: delta-of-delta in wrapping uint64 arithmetic -------------------------
    # (large scratch arrays are reused: fresh memory costs page faults on every call)
    tu = ts.view(U64)
    scratch = np.empty(n, dtype=U64)
    scratch[0] = 0
    np.subtract(tu[1:], tu[:-1], out=scratch[1:])  # delta
    delta1 = scratch[seconds]
    field0 = np.empty(n, dtype=U64)
    field0[0] = 0
    np.subtract(scratch[1:], scratch[:-1], out=field0[1:])  # dod
    field0[starts] = 0  # first and second samples have no dod: keep them out of the 68-bit case
    field0[seconds] = 0
    dod_w, big, dod_big = _dod_fields(field0, scratch)

    # -- field 0: dod + XOR header, with the XOR payload appended where it fits ----------
    field0 <<= head_w
    field0 |= head
    width0 = dod_w + head_w
    width02 = width0 + body_w
    fits = width02 <= 64
    np.left_shift(field0, body_w, out=scratch)
    scratch |= body
    np.copyto(field0, scratch, where=fits)
    np.copyto(width0, width02, where=fits)
    del width02

    # -- slots per sample: 1, or 2 with the payload apart; 3 for chunk heads and 68-bit dods
    n_slots = np.uint8(2) - fits.view(np.uint8)
    n_slots[starts] = 3
    n_slots[seconds] = 3
    n_slots[big] = 3
    first_slot = np.cumsum(n_slots, dtype=np.int64, out=scratch.view(np.int64))
    first_slot -= n_slots
    n_fields = int(first_slot[-1]) + int(n_slots[-1])
    fields = np.empty(n_fields, dtype=U64)
    widths = np.empty(n_fields, dtype=np.int64)
    fields[first_slot] = field0
    widths[first_slot] = width0
    apart = np.flatnonzero(~fits)
    slot = first_slot[apart] + 1
    fields[slot] = body[apart]
    widths[slot] = body_w[apart]
    del field0, width0, fits, n_slots, apart

    # 68-bit dod: ``1111`` + top 60 bits | low 4 bits + XOR header | XOR payload
    slot = first_slot[big]
    hw = head_w[big]
    fields[slot] = (U64(0b1111) << U64(60)) | (dod_big >> U64(4))
    widths[slot] = 64
    fields[slot + 1] = ((dod_big & U64(15)) << hw) | head[big]
    widths[slot + 1] = 4 + hw
    fields[slot + 2] = body[big]
    widths[slot + 2] = body_w[big]

    # chunk heads: count + t0 varint | rest of t0 | v0; then Δ1 varint | rest + XOR header | payload
    t0 = ts[starts]
    hi, hi_w, lo, lo_w = _varint_fields(
        np.concatenate([((t0 << 1) ^ (t0 >> 63)).view(U64), delta1])
    )
    n_chunks = len(starts)
    slot = first_slot[starts]
    fields[slot] = (sizes.astype(U64) << hi_w[:n_chunks]) | hi[:n_chunks]
    widths[slot] = 16 + hi_w[:n_chunks]
    fields[slot + 1] = lo[:n_chunks]
    widths[slot + 1] = lo_w[:n_chunks]
    fields[slot + 2] = bits[starts]
    widths[slot + 2] = 64
    slot = first_slot[seconds]
    hw = head_w[seconds]
    fields[slot] = hi[n_chunks:]
    widths[slot] = hi_w[n_chunks:]
    fields[slot + 1] = (lo[n_chunks:] << hw) | head[seconds]
    widths[slot + 1] = lo_w[n_chunks:] + hw
    fields[slot + 2] = body[seconds]
    widths[slot + 2] = body_w[seconds]

    # -- chunk sizes; the padding of a chunk is written before the next chunk's count -----
    head_slot = first_slot[starts]
    chunk_bits = np.add.reduceat(widths, head_slot)
    pad = -chunk_bits & 7
    widths[head_slot[1:]] += pad[:-1]
    chunk_offsets = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum((chunk_bits + pad) >> 3, out=chunk_offsets[1:])

    data, _ = pack_msb(fields, widths)
    assert len(data) == chunk_offsets[-1]
    return XorChunks(
        data=data,
        offsets=chunk_offsets,
        series=series,
        min_time=t0,
        max_time=ts[starts + sizes - 1],
    )


def _validate(ts: np.ndarray, bits: np.ndarray, offsets: np.ndarray, max_samples: int) -> None:
    if not 1 <= max_samples <= 0xFFFF:
        raise ValueError(f"max_samples must be in 1..65535, got {max_samples}")
    if ts.ndim != 1 or bits.shape != ts.shape:
        raise ValueError("timestamps and values must be 1-d arrays of the same length")
    if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ts):
        raise ValueError("series_offsets must run from 0 to the number of samples")
    if np.any(offsets[1:] < offsets[:-1]):
        raise ValueError("series_offsets must be non-decreasing")
    # a non-increasing step is only allowed where a new series starts
    steps_back = np.flatnonzero(ts[1:] <= ts[:-1]) + 1
    if len(steps_back) and not np.isin(steps_back, offsets).all():
        raise ValueError("timestamps must be strictly increasing inside each series")


def _chunk_layout(offsets: np.ndarray, max_samples: int) -> tuple[np.ndarray, ...]:
    """Series, first sample and sample count of every chunk, evenly sized per series."""
    lengths = np.diff(offsets)
    n_chunks = -(-lengths // max_samples)
    series = np.repeat(np.arange(len(lengths), dtype=np.int64), n_chunks)
    rank = np.arange(len(series), dtype=np.int64) - np.repeat(
        np.cumsum(n_chunks) - n_chunks, n_chunks
    )
    base, extra = np.divmod(lengths[series], n_chunks[series])
    sizes = base + (rank < extra)
    starts = offsets[series] + rank * base + np.minimum(rank, extra)
    return series, starts, sizes


def _xor_fields(
    xor: np.ndarray, starts: np.ndarray, sizes: np.ndarray, group: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """XOR record header (uint16 value, uint8 width) and payload (uint64 value, uint8 width)
    of every sample. ``xor`` must be 0 at chunk starts; it is overwritten by the payload."""
    n_groups = (sizes + group - 1) // group
    rank = np.arange(int(n_groups.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(n_groups) - n_groups, n_groups
    )
    g_starts = np.repeat(starts, n_groups) + rank * group
    g_sizes = np.minimum(group, np.repeat(starts + sizes, n_groups) - g_starts)

    g_or = np.bitwise_or.reduceat(xor, g_starts)
    g_trail = trailing_zeros(g_or)
    g_lead = np.minimum(leading_zeros(g_or), 31)
    g_sig = np.where(g_or == 0, 0, 64 - g_lead - g_trail)
    g_trail[g_or == 0] = 0
    # the 6-bit significant-bits field writes 64 as 0
    g_new = (_NEW_WINDOW | (g_lead << 6) | (g_sig & 63)).astype(np.uint16)

    nonzero = xor != 0
    body_w = np.repeat(g_sig.astype(np.uint8), g_sizes)
    body_w *= nonzero
    body = np.right_shift(xor, np.repeat(g_trail.astype(np.uint8), g_sizes), out=xor)
    head_w = nonzero.view(np.uint8) + np.uint8(1)  # ``0`` or ``10``
    head = np.left_shift(nonzero, 1, dtype=np.uint16)

    # the first non-zero XOR of each group opens the group's window
    nz_idx = np.flatnonzero(nonzero)
    if len(nz_idx):
        at = np.searchsorted(nz_idx, g_starts)
        first = nz_idx[np.minimum(at, len(nz_idx) - 1)]
        opens = (at < len(nz_idx)) & (first < g_starts + g_sizes)
        head_w[first[opens]] = 13
        head[first[opens]] = g_new[opens]
    return head, head_w, body, body_w


def _dod_fields(dod: np.ndarray, scratch: np.ndarray) -> tuple[np.ndarray, ...]:
    """Turn each dod (uint64 view of int64) into its bucket's field, in place, and return the
    uint8 widths plus the index and original value of the 68-bit ones (their field does not
    fit 64 bits and is left for the caller to write). ``scratch`` is overwritten."""
    # bucket lookup index: biased float64 exponent of zigzag(dod - 1), see _BUCKET
    np.subtract(dod, U64(1), out=scratch)
    m = scratch.view(np.int64)
    exponent = m >> 63
    m <<= 1
    m ^= exponent  # zigzag
    np.copyto(exponent.view(np.float64), scratch, casting="unsafe")
    exponent = exponent.view(U64)
    exponent >>= U64(52)
    index = exponent.view(np.intp)

    widths = np.take(_DOD_WIDTH, index)
    big = np.flatnonzero(widths == 68)
    big_dod = dod[big]
    dod &= np.take(_DOD_MASK, index, out=scratch, mode="clip")
    dod |= np.take(_DOD_PREFIX, index, out=scratch, mode="clip")
    return widths, big, big_dod


def _varint_fields(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LEB128 bytes of each uint64 as two MSB-first fields (value, uint8 width): bytes 0..4
    and bytes 5..9."""
    n_bytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):
        n_bytes += (u >> U64(7 * k)) != 0
    hi = np.zeros(len(u), dtype=U64)
    lo = np.zeros(len(u), dtype=U64)
    for k in range(10):
        byte = (u >> U64(7 * k)) & U64(0x7F)
        byte |= np.left_shift(k < n_bytes - 1, 7, dtype=U64)  # continuation bit
        if k < 5:
            hi = np.where(k < n_bytes, (hi << U64(8)) | byte, hi)
        else:
            lo = np.where(k < n_bytes, (lo << U64(8)) | byte, lo)
    hi_bytes = np.minimum(n_bytes, 5)
    return hi, (8 * hi_bytes).astype(np.uint8), lo, (8 * (n_bytes - hi_bytes)).astype(np.uint8)
