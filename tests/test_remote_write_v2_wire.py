"""Remote write 2.0 decoding (wire/remote_write_v2.py): spec example, keys shared with 1.0,
validation, both start-timestamp layouts, fast path == reference path on random requests."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wire.remote_write_v2 as rw2
from tests.test_remote_write_wire import assert_same
from wire.errors import WireError
from wire.proto import remote_pb2, types_pb2, write_v2_pb2
from wire.remote_write import WriteBatch, decode_write_request, parse_label_bytes
from wire.remote_write_v2 import decode_write_request_v2
from wire.varint import encode_uvarint

STALE = 0x7FF0000000000002
T0 = 1_700_000_000_000


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def field(number: int, payload: bytes) -> bytes:
    return encode_uvarint(number << 3 | 2) + encode_uvarint(len(payload)) + payload


def outcome(body: bytes, fast_path: bool) -> WriteBatch | str:
    try:
        return decode_write_request_v2(body, fast_path=fast_path)
    except WireError as exc:
        return f"error: {exc}"


def both(body: bytes) -> WriteBatch:
    """Decode with both paths, check they agree, return the batch."""
    fast, reference = outcome(body, True), outcome(body, False)
    if isinstance(fast, str) or isinstance(reference, str):
        assert fast == reference
        raise WireError(str(fast))
    assert_same(fast, reference)
    return fast


@pytest.fixture
def fast_only(monkeypatch):
    """Fail the test if the fast path hands a request to the reference path."""
    original = rw2.decode_write_request_v2

    def strict(body: bytes, *, fast_path: bool = True) -> WriteBatch:
        if not fast_path:
            return original(body, fast_path=False)
        try:
            return rw2._decode_fast(body)
        except rw2._Unsure:
            pytest.fail("the fast path handed the request to the reference path")

    monkeypatch.setitem(globals(), "decode_write_request_v2", strict)


def request(symbols: list[str], *series: write_v2_pb2.TimeSeries) -> bytes:
    return write_v2_pb2.Request(symbols=symbols, timeseries=series).SerializeToString()


def sample(value: float, ts: int, st: int = 0) -> write_v2_pb2.Sample:
    return write_v2_pb2.Sample(value=value, timestamp=ts, start_timestamp=st)


# --- spec worked example (remote-write.md §7.4) ------------------------------------------

SPEC_V2 = h("""
22 00 22 08 5f 5f 6e 61 6d 65 5f 5f 22 02 75 70 22 03 6a 6f 62 22 04 6e 6f 64 65
2a 1c 0a 04 01 02 03 04 12 10 09 00 00 00 00 00 00 f0 3f 10 80 d0 95 ff bc 31 2a 02 08 02
""")
# §2.6: the same series and sample as remote write 1.0
SPEC_V1 = h("""
0a 2f 0a 0e 0a 08 5f 5f 6e 61 6d 65 5f 5f 12 02 75 70 0a 0b 0a 03 6a 6f 62 12 04 6e 6f 64 65
12 10 09 00 00 00 00 00 00 f0 3f 10 80 d0 95 ff bc 31
""")


def test_spec_example(fast_only):
    assert len(SPEC_V2) == 57
    batch = decode_write_request_v2(SPEC_V2)
    assert parse_label_bytes(batch.series_keys[0]) == [("__name__", "up"), ("job", "node")]
    assert batch.sample_series.tolist() == [0]
    assert batch.timestamps.tolist() == [T0]
    assert batch.values.tolist() == [1.0]
    assert (batch.histograms, batch.exemplars, batch.metadata) == (0, 0, 1)
    assert_same(batch, decode_write_request_v2(SPEC_V2, fast_path=False))


def test_spec_example_has_the_key_of_the_1_0_example():
    v1 = decode_write_request(SPEC_V1)
    v2 = decode_write_request_v2(SPEC_V2)
    assert v2.series_keys == v1.series_keys == [SPEC_V1[2:31]]
    assert v2.timestamps.tolist() == v1.timestamps.tolist()
    assert v2.values.view(np.uint64).tolist() == v1.values.view(np.uint64).tolist()


label_text = st.text(st.characters(codec="utf-8"), max_size=12)
label_sets = st.lists(st.tuples(label_text, label_text), max_size=6).map(
    lambda pairs: sorted(dict(pairs).items()))


@settings(max_examples=100, deadline=None)
@given(st.lists(label_sets, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_identical_label_sets_give_identical_keys_in_1_0_and_2_0(sets, rnd):
    v1 = remote_pb2.WriteRequest(timeseries=[
        types_pb2.TimeSeries(labels=[types_pb2.Label(name=n, value=v) for n, v in labels],
                             samples=[types_pb2.Sample(value=1.0, timestamp=T0)])
        for labels in sets]).SerializeToString()
    # 2.0: symbols in a random order, with duplicates and unused entries
    strings = sorted({s for labels in sets for pair in labels for s in pair} | {"unused"})
    rnd.shuffle(strings)
    symbols = ["", *strings, *rnd.sample(strings, k=min(2, len(strings)))]
    where = {s: i for i, s in enumerate(symbols)}
    v2 = request(symbols, *[write_v2_pb2.TimeSeries(
        labels_refs=[where[s] for pair in labels for s in pair], samples=[sample(1.0, T0)])
        for labels in sets])
    keys_1, keys_2 = decode_write_request(v1).series_keys, both(v2).series_keys
    assert keys_2 == keys_1
    # proto3 writers leave empty strings out; parse_label_bytes gives them back as ""
    assert [parse_label_bytes(k) for k in keys_2] == [list(labels) for labels in sets]


# --- validation -------------------------------------------------------------------------

SYMBOLS = ["", "__name__", "up", "job", "node"]
GOOD = write_v2_pb2.TimeSeries(labels_refs=[1, 2, 3, 4], samples=[sample(1.0, T0)])


@pytest.mark.parametrize("body, message", [
    (request(["x", *SYMBOLS[1:]], GOOD), "symbols[0] must be the empty string, got 'x'"),
    (request([], GOOD), "the symbol table is empty"),
    (request(SYMBOLS, GOOD, write_v2_pb2.TimeSeries(labels_refs=[1, 2, 3],
                                                    samples=[sample(1, T0)])),
     "timeseries[1].labels_refs has odd length 3"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(labels_refs=[1, 2, 3, 5],
                                              samples=[sample(1, T0)])),
     "timeseries[0].labels_refs[3] = 5 is out of range: there are 5 symbols"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(labels_refs=[1, 2, 3, 1 << 31],
                                              samples=[sample(1, T0)])),
     f"timeseries[0].labels_refs[3] = {1 << 31} is out of range"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(labels_refs=[1, 2], samples=[sample(1, T0)],
                                              histograms=[write_v2_pb2.Histogram(
                                                  count_int=1, timestamp=T0)])),
     "timeseries[0] has both samples (1) and histograms (1)"),
    (request(SYMBOLS, GOOD, write_v2_pb2.TimeSeries(labels_refs=[1, 2])),
     "timeseries[1] has no samples, histograms or exemplars"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(
        labels_refs=[1, 2], samples=[sample(1, T0)],
        exemplars=[write_v2_pb2.Exemplar(labels_refs=[3], value=1, timestamp=T0)])),
     "timeseries[0].exemplars[0].labels_refs has odd length 1"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(
        labels_refs=[1, 2], samples=[sample(1, T0)],
        exemplars=[write_v2_pb2.Exemplar(labels_refs=[3, 9], value=1, timestamp=T0)])),
     "timeseries[0].exemplars[0].labels_refs[1] = 9 is out of range"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(
        labels_refs=[1, 2], samples=[sample(1, T0)],
        metadata=write_v2_pb2.Metadata(type=1, help_ref=7))),
     "timeseries[0].metadata.help_ref = 7 is out of range"),
    (request(SYMBOLS, write_v2_pb2.TimeSeries(
        labels_refs=[1, 2], samples=[sample(1, T0)], metadata=write_v2_pb2.Metadata(unit_ref=5))),
     "timeseries[0].metadata.unit_ref = 5 is out of range"),
    (field(4, b"") + field(4, b"\xff\xfe") + field(5, GOOD.SerializeToString()),
     "symbols[1]: invalid UTF-8 at byte"),
    (request(SYMBOLS, GOOD)[:-3], "invalid remote-write 2.0 Request: timeseries[0]"),
    (field(4, b"") + field(5, b"\x12\x05\x09\x00"), "timeseries[0].samples[0]"),
])
def test_invalid_requests_name_the_problem(body, message):
    for fast_path in (True, False):
        with pytest.raises(WireError) as err:
            decode_write_request_v2(body, fast_path=fast_path)
        assert message in str(err.value)
        assert str(err.value).startswith("invalid remote-write 2.0 Request: ")


def test_the_first_invalid_series_is_reported():
    body = request(SYMBOLS, GOOD, write_v2_pb2.TimeSeries(labels_refs=[1]),
                   write_v2_pb2.TimeSeries(labels_refs=[9, 9], samples=[sample(1, T0)]))
    with pytest.raises(WireError, match=r"timeseries\[1\]\.labels_refs has odd length"):
        decode_write_request_v2(body)


def test_symbol_utf8_is_checked_per_symbol():
    # "é" split over two symbols: the joined bytes are valid UTF-8, the symbols are not
    body = field(4, b"") + field(4, b"\xc3") + field(4, b"\xa9") + field(
        5, write_v2_pb2.TimeSeries(labels_refs=[1, 2], samples=[sample(1, T0)])
        .SerializeToString())
    with pytest.raises(WireError, match="invalid UTF-8"):
        decode_write_request_v2(body)


def test_empty_request_and_unreferenced_symbols(fast_only):
    for body in (b"", request([""]), request(["", "x", "y"])):
        batch = decode_write_request_v2(body)
        assert batch.series_keys == [] and len(batch.timestamps) == 0


# --- shapes -----------------------------------------------------------------------------


def test_start_timestamps_of_both_revisions_are_ignored(fast_only):
    plain = write_v2_pb2.TimeSeries(labels_refs=[1, 2], samples=[sample(5.0, T0 + 1)])
    rc3 = write_v2_pb2.TimeSeries(labels_refs=[1, 2], samples=[sample(5.0, T0 + 1)],
                                  created_timestamp=T0 - 60_000)
    rc4 = write_v2_pb2.TimeSeries(labels_refs=[1, 2], samples=[sample(5.0, T0 + 1, T0 - 1)])
    expected = decode_write_request_v2(request(SYMBOLS, plain, plain, plain))
    for body in (request(SYMBOLS, plain, rc3, rc4), request(SYMBOLS, rc4, rc3, plain)):
        batch = decode_write_request_v2(body)
        assert_same(batch, expected)
        assert_same(batch, decode_write_request_v2(body, fast_path=False))


def test_prometheus_shaped_request_is_fast(fast_only):
    symbols = [""]
    where: dict[str, int] = {}

    def ref(s: str) -> int:
        if s not in where:
            where[s] = len(symbols)
            symbols.append(s)
        return where[s]

    series = []
    for i in range(300):  # refs above 127 take two varint bytes
        labels = [("__name__", f"metric_{i % 40}"), ("instance", f"host-{i % 7}:9100"),
                  ("job", "node"), ("series", str(i))]
        series.append(write_v2_pb2.TimeSeries(
            labels_refs=[ref(s) for pair in labels for s in pair],
            samples=[sample(float(i % 3), T0 + i)],  # value 0.0 is left out of the message
            metadata=write_v2_pb2.Metadata(type=i % 3, help_ref=ref(f"help {i % 40}"))))
    batch = decode_write_request_v2(request(symbols, *series))
    assert batch.timestamps.tolist() == [T0 + i for i in range(300)]
    assert batch.values.tolist() == [float(i % 3) for i in range(300)]
    assert parse_label_bytes(batch.series_keys[299])[3] == ("series", "299")
    assert batch.metadata == 300


def test_gogo_shape_with_empty_metadata_is_fast(fast_only):
    """Prometheus (gogo-protobuf, metadata not nullable) always writes ``metadata``, even
    empty: ``2a 00``."""
    series = field(1, b"\x01\x02\x03\x04") + field(2, sample(2.5, T0).SerializeToString())
    body = request(SYMBOLS) + field(5, series + b"\x2a\x00") + field(
        5, series + field(5, b"\x08\x02\x18\x03"))
    batch = decode_write_request_v2(body)
    assert batch.values.tolist() == [2.5, 2.5]
    assert batch.metadata == 1
    assert_same(batch, decode_write_request_v2(body, fast_path=False))


def test_special_values_keep_their_bits(fast_only):
    bits = [STALE, 0x7FF8000000000001, 0x8000000000000000, 0xFFF0000000000000, 0, 1]
    values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    times = [T0, -1, 0, 1, -(1 << 63), (1 << 63) - 1]
    body = request(SYMBOLS, *[write_v2_pb2.TimeSeries(labels_refs=[1, 2],
                                                      samples=[sample(v, t)])
                              for v, t in zip(values, times, strict=True)])
    batch = decode_write_request_v2(body)
    assert batch.values.view(np.uint64).tolist() == bits
    assert batch.timestamps.tolist() == times
    assert_same(batch, decode_write_request_v2(body, fast_path=False))


def test_long_series_exemplars_histograms_and_unpacked_refs():
    long_series = write_v2_pb2.TimeSeries(
        labels_refs=[1, 2], samples=[sample(i * 0.5, T0 + i * 15_000) for i in range(500)])
    exemplar_only = write_v2_pb2.TimeSeries(labels_refs=[1, 2], exemplars=[
        write_v2_pb2.Exemplar(labels_refs=[3, 4], value=2, timestamp=T0)])
    histogram = write_v2_pb2.TimeSeries(labels_refs=[1, 2, 3, 4], histograms=[
        write_v2_pb2.Histogram(count_int=3, sum=1.5, schema=-53, custom_values=[1, 2],
                               positive_spans=[write_v2_pb2.BucketSpan(offset=0, length=2)],
                               positive_deltas=[1, 1], timestamp=T0, start_timestamp=T0 - 1)])
    with_exemplar = write_v2_pb2.TimeSeries(labels_refs=[3, 4], samples=[sample(7, T0)],
                                            exemplars=[write_v2_pb2.Exemplar(value=1)])
    # labels_refs written unpacked (one varint field per ref), which parsers must accept
    unpacked = field(5, b"".join(b"\x08" + bytes([r]) for r in (1, 2, 3, 4))
                     + field(2, sample(9, T0).SerializeToString()))
    body = request(SYMBOLS, GOOD, long_series, exemplar_only, histogram, with_exemplar) + unpacked
    batch = both(body)
    assert np.bincount(batch.sample_series).tolist() == [1, 500, 0, 0, 1, 1]
    assert batch.values[1:501].tolist() == [i * 0.5 for i in range(500)]
    assert (batch.histograms, batch.exemplars, batch.metadata) == (1, 2, 0)
    assert batch.series_keys[5] == batch.series_keys[0]


def test_protobuf_merge_rules_are_followed(monkeypatch):
    """Repeated singular fields: the last one wins; repeated messages merge. The fast path
    leaves these to protobuf; the result must not depend on it."""
    s = sample(1.0, T0).SerializeToString()
    twice = s + b"\x10" + encode_uvarint(T0 + 5) + b"\x09" + struct.pack("<d", 2.0)
    meta = field(5, b"\x08\x01") + field(5, b"\x18\x02")  # merged: type 1, help 2
    unknown = b"\x78\x05" + field(14, b"xyz") + b"\x7d\x00\x00\x00\x00"  # fields 15, 14, 15
    split_refs = field(1, b"\x01\x02") + field(1, b"\x03\x04")
    # fields out of the writers' order (read as varint streams), an unknown varint field
    reordered = (b"\x09" + struct.pack("<d", 3.0) + b"\x18\x05\x40\x01\x10"
                 + encode_uvarint(T0 + 9))
    meta_reordered = field(5, b"\x20\x03\x48\x00\x08\x01")
    series = [field(1, b"\x01\x02") + field(2, twice),
              field(1, b"\x01\x02") + field(2, s) + meta,
              unknown + field(1, b"\x01\x02") + field(2, s) + unknown,
              split_refs + field(2, s),
              field(1, b"\x01\x02") + field(2, reordered) + meta_reordered]
    body = field(4, b"") + b"".join(field(4, x.encode()) for x in SYMBOLS[1:]) + b"".join(
        field(5, x) for x in series)
    batch = both(body)
    assert batch.timestamps.tolist() == [T0 + 5, T0, T0, T0, T0 + 9]
    assert batch.values.tolist() == [2.0, 1.0, 1.0, 1.0, 3.0]
    assert batch.metadata == 2
    assert batch.series_keys[3] == batch.series_keys[0] + SPEC_V1[18:31]
    # the messages out of order went through the varint-stream reader, which read the last
    # two (the first has a repeated value, left to protobuf)
    varint_stream, seen = rw2._varint_fields, []
    monkeypatch.setattr(rw2, "_varint_fields",
                        lambda *args: seen.append(varint_stream(*args)) or seen[-1])
    assert_same(rw2._decode_fast(body), batch)
    assert [ok.tolist() for _, ok in seen] == [[False, True], [True]]


def test_realistic_request_round_trip(fast_only):
    """2000 series, 10 labels each, node-exporter-like; compared with the reference path."""
    rng = np.random.default_rng(7)
    symbols, series = [""], []
    where: dict[str, int] = {}
    for i in range(2000):
        labels = [("__name__", f"node_metric_{i % 97}_total"), ("cpu", str(i % 16)),
                  ("instance", f"host-{i % 13}.example.org:9100"), ("job", "node"),
                  ("mode", ("idle", "user", "system")[i % 3])]
        refs = []
        for s in (x for pair in labels for x in pair):
            if s not in where:
                where[s] = len(symbols)
                symbols.append(s)
            refs.append(where[s])
        series.append(write_v2_pb2.TimeSeries(
            labels_refs=refs, samples=[sample(float(rng.normal()), T0 + int(rng.integers(9)))],
            metadata=write_v2_pb2.Metadata(type=1)))
    body = request(symbols, *series)
    batch = decode_write_request_v2(body)
    assert_same(batch, decode_write_request_v2(body, fast_path=False))
    assert len(batch.series_keys) == 2000
    assert batch.metadata == 2000


def test_many_distinct_label_names(fast_only):
    """Enough (name, value) combinations that labels are deduplicated by sorting."""
    symbols = ["", *[f"n{i}" for i in range(1100)], *[f"v{i}" for i in range(1100)]]
    series = [write_v2_pb2.TimeSeries(labels_refs=[1 + i, 1101 + (i * 7) % 1100, 1, 1101],
                                      samples=[sample(i, T0)]) for i in range(1100)]
    body = request(symbols, *series)
    batch = decode_write_request_v2(body)
    assert_same(batch, decode_write_request_v2(body, fast_path=False))
    assert parse_label_bytes(batch.series_keys[5]) == [("n5", "v35"), ("n0", "v0")]


# --- fast path == reference path on random requests ---------------------------------------

SPECIAL_BITS = [0, STALE, 0x7FF8000000000001, 0x8000000000000000, 0x3FF0000000000000]
SPECIAL_TIMES = [0, -1, 1, T0, -(1 << 63), (1 << 63) - 1]


def random_samples(seed: int, n: int) -> list[write_v2_pb2.Sample]:
    """n samples mixing special and random value bits, timestamps and start timestamps."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 1 << 64, n, dtype=np.uint64, endpoint=False)
    bits = np.where(rng.random(n) < 0.4, rng.choice(np.array(SPECIAL_BITS, np.uint64), n), bits)
    times = np.where(rng.random(n) < 0.3, rng.choice(SPECIAL_TIMES, n),
                     rng.integers(T0, T0 + 10**9, n))
    starts = np.where(rng.random(n) < 0.3, T0 - 1, 0)
    return [sample(float(v), int(t), int(st)) for v, t, st in
            zip(bits.view(np.float64), times, starts, strict=True)]


