"""Tests for wire.xor_chunk against an independent, sequential decoder written from the spec
(shared/spec/xor-chunk.md §6). The decoder is deliberately naive: one bit at a time."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.xor_reference import decode_chunk
from wire.xor_chunk import _encode, encode_xor_chunks

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
MASK64 = 2**64 - 1
STALE_NAN = 0x7FF0000000000002


def f64_bits(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


def to_values(bit_patterns: list[int]) -> np.ndarray:
    return np.array(bit_patterns, dtype=np.uint64).view(np.float64)


# --------------------------------------------------------------------------------------------
# Round-trip checker
# --------------------------------------------------------------------------------------------


def encode_series(series: list[list[tuple[int, int]]], max_samples: int = 120, group=None):
    ts = np.array([t for s in series for t, _ in s], dtype=np.int64)
    vals = to_values([v for s in series for _, v in s])
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in series])
    if group is None:
        return encode_xor_chunks(ts, vals, offsets, max_samples=max_samples)
    return _encode(ts, vals, offsets, max_samples, group)


def check_roundtrip(series: list[list[tuple[int, int]]], max_samples: int = 120, group=None):
    enc = encode_series(series, max_samples, group)
    n_chunks = len(enc.series)
    assert enc.offsets.dtype == np.int64 and len(enc.offsets) == n_chunks + 1
    assert enc.offsets[0] == 0 and enc.offsets[-1] == len(enc.data)
    assert np.all(np.diff(enc.offsets) > 0)
    for arr in (enc.series, enc.min_time, enc.max_time):
        assert arr.dtype == np.int64 and len(arr) == n_chunks
    assert np.all(np.diff(enc.series) >= 0)

    decoded: list[list[tuple[int, int]]] = [[] for _ in series]
    for i in range(n_chunks):
        trace: dict = {}
        samples = decode_chunk(enc.chunk(i), trace)
        assert 1 <= len(samples) <= max_samples
        assert enc.min_time[i] == samples[0][0] and enc.max_time[i] == samples[-1][0]
        records = [k for k in trace["records"] if k != "0"]
        assert not records or records[0] == "11", "a 10 record before any 11 record"
        decoded[enc.series[i]].append(samples)

    for s, chunks in zip(series, decoded, strict=True):
        assert [x for c in chunks for x in c] == s
        if s:  # evenly sized chunks
            assert len(chunks) == math.ceil(len(s) / max_samples)
            sizes = [len(c) for c in chunks]
            assert max(sizes) - min(sizes) <= 1
        else:
            assert chunks == []
    return enc


# --------------------------------------------------------------------------------------------
# Golden and hand-computed tests
# --------------------------------------------------------------------------------------------

SPEC_EXAMPLE = bytes.fromhex(
    "00 03 80 a0 ab fe f9 62 3f f0 00 00 00 00 00 00 98 75 c2 5f ff 80 0a 80 08"
)


def test_spec_worked_example():
    ts = np.array([1700000000000, 1700000015000, 1700000030010], dtype=np.int64)
    enc = encode_xor_chunks(ts, np.array([1.0, 2.0, 4.0]), np.array([0, 3]))
    assert enc.data == SPEC_EXAMPLE
    assert enc.chunk(0) == SPEC_EXAMPLE
    assert enc.offsets.tolist() == [0, 25]
    assert enc.series.tolist() == [0]
    assert enc.min_time.tolist() == [1700000000000]
    assert enc.max_time.tolist() == [1700000030010]
    expected = [(int(t), f64_bits(v)) for t, v in zip(ts, [1.0, 2.0, 4.0], strict=True)]
    assert decode_chunk(SPEC_EXAMPLE) == expected


def test_spec_worked_example_fourth_sample_fits_the_padding():
    ts = np.array([1700000000000, 1700000015000, 1700000030010, 1700000045020], dtype=np.int64)
    enc = encode_xor_chunks(ts, np.array([1.0, 2.0, 4.0, 4.0]), np.array([0, 4]))
    assert enc.data == b"\x00\x04" + SPEC_EXAMPLE[2:]


def bits_to_bytes(bit_string: str) -> bytes:
    bit_string = bit_string.replace(" ", "")
    bit_string += "0" * (-len(bit_string) % 8)
    return int(bit_string, 2).to_bytes(len(bit_string) // 8, "big")


def two_sample_chunk(x: int, v0: int = 0) -> bytes:
    ts = np.array([0, 1], dtype=np.int64)
    return encode_xor_chunks(ts, to_values([v0, v0 ^ x]), np.array([0, 2])).data


def test_sixty_four_significant_bits_are_written_as_zero():
    x = 0x8000000000000001  # sign flip plus the lowest mantissa bit
    expected = "0000000000000010 00000000" + "0" * 64 + "00000001" + "11 00000 000000"
    assert two_sample_chunk(x) == bits_to_bytes(expected + format(x, "064b"))


def test_leading_zeros_are_clamped_to_31():
    x = 1  # 63 leading zeros
    v0 = f64_bits(1.0)
    expected = "0000000000000010 00000000" + format(v0, "064b") + "00000001" + "11 11111 100001"
    assert two_sample_chunk(x, v0) == bits_to_bytes(expected + "0" * 32 + "1")


@pytest.mark.parametrize(
    ("dod", "bits"),
    [
        (0, 1),
        (1, 16),
        (-1, 16),
        (8192, 16),
        (-8191, 16),
        (8193, 20),
        (-8192, 20),
        (65536, 20),
        (-65535, 20),
        (65537, 24),
        (-65536, 24),
        (524288, 24),
        (-524287, 24),
        (524289, 68),
        (-524288, 68),
        (2**62, 68),
        (-(2**62), 68),
    ],
)
def test_dod_buckets_use_the_asymmetric_ranges(dod: int, bits: int):
    first = 2**62 + 10**9  # large enough that the second delta stays positive
    series = [[(I64_MIN, 0), (I64_MIN + first, 0), (I64_MIN + 2 * first + dod, 0)]]
    enc = check_roundtrip(series)
    trace: dict = {}
    decode_chunk(enc.chunk(0), trace)
    assert trace["dod_bits"] == [bits]


def test_extreme_timestamps_wrap_like_go_int64():
    series = [
        [(I64_MIN, 1), (I64_MAX, 2)],  # Δ1 = 2**64 - 1: a 10-byte uvarint
        [(I64_MIN, 1), (-1, 2), (I64_MAX, 3)],  # dod = 0 through 2**63 - 1 deltas
        [(I64_MIN, 1), (I64_MIN + 1, 2), (I64_MAX, 3)],  # Δ2 wraps to -2: dod -3, 16 bits
        [(-5, 0), (-3, 0), (I64_MAX - 1, 0), (I64_MAX, 0)],
    ]
    check_roundtrip(series)


def test_special_values_round_trip_bit_exactly():
    specials = [
        STALE_NAN,
        0x7FF8000000000000,  # quiet NaN
        0xFFF8000000000001,  # negative NaN with payload
        0x7FF0000000000001,  # signalling NaN
        f64_bits(math.inf),
        f64_bits(-math.inf),
        f64_bits(-0.0),
        0,
        1,  # smallest subnormal
        0x000FFFFFFFFFFFFF,  # largest subnormal
        0x800FFFFFFFFFFFFF,
        f64_bits(1.7976931348623157e308),
        STALE_NAN,
        STALE_NAN,
        f64_bits(1.0),
    ]
    check_roundtrip([[(i * 15000, v) for i, v in enumerate(specials)]])


def test_chunking_is_even_and_skips_empty_series():
    series = [
        [(i, i) for i in range(130)],
        [],
        [(7, 1)],
        [],
        [(i * 1000, 3) for i in range(241)],
    ]
    enc = check_roundtrip(series, max_samples=120)
    counts = [int.from_bytes(enc.chunk(i)[:2], "big") for i in range(len(enc.series))]
    assert enc.series.tolist() == [0, 0, 2, 4, 4, 4]
    assert counts == [65, 65, 1, 81, 80, 80]


def test_empty_inputs():
    empty = np.zeros(0, dtype=np.int64)
    for offsets in ([0], [0, 0, 0]):
        enc = encode_xor_chunks(empty, np.zeros(0), np.array(offsets))
        assert enc.data == b"" and enc.offsets.tolist() == [0]
        assert len(enc.series) == len(enc.min_time) == len(enc.max_time) == 0


def test_chunks_do_not_depend_on_the_other_series_in_the_batch():
    rng = np.random.default_rng(1)
    series = []
    for n in (1, 5, 17, 130, 300):
        t = np.cumsum(rng.integers(1, 30000, n)).tolist()
        v = rng.normal(size=n).round(1).view(np.uint64).tolist()
        series.append(list(zip(t, v, strict=True)))
    together = encode_series(series)
    alone = [encode_series([s]) for s in series]
    chunks = [together.chunk(i) for i in range(len(together.series))]
    assert chunks == [c.chunk(i) for c in alone for i in range(len(c.series))]


def test_max_samples_65535():
    series = [[(i, i % 3) for i in range(70000)]]
    enc = encode_series(series, max_samples=0xFFFF)
    counts = [int.from_bytes(enc.chunk(i)[:2], "big") for i in range(len(enc.series))]
    assert counts == [35000, 35000]


@pytest.mark.parametrize(
    ("ts", "offsets", "max_samples"),
    [
        ([1, 1], [0, 2], 120),  # equal timestamps
        ([2, 1], [0, 2], 120),  # decreasing
        ([1, 2], [0, 1], 120),  # offsets do not cover the samples
        ([1, 2], [0, 2], 0),
        ([1, 2], [0, 2], 65536),
    ],
)
def test_invalid_input(ts, offsets, max_samples):
    with pytest.raises(ValueError):
        encode_xor_chunks(np.array(ts), np.zeros(len(ts)), np.array(offsets), max_samples)


def test_time_may_go_back_across_series():
    check_roundtrip([[(5, 1), (6, 1)], [(1, 2), (2, 2)], [], [(0, 3)]])


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

special_bits = st.sampled_from(
    [
        STALE_NAN,
        0x7FF8000000000000,
        0xFFF0000000000001,
        f64_bits(math.inf),
        f64_bits(-math.inf),
        f64_bits(-0.0),
        0,
        1,
        0x000FFFFFFFFFFFFF,
        0x8000000000000001,
        f64_bits(1.0),
    ]
)


@st.composite
def value_sequences(draw, n: int) -> list[int]:
    """Float64 bit patterns: repeats, small and large changes, specials, decimal gauges."""
    out: list[int] = []
    prev = draw(st.one_of(special_bits, st.integers(0, MASK64)))
    for _ in range(n):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            pass  # repeat
        elif kind == 1:
            prev ^= draw(st.integers(1, 2**20 - 1)) << draw(st.integers(0, 44))
        elif kind == 2:
            prev = draw(special_bits)
        elif kind == 3:
            prev = draw(st.integers(0, MASK64))
        else:
            prev = f64_bits(draw(st.integers(-(10**6), 10**6)) / 100)
        out.append(prev)
    return out


@st.composite
def timestamp_sequences(draw, n: int) -> list[int]:
    """Strictly increasing int64: regular scrapes with jitter, bucket edges, huge gaps."""
    if n == 0:
        return []
    if draw(st.booleans()):  # anything at all
        return sorted(draw(st.sets(st.integers(I64_MIN, I64_MAX), min_size=n, max_size=n)))
    t = draw(st.integers(I64_MIN, I64_MAX))
    step = draw(st.sampled_from([1, 15000, 60000, 2**40]))
    out = [t]
    prev_delta = step
    while len(out) < n:
        kind = draw(st.integers(0, 4))
        if kind == 0:
            delta = prev_delta
        elif kind == 1:
            delta = step + draw(st.integers(-5, 5))
        elif kind == 2:
            edge = draw(st.sampled_from([8192, 8193, 65536, 65537, 524288, 524289]))
            delta = prev_delta + edge * draw(st.sampled_from([1, -1]))
        elif kind == 3:
            delta = draw(st.integers(1, 2**64))
        else:
            delta = draw(st.integers(1, 3))
        if delta <= 0:
            delta = 1
        if out[-1] + delta > I64_MAX:
            break
        out.append(out[-1] + delta)
        prev_delta = delta
    return out


@st.composite
def series_lists(draw, max_series: int = 6, max_len: int = 200):
    series = []
    for _ in range(draw(st.integers(0, max_series))):
        n = draw(st.one_of(st.integers(0, 3), st.integers(0, max_len)))
        ts = draw(timestamp_sequences(n))
        vals = draw(value_sequences(len(ts)))
        series.append(list(zip(ts, vals, strict=True)))
    return series


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(series_lists(), st.one_of(st.sampled_from([1, 2, 3, 8, 9, 120]), st.integers(1, 250)))
def test_roundtrip_property(series, max_samples):
    check_roundtrip(series, max_samples)


@FAST
@given(series_lists(max_series=3, max_len=80), st.sampled_from([1, 2, 3, 5, 16, 64, 1000]))
def test_roundtrip_any_window_group(series, group):
    check_roundtrip(series, 50, group)


@FAST
@given(st.lists(st.integers(0, MASK64), min_size=1, max_size=40))
def test_arbitrary_float_bits(bit_patterns):
    check_roundtrip([[(i, v) for i, v in enumerate(bit_patterns)]], max_samples=16)


@FAST
@given(st.lists(st.sets(st.integers(I64_MIN, I64_MAX), max_size=30), max_size=5))
def test_arbitrary_timestamps(ts_sets):
    check_roundtrip([[(t, 0) for t in sorted(s)] for s in ts_sets], max_samples=7)
