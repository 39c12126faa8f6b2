"""Remote read wire code (wire/remote_read.py): request decoding, SAMPLES responses checked
against the generated protobuf classes, streamed chunk frames (spec worked frame, splitting,
ordering, CRC), all from shared/spec/remote-read.md."""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.xor_reference import decode_chunk
from wire import remote_read as rr
from wire.errors import WireError
from wire.proto import remote_pb2, types_pb2
from wire.remote_read import (
    MAX_FRAME_BYTES,
    SAMPLES,
    STREAMED_CONTENT_TYPE,
    STREAMED_XOR_CHUNKS,
    ReadHints,
    decode_read_request,
    encode_chunked_series_frames,
    encode_read_response,
    iter_frames,
    label_set_order,
    stream_frames,
)
from wire.snappy_block import compress_block, decompress_block
from wire.varint import decode_uvarint
from wire.xor_chunk import XorChunks, encode_xor_chunks

STALE = 0x7FF0000000000002
T0 = 1_700_000_000_000


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def floats(bits: list[int]) -> np.ndarray:
    return np.array(bits, dtype=np.uint64).view(np.float64)


def pb_labels(labels) -> list[tuple[str, str]]:
    return [(label.name, label.value) for label in labels]


# --- request ----------------------------------------------------------------------------

SPEC_REQUEST = h("""
0a 1e 08 80 d0 95 ff bc 31 10 80 ad f1 80 bd 31 1a 0e 12 08 5f 5f 6e 61 6d 65 5f 5f
1a 02 75 70 12 02 01 00""")


def test_spec_request():
    assert len(SPEC_REQUEST) == 36
    req = decode_read_request(SPEC_REQUEST)
    assert req.accepted_response_types == [STREAMED_XOR_CHUNKS, SAMPLES]
    [q] = req.queries
    assert (q.start_ms, q.end_ms) == (1700000000000, 1700003600000)
    assert q.matchers == [(0, "__name__", "up")]
    assert q.hints is None
    # on the wire: snappy block, one literal
    assert decode_read_request(decompress_block(b"\x24\x8c" + SPEC_REQUEST)) == req


def test_request_with_hints_several_queries_and_all_matcher_types():
    matchers = [types_pb2.LabelMatcher(type=t, name=f"l{t}", value=f"v{t}") for t in range(4)]
    hints = types_pb2.ReadHints(step_ms=15000, func="rate", start_ms=5, end_ms=6,
                                grouping=["job", "instance"], by=True, range_ms=300000)
    body = remote_pb2.ReadRequest(queries=[
        remote_pb2.Query(start_timestamp_ms=-5, end_timestamp_ms=10, matchers=matchers,
                         hints=hints),
        remote_pb2.Query(start_timestamp_ms=1, end_timestamp_ms=2),
    ]).SerializeToString()
    req = decode_read_request(body)
    assert req.accepted_response_types == []  # the caller treats that as SAMPLES
    q0, q1 = req.queries
    assert (q0.start_ms, q0.end_ms) == (-5, 10)
    assert q0.matchers == [(0, "l0", "v0"), (1, "l1", "v1"), (2, "l2", "v2"), (3, "l3", "v3")]
    assert q0.hints == ReadHints(15000, "rate", 5, 6, ("job", "instance"), True, 300000)
    assert (q1.matchers, q1.hints) == ([], None)
    # an empty hints message is present, not None
    body = remote_pb2.ReadRequest(queries=[remote_pb2.Query(hints=types_pb2.ReadHints())])
    assert decode_read_request(body.SerializeToString()).queries[0].hints == ReadHints(
        0, "", 0, 0, (), False, 0)


def test_unknown_enum_values_pass_through():
    body = h("0a 04 1a 02 08 07 12 01 05")  # matcher type 7, response type 5
    req = decode_read_request(body)
    assert req.queries[0].matchers == [(7, "", "")]
    assert req.accepted_response_types == [5]


@pytest.mark.parametrize("body, message", [
    (SPEC_REQUEST[:-3], "invalid ReadRequest: "),
    (h("0a 05 1a 03 12 01 ff"), "queries[0].matchers[0].name: invalid UTF-8"),
    (h("0a 02 08 80"), "queries[0].start_timestamp_ms: truncated varint"),
])
def test_malformed_requests(body, message):
    with pytest.raises(WireError) as err:
        decode_read_request(body)
    assert message in str(err.value)


