"""Vectorised variable-width bit packing.

Every codec in the project reduces to "write these unsigned integers, each with its own bit
width, back to back" and the reverse. Doing that with numpy instead of a bit-writer loop is
what lets one call encode or decode thousands of series at once:

* bit offsets are an exclusive cumulative sum of the widths;
* a value lands in word ``offset // 64`` and, when it straddles a word boundary, spills into
  the next word; the pieces never overlap, so summing them per word equals OR-ing them;
* reading is a gather of the two words around each offset, shifts and a mask.

Two bit orders are offered. ``lsb`` (least significant bit first inside little-endian 64-bit
words) is the project's own block format. ``msb`` (most significant bit first, big-endian
bytes) is the order of Prometheus' XOR chunks.
"""

from __future__ import annotations

import numpy as np

U64 = np.uint64
_ALL_ONES = U64(0xFFFFFFFFFFFFFFFF)

#: MASKS[w] keeps the low w bits (w = 0..64).
MASKS = np.array([(1 << w) - 1 for w in range(65)], dtype=np.uint64)


def trailing_zeros(x: np.ndarray) -> np.ndarray:
    """Trailing zero bits of each uint64 (64 for 0), exact."""
    x = np.asarray(x, dtype=np.uint64)
    lowest = x & (U64(0) - x)
    return np.bitwise_count(lowest - U64(1)).astype(np.int64)


def bit_length(x: np.ndarray) -> np.ndarray:
    """Bits needed for each uint64 (0 for 0), exact: smear the top bit down, count."""
    smear = np.array(x, dtype=np.uint64)  # a copy, shifted in place
    for shift in (1, 2, 4, 8, 16, 32):
        smear |= smear >> U64(shift)
    return np.bitwise_count(smear).astype(np.int64)


def leading_zeros(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of each uint64 (64 for 0), exact."""
    return 64 - bit_length(x)


def exclusive_offsets(widths: np.ndarray, start: int = 0) -> tuple[np.ndarray, int]:
    """Bit offset of every field and the total bit length, for fields laid out back to back."""
    widths = np.asarray(widths, dtype=np.int64)
    ends = np.cumsum(widths)
    if start:
        ends += start
    offsets = ends - widths
    total = int(ends[-1]) if len(ends) else start
    return offsets, total


def words_for_bits(total_bits: int) -> int:
    """Words that hold ``total_bits`` with zero padding, so a reader may always gather the
    word after the one holding a field's first bit (even a zero-width field at the end)."""
    return total_bits // 64 + 2


def _sum_into(words: np.ndarray, word_idx: np.ndarray, pieces: np.ndarray) -> None:
    """words[word_idx[i]] += pieces[i] for non-decreasing word_idx (pieces never overlap)."""
    if len(word_idx) == 0:
        return
    run_start = np.flatnonzero(np.concatenate(([True], word_idx[1:] != word_idx[:-1])))
    words[word_idx[run_start]] += np.add.reduceat(pieces, run_start)


def pack_lsb(
    values: np.ndarray,
    widths: np.ndarray,
    offsets: np.ndarray | None = None,
    total_bits: int | None = None,
) -> np.ndarray:
    """Pack ``values[i]`` into ``widths[i]`` bits at increasing bit offsets (LSB first).

    Values wider than their field are truncated to it. Returns uint64 words (zero padded).
    ``offsets``/``total_bits`` may be passed when the caller already has them.
    """
    values = np.asarray(values, dtype=np.uint64)
    widths = np.asarray(widths, dtype=np.int64)
    if offsets is None or total_bits is None:
        offsets, total_bits = exclusive_offsets(widths)
    words = np.zeros(words_for_bits(total_bits), dtype=np.uint64)
    if len(values) == 0:
        return words
    word_idx = offsets >> 6
    shift = (offsets & 63).astype(np.uint64)
    v = values & MASKS[widths]
    _sum_into(words, word_idx, v << shift)
    # a word boundary is crossed by at most one field, so spills never collide
    spills = np.flatnonzero((offsets & 63) + widths > 64)
    if len(spills):
        words[word_idx[spills] + 1] += v[spills] >> (U64(64) - shift[spills])
    return words


def unpack_lsb(words: np.ndarray, offsets: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Read fields of ``widths[i]`` bits at ``offsets[i]`` (LSB-first layout) as uint64."""
    offsets = np.asarray(offsets, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    word_idx = offsets >> 6
    shift = (offsets & 63).astype(np.uint64)
    low = words[word_idx] >> shift
    # two shifts instead of one by (64 - shift): a shift by 64 is undefined, this is 0
    high = (words[word_idx + 1] << U64(1)) << (U64(63) - shift)
    return (low | high) & MASKS[widths]


def pack_msb(values: np.ndarray, widths: np.ndarray) -> tuple[bytes, int]:
    """Pack fields most-significant-bit first into a byte string (Prometheus' bit order).

    Returns the bytes (zero padded to a whole byte) and the bit length.
    """
    values = np.asarray(values, dtype=np.uint64)
    widths = np.asarray(widths, dtype=np.int64)
    ends = np.cumsum(widths)
    total_bits = int(ends[-1]) if len(ends) else 0
    words = np.zeros(words_for_bits(total_bits), dtype=np.uint64)
    if len(values):
        v = values & MASKS[widths]
        # anchor every field at its LAST bit: it sits in word (end - 1) // 64 with
        # (-end) % 64 free bits below it; a field crossing into that word from the previous
        # one spills its high bits there (one field per boundary, so no collisions)
        last_word = (ends - 1) >> 6
        free = (-ends) & 63
        _sum_into(words, last_word, v << free.astype(np.uint64))
        spills = np.flatnonzero(free + widths > 64)
        if len(spills):
            back = (64 - free[spills]).astype(np.uint64)
            words[last_word[spills] - 1] += v[spills] >> back
    n_bytes = (total_bits + 7) // 8
    return words.astype(">u8").tobytes()[:n_bytes], total_bits


def unpack_msb(data: bytes, offsets: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Read MSB-first fields from a byte string (the inverse of :func:`pack_msb`)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    n_words = words_for_bits(len(data) * 8)
    padded = np.zeros(n_words * 8, dtype=np.uint8)
    padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    words = padded.view(">u8").astype(np.uint64)
    word_idx = offsets >> 6
    start = (offsets & 63).astype(np.uint64)
    # bring the field's first bit to the top of a 128-bit window made of two words
    high = words[word_idx] << start
    low = (words[word_idx + 1] >> U64(1)) >> (U64(63) - start)
    window = high | low
    down = (64 - widths).astype(np.uint64)
    out = np.where(widths == 0, U64(0), window >> (down & U64(63)))
    return np.where(widths == 64, window, out) & MASKS[widths]