@st.composite
def v2_requests(draw) -> bytes:
    symbols = ["", *draw(st.lists(label_text, min_size=1, max_size=8))]
    n = len(symbols)
    refs = st.integers(0, n - 1)
    ref_pairs = st.lists(refs, max_size=6).map(lambda r: r[:len(r) // 2 * 2])
    out = []
    for _ in range(draw(st.integers(0, 8))):
        ts = write_v2_pb2.TimeSeries(labels_refs=draw(ref_pairs))
        kind = draw(st.sampled_from(["samples", "samples", "histograms", "exemplars"]))
        if kind == "samples":
            count = draw(st.sampled_from([1, 1, 1, 2, 3, 40]))  # 40: over _MAX_FIELDS
            ts.samples.extend(random_samples(draw(st.integers(0, 2**32)), count))
        elif kind == "histograms":
            ts.histograms.append(write_v2_pb2.Histogram(count_float=2.5, timestamp=T0))
        if kind == "exemplars" or draw(st.booleans()):
            ts.exemplars.append(write_v2_pb2.Exemplar(labels_refs=draw(ref_pairs)[:2],
                                                      value=1.5, timestamp=T0))
        if draw(st.booleans()):
            ts.metadata.type = draw(st.integers(0, 7))
            ts.metadata.help_ref = draw(refs)
            ts.metadata.unit_ref = draw(st.sampled_from([0, n - 1]))
        if draw(st.booleans()):
            ts.created_timestamp = T0
        out.append(ts)
    return request(symbols, *out)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v2_requests())
def test_random_valid_requests_fast_equals_reference(body):
    # valid requests never need the reference path
    assert_same(rw2._decode_fast(body), decode_write_request_v2(body, fast_path=False))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v2_requests(), st.data())
def test_random_corruptions_fast_equals_reference(body, data):
    body = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        if not body:
            break
        at = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        if action == "flip":
            body[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set":
            body[at] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x09, 0x12, 0x2A]))
        elif action == "cut":
            del body[at:]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    try:
        both(bytes(body))
    except WireError:
        pass  # both paths raised the same message