# --- SAMPLES response ---------------------------------------------------------------------


def test_spec_samples_answer_shape():
    """The spec's SAMPLES answer: two samples of `up`, 56 bytes, snappy with a copy."""
    body = encode_read_response([[([("__name__", "up")], np.array([T0, T0 + 15000]),
                                   np.array([1.0, 1.0]))]])
    assert len(body) == 56
    assert body.startswith(h("0a 36 0a 34 0a 0e 0a 08 5f 5f 6e 61 6d 65 5f 5f 12 02 75 70"))
    assert body == remote_pb2.ReadResponse(results=[remote_pb2.QueryResult(timeseries=[
        types_pb2.TimeSeries(labels=[types_pb2.Label(name="__name__", value="up")], samples=[
            types_pb2.Sample(value=1.0, timestamp=T0),
            types_pb2.Sample(value=1.0, timestamp=T0 + 15000)])])]).SerializeToString()
    compressed = compress_block(body)
    assert compressed[0] == 56 and decompress_block(compressed) == body


def test_empty_results():
    assert encode_read_response([]) == b""
    assert encode_read_response([[], []]) == b"\x0a\x00\x0a\x00"
    body = encode_read_response([[([("a", "b")], np.array([], np.int64), np.array([]))]])
    parsed = remote_pb2.ReadResponse.FromString(body)
    assert pb_labels(parsed.results[0].timeseries[0].labels) == [("a", "b")]
    assert len(parsed.results[0].timeseries[0].samples) == 0


def check_response(results) -> None:
    """Our bytes, parsed by protobuf, give back every label, timestamp and value bit."""
    parsed = remote_pb2.ReadResponse.FromString(encode_read_response(results))
    assert len(parsed.results) == len(results)
    for result, got in zip(results, parsed.results, strict=True):
        assert len(got.timeseries) == len(result)
        for (labels, ts, vals), series in zip(result, got.timeseries, strict=True):
            assert pb_labels(series.labels) == list(labels)
            assert [s.timestamp for s in series.samples] == list(map(int, ts))
            got_bits = [struct.unpack("<Q", struct.pack("<d", s.value))[0]
                        for s in series.samples]
            assert got_bits == np.asarray(vals, dtype=np.float64).view(np.uint64).tolist()


def test_special_values_and_timestamps():
    bits = [STALE, 0x7FF8000000000001, 0x8000000000000000, 0, 0xFFF0000000000000, 1,
            0x3FF0000000000000]
    times = [-(1 << 63), -1, 0, 1, 127, 128, (1 << 63) - 1]
    check_response([[([("__name__", "x")], np.array(times), floats(bits))]])


def test_uniform_and_mixed_timestamp_widths_encode_alike():
    # all timestamps 6 varint bytes: records are sliced from fixed-width rows
    ts = T0 + np.arange(100) * 15000
    vals = np.linspace(-1, 1, 100)
    uniform = encode_read_response([[([("a", "1")], ts, vals)]])
    records, ends = rr._sample_records(ts, vals)
    assert ends.tolist() == list(range(0, 1801, 18))
    # one timestamp of another width: every record takes the masked path
    ts_mixed = ts.copy()
    ts_mixed[50] = 5
    records_mixed, ends_mixed = rr._sample_records(ts_mixed, vals)
    assert int(ends_mixed[-1]) == 1800 - 5
    assert bytes(records_mixed[:900]) == bytes(records[:900])
    assert bytes(records_mixed[-49 * 18:]) == bytes(records[-49 * 18:])
    check_response([[([("a", "1")], ts_mixed, vals)]])
    assert remote_pb2.ReadResponse.FromString(uniform).results[0].timeseries[0].samples[
        99].timestamp == T0 + 99 * 15000


