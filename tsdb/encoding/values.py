"""Sample values, many series at once: scaled integers where exact, Gorilla XOR otherwise.

Most monitoring values are integers or short decimals (counters, bytes, percentages, load
averages). When every value of a segment equals ``i / 10**scale`` exactly, bit for bit, for
integers ``|i| <= 2**53``, the integers are stored with :mod:`intseq` (the M3TSZ idea, with
frame-of-reference deltas); otherwise, or when it is not smaller, the raw bits go through
:mod:`xorseq`. The choice is per segment, recorded in ``modes``/``scales``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding import intseq, xorseq
from tsdb.encoding.segments import expand_ranges, reduce_segments, starts_of

MODE_INT = 0
MODE_XOR = 1
MAX_SCALE = 12
POW10 = np.array([10.0**k for k in range(MAX_SCALE + 1)])
_EXACT_INT = float(2**53)


@dataclass
class EncodedValues:
    modes: np.ndarray    # uint8 per segment
    scales: np.ndarray   # uint8 per segment (0 for XOR segments)
    ints: intseq.IntSeqs
    xors: xorseq.XorSeqs

    def nbytes(self) -> int:
        return self.modes.nbytes + self.scales.nbytes + self.ints.nbytes() + self.xors.nbytes()


def _scaled_back(ints: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float64 a decoder computes from scaled integers (the definition of exactness)."""
    return ints.astype(np.float64) / POW10[scales]


def detect_scales(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Smallest decimal scale per segment that represents it exactly, -1 if none does."""
    values = np.asarray(values, dtype=np.float64)
    sample_scale = np.full(len(values), -1, dtype=np.int64)
    pending = np.arange(len(values), dtype=np.int64)
    for scale in range(MAX_SCALE + 1):
        cand = values[pending]
        with np.errstate(over="ignore", invalid="ignore"):
            ints = np.rint(cand * POW10[scale])
        fits = np.abs(ints) <= _EXACT_INT
        back = np.where(fits, ints, 0.0).astype(np.int64).astype(np.float64) / POW10[scale]
        exact = fits & (back.view(np.uint64) == cand.view(np.uint64))
        sample_scale[pending[exact]] = scale
        pending = pending[~exact]
        if len(pending) == 0:
            break
    worst = reduce_segments(np.minimum, sample_scale, counts, 0)
    scales = reduce_segments(np.maximum, sample_scale, counts, 0)
    scales[worst < 0] = -1
    return scales


def encode(values: np.ndarray, counts: np.ndarray) -> EncodedValues:
    """Encode back-to-back segments of float64 ``values``; ``counts`` >= 1 each."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    scales = detect_scales(values, counts)
    starts = starts_of(counts)

    # a segment's scale is the largest of its samples'; check it still holds for all of them
    cand = np.flatnonzero(scales >= 0)
    idx = expand_ranges(starts[cand], counts[cand])
    per_sample_scale = np.repeat(scales[cand], counts[cand])
    with np.errstate(over="ignore", invalid="ignore"):
        ints = np.rint(values[idx] * POW10[per_sample_scale])
    ints = np.where(np.abs(ints) <= _EXACT_INT, ints, 0.0).astype(np.int64)
    exact = _scaled_back(ints, per_sample_scale).view(np.uint64) == values[idx].view(np.uint64)
    seg_exact = reduce_segments(np.logical_and, exact, counts[cand], True)
    scales[cand[~seg_exact]] = -1

    int_segs = np.flatnonzero(scales >= 0)
    ints = ints[np.repeat(seg_exact, counts[cand])]
    int_enc = intseq.encode(ints, counts[int_segs])
    if len(int_segs):
        # keep the scaled integers only where they are smaller than XOR would be
        bits = values.view(np.uint64)[expand_ranges(starts[int_segs], counts[int_segs])]
        as_xor = xorseq.estimate_bits(bits, counts[int_segs])
        xor_wins = as_xor < intseq.segment_bits(int_enc, counts[int_segs])
        if xor_wins.any():
            scales[int_segs[xor_wins]] = -1
            ints = ints[np.repeat(~xor_wins, counts[int_segs])]
            int_segs = int_segs[~xor_wins]
            int_enc = intseq.encode(ints, counts[int_segs])
    is_int = scales >= 0
    xor_segs = np.flatnonzero(~is_int)
    xor_idx = expand_ranges(starts[xor_segs], counts[xor_segs])
    xor_enc = xorseq.encode(values.view(np.uint64)[xor_idx], counts[xor_segs])
    modes = np.where(is_int, MODE_INT, MODE_XOR).astype(np.uint8)
    return EncodedValues(modes, np.maximum(scales, 0).astype(np.uint8), int_enc, xor_enc)


class ValuesLayout:
    """Where each segment lives inside the int and xor parts, derived once per block."""

    def __init__(self, enc: EncodedValues, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        is_int = enc.modes == MODE_INT
        self.rank = np.where(is_int, np.cumsum(is_int) - 1, np.cumsum(~is_int) - 1)
        self.ints = intseq.IntSeqLayout(enc.ints, self.counts[is_int])
        self.xors = xorseq.XorSeqLayout(enc.xors, self.counts[~is_int])


def decode(enc: EncodedValues, counts: np.ndarray, select: np.ndarray | None = None,
           layout: ValuesLayout | None = None) -> np.ndarray:
    """float64 values of the selected segments (all by default), back to back."""
    if layout is None:
        layout = ValuesLayout(enc, counts)
    if select is None:
        select = np.arange(len(layout.counts), dtype=np.int64)
    select = np.asarray(select, dtype=np.int64)
    sel_counts = layout.counts[select]
    out_starts = starts_of(sel_counts)
    out = np.empty(int(sel_counts.sum()), dtype=np.float64)
    modes = enc.modes[select]
    for mode in (MODE_INT, MODE_XOR):
        which = np.flatnonzero(modes == mode)
        if len(which) == 0:
            continue
        ranks = layout.rank[select[which]]
        dest = expand_ranges(out_starts[which], sel_counts[which])
        if mode == MODE_INT:
            ints = intseq.decode(enc.ints, layout.ints.counts, ranks, layout.ints)
            scales = np.repeat(enc.scales[select[which]], sel_counts[which])
            out[dest] = _scaled_back(ints, scales)
        else:
            bits = xorseq.decode(enc.xors, layout.xors.counts, ranks, layout.xors)
            out.view(np.uint64)[dest] = bits
    return out
