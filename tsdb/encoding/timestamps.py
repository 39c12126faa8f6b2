"""Timestamps of many series: each distinct sequence stored once, as an integer sequence.

Every series scraped from one target in one scrape carries the very same timestamp, so a
block of 10,000 series typically holds fewer than a hundred distinct timestamp sequences
("columns"). Segments are grouped by a position-weighted 64-bit hash of their timestamps and
every grouping is verified element by element, so a hash collision only costs a column, never
correctness: a segment whose timestamps differ from its group's gets a column of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.encoding import intseq
from tsdb.encoding.segments import expand_ranges, reduce_segments, starts_of

_WEIGHT_SEED = 0x7473646274696D65  # fixed: the grouping must not depend on the run


def _position_weights(n: int) -> np.ndarray:
    rng = np.random.default_rng(_WEIGHT_SEED)
    return rng.integers(0, 2**63, size=max(n, 1), dtype=np.uint64) * np.uint64(2) + np.uint64(1)


@dataclass
class EncodedTimestamps:
    column_of: np.ndarray      # per segment: its column
    column_counts: np.ndarray  # per column: number of timestamps
    columns: intseq.IntSeqs

    def nbytes(self) -> int:
        return self.column_of.nbytes + self.column_counts.nbytes + self.columns.nbytes()


def find_columns(ts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column of each segment, representative segment of each column)."""
    ts = np.asarray(ts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    n_seg = len(counts)
    if n_seg == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = starts_of(counts)
    pos = np.arange(len(ts), dtype=np.int64) - np.repeat(starts, counts)
    weights = _position_weights(int(counts.max()))
    hashes = reduce_segments(np.add, ts.view(np.uint64) * weights[pos], counts, 0)
    keys = np.stack([counts, hashes.view(np.int64), ts[starts]], axis=1)
    _, rep, column = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    column = column.ravel()
    # verify: every segment must equal its representative element by element
    rep_of_segment = rep[column]
    mirror = np.repeat(starts[rep_of_segment], counts) + pos
    differs = reduce_segments(np.logical_or, ts[mirror] != ts, counts, False)
    if differs.any():
        odd = np.flatnonzero(differs)
        column = column.copy()
        column[odd] = len(rep) + np.arange(len(odd))
        rep = np.concatenate([rep, odd])
    return column.astype(np.int64), rep.astype(np.int64)


def encode(ts: np.ndarray, counts: np.ndarray) -> EncodedTimestamps:
    """Encode back-to-back segments of int64 timestamps; ``counts`` >= 1 each."""
    ts = np.asarray(ts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    column_of, rep = find_columns(ts, counts)
    col_counts = counts[rep]
    col_values = ts[expand_ranges(starts_of(counts)[rep], col_counts)]
    return EncodedTimestamps(column_of, col_counts, intseq.encode(col_values, col_counts))


class TimestampsLayout:
    def __init__(self, enc: EncodedTimestamps) -> None:
        self.columns = intseq.IntSeqLayout(enc.columns, enc.column_counts)


def decode(enc: EncodedTimestamps, select: np.ndarray | None = None,
           layout: TimestampsLayout | None = None) -> np.ndarray:
    """Timestamps of the selected segments (all by default), back to back."""
    if layout is None:
        layout = TimestampsLayout(enc)
    if select is None:
        select = np.arange(len(enc.column_of), dtype=np.int64)
    cols = enc.column_of[np.asarray(select, dtype=np.int64)].astype(np.int64)
    needed, slot = np.unique(cols, return_inverse=True)
    col_counts = enc.column_counts[needed].astype(np.int64)
    values = intseq.decode(enc.columns, layout.columns.counts, needed, layout.columns)
    col_start = starts_of(col_counts)
    seg_counts = col_counts[slot]
    return values[expand_ranges(col_start[slot], seg_counts)]
