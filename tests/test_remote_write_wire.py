"""Remote write 1.0 decoding (wire/remote_write.py), snappy blocks, generated protobuf code."""

from __future__ import annotations

import ast
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import snappy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import wire.remote_write as rw
from wire.errors import BodyTooLarge, WireError
from wire.proto import remote_pb2, types_pb2, write_v2_pb2
from wire.remote_write import WriteBatch, decode_write_request, parse_label_bytes
from wire.snappy_block import compress_block, declared_length, decompress_block
from wire.varint import decode_uvarint, encode_uvarint

STALE = 0x7FF0000000000002
REPO = Path(__file__).resolve().parents[1]


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def bits_to_float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def frame(field: int, payload: bytes) -> bytes:
    return encode_uvarint(field << 3 | 2) + encode_uvarint(len(payload)) + payload


def assert_same(a: WriteBatch, b: WriteBatch) -> None:
    assert a.series_keys == b.series_keys
    assert a.sample_series.dtype == b.sample_series.dtype == np.int64
    assert a.timestamps.dtype == b.timestamps.dtype == np.int64
    assert a.values.dtype == b.values.dtype == np.float64
    assert a.sample_series.tolist() == b.sample_series.tolist()
    assert a.timestamps.tolist() == b.timestamps.tolist()
    assert a.values.view(np.uint64).tolist() == b.values.view(np.uint64).tolist()
    assert (a.histograms, a.exemplars, a.metadata) == (b.histograms, b.exemplars, b.metadata)
    assert a.metadata_entries == b.metadata_entries


def key_cache(keys: list[bytes]):
    """A ``key_ids`` cache that knows exactly these keys."""
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return lambda ks: np.fromiter((ids.get(k, -1) for k in ks), np.int64, len(ks))


def outcome(body: bytes, fast_path: bool, key_ids=None) -> WriteBatch | str:
    try:
        return decode_write_request(body, fast_path=fast_path, key_ids=key_ids)
    except WireError as exc:
        return f"error: {exc}"


@pytest.fixture
def no_slow_path(monkeypatch):
    """Fail the test if a series leaves the fast path (in calls with fast_path=True)."""
    original = rw.decode_write_request

    def fast_only(body, *, fast_path=True):
        if not fast_path:
            return original(body, fast_path=False)
        with monkeypatch.context() as patch:
            patch.setattr(rw, "_label_key", lambda ts: pytest.fail("took the slow path"))
            return original(body)

    monkeypatch.setitem(globals(), "decode_write_request", fast_only)


# --- spec worked examples -----------------------------------------------------------------

SPEC_BODY = h("""
0a 2f 0a 0e 0a 08 5f 5f 6e 61 6d 65 5f 5f 12 02 75 70 0a 0b 0a 03 6a 6f 62 12 04 6e 6f 64 65
12 10 09 00 00 00 00 00 00 f0 3f 10 80 d0 95 ff bc 31
""")
SPEC_KEY = SPEC_BODY[2:31]


def test_spec_example_fast_path(no_slow_path):
    batch = decode_write_request(SPEC_BODY)
    assert batch.series_keys == [SPEC_KEY]
    assert parse_label_bytes(SPEC_KEY) == [("__name__", "up"), ("job", "node")]
    assert batch.sample_series.tolist() == [0]
    assert batch.timestamps.tolist() == [1700000000000]
    assert batch.values.tolist() == [1.0]
    assert (batch.histograms, batch.exemplars, batch.metadata) == (0, 0, 0)


def test_spec_example_matches_generated_classes():
    wr = remote_pb2.WriteRequest.FromString(SPEC_BODY)
    assert [(x.name, x.value) for x in wr.timeseries[0].labels] == [("__name__", "up"),
                                                                    ("job", "node")]
    assert wr.SerializeToString() == SPEC_BODY


def test_spec_snappy_body():
    sent = b"\x31\xc0" + SPEC_BODY
    assert declared_length(sent) == 49
    assert decompress_block(sent, 49) == SPEC_BODY


