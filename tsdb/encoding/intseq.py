"""Integer sequences, many at once: first value, then frame-of-reference deltas.

Used for timestamp columns and for values that are exact scaled integers. For each sequence
(``segment``) of n >= 1 int64 values::

    x0                      first value
    d[i] = x[i] - x[i-1]    n - 1 deltas (wrapping int64 arithmetic)
    base = min(d)           so every residual is >= 0
    step = gcd(d - base)    memory gauges move in multiples of 4096, counters of 1
    r[i] = (d[i] - base) / step

Residuals are cut into groups of ``GROUP`` and each group is packed with the width of its
largest residual, so a quiet stretch costs few bits even when another stretch was busy. All
arithmetic is modulo 2**64, which makes the scheme lossless for any int64 input: the spread of
any set of int64 deltas fits in a uint64.

Layout of one encoded set of segments (all arrays; sizes follow from the segment counts):

* ``head_widths``  uint8 (n_segments, 3): bit widths of zigzag(x0), zigzag(base), step
* ``head_words``   uint64: those three fields per segment, LSB-first bit stream
* ``group_widths`` uint8: one per group of residuals, segments back to back
* ``body_words``   uint64: the residuals, LSB-first bit stream
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding.bitpack import bit_length, exclusive_offsets, pack_lsb, unpack_lsb
from tsdb.encoding.segments import (
    expand_ranges,
    reduce_segments,
    segment_ids,
    starts_of,
    unzigzag,
    zigzag,
)

GROUP = 32
_I64_MAX = np.iinfo(np.int64).max


@dataclass
class IntSeqs:
    head_widths: np.ndarray
    head_words: np.ndarray
    group_widths: np.ndarray
    body_words: np.ndarray

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.head_widths, self.head_words, self.group_widths,
                                      self.body_words))


def groups_per_segment(counts: np.ndarray) -> np.ndarray:
    deltas = np.maximum(np.asarray(counts, dtype=np.int64) - 1, 0)
    return (deltas + GROUP - 1) // GROUP


def encode(values: np.ndarray, counts: np.ndarray) -> IntSeqs:
    """Encode back-to-back segments of int64 ``values``; ``counts`` >= 1 each."""
    x = np.asarray(values, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    starts = starts_of(counts)
    n_seg = len(counts)
    n_deltas = counts - 1

    # deltas of each segment, back to back (the first element of a segment has none)
    is_delta = np.ones(len(x), dtype=bool)
    is_delta[starts] = False
    deltas = (x[1:] - x[:-1])[is_delta[1:]] if len(x) else x[:0]

    base = reduce_segments(np.minimum, deltas, n_deltas, 0)
    residual = (deltas - np.repeat(base, n_deltas)).view(np.uint64)
    step = reduce_segments(np.gcd, residual, n_deltas, 1)
    step[step == 0] = 1
    scaled = np.flatnonzero(step > 1)
    if len(scaled):
        per_delta_step = np.repeat(step, n_deltas)
        residual = residual // per_delta_step

    # groups of GROUP residuals inside each segment
    n_groups = groups_per_segment(counts)
    group_sizes = group_sizes_of(n_deltas, n_groups)
    group_widths = reduce_segments(np.maximum, residual, group_sizes, 0)
    group_widths = bit_length(group_widths).astype(np.uint8)
    body_words = pack_lsb(residual, np.repeat(group_widths.astype(np.int64), group_sizes))

    head_fields = np.empty((n_seg, 3), dtype=np.uint64)
    head_fields[:, 0] = zigzag(x[starts]) if n_seg else 0
    head_fields[:, 1] = zigzag(base)
    head_fields[:, 2] = step.view(np.uint64)
    head_widths = bit_length(head_fields.ravel()).reshape(n_seg, 3).astype(np.uint8)
    head_words = pack_lsb(head_fields.ravel(), head_widths.ravel())
    return IntSeqs(head_widths, head_words, group_widths, body_words)


def group_sizes_of(n_deltas: np.ndarray, n_groups: np.ndarray) -> np.ndarray:
    """Residuals in each group: GROUP, except the last group of a segment."""
    sizes = np.full(int(n_groups.sum()), GROUP, dtype=np.int64)
    last = np.cumsum(n_groups)[n_groups > 0] - 1
    tail = n_deltas[n_groups > 0] - (n_groups[n_groups > 0] - 1) * GROUP
    sizes[last] = tail
    return sizes


class IntSeqLayout:
    """Bit offsets of every segment's header and body, derived once per encoded set so that
    any subset of segments can be decoded without touching the others."""

    def __init__(self, enc: IntSeqs, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        n_deltas = np.maximum(self.counts - 1, 0)
        self.n_groups = groups_per_segment(self.counts)
        self.group_start = starts_of(self.n_groups)
        self.group_sizes = group_sizes_of(n_deltas, self.n_groups)
        group_bits = enc.group_widths.astype(np.int64) * self.group_sizes
        seg_bits = reduce_segments(np.add, group_bits, self.n_groups, 0)
        self.body_start = starts_of(seg_bits)
        self.head_start = starts_of(enc.head_widths.astype(np.int64).sum(axis=1))


def segment_bits(enc: IntSeqs, counts: np.ndarray) -> np.ndarray:
    """Encoded size of every segment in bits (header, group widths and body)."""
    layout = IntSeqLayout(enc, counts)
    body = reduce_segments(np.add, enc.group_widths.astype(np.int64) * layout.group_sizes,
                           layout.n_groups, 0)
    return enc.head_widths.astype(np.int64).sum(axis=1) + 8 * layout.n_groups + body


def decode(enc: IntSeqs, counts: np.ndarray, select: np.ndarray | None = None,
           layout: IntSeqLayout | None = None) -> np.ndarray:
    """Values of the selected segments (all by default), back to back, as int64."""
    counts = np.asarray(counts, dtype=np.int64)
    if select is None:
        select = np.arange(len(counts), dtype=np.int64)
        if layout is None:
            return _decode_all(enc, counts)
    if layout is None:
        layout = IntSeqLayout(enc, counts)
    return _decode_subset(enc, layout, np.asarray(select, dtype=np.int64))


def _decode_all(enc: IntSeqs, counts: np.ndarray) -> np.ndarray:
    n_deltas = np.maximum(counts - 1, 0)
    n_groups = groups_per_segment(counts)
    group_sizes = group_sizes_of(n_deltas, n_groups)
    widths = np.repeat(enc.group_widths.astype(np.int64), group_sizes)
    offsets, _ = exclusive_offsets(widths)
    residual = _unpack_nonzero(enc.body_words, offsets, widths)
    hw = enc.head_widths.astype(np.int64).ravel()
    hoff, _ = exclusive_offsets(hw)
    head = unpack_lsb(enc.head_words, hoff, hw).reshape(-1, 3)
    return _rebuild(head, residual, counts)


def _decode_subset(enc: IntSeqs, layout: IntSeqLayout, select: np.ndarray) -> np.ndarray:
    counts = layout.counts[select]
    n_deltas = np.maximum(counts - 1, 0)
    # headers
    hw = enc.head_widths[select].astype(np.int64)
    hoff = layout.head_start[select][:, None] + np.cumsum(hw, axis=1) - hw
    head = unpack_lsb(enc.head_words, hoff.ravel(), hw.ravel()).reshape(-1, 3)
    # residuals: gather the selected segments' groups, then offsets inside each segment
    groups = expand_ranges(layout.group_start[select], layout.n_groups[select])
    gsizes = layout.group_sizes[groups]
    widths = np.repeat(enc.group_widths[groups].astype(np.int64), gsizes)
    seg_of_residual = segment_ids(n_deltas)
    local, _ = exclusive_offsets(widths)
    if len(local):
        first = starts_of(n_deltas)
        seg_local_start = np.zeros(len(select), dtype=np.int64)
        nonempty = n_deltas > 0
        seg_local_start[nonempty] = local[first[nonempty]]
        local += (layout.body_start[select] - seg_local_start)[seg_of_residual]
    residual = _unpack_nonzero(enc.body_words, local, widths)
    return _rebuild(head, residual, counts)


def _unpack_nonzero(words: np.ndarray, offsets: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """``unpack_lsb`` that reads only fields of non-zero width: constant stretches (flags,
    idle counters, regular timestamps) leave whole groups at width 0."""
    wide = np.flatnonzero(widths)
    if len(wide) > len(widths) // 4:  # below 3/4 zeros the masking costs more than it saves
        return unpack_lsb(words, offsets, widths)
    residual = np.zeros(len(widths), dtype=np.uint64)
    residual[wide] = unpack_lsb(words, offsets[wide], widths[wide])
    return residual


def _rebuild(head: np.ndarray, residual: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Undo the frame of reference and the delta step for back-to-back segments."""
    n_deltas = np.maximum(counts - 1, 0)
    first = unzigzag(head[:, 0])
    base = unzigzag(head[:, 1]).view(np.uint64)
    step = head[:, 2]
    deltas = residual * np.repeat(step, n_deltas) + np.repeat(base, n_deltas)
    # place x0 at each segment start, deltas elsewhere, then one cumulative sum; subtracting
    # the running total at each start keeps segments independent (all modulo 2**64)
    total = int(counts.sum())
    steps = np.empty(total, dtype=np.uint64)
    starts = starts_of(counts)
    is_delta = np.ones(total, dtype=bool)
    is_delta[starts] = False
    steps[is_delta] = deltas
    steps[starts] = 0
    running = np.cumsum(steps, dtype=np.uint64)
    offset = first.view(np.uint64) - running[starts]
    running += np.repeat(offset, counts)
    return running.view(np.int64)
