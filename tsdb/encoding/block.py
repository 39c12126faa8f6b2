"""One block's worth of series, encoded as a flat set of named numpy arrays ("sections").

Input: segments (one per series) of samples sorted by time, given as ``counts`` plus the
concatenated timestamps and values. Output: a ``dict[str, np.ndarray]`` that a container can
write as is and hand back zero-copy; :class:`BlockDecoder` decodes any subset of segments.
"""

from __future__ import annotations

import numpy as np

from tsdb.encoding import intseq, timestamps, values, xorseq


def narrow_uint(a: np.ndarray) -> np.ndarray:
    """The smallest unsigned dtype that holds every (non-negative) element."""
    a = np.asarray(a)
    top = int(a.max()) if len(a) else 0
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dtype).max:
            return a.astype(dtype)
    raise OverflowError(top)


def _intseq_sections(prefix: str, enc: intseq.IntSeqs) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.head_widths": enc.head_widths,
        f"{prefix}.head_words": enc.head_words,
        f"{prefix}.group_widths": enc.group_widths,
        f"{prefix}.body_words": enc.body_words,
    }


def _intseq_from(prefix: str, s: dict[str, np.ndarray]) -> intseq.IntSeqs:
    return intseq.IntSeqs(
        s[f"{prefix}.head_widths"].reshape(-1, 3), s[f"{prefix}.head_words"],
        s[f"{prefix}.group_widths"], s[f"{prefix}.body_words"],
    )


def encode_segments(counts: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> dict[str, np.ndarray]:
    """Encode back-to-back segments (each >= 1 sample, strictly increasing timestamps)."""
    counts = np.asarray(counts, dtype=np.int64)
    enc_ts = timestamps.encode(ts, counts)
    enc_v = values.encode(vals, counts)
    sections = {
        "counts": narrow_uint(counts),
        "ts.column_of": narrow_uint(enc_ts.column_of),
        "ts.column_counts": narrow_uint(enc_ts.column_counts),
        "v.modes": enc_v.modes,
        "v.scales": enc_v.scales,
        "v.xor.first_bits": enc_v.xors.first_bits,
        "v.xor.group_shift": enc_v.xors.group_shift,
        "v.xor.group_widths": enc_v.xors.group_widths,
        "v.xor.flag_words": enc_v.xors.flag_words,
        "v.xor.body_words": enc_v.xors.body_words,
    }
    sections.update(_intseq_sections("ts", enc_ts.columns))
    sections.update(_intseq_sections("v.int", enc_v.ints))
    return sections


class BlockDecoder:
    """Decodes segments of an encoded block; offsets are derived once, on first use."""

    def __init__(self, sections: dict[str, np.ndarray]) -> None:
        s = sections
        self.counts = s["counts"].astype(np.int64)
        self._ts = timestamps.EncodedTimestamps(
            s["ts.column_of"], s["ts.column_counts"].astype(np.int64), _intseq_from("ts", s))
        self._v = values.EncodedValues(
            s["v.modes"], s["v.scales"], _intseq_from("v.int", s),
            xorseq.XorSeqs(s["v.xor.first_bits"], s["v.xor.group_shift"],
                           s["v.xor.group_widths"], s["v.xor.flag_words"],
                           s["v.xor.body_words"]))
        self._ts_layout: timestamps.TimestampsLayout | None = None
        self._v_layout: values.ValuesLayout | None = None

    def __len__(self) -> int:
        return len(self.counts)

    def decode(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, values) of the given segment rows (all by default), back to back."""
        if self._ts_layout is None:
            self._ts_layout = timestamps.TimestampsLayout(self._ts)
            self._v_layout = values.ValuesLayout(self._v, self.counts)
        ts = timestamps.decode(self._ts, rows, self._ts_layout)
        vals = values.decode(self._v, self.counts, rows, self._v_layout)
        return ts, vals