def test_stale_marker_bits_survive_both_paths(no_slow_path):
    sample = h("09 02 00 00 00 00 00 f0 7f 10 98 c5 96 ff bc 31")
    body = frame(1, SPEC_KEY + frame(2, sample))
    batch = decode_write_request(body)
    assert batch.values.view(np.uint64).tolist() == [STALE]
    assert batch.timestamps.tolist() == [1700000015000]
    assert_same(batch, decode_write_request(body, fast_path=False))


def test_value_zero_sample_is_fast(no_slow_path):
    ts = types_pb2.TimeSeries(labels=[types_pb2.Label(name="__name__", value="up")],
                              samples=[types_pb2.Sample(value=0.0, timestamp=1700000000000)])
    body = remote_pb2.WriteRequest(timeseries=[ts]).SerializeToString()
    assert body.endswith(h("12 07 10 80 d0 95 ff bc 31"))  # proto3 omits value 0.0
    batch = decode_write_request(body)
    assert batch.values.view(np.uint64).tolist() == [0]
    assert batch.timestamps.tolist() == [1700000000000]


def test_remote_read_and_v2_examples_parse():
    read = remote_pb2.ReadRequest.FromString(h("""
        0a 1e 08 80 d0 95 ff bc 31 10 80 ad f1 80 bd 31 1a 0e 12 08 5f 5f 6e 61 6d 65 5f 5f
        1a 02 75 70 12 02 01 00"""))
    q = read.queries[0]
    assert (q.start_timestamp_ms, q.end_timestamp_ms) == (1700000000000, 1700003600000)
    assert (q.matchers[0].type, q.matchers[0].name, q.matchers[0].value) == (0, "__name__", "up")
    assert list(read.accepted_response_types) == [remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS,
                                                  remote_pb2.ReadRequest.SAMPLES]
    v2 = write_v2_pb2.Request.FromString(h("""
        22 00 22 08 5f 5f 6e 61 6d 65 5f 5f 22 02 75 70 22 03 6a 6f 62 22 04 6e 6f 64 65
        2a 1c 0a 04 01 02 03 04 12 10 09 00 00 00 00 00 00 f0 3f 10 80 d0 95 ff bc 31
        2a 02 08 02"""))
    assert list(v2.symbols) == ["", "__name__", "up", "job", "node"]
    series = v2.timeseries[0]
    assert list(series.labels_refs) == [1, 2, 3, 4]
    assert series.metadata.type == write_v2_pb2.Metadata.METRIC_TYPE_GAUGE
    frame_msg = h("""
        0a 3d 0a 0e 0a 08 5f 5f 6e 61 6d 65 5f 5f 12 02 75 70 12 2b 08 80 d0 95 ff bc 31
        10 ba ba 97 ff bc 31 18 01 22 19 00 03 80 a0 ab fe f9 62 3f f0 00 00 00 00 00 00
        98 75 c2 5f ff 80 0a 80 08""")
    chunked = remote_pb2.ChunkedReadResponse.FromString(frame_msg)
    chunk = chunked.chunked_series[0].chunks[0]
    assert chunk.type == types_pb2.Chunk.XOR and len(chunk.data) == 25
    assert chunked.SerializeToString() == frame_msg


# --- shapes that must take the slow path, and agree -----------------------------------------


def labels_pb(*pairs: tuple[str, str]) -> list[types_pb2.Label]:
    return [types_pb2.Label(name=n, value=v) for n, v in pairs]


def test_prometheus_shaped_request_is_fast(no_slow_path):
    series = [types_pb2.TimeSeries(
        labels=labels_pb(("__name__", f"m{i % 7}"), ("instance", f"host-{i}:9100"),
                         ("long", "x" * (i * 3))),  # 2-byte Label lengths from i = 40
        samples=[types_pb2.Sample(value=float(i % 3), timestamp=1767225600000 + i)])
        for i in range(200)]
    body = remote_pb2.WriteRequest(timeseries=series).SerializeToString()
    batch = decode_write_request(body)
    assert len(batch.series_keys) == 200
    assert batch.timestamps.tolist() == [1767225600000 + i for i in range(200)]
    assert batch.values.tolist() == [float(i % 3) for i in range(200)]
    assert parse_label_bytes(batch.series_keys[50])[2] == ("long", "x" * 150)


