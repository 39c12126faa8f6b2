"""Float sequences, many at once: Gorilla's XOR of consecutive values, laid out in columns.

Gorilla XORs each value's bits with the previous value's and stores only the "meaningful"
bits between the leading and trailing zeros. Deciding the window sample by sample is a
sequential loop; here the window is chosen per group of ``GROUP`` XORs instead (the widest
window any XOR of the group needs), which keeps every step a numpy pass and still lets a quiet
stretch cost little. Works on raw bits, so every float64 pattern (NaN payloads such as the
Prometheus stale marker, -0.0, +-Inf, subnormals) round-trips exactly.

Layout of one encoded set of segments:

* ``first_bits``   uint64 per segment: the raw bits of its first value
* ``group_shift``  uint8 per group: trailing zeros shared by the group's XORs
* ``group_widths`` uint8 per group: bits kept per non-zero XOR (0 = all XORs are zero)
* ``flag_words``   uint64 LSB-first bit stream: one bit per XOR of every group whose width is
  not 0, set when the XOR is non-zero
* ``body_words``   uint64 LSB-first bit stream: ``xor >> shift`` in ``width`` bits, for every
  non-zero XOR
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding.bitpack import (
    bit_length,
    exclusive_offsets,
    pack_lsb,
    trailing_zeros,
    unpack_lsb,
)
from tsdb.encoding.intseq import group_sizes_of, groups_per_segment
from tsdb.encoding.segments import (
    expand_ranges,
    reduce_segments,
    starts_of,
)

U64 = np.uint64


@dataclass
class XorSeqs:
    first_bits: np.ndarray
    group_shift: np.ndarray
    group_widths: np.ndarray
    flag_words: np.ndarray
    body_words: np.ndarray

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.first_bits, self.group_shift, self.group_widths,
                                      self.flag_words, self.body_words))


@dataclass
class _Plan:
    """Everything about an encoding except the packed bits."""

    first_bits: np.ndarray
    xors: np.ndarray
    n_groups: np.ndarray
    group_sizes: np.ndarray
    shift: np.ndarray
    shifted: np.ndarray
    widths: np.ndarray


def _plan(bits: np.ndarray, counts: np.ndarray) -> _Plan:
    bits = np.asarray(bits, dtype=np.uint64)
    counts = np.asarray(counts, dtype=np.int64)
    starts = starts_of(counts)
    is_xor = np.ones(len(bits), dtype=bool)
    is_xor[starts] = False
    xors = (bits[1:] ^ bits[:-1])[is_xor[1:]] if len(bits) else bits[:0]
    n_groups = groups_per_segment(counts)
    group_sizes = group_sizes_of(counts - 1, n_groups)
    shift = reduce_segments(np.minimum, trailing_zeros(xors), group_sizes, 64)
    shift = np.minimum(shift, 63)  # an all-zero group keeps shift 63 and width 0
    shifted = xors >> np.repeat(shift.astype(np.uint64), group_sizes)
    widths = bit_length(reduce_segments(np.maximum, shifted, group_sizes, 0))
    return _Plan(bits[starts], xors, n_groups, group_sizes, shift, shifted, widths)


def estimate_bits(bits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """What :func:`segment_bits` would say of the encoding, without packing anything."""
    p = _plan(bits, counts)
    nonzero = reduce_segments(np.add, (p.xors != 0).astype(np.int64), p.group_sizes, 0)
    per_group = 16 + np.where(p.widths > 0, p.group_sizes + nonzero * p.widths, 0)
    return 64 + reduce_segments(np.add, per_group, p.n_groups, 0)


def encode(bits: np.ndarray, counts: np.ndarray) -> XorSeqs:
    """Encode back-to-back segments of float64 bit patterns (uint64); ``counts`` >= 1."""
    p = _plan(bits, counts)
    flag_present = np.repeat(p.widths > 0, p.group_sizes)
    nonzero = p.xors != 0
    flags = nonzero[flag_present]
    flag_words = pack_lsb(flags.astype(np.uint64), np.ones(len(flags), dtype=np.int64))
    body_widths = np.repeat(p.widths, p.group_sizes)[nonzero]
    body_words = pack_lsb(p.shifted[nonzero], body_widths)
    return XorSeqs(p.first_bits.copy(), p.shift.astype(np.uint8), p.widths.astype(np.uint8),
                   flag_words, body_words)


class XorSeqLayout:
    """Per-segment offsets into the flag and body streams, derived once per encoded set."""

    def __init__(self, enc: XorSeqs, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        n_xors = np.maximum(self.counts - 1, 0)
        self.n_groups = groups_per_segment(self.counts)
        self.group_start = starts_of(self.n_groups)
        self.group_sizes = group_sizes_of(n_xors, self.n_groups)
        widths = enc.group_widths.astype(np.int64)
        flag_bits = np.where(widths > 0, self.group_sizes, 0)
        self.group_flag_start = starts_of(flag_bits)
        total_flags = int(flag_bits.sum())
        flags = unpack_lsb(enc.flag_words, np.arange(total_flags, dtype=np.int64),
                           np.ones(total_flags, dtype=np.int64)).astype(np.int64)
        # body bits of a group = popcount of its flags * its width
        ones = reduce_segments(np.add, flags, flag_bits, 0)
        self.group_body_bits = ones * widths
        self.group_flag_bits = flag_bits
        self.group_body_start = starts_of(self.group_body_bits)


def segment_bits(enc: XorSeqs, counts: np.ndarray) -> np.ndarray:
    """Encoded size of every segment in bits (first value, group bytes, flags and body)."""
    layout = XorSeqLayout(enc, counts)
    per_group = 16 + layout.group_flag_bits + layout.group_body_bits
    return 64 + reduce_segments(np.add, per_group, layout.n_groups, 0)


def decode(enc: XorSeqs, counts: np.ndarray, select: np.ndarray | None = None,
           layout: XorSeqLayout | None = None) -> np.ndarray:
    """Bits (uint64) of the selected segments (all by default), back to back."""
    counts = np.asarray(counts, dtype=np.int64)
    if layout is None:
        layout = XorSeqLayout(enc, counts)
    if select is None:
        select = np.arange(len(counts), dtype=np.int64)
    select = np.asarray(select, dtype=np.int64)
    sel_counts = layout.counts[select]
    groups = expand_ranges(layout.group_start[select], layout.n_groups[select])
    gsizes = layout.group_sizes[groups]
    gwidths = enc.group_widths[groups].astype(np.int64)

    # flags: groups of width 0 have none and all their XORs are zero
    xor_group = np.repeat(np.arange(len(groups), dtype=np.int64), gsizes)
    pos_in_group = np.arange(len(xor_group), dtype=np.int64) - starts_of(gsizes)[xor_group]
    has_flags = gwidths[xor_group] > 0
    flag_pos = layout.group_flag_start[groups][xor_group] + pos_in_group
    nonzero = np.zeros(len(xor_group), dtype=bool)
    idx = np.flatnonzero(has_flags)
    if len(idx):
        nonzero[idx] = unpack_lsb(enc.flag_words, flag_pos[idx],
                                  np.ones(len(idx), dtype=np.int64)).astype(bool)

    # body: non-zero XORs of a group are consecutive, starting at the group's body offset
    nz = np.flatnonzero(nonzero)
    nz_group = xor_group[nz]
    widths = gwidths[nz_group]
    local, _ = exclusive_offsets(widths)
    counts_per_group = np.bincount(nz_group, minlength=len(groups))
    first_local = np.zeros(len(groups), dtype=np.int64)
    has_nz = counts_per_group > 0
    first_local[has_nz] = local[starts_of(counts_per_group)[has_nz]]
    offsets = local - first_local[nz_group] + layout.group_body_start[groups][nz_group]
    payload = unpack_lsb(enc.body_words, offsets, widths)
    xors = np.zeros(len(xor_group), dtype=np.uint64)
    xors[nz] = payload << enc.group_shift[groups][nz_group].astype(np.uint64)

    # values: first bits at each segment start, then a segmented prefix XOR
    total = int(sel_counts.sum())
    out = np.empty(total, dtype=np.uint64)
    seg_starts = starts_of(sel_counts)
    is_xor = np.ones(total, dtype=bool)
    is_xor[seg_starts] = False
    out[is_xor] = xors
    out[seg_starts] = enc.first_bits[select]
    running = np.bitwise_xor.accumulate(out) if total else out
    before = np.zeros(len(select), dtype=np.uint64)
    later = seg_starts > 0
    before[later] = running[seg_starts[later] - 1]
    return running ^ np.repeat(before, sel_counts)