@pytest.mark.parametrize("width", range(1, 11))
def test_every_timestamp_varint_width(width):
    """Fixed-width records of 13..22 bytes are written with overlapping word stores."""
    low = 0 if width == 1 else 1 << 7 * (width - 1)
    ts = np.array([low, low + 1, low + 3], dtype=np.uint64).view(np.int64)
    if width == 10:
        ts = np.array([-3, -2, -1])
    vals = floats([0x0102030405060708, STALE, 0xFFFFFFFFFFFFFFFF])
    records, ends = rr._sample_records(ts, vals)
    assert ends.tolist() == [0, 12 + width, 24 + 2 * width, 36 + 3 * width]
    check_response([[([("w", str(width))], ts, vals)]])


def test_labels_with_empty_values_and_unicode():
    check_response([[([("__name__", "ä€😀"), ("empty", ""), ("", "no name")],
                      np.array([T0]), np.array([2.5]))]])


def test_series_must_have_as_many_values_as_timestamps():
    with pytest.raises(ValueError, match="series 1: 2 timestamps but 1 values"):
        encode_read_response([[([], np.array([1]), np.array([1.0])),
                               ([], np.array([1, 2]), np.array([1.0]))]])
    with pytest.raises(TypeError):
        encode_read_response([[([], np.array([1.5]), np.array([1.0]))]])


label_text = st.text(st.characters(codec="utf-8"), max_size=8)
label_sets = st.lists(st.tuples(label_text, label_text), max_size=4).map(
    lambda pairs: sorted(dict(pairs).items()))


@st.composite
def series_data(draw, max_samples: int = 40):
    labels = draw(label_sets)
    seed = draw(st.integers(0, 2**32))
    n = draw(st.integers(0, max_samples))
    rng = np.random.default_rng(seed)
    special_t = np.array([0, -1, 1, -(1 << 63), (1 << 63) - 1, 1 << 35, (1 << 35) - 1])
    special_v = np.array([0, STALE, 0x7FF8000000000001, 0x8000000000000000], dtype=np.uint64)
    ts = np.where(rng.random(n) < 0.2, rng.choice(special_t, n), T0 + rng.integers(0, 10**9, n))
    if draw(st.booleans()):  # sorted, the usual case (one varint width)
        ts = np.sort(T0 + rng.integers(0, 10**9, n))
    bits = rng.integers(0, 1 << 64, n, dtype=np.uint64, endpoint=False)
    bits = np.where(rng.random(n) < 0.3, rng.choice(special_v, n), bits)
    return labels, ts.astype(np.int64), bits.view(np.float64)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(series_data(), max_size=4), max_size=3))
def test_samples_response_matches_protobuf(results):
    check_response(results)


# --- streamed chunks: frames ----------------------------------------------------------------

SPEC_CHUNK = h("00 03 80 a0 ab fe f9 62 3f f0 00 00 00 00 00 00 98 75 c2 5f ff 80 0a 80 08")
SPEC_FRAME = h("""
3f c7 b3 59 d4
0a 3d 0a 0e 0a 08 5f 5f 6e 61 6d 65 5f 5f 12 02 75 70
12 2b 08 80 d0 95 ff bc 31 10 ba ba 97 ff bc 31 18 01 22 19
""") + SPEC_CHUNK
SPEC_TS = np.array([1700000000000, 1700000015000, 1700000030010])


def test_content_type_is_exact():
    assert STREAMED_CONTENT_TYPE == \
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"


def test_spec_worked_frame():
    frames = list(stream_frames(0, [([("__name__", "up")], SPEC_TS, np.array([1.0, 2.0, 4.0]))]))
    assert frames == [SPEC_FRAME]
    chunks = XorChunks(SPEC_CHUNK, np.array([0, 25]), np.array([0]), SPEC_TS[:1], SPEC_TS[2:])
    assert encode_chunked_series_frames(0, [("__name__", "up")], chunks) == [SPEC_FRAME]
    assert list(iter_frames(SPEC_FRAME)) == [SPEC_FRAME[5:]]


def test_crc32c_is_castagnoli():
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert int.from_bytes(SPEC_FRAME[1:5], "big") == crc32c.crc32c(SPEC_FRAME[5:])