def test_mixed_request_multi_samples_exemplars_histograms_metadata():
    lab = labels_pb(("__name__", "a"))
    ts0 = types_pb2.TimeSeries(labels=lab, samples=[types_pb2.Sample(value=1, timestamp=10**12)])
    ts1 = types_pb2.TimeSeries(labels=lab, samples=[types_pb2.Sample(value=2, timestamp=5),
                                                     types_pb2.Sample(value=3, timestamp=6)])
    ts2 = types_pb2.TimeSeries(labels=lab, exemplars=[types_pb2.Exemplar(
        labels=labels_pb(("trace_id", "abc")), value=1, timestamp=7)])
    ts3 = types_pb2.TimeSeries(labels=lab, histograms=[types_pb2.Histogram(
        count_int=3, sum=1.5, schema=-1, positive_spans=[types_pb2.BucketSpan(offset=-2, length=2)],
        positive_deltas=[1, -1], timestamp=8)])
    ts4 = types_pb2.TimeSeries(labels=lab, samples=[types_pb2.Sample(value=-4, timestamp=-1)])
    meta = types_pb2.MetricMetadata(type=types_pb2.MetricMetadata.GAUGE, metric_family_name="a")
    body = remote_pb2.WriteRequest(timeseries=[ts0, ts1, ts2, ts3, ts4],
                                   metadata=[meta, meta]).SerializeToString()
    batch = decode_write_request(body)
    assert_same(batch, decode_write_request(body, fast_path=False))
    assert batch.sample_series.tolist() == [0, 1, 1, 4]
    assert batch.timestamps.tolist() == [10**12, 5, 6, -1]
    assert batch.values.tolist() == [1, 2, 3, -4]
    assert (batch.histograms, batch.exemplars, batch.metadata) == (1, 1, 2)
    assert len(set(batch.series_keys)) == 1


def test_metadata_only_and_empty_requests():
    meta = types_pb2.MetricMetadata(type=types_pb2.MetricMetadata.COUNTER,
                                    metric_family_name="http_requests", help="Requests.")
    batch = decode_write_request(remote_pb2.WriteRequest(metadata=[meta] * 3).SerializeToString())
    assert (batch.series_keys, len(batch.timestamps), batch.metadata) == ([], 0, 3)
    assert batch.metadata_entries == [("http_requests", 1, "Requests.", "")] * 3
    empty = decode_write_request(b"")
    assert empty.series_keys == [] and empty.values.dtype == np.float64


def test_label_framing_variants_give_canonical_keys():
    payload = types_pb2.Label(name="job", value="node").SerializeToString()
    sample = types_pb2.Sample(value=1.0, timestamp=1700000000000).SerializeToString()
    canonical = frame(1, payload)
    long_len = b"\x0a" + bytes([len(payload) | 0x80, 0x00]) + payload  # non-minimal varint
    body = frame(1, long_len + frame(2, sample)) + frame(1, canonical + frame(2, sample))
    batch = decode_write_request(body)
    assert batch.series_keys == [canonical, canonical]
    assert_same(batch, decode_write_request(body, fast_path=False))


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body, where", [
    (SPEC_BODY[:-1], "timeseries[0]"),  # outer length overruns
    (frame(1, SPEC_KEY + b"\x12\x10" + SPEC_BODY[-16:-1] + b"\x90"), "timeseries[0].samples[0]"),
    (frame(1, SPEC_KEY + b"\x1a\x02\x0a\x05"), "timeseries[0].exemplars[0].labels[0]"),
    (frame(3, b"\x12\x02\xff\xfe"), "metadata[0].metric_family_name"),
    (b"\x0f", "invalid wire type"),
])
def test_errors_name_the_field(body, where):
    for fast in (True, False):
        with pytest.raises(WireError, match=r"invalid WriteRequest: .*") as info:
            decode_write_request(body, fast_path=fast)
        assert where in str(info.value)


