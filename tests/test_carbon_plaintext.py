"""Carbon plaintext lines: the bulk parser against a line-by-line reference of carbon's code."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wire.carbon_plaintext import (
    MAX_LINE,
    LineBuffer,
    parse_decimals,
    parse_floats,
    parse_lines,
)

NOW = 1_767_225_600_123


def reference(buf: bytes, now_ms: int, datagram: bool = False):
    """Carbon 1.1's receivers, one line at a time (lineReceived / datagramReceived, then
    metricReceived), with our refusals for what carbon drops the connection for."""
    points, rejected = [], {}

    def refuse(reason):
        rejected[reason] = rejected.get(reason, 0) + 1

    lines = buf.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for raw in lines:
        if len(raw) > MAX_LINE:
            refuse("line_too_long")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            refuse("invalid_utf8")
            continue
        for line in (text.splitlines() or [""]) if datagram else [text]:
            try:
                metric, value, timestamp = line.strip().split()
            except ValueError:
                refuse("invalid_line")
                continue
            try:
                ts = float(timestamp)
            except ValueError:
                refuse("invalid_timestamp")
                continue
            try:
                v = float(value)
            except ValueError:
                refuse("invalid_value")
                continue
            if v != v:
                refuse("nan_value")
            elif not math.isfinite(ts) or abs(ts * 1000.0) >= 9.2e18:
                refuse("invalid_timestamp")
            else:
                ms = now_ms if int(ts) == -1 else round(ts * 1000.0)
                points.append((metric.encode("utf-8"), ms, v))
    return points, rejected


def parsed(buf: bytes, datagram: bool = False):
    out = parse_lines(buf, NOW, datagram=datagram)
    assert len(out.keys) == len(out.timestamps) == len(out.values)
    assert out.timestamps.dtype == np.int64 and out.values.dtype == np.float64
    return list(zip(out.keys, out.timestamps.tolist(), out.values.tolist(),
                    strict=True)), out.rejected


def same(a, b) -> bool:
    """Points equal bit for bit (so -0.0 differs from 0.0)."""
    return len(a) == len(b) and all(
        ka == kb and ta == tb and struct.pack("<d", va) == struct.pack("<d", vb)
        for (ka, ta, va), (kb, tb, vb) in zip(a, b, strict=True))


def check(buf: bytes, datagram: bool = False) -> None:
    got, got_rejected = parsed(buf, datagram)
    want, want_rejected = reference(buf, NOW, datagram)
    assert same(got, want), (buf[:300], got[:5], want[:5])
    assert got_rejected == want_rejected, buf[:300]


# --- examples ------------------------------------------------------------------------------


def test_carbon_lines():
    buf = (b"servers.web01.cpu.user 12.5 1700000000\n"
           b"servers.web01.cpu.user 12.7 -1\n"
           b"disk.used;datacenter=dc1;rack=a1;server=web01 4096 1700000000.25\n"
           b"a.b 1e3 1700000001\r\n"
           b"  a.c\t-3.5   1700000002  \n"
           b"a.nan nan 1700000000\n"
           b"only two\n"
           b"a.b x 1\n"
           b"a.b 1 N\n"
           b"\n")
    points, rejected = parsed(buf)
    assert points == [(b"servers.web01.cpu.user", 1_700_000_000_000, 12.5),
                      (b"servers.web01.cpu.user", NOW, 12.7),
                      (b"disk.used;datacenter=dc1;rack=a1;server=web01", 1_700_000_000_250,
                       4096.0),
                      (b"a.b", 1_700_000_001_000, 1000.0),
                      (b"a.c", 1_700_000_002_000, -3.5)]
    assert rejected == {"nan_value": 1, "invalid_line": 2, "invalid_value": 1,
                        "invalid_timestamp": 1}
    check(buf)


def test_minus_one_is_carbons_int_rule_and_fractions_round():
    points, _ = parsed(b"a -1 -1\nb 1 -1.9\nc 1 -2\nd 1 0.0005\ne 1 1700000000.0015\n")
    assert [t for _, t, _ in points] == [NOW, NOW, -2000, 0, 1_700_000_000_002]


def test_infinite_values_are_kept_infinite_timestamps_refused():
    points, rejected = parsed(b"a inf 1\nb -Infinity 2\nc 1 inf\nd 1 nan\ne 1 1e300\n")
    assert [v for _, _, v in points] == [math.inf, -math.inf]
    assert rejected == {"invalid_timestamp": 3}


def test_overlong_and_non_utf8_lines_are_refused_alone():
    buf = b"a 1 1\n" + b"x" * MAX_LINE + b" 1 1\n" + b"\xff\xfe 1 1\nb 2 2\nnon\xc3\xa9.ascii 3 3"
    points, rejected = parsed(buf)
    assert points == [(b"a", 1000, 1.0), (b"b", 2000, 2.0), (b"non\xc3\xa9.ascii", 3000, 3.0)]
    assert rejected == {"line_too_long": 1, "invalid_utf8": 1}
    check(buf)


def test_datagrams_split_lines_like_str_splitlines():
    buf = b"a 1 1\rb 2 2\x1cc 3 3\n\nd 4 4\r\n"
    points, rejected = parsed(buf, datagram=True)
    assert [k for k, _, _ in points] == [b"a", b"b", b"c", b"d"]
    assert rejected == {"invalid_line": 1}
    check(buf, datagram=True)


def test_examples_of_refused_lines_are_kept_for_the_log():
    out = parse_lines(b"".join(b"bad-%d\n" % i for i in range(10)) + b"a 1 1\n", NOW)
    assert out.rejected == {"invalid_line": 10}
    assert 0 < len(out.examples) <= 4 and out.examples[0] == ("invalid_line", b"bad-0")


# --- properties ------------------------------------------------------------------------------

_paths = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_.\-]{0,30}", fullmatch=True),
    st.from_regex(r"[a-z]{1,5}(;[a-z]{1,3}=[a-z0-9]{1,3}){0,3}", fullmatch=True),
    st.text(min_size=1, max_size=8).map(lambda s: s.replace("\n", "")),
)
_numbers = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.tuples(st.floats(-1e6, 1e6), st.integers(0, 8)).map(lambda x: f"{x[0]:.{x[1]}f}"),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.sampled_from(["-1", "-1.5", "-2", "0", "-0", ".5", "5.", "-.5", ".", "-", "+1", "1e3",
                     "1E-3", "nan", "-nan", "inf", "Infinity", "1_000", "0x10", "", "1..2",
                     "--1", "1-", "9007199254740993", "12345678901234567", "N", "1e400",
                     "00012", "1.5e-7", "١٢"]),
)
_separators = st.sampled_from([" ", " ", " ", "  ", "\t", " \t "])


@st.composite
def carbon_lines(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        fields = [draw(_paths), draw(_numbers), draw(_numbers)]
        if draw(st.integers(0, 9)) == 0:
            fields = fields[:draw(st.integers(0, 2))] + [draw(_numbers)] * draw(st.integers(0, 2))
        seps = [draw(_separators) for _ in fields]
        line = "".join(s + f for s, f in zip(seps, fields, strict=True))[len(seps[0]):] \
            if fields else ""
        if draw(st.integers(0, 9)) == 0:
            line = draw(_separators) + line + draw(st.sampled_from(["", " ", "\r", "\t"]))
        lines.append(line.encode("utf-8", "surrogatepass"))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    return end.join(lines) + (end if lines and draw(st.booleans()) else b"")


@settings(max_examples=150, deadline=None)
@given(carbon_lines())
@example(b"a 1 1\r\nb 2 2\r\n")
@example(b"a -0 -1")
def test_parser_matches_the_reference(buf):
    check(buf)
    check(buf, datagram=True)


@settings(max_examples=250, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_and_match_the_reference(buf):
    check(buf)
    check(buf, datagram=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False).map(repr),
                          st.floats(-1e9, 1e9).map(lambda x: "%.3f" % x),
                          st.integers(0, 2**60).map(str),
                          st.text("0123456789.-+e", max_size=17)), max_size=50))
def test_decimal_conversion_is_exact_where_it_claims(fields):
    raw = [f.encode() for f in fields]
    buf = b" ".join(raw)
    data = np.frombuffer(buf, np.uint8)
    lengths = np.array([len(f) for f in raw], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    values, ok = parse_decimals(data, starts, lengths)
    for f, v, converted in zip(fields, values.tolist(), ok.tolist(), strict=True):
        if converted:
            assert struct.pack("<d", v) == struct.pack("<d", float(f)), f
    rest, rest_ok = parse_floats(raw)
    for f, v, good in zip(fields, rest.tolist(), rest_ok.tolist(), strict=True):
        try:
            want = float(f)
        except ValueError:
            assert not good
        else:
            assert good and (v == want or (v != v and want != want))


def test_the_common_spellings_take_the_exact_integer_path():
    fields = [b"0.35", b"155574.05", b"5219463168.0", b"1767225600", b"-1", b"-12.5", b".5",
              b"1.", b"1234567890123456"]
    buf = b" ".join(fields)
    lengths = np.array([len(f) for f in fields], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    values, ok = parse_decimals(np.frombuffer(buf, np.uint8), starts, lengths)
    assert ok.all() and values.tolist() == [float(f) for f in fields]


# --- carrying partial lines over reads -------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(carbon_lines(), st.lists(st.integers(0, 400), max_size=12))
def test_line_buffer_gives_the_same_lines_however_the_stream_is_cut(buf, cuts):
    cuts = sorted({min(c, len(buf)) for c in cuts})
    pieces = [buf[a:b] for a, b in zip([0, *cuts], [*cuts, len(buf)], strict=True)]
    lb = LineBuffer()
    got = b""
    for i in range(0, len(pieces), 2):
        lines, dropped = lb.feed(pieces[i:i + 2])
        assert dropped == 0 and (not lines or lines.endswith(b"\n"))
        got += lines
    assert got + lb.flush() == buf


def test_line_buffer_drops_an_overlong_line_and_goes_on():
    lb = LineBuffer(max_line=10)
    assert lb.feed([b"a 1 1\nxxxxx"]) == (b"a 1 1\n", 0)
    assert lb.feed([b"xxxxxxxxxx"]) == (b"", 1)  # over the limit without a newline
    assert lb.feed([b"xxx"]) == (b"", 0)
    assert lb.feed([b"x\nb 2 2\n", b"c"]) == (b"b 2 2\n", 0)
    assert lb.feed([b" 3 3\n" + b"y" * 11]) == (b"c 3 3\n", 1)
    assert lb.flush() == b""


@pytest.mark.parametrize("size", [1, 2 << 10, 200 << 10])
def test_big_buffers_parse_like_small_ones(size):
    rng = random.Random(size)
    lines = [b"host%d.cpu.%d %r %d" % (i % 97, i % 7, rng.uniform(-1e5, 1e5),
                                       1_700_000_000 + i) for i in range(size)]
    check(b"\n".join(lines) + b"\n")