def test_query_index_is_written_when_not_zero():
    [frame] = stream_frames(3, [([("__name__", "up")], SPEC_TS, np.array([1.0, 2.0, 4.0]))])
    [message] = iter_frames(frame)
    assert message == SPEC_FRAME[5:] + b"\x10\x03"
    parsed = remote_pb2.ChunkedReadResponse.FromString(message)
    assert parsed.query_index == 3 and parsed.SerializeToString() == message


def test_iter_frames_rejects_damage():
    two = SPEC_FRAME * 2
    assert len(list(iter_frames(two))) == 2
    bad_crc = bytearray(SPEC_FRAME)
    bad_crc[30] ^= 1
    with pytest.raises(WireError, match="CRC32-C"):
        list(iter_frames(bytes(bad_crc)))
    with pytest.raises(WireError, match="truncated frame at byte 68"):
        list(iter_frames(two[:-1]))
    with pytest.raises(WireError, match="truncated varint"):
        list(iter_frames(b"\x80"))
    with pytest.raises(WireError, match="over the limit of 62"):
        list(iter_frames(SPEC_FRAME, max_frame_bytes=62))
    with pytest.raises(WireError, match="empty frame"):
        list(iter_frames(b"\x00\x00\x00\x00\x00"))
    assert list(iter_frames(b"")) == []


def frames_of(data_frames: list[bytes]) -> list[remote_pb2.ChunkedReadResponse]:
    """Parse frames; check each is exactly the canonical protobuf serialization."""
    out = []
    for frame in data_frames:
        [message] = iter_frames(frame)
        parsed = remote_pb2.ChunkedReadResponse.FromString(message)
        assert parsed.SerializeToString() == message
        assert len(parsed.chunked_series) == 1
        out.append(parsed)
    return out


def prometheus_split(label_size: int, chunk_sizes: list[int], budget: int) -> list[int]:
    """Chunks per frame as Prometheus' StreamChunkedReadResponses cuts them."""
    counts, left, n = [], budget - label_size, 0
    for i, size in enumerate(chunk_sizes):
        left -= size
        n += 1
        if left > 0 and i + 1 < len(chunk_sizes):
            continue
        counts.append(n)
        left, n = budget - label_size, 0
    return counts


@pytest.mark.parametrize("budget", [1, 300, 1000, 5000, MAX_FRAME_BYTES])
def test_frames_split_like_prometheus(budget):
    rng = np.random.default_rng(1)
    n = 3000
    ts = T0 + np.arange(n) * 15000 + rng.integers(-5, 6, n)
    vals = np.round(np.cumsum(rng.normal(0, 1, n)), 3)
    labels = [("__name__", "node_load1"), ("instance", "h:9100"), ("job", "node")]
    frames = list(stream_frames(1, [(labels, ts, vals)], max_frame_bytes=budget))
    parsed = frames_of(frames)
    chunks = [c for p in parsed for c in p.chunked_series[0].chunks]
    assert len(chunks) == 25  # 3000 samples, 120 per chunk
    label_size = sum(label.ByteSize() for label in parsed[0].chunked_series[0].labels)
    expected = prometheus_split(label_size, [c.ByteSize() for c in chunks], budget)
    assert [len(p.chunked_series[0].chunks) for p in parsed] == expected
    assert all(pb_labels(p.chunked_series[0].labels) == labels and p.query_index == 1
               for p in parsed)
    samples = [s for c in chunks for s in decode_chunk(c.data)]
    assert samples == list(zip(ts.tolist(), vals.view(np.uint64).tolist(), strict=True))
    assert [c.min_time_ms for c in chunks] == sorted(c.min_time_ms for c in chunks)
    if budget == MAX_FRAME_BYTES:
        assert len(frames) == 1


def test_series_are_sorted_by_label_set():
    sets = [[("b", "1")], [("a", "2")], [("a", "1"), ("b", "1")], [("a", "1")],
            [("a", "10")], [("__name__", "z"), ("a", "1")], [("a", "1"), ("a0", "")],
            [("é", "")], [("z", "")]]
    order = label_set_order(sets)
    assert [sets[i] for i in order] == [
        [("__name__", "z"), ("a", "1")], [("a", "1")], [("a", "1"), ("a0", "")],
        [("a", "1"), ("b", "1")], [("a", "10")], [("a", "2")], [("b", "1")], [("z", "")],
        [("é", "")]]
    # byte-wise order of the UTF-8 encodings, as the TSDB compares
    keys = [[(n.encode(), v.encode()) for n, v in sets[i]] for i in order]
    assert keys == sorted(keys)
    series = [(labels, np.array([T0 + i]), np.array([float(i)])) for i, labels in
              enumerate(sets)]
    parsed = frames_of(list(stream_frames(0, series)))
    assert [pb_labels(p.chunked_series[0].labels) for p in parsed] == [sets[i] for i in order]