def test_bad_label_utf8_deferred_to_parse_label_bytes():
    bad = frame(1, b"\x0a\x01a\x12\x02\xed\xa0")  # truncated / surrogate UTF-8
    body = frame(1, bad + frame(2, SPEC_BODY[-16:]))
    for fast in (True, False):
        batch = decode_write_request(body, fast_path=fast)
        with pytest.raises(WireError, match=r"labels\[0\]\.value: invalid UTF-8"):
            parse_label_bytes(batch.series_keys[0])


def test_parse_label_bytes_accepts_any_valid_encoding():
    reversed_fields = b"\x12\x04node\x0a\x03job"
    with_unknown = b"\x0a\x01a\x12\x01b\x18\x07"
    raw = frame(1, reversed_fields) + frame(1, with_unknown) + frame(1, b"")
    assert parse_label_bytes(raw) == [("job", "node"), ("a", "b"), ("", "")]
    for surrogate in (b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"):
        with pytest.raises(WireError):
            parse_label_bytes(frame(1, b"\x0a" + bytes([len(surrogate)]) + surrogate))


# --- snappy -----------------------------------------------------------------------------------


def test_snappy_limit_checked_before_decompressing(monkeypatch):
    def boom(_):
        raise AssertionError("decompressed despite the limit")

    monkeypatch.setattr(snappy, "uncompress", boom)
    huge = encode_uvarint(1 << 30) + b"\x00"
    with pytest.raises(BodyTooLarge) as info:
        decompress_block(huge, max_decoded=32 << 20)
    assert isinstance(info.value, WireError) and info.value.size == 1 << 30


@pytest.mark.parametrize("body", [b"", b"\x80", b"\x05abc", b"\x80\x80\x80\x80\x80\x01",
                                  b"\xff\x06\x00\x00sNaPpY\x00\x00\x00\x00",
                                  b"\x0a\x05\x01"])
def test_snappy_garbage_is_wire_error(body):
    with pytest.raises(WireError):
        decompress_block(body, 1 << 20)


def test_snappy_roundtrip_with_copies():
    data = remote_pb2.WriteRequest(timeseries=[types_pb2.TimeSeries(
        labels=labels_pb(("__name__", "up"), ("job", "node")),
        samples=[types_pb2.Sample(value=1.0, timestamp=1700000000000 + i)]) for i in range(50)]
    ).SerializeToString()
    body = compress_block(data)
    assert len(body) < len(data) // 3  # back-references were used
    assert decompress_block(body, len(data)) == data
    with pytest.raises(BodyTooLarge):
        decompress_block(body, len(data) - 1)


def test_varints():
    for n in (0, 1, 127, 128, 300, 2**35, 2**63, 2**64 - 1):
        assert decode_uvarint(encode_uvarint(n) + b"x") == (n, len(encode_uvarint(n)))
    with pytest.raises(WireError):
        decode_uvarint(b"\x80")


# --- property: fast path == reference path == independent oracle ------------------------------

U64 = st.integers(0, 2**64 - 1)
VALUE_BITS = st.one_of(
    st.sampled_from([0, 1 << 63, STALE, 0x7FF8000000000001, 0x7FF0000000000000, 1,
                     0x3FF0000000000000]),
    st.floats(allow_nan=False).map(lambda f: struct.unpack("<Q", struct.pack("<d", f))[0]),
    U64)
TIMESTAMPS = st.one_of(st.integers(2**35, 2**42 - 1), st.integers(-(2**63), 2**63 - 1),
                       st.sampled_from([0, 1, 2**35 - 1, 2**42]))
# short strings, and long ones for Label records with 2-byte lengths
TEXT = st.text(max_size=8) | st.text(min_size=1, max_size=4).map(lambda s: s * 40)
UNKNOWN = st.one_of(
    st.tuples(st.integers(5, 40), U64).map(
        lambda t: encode_uvarint(t[0] << 3) + encode_uvarint(t[1])),
    st.tuples(st.integers(5, 40), st.binary(max_size=6)).map(lambda t: frame(t[0], t[1])),
    st.integers(5, 40).map(lambda f: encode_uvarint(f << 3 | 1) + bytes(8)),
    st.integers(5, 40).map(lambda f: encode_uvarint(f << 3 | 5) + bytes(4)))


@st.composite
def label_record(draw):
    name, value = draw(TEXT), draw(TEXT)
    payload = types_pb2.Label(name=name, value=value).SerializeToString()
    if draw(st.integers(0, 9)) == 0:  # same label, fields in reverse order
        payload = (types_pb2.Label(value=value).SerializeToString()
                   + types_pb2.Label(name=name).SerializeToString())
    if draw(st.integers(0, 9)) == 0:
        payload += draw(UNKNOWN)
    return ("label", payload)


@st.composite
def sample_record(draw):
    bits, ts = draw(VALUE_BITS), draw(TIMESTAMPS)
    payload = types_pb2.Sample(value=bits_to_float(bits), timestamp=ts).SerializeToString()
    if bits == 1 << 63 and draw(st.booleans()):  # -0.0 omitted, as gogo-protobuf writes it
        payload = types_pb2.Sample(timestamp=ts).SerializeToString()
        bits = 0
    return ("sample", payload, bits, ts)


EXEMPLAR = st.builds(lambda v, t, tid: ("exemplar", types_pb2.Exemplar(
    labels=labels_pb(("trace_id", tid)), value=v, timestamp=t).SerializeToString()),
    st.floats(), TIMESTAMPS, st.text(max_size=4))
HISTOGRAM = st.builds(lambda c, t, d: ("histogram", types_pb2.Histogram(
    count_int=c, timestamp=t, schema=3, positive_spans=[types_pb2.BucketSpan(offset=-1, length=2)],
    positive_deltas=d).SerializeToString()), st.integers(0, 2**64 - 1), TIMESTAMPS,
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3))


