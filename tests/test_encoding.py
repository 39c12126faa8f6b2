"""Property tests of the columnar codec: lossless for every int64 and float64 bit pattern."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsdb.encoding import bitpack, intseq, timestamps, values, xorseq
from tsdb.encoding.block import BlockDecoder, encode_segments
from tsdb.encoding.segments import starts_of

STALE = 0x7FF0000000000002
SPECIAL_BITS = [STALE, 0x7FF8000000000000, 0xFFF8000000000001, 0x8000000000000000,
                0x7FF0000000000000, 0xFFF0000000000000, 0x0000000000000001,
                0x000FFFFFFFFFFFFF, 0x3FF0000000000000, 0]

i64 = st.integers(-(2**63), 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
counts_st = st.lists(st.integers(1, 70), min_size=0, max_size=12)


def concat_selected(arr: np.ndarray, counts: np.ndarray, select: list[int]) -> np.ndarray:
    starts = starts_of(counts)
    parts = [arr[starts[s]:starts[s] + counts[s]] for s in select]
    return np.concatenate(parts) if parts else arr[:0]


@st.composite
def segmented(draw, element):
    counts = np.array(draw(counts_st), dtype=np.int64)
    data = draw(st.lists(element, min_size=int(counts.sum()), max_size=int(counts.sum())))
    select = draw(st.lists(st.integers(0, max(len(counts) - 1, 0)), max_size=8)) \
        if len(counts) else []
    return counts, data, select


@st.composite
def float_bits(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(u64)
    if kind == 1:
        return draw(st.sampled_from(SPECIAL_BITS))
    if kind == 2:  # short decimals, the scaled-integer path
        f = draw(st.integers(-(10**9), 10**9)) / 10 ** draw(st.integers(0, 6))
        return int(np.float64(f).view(np.uint64))
    return int(np.float64(draw(st.floats(width=64))).view(np.uint64))


@given(st.lists(st.tuples(u64, st.integers(0, 64)), max_size=200))
def test_bitpack_round_trip_both_orders(fields):
    v = np.array([x for x, _ in fields], dtype=np.uint64)
    w = np.array([b for _, b in fields], dtype=np.int64)
    v &= bitpack.MASKS[w]
    offsets, total = bitpack.exclusive_offsets(w)
    assert np.array_equal(bitpack.unpack_lsb(bitpack.pack_lsb(v, w), offsets, w), v)
    data, nbits = bitpack.pack_msb(v, w)
    assert nbits == total and len(data) == (total + 7) // 8
    assert np.array_equal(bitpack.unpack_msb(data, offsets, w), v)
    reference = "".join(format(int(x), f"0{b}b") if b else "" for x, b in zip(v, w, strict=True))
    reference += "0" * (-len(reference) % 8)
    assert data == bytes(int(reference[i:i + 8], 2) for i in range(0, len(reference), 8))


@settings(max_examples=200)
@given(segmented(i64))
def test_intseq_any_int64(case):
    counts, data, select = case
    x = np.array(data, dtype=np.int64)
    enc = intseq.encode(x, counts)
    assert np.array_equal(intseq.decode(enc, counts), x)
    assert np.array_equal(intseq.decode(enc, counts, np.array(select, np.int64)),
                          concat_selected(x, counts, select))


@settings(max_examples=200)
@given(segmented(float_bits()))
def test_xorseq_any_bits(case):
    counts, data, select = case
    b = np.array(data, dtype=np.uint64)
    enc = xorseq.encode(b, counts)
    assert np.array_equal(xorseq.decode(enc, counts), b)
    assert np.array_equal(xorseq.decode(enc, counts, np.array(select, np.int64)),
                          concat_selected(b, counts, select))


@settings(max_examples=200)
@given(segmented(float_bits()))
def test_values_any_float64_bit_pattern(case):
    counts, data, select = case
    v = np.array(data, dtype=np.uint64).view(np.float64)
    enc = values.encode(v, counts)
    assert np.array_equal(values.decode(enc, counts).view(np.uint64), v.view(np.uint64))
    got = values.decode(enc, counts, np.array(select, np.int64))
    assert np.array_equal(got.view(np.uint64), concat_selected(v, counts, select).view(np.uint64))


def test_values_choose_scaled_integers_for_decimals_and_xor_otherwise():
    v = np.array([1.5, 2.25, 3.0, 0.1, 0.2, 0.30000000000000004, -0.0, 1.0, 2.0])
    enc = values.encode(v, np.array([3, 3, 3]))
    assert enc.modes.tolist() == [values.MODE_INT, values.MODE_XOR, values.MODE_XOR]
    assert enc.scales[0] == 2
    assert np.array_equal(values.decode(enc, np.array([3, 3, 3])).view(np.uint64),
                          v.view(np.uint64))


@st.composite
def timestamp_segments(draw):
    """Strictly increasing int64 timestamps per segment, some segments sharing a column."""
    n = draw(st.integers(0, 10))
    pool = []
    for _ in range(draw(st.integers(1, 4))):
        first = draw(i64)
        gaps = draw(st.lists(st.one_of(st.integers(1, 20), st.integers(14990, 15010),
                                       st.integers(1, 2**62)), max_size=40))
        col = [first]
        for g in gaps:
            if col[-1] + g > 2**63 - 1:
                break
            col.append(col[-1] + g)
        pool.append(col)
    segs = [pool[draw(st.integers(0, len(pool) - 1))] for _ in range(n)]
    return segs


@settings(max_examples=150)
@given(timestamp_segments(), st.data())
def test_timestamps_dedup_columns_lossless(segs, data):
    counts = np.array([len(s) for s in segs], dtype=np.int64)
    ts = np.array([t for s in segs for t in s], dtype=np.int64)
    enc = timestamps.encode(ts, counts)
    assert len(enc.column_counts) <= len({tuple(s) for s in segs})
    assert np.array_equal(timestamps.decode(enc), ts)
    if len(segs):
        select = data.draw(st.lists(st.integers(0, len(segs) - 1), max_size=6))
        assert np.array_equal(timestamps.decode(enc, np.array(select, np.int64)),
                              concat_selected(ts, counts, select))


def test_block_shares_timestamp_columns_and_decodes_subsets():
    rng = np.random.default_rng(7)
    n, k = 300, 240
    scrape = 1_767_225_600_000 + np.arange(k) * 15_000
    jitter = rng.integers(-5, 6, size=(3, k))
    ts = (scrape + jitter[np.arange(n) % 3]).ravel()
    vals = np.cumsum(rng.poisson(50, size=(n, k)), axis=1).astype(float).ravel()
    counts = np.full(n, k)
    sections = encode_segments(counts, ts, vals)
    assert len(sections["ts.column_counts"]) == 3
    dec = BlockDecoder(sections)
    t_all, v_all = dec.decode()
    assert np.array_equal(t_all, ts) and np.array_equal(v_all, vals)
    rows = np.array([299, 0, 17])
    t_sub, v_sub = dec.decode(rows)
    assert np.array_equal(t_sub, concat_selected(ts, counts, rows.tolist()))
    assert np.array_equal(v_sub, concat_selected(vals, counts, rows.tolist()))
    total = sum(a.nbytes for a in sections.values())
    assert total / len(ts) < 2.0  # poisson counters at 50/step: ~8 bits of noise each


@given(hnp.arrays(np.int64, st.integers(0, 50), elements=i64))
def test_zigzag_round_trip(x):
    from tsdb.encoding.segments import unzigzag, zigzag
    assert np.array_equal(unzigzag(zigzag(x)), x)


def test_scaled_integers_only_where_smaller_than_xor():
    spike = np.zeros(64)
    spike[40], spike[50] = 123456789012345.0, 98765432109877.0  # rare, huge, coprime jumps
    # every delta of their groups gets a ~48-bit frame; XOR pays only for the changes
    counter = np.cumsum(np.arange(64) % 3).astype(float)
    counts = np.array([64, 64])
    enc = values.encode(np.concatenate([spike, counter]), counts)
    assert enc.modes.tolist() == [values.MODE_XOR, values.MODE_INT]
    assert np.array_equal(values.decode(enc, counts), np.concatenate([spike, counter]))


def test_segment_bits_add_up_to_the_streams():
    rng = np.random.default_rng(3)
    counts = np.array([1, 5, 33, 64, 100])
    x = np.cumsum(rng.integers(-1000, 1000, counts.sum()))
    enc = intseq.encode(x, counts)
    bits = intseq.segment_bits(enc, counts)
    body_and_head = enc.head_widths.astype(int).sum() + (
        enc.group_widths.astype(int) * intseq.IntSeqLayout(enc, counts).group_sizes).sum()
    assert bits.sum() == body_and_head + 8 * len(enc.group_widths)
    b = rng.integers(0, 2**64 - 1, counts.sum(), dtype=np.uint64, endpoint=True)
    xenc = xorseq.encode(b, counts)
    xbits = xorseq.segment_bits(xenc, counts)
    assert np.array_equal(xbits, xorseq.estimate_bits(b, counts))
    assert xbits.sum() <= 64 * (len(xenc.first_bits) + len(xenc.flag_words)
                                + len(xenc.body_words)) + 16 * len(xenc.group_widths)
