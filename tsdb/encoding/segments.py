"""Helpers for arrays made of back-to-back segments (one segment per series or chunk).

A segmented array is described by ``counts`` (elements per segment); every helper here is a
handful of numpy passes, whatever the number of segments.
"""

from __future__ import annotations

import numpy as np

U64 = np.uint64


def starts_of(counts: np.ndarray) -> np.ndarray:
    """Index of the first element of every segment."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def segment_ids(counts: np.ndarray) -> np.ndarray:
    """Segment number of every element."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n), without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_starts = starts_of(lengths)
    # each element = its range start + its position inside the range
    shift = np.repeat(starts - out_starts, lengths)
    return np.arange(total, dtype=np.int64) + shift


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed int64 -> unsigned, small magnitudes to small numbers."""
    v = np.asarray(values, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


def unzigzag(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.uint64)
    return ((v >> U64(1)) ^ (U64(0) - (v & U64(1)))).view(np.int64)


def reduce_segments(ufunc: np.ufunc, values: np.ndarray, counts: np.ndarray,
                    empty: int | float) -> np.ndarray:
    """``ufunc.reduce`` over each segment; ``empty`` for segments without elements."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.full(len(counts), empty, dtype=values.dtype)
    nonempty = np.flatnonzero(counts > 0)
    if len(nonempty):
        out[nonempty] = ufunc.reduceat(values, starts_of(counts)[nonempty])
    return out