@st.composite
def time_series(draw):
    labels = draw(st.lists(label_record(), max_size=6))
    shape = draw(st.integers(0, 9))
    if shape < 6:  # the Prometheus shape: labels, then one sample
        return labels + [draw(sample_record())]
    others = draw(st.lists(st.one_of(sample_record(), EXEMPLAR, HISTOGRAM,
                                     UNKNOWN.map(lambda u: ("unknown", u))), max_size=4))
    records = labels + others
    if shape == 9:
        records = draw(st.permutations(records))
    return records


@st.composite
def write_request(draw):
    series = draw(st.lists(time_series(), max_size=8))
    top = [("series", s) for s in series]
    for _ in range(draw(st.integers(0, 2))):
        entry = (draw(TEXT), draw(st.integers(0, 7)), draw(TEXT), draw(TEXT))
        meta = types_pb2.MetricMetadata(metric_family_name=entry[0], type=entry[1],
                                        help=entry[2], unit=entry[3])
        top.insert(draw(st.integers(0, len(top))), ("metadata", (entry,
                                                                 meta.SerializeToString())))
    if draw(st.integers(0, 4)) == 0:
        top.insert(draw(st.integers(0, len(top))), ("unknown", draw(UNKNOWN)))
    tags = {"label": 1, "sample": 2, "exemplar": 3, "histogram": 4}
    body = b""
    keys, sample_series, timestamps, bits, entries = [], [], [], [], []
    counts = {"histogram": 0, "exemplar": 0, "metadata": 0}
    for kind, item in top:
        if kind == "metadata":
            counts["metadata"] += 1
            entries.append(item[0])
            body += frame(3, item[1])
            continue
        if kind == "unknown":
            body += item
            continue
        ts_bytes = b""
        key = b""
        for record in item:
            if record[0] == "unknown":
                ts_bytes += record[1]
                continue
            ts_bytes += frame(tags[record[0]], record[1])
            if record[0] == "label":
                key += frame(1, record[1])
            elif record[0] == "sample":
                sample_series.append(len(keys))
                bits.append(record[2])
                timestamps.append(record[3])
            else:
                counts[record[0]] += 1
        keys.append(key)
        body += frame(1, ts_bytes)
    expected = WriteBatch(keys, np.array(sample_series, np.int64), np.array(timestamps, np.int64),
                          np.array(bits, np.uint64).view(np.float64), counts["histogram"],
                          counts["exemplar"], counts["metadata"], metadata_entries=entries)
    return body, expected


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(write_request())
def test_fast_path_equals_reference_and_oracle(case):
    body, expected = case
    fast = decode_write_request(body)
    assert_same(fast, expected)
    assert_same(decode_write_request(body, fast_path=False), expected)
    # keys met before skip the label walk and give the same batch
    known = key_cache(expected.series_keys)
    cached = decode_write_request(body, key_ids=known)
    assert_same(cached, expected)
    answered = cached.key_ids >= 0  # -1 where the series took the slow path
    assert cached.key_ids[answered].tolist() == \
        known([k for k, a in zip(expected.series_keys, answered, strict=True) if a]).tolist()
    # the stock schema (full Label parse) sees the same samples per series
    stock = remote_pb2.WriteRequest.FromString(body)
    assert len(stock.timeseries) == len(fast.series_keys)
    for i, ts in enumerate(stock.timeseries):
        mine = fast.sample_series == i
        assert [s.timestamp for s in ts.samples] == fast.timestamps[mine].tolist()
        assert [struct.unpack("<Q", struct.pack("<d", s.value))[0] for s in ts.samples] == \
            fast.values.view(np.uint64)[mine].tolist()
        assert parse_label_bytes(fast.series_keys[i]) == [(x.name, x.value) for x in ts.labels]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(write_request(), st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255),
                                           st.sampled_from(["set", "insert", "delete"])),
                                 min_size=1, max_size=3))