def test_empty_series_get_no_frame_and_bad_input_raises():
    series = [([("a", "1")], np.array([], np.int64), np.array([])),
              ([("a", "2")], np.array([T0]), np.array([1.0]))]
    parsed = frames_of(list(stream_frames(0, series)))
    assert [pb_labels(p.chunked_series[0].labels) for p in parsed] == [[("a", "2")]]
    assert list(stream_frames(0, [])) == []
    with pytest.raises(ValueError, match="strictly increasing"):
        list(stream_frames(0, [([("a", "1")], np.array([2, 1]), np.array([1.0, 2.0]))]))


def test_chunks_with_zero_and_negative_times_are_canonical():
    chunks = encode_xor_chunks(np.array([-5, 0, 7]), np.array([1.0, 2.0, 3.0]), np.array([0, 3]))
    chunks2 = encode_xor_chunks(np.array([0, 3]), np.array([1.0, 2.0]), np.array([0, 2]))
    for source in (chunks, chunks2):
        [frame] = encode_chunked_series_frames(0, [("a", "b")], source)
        [p] = frames_of([frame])
        [chunk] = p.chunked_series[0].chunks
        assert (chunk.min_time_ms, chunk.max_time_ms) == (source.min_time[0], source.max_time[0])
        assert chunk.type == types_pb2.Chunk.XOR and chunk.data == source.chunk(0)


def test_encode_frames_for_a_slice_of_stored_chunks():
    ts = T0 + np.arange(600) * 1000
    chunks = encode_xor_chunks(ts, np.arange(600.0), np.array([0, 300, 600]))
    assert chunks.series.tolist() == [0, 0, 0, 1, 1, 1]
    frames = encode_chunked_series_frames(0, [("s", "2")], chunks, 3, 6)
    [p] = frames_of(frames)
    got = [s for c in p.chunked_series[0].chunks for s in decode_chunk(c.data)]
    assert [t for t, _ in got] == ts[300:].tolist()
    assert encode_chunked_series_frames(0, [("s", "2")], chunks, 3, 3) == []
    with pytest.raises(ValueError, match="outside"):
        encode_chunked_series_frames(0, [], chunks, 2, 7)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(series_data(max_samples=300), max_size=5, unique_by=lambda s: tuple(s[0])),
       st.integers(0, 3),
       st.sampled_from([200, 2000, MAX_FRAME_BYTES]))
def test_streamed_frames_round_trip(series, query_index, budget):
    series = [(labels, np.unique(ts), vals[:len(np.unique(ts))]) for labels, ts, vals in series]
    frames = list(stream_frames(query_index, series, max_frame_bytes=budget))
    got: dict[tuple, list] = {}
    order = []
    for p in frames_of(frames):
        assert p.query_index == query_index
        key = tuple(pb_labels(p.chunked_series[0].labels))
        if not order or order[-1] != key:
            assert key not in got  # series are streamed one after another
            order.append(key)
        got.setdefault(key, []).extend(
            s for c in p.chunked_series[0].chunks for s in decode_chunk(c.data))
    want = {}
    for labels, ts, vals in series:
        if len(ts):
            want[tuple(labels)] = list(zip(ts.tolist(), vals.view(np.uint64).tolist(),
                                           strict=True))
    assert order == sorted(order) and got == want


def test_frame_length_prefix():
    """Length prefixes longer than one byte (frames over 127 bytes)."""
    ts = T0 + np.arange(500) * 15000
    [frame] = stream_frames(0, [([("__name__", "m")], ts, np.sin(np.arange(500.0)))])
    length, pos = decode_uvarint(frame, 0)
    assert pos == 2 and len(frame) == pos + 4 + length