@example((SPEC_BODY, None), [(48, 0x80, "set")])  # sample timestamp varint grows to 7 bytes
@example((SPEC_BODY, None), [(30, 0x12, "set")])  # label value byte turns into a sample tag
def test_corrupted_bodies_same_outcome_on_both_paths(case, edits):
    body = bytearray(case[0])
    for pos, byte, op in edits:
        pos = pos % (len(body) + 1)
        if op == "insert":
            body[pos:pos] = bytes([byte])
        elif pos < len(body):
            if op == "set":
                body[pos] = byte
            else:
                del body[pos]
    fast, slow = outcome(bytes(body), True), outcome(bytes(body), False)
    # a cache of the intact body's keys must not make the corrupted body read differently
    original = outcome(case[0], False)
    known = key_cache(original.series_keys if isinstance(original, WriteBatch) else [])
    for candidate in (fast, outcome(bytes(body), True, known)):
        if isinstance(candidate, str) or isinstance(slow, str):
            assert isinstance(candidate, str) and isinstance(slow, str), (candidate, slow)
        else:
            assert_same(candidate, slow)


def test_known_key_followed_by_two_samples_takes_the_slow_path():
    sample = h("09 00 00 00 00 00 00 f0 3f 10 80 d0 95 ff bc 31")
    body = frame(1, SPEC_KEY + frame(2, sample) + frame(2, sample))
    batch = decode_write_request(body, key_ids=key_cache([SPEC_KEY]))
    assert batch.series_keys == [SPEC_KEY]
    assert batch.sample_series.tolist() == [0, 0] and batch.key_ids.tolist() == [-1]


# --- generated code is up to date --------------------------------------------------------------


def _serialized_descriptor(path: Path) -> bytes:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
            return ast.literal_eval(node.args[0])
    raise AssertionError(f"no serialized descriptor in {path}")


def _gencode_version(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if "Protobuf Python Version" in line)


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None,
                    reason="grpcio-tools not installed")
def test_generated_modules_up_to_date(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(["bash", str(REPO / "wire/proto/generate.sh"), str(tmp_path)], check=True,
                   env=env, capture_output=True)
    fresh_dir, committed_dir = tmp_path / "wire/proto", REPO / "wire/proto"
    fresh = sorted(p.name for p in fresh_dir.iterdir())
    assert fresh == sorted(p.name for p in committed_dir.glob("*_pb2.py*"))
    modules = [name for name in fresh if name.endswith(".py")]
    for name in modules:
        assert _serialized_descriptor(fresh_dir / name) == \
            _serialized_descriptor(committed_dir / name), f"{name} is stale: run generate.sh"
    # another protoc release lays out the same schema differently: compare text only when
    # the committed files came from the same release
    if all(_gencode_version(fresh_dir / n) == _gencode_version(committed_dir / n)
           for n in modules):
        for name in fresh:
            assert (fresh_dir / name).read_text() == (committed_dir / name).read_text(), \
                f"{name} is stale: run wire/proto/generate.sh"


# --- benchmarks/rwcorpus.py against rwgen's own model -----------------------------------------

RWGEN = Path("/work/shared/load/rwgen.py")


@pytest.mark.skipif(not RWGEN.exists(), reason="rwgen.py not available")
@pytest.mark.parametrize("spr", [1, 3])
def test_rwcorpus_matches_rwgen_model(tmp_path, monkeypatch, spr):
    points, start = 7, 1767225600000
    subprocess.run([sys.executable, str(RWGEN), "gen", "--out", str(tmp_path), "--series", "40",
                    "--points", str(points), "--batch", "30", "--spr", str(spr),
                    "--start-ms", str(start)], check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location("rwcorpus", REPO / "benchmarks/rwcorpus.py")
    rwcorpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rwcorpus)
    labels, ts, vals, offsets = rwcorpus.load_corpus_samples(tmp_path)

    monkeypatch.syspath_prepend(str(RWGEN.parent))
    import tsmodel

    model = tsmodel.Model(40, seed=1, interval_ms=15000, jitter_ms=5)
    want_vals, want_ts, state = [], [], None
    for step in range(0, points, spr):
        k = min(spr, points - step)
        v, state = model.values(step, k, state)
        want_vals.append(v)
        want_ts.append(model.timestamps(start, step, k))
    assert labels == [tuple(x) for x in model.labels]
    assert offsets.tolist() == list(range(0, 40 * points + 1, points))
    assert ts.tolist() == np.concatenate(want_ts, axis=1).ravel().tolist()
    assert vals.view(np.uint64).tolist() == \
        np.concatenate(want_vals, axis=1).ravel().view(np.uint64).tolist()

    monkeypatch.setattr(rwcorpus, "decode_corpus", lambda _: pytest.fail("cache not used"))
    again = rwcorpus.load_corpus_samples(tmp_path)
    assert again[0] == labels and np.array_equal(again[1], ts) and np.array_equal(again[3], offsets)


def test_many_labels_leave_the_walk_but_decode_the_same():
    pairs = [(f"l{i:03d}", "v" * (i % 5)) for i in range(100)]
    series = [types_pb2.TimeSeries(labels=labels_pb(*pairs[:n]),
                                   samples=[types_pb2.Sample(value=n, timestamp=1700000000000)])
              for n in (1, 63, 64, 65, 100)]
    body = remote_pb2.WriteRequest(timeseries=series).SerializeToString()
    batch = decode_write_request(body)
    assert_same(batch, decode_write_request(body, fast_path=False))
    assert [len(parse_label_bytes(k)) for k in batch.series_keys] == [1, 63, 64, 65, 100]


def test_huge_label_count_is_bounded_work():
    body = frame(1, b"\x0a\x00" * 300_000 + frame(2, SPEC_BODY[-16:]))
    batch = decode_write_request(body)  # the walk stops after a few dozen labels
    assert batch.timestamps.tolist() == [1700000000000]
    assert len(batch.series_keys[0]) == 600_000


def test_diagnosis_of_huge_bad_body_is_bounded():
    body = b"\x08\x00" * 2_000_000 + b"\x0a\x05"  # 2 M unknown fields, then a bad record
    with pytest.raises(WireError, match="diagnosis stopped"):
        decode_write_request(body)
