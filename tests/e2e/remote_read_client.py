"""Client side of Prometheus remote read, for the end-to-end tests.

Requests are built with the generated protobuf classes (wire/proto/remote_pb2.py).
Responses are decoded here by hand, independently of the server's code and of the protobuf
runtime: a small protobuf wire-format walker reads sample values as their raw 64 bits (so
NaN payloads such as Prometheus' stale marker are compared exactly), STREAMED_XOR_CHUNKS
frames are split and CRC-checked per shared/spec/remote-read.md §4, and chunks are decoded
with the bit-level reference decoder of tests/xor_reference.py.

A series set is a dict ``{labels: [(timestamp_ms, value_bits), ...]}`` where ``labels`` is
the tuple of (name, value) pairs in the order the server sent them.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field

import crc32c
import snappy

from tests.xor_reference import decode_chunk
from wire.proto import remote_pb2, types_pb2

SAMPLES = remote_pb2.ReadRequest.SAMPLES
STREAMED_XOR_CHUNKS = remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS

SAMPLES_CONTENT_TYPE = "application/x-protobuf"
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

STALE_NAN_BITS = 0x7FF0000000000002

_MATCH_TYPES = {
    "=": types_pb2.LabelMatcher.EQ,
    "!=": types_pb2.LabelMatcher.NEQ,
    "=~": types_pb2.LabelMatcher.RE,
    "!~": types_pb2.LabelMatcher.NRE,
}

Labels = tuple[tuple[str, str], ...]
SeriesSet = dict[Labels, list[tuple[int, int]]]


class ProtocolError(AssertionError):
    """The server's answer breaks the remote-read contract."""


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def build_request(queries: list[tuple[int, int, list[tuple[str, str, str]]]],
                  accepted: list[int] | None = None) -> bytes:
    """Serialized ReadRequest (not yet compressed). ``queries`` holds (start_ms, end_ms,
    matchers) with matchers as (name, op, value), op one of = != =~ !~."""
    req = remote_pb2.ReadRequest()
    for start, end, matchers in queries:
        q = req.queries.add()
        q.start_timestamp_ms = start
        q.end_timestamp_ms = end
        for name, op, value in matchers:
            m = q.matchers.add()
            m.type = _MATCH_TYPES[op]
            m.name = name
            m.value = value
    req.accepted_response_types.extend(accepted or [])
    return req.SerializeToString()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


def post_read(port: int, body: bytes, path: str = "/api/v1/read",
              timeout: float = 60.0) -> RawResponse:
    """POST a snappy-compressed ReadRequest with the headers Prometheus sends."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=snappy.compress(body), headers={
            "Content-Encoding": "snappy",
            "Accept-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "User-Agent": "Prometheus/2.42.0",
            "X-Prometheus-Remote-Read-Version": "0.1.0",
        })
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return RawResponse(resp.status, headers, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Protobuf wire format, by hand
# --------------------------------------------------------------------------------------------


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    out = 0
    for i in range(10):
        if pos >= len(buf):
            raise ProtocolError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return out, pos
    raise ProtocolError("varint longer than 10 bytes")


def _int64(u: int) -> int:
    u &= 2**64 - 1
    return u - 2**64 if u >= 2**63 else u


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one message: varints as int, fixed64 and
    fixed32 as raw little-endian bytes, length-delimited as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _uvarint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ProtocolError("field number 0")
        if wt == 0:
            val, pos = _uvarint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _uvarint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ProtocolError(f"unsupported wire type {wt}")
        if pos > end:
            raise ProtocolError("field runs past the end of its message")
        yield num, wt, val


def _expect(wt: int, want: int, what: str) -> None:
    if wt != want:
        raise ProtocolError(f"{what}: wire type {wt}, expected {want}")


def _label(buf: bytes) -> tuple[str, str]:
    name = value = ""
    for num, wt, val in _fields(buf):
        if num in (1, 2):
            _expect(wt, 2, "Label field")
            if num == 1:
                name = val.decode()
            else:
                value = val.decode()
    return name, value


def _check_labels(labels: Labels, what: str) -> None:
    names = [n for n, _ in labels]
    if len(set(names)) != len(names):
        raise ProtocolError(f"{what}: duplicate label names in {labels}")
    if names != sorted(names, key=str.encode):
        raise ProtocolError(f"{what}: labels not sorted by name: {labels}")
    if any(v == "" for _, v in labels):
        raise ProtocolError(f"{what}: empty label value in {labels}")


def _timeseries(buf: bytes) -> tuple[Labels, list[tuple[int, int]]]:
    labels: list[tuple[str, str]] = []
    samples: list[tuple[int, int]] = []
    for num, wt, val in _fields(buf):
        if num == 1:
            _expect(wt, 2, "TimeSeries.labels")
            labels.append(_label(val))
        elif num == 2:
            _expect(wt, 2, "TimeSeries.samples")
            value_bits, ts = 0, 0  # proto3 defaults: omitted fields are zero
            for snum, swt, sval in _fields(val):
                if snum == 1:
                    _expect(swt, 1, "Sample.value")
                    value_bits = int.from_bytes(sval, "little")
                elif snum == 2:
                    _expect(swt, 0, "Sample.timestamp")
                    ts = _int64(sval)
            samples.append((ts, value_bits))
        elif num in (3, 4):
            raise ProtocolError(f"unexpected exemplars/histograms (field {num}) in a float store")
    return tuple(labels), samples


def decode_samples_body(body: bytes, n_queries: int) -> list[SeriesSet]:
    """A SAMPLES response body (snappy block of ReadResponse) -> one series set per query."""
    try:
        raw = snappy.uncompress(body)
    except Exception as exc:  # the binding raises its own error types
        raise ProtocolError(f"SAMPLES body is not a snappy block: {exc}") from exc
    results: list[SeriesSet] = []
    for num, wt, val in _fields(raw):
        if num != 1:
            continue
        _expect(wt, 2, "ReadResponse.results")
        series: SeriesSet = {}
        seen: set[Labels] = set()
        for qnum, qwt, qval in _fields(val):
            if qnum != 1:
                continue
            _expect(qwt, 2, "QueryResult.timeseries")
            labels, samples = _timeseries(qval)
            _check_labels(labels, "SAMPLES series")
            if labels in seen:
                raise ProtocolError(f"series {labels} appears twice in one query result")
            seen.add(labels)
            ts = [t for t, _ in samples]
            if ts != sorted(set(ts)):
                raise ProtocolError(f"samples of {labels} not strictly ascending")
            if samples:  # a series without samples in range means nothing to a client
                series[labels] = samples
        results.append(series)
    if len(results) != n_queries:
        raise ProtocolError(f"{len(results)} query results for {n_queries} queries")
    return results


# --------------------------------------------------------------------------------------------
# STREAMED_XOR_CHUNKS
# --------------------------------------------------------------------------------------------


@dataclass
class ChunkInfo:
    min_time: int
    max_time: int
    encoding: int
    data: bytes


@dataclass
class Frame:
    query_index: int
    labels: Labels
    chunks: list[ChunkInfo] = field(default_factory=list)
    size: int = 0


def iter_stream_frames(body: bytes):
    """Split a STREAMED_XOR_CHUNKS body into frames (uvarint length, big-endian CRC32-C of
    the message, message), checking every CRC; yields the decoded ChunkedReadResponse."""
    pos = 0
    while pos < len(body):
        length, p = _uvarint(body, pos)
        if length == 0:
            raise ProtocolError(f"zero-length frame at byte {pos}")
        if p + 4 + length > len(body):
            raise ProtocolError(f"truncated frame at byte {pos}: declares {length} bytes, "
                                f"{len(body) - p - 4} left")
        want_crc = int.from_bytes(body[p:p + 4], "big")
        msg = body[p + 4:p + 4 + length]
        got_crc = crc32c.crc32c(msg)
        if got_crc != want_crc:
            raise ProtocolError(f"frame at byte {pos}: CRC32-C {want_crc:#010x} in the frame, "
                                f"{got_crc:#010x} computed")
        pos = p + 4 + length
        yield _chunked_read_response(msg, length)


def _chunked_read_response(msg: bytes, size: int) -> Frame:
    query_index = 0
    series_msgs = []
    for num, wt, val in _fields(msg):
        if num == 1:
            _expect(wt, 2, "ChunkedReadResponse.chunked_series")
            series_msgs.append(val)
        elif num == 2:
            _expect(wt, 0, "ChunkedReadResponse.query_index")
            query_index = _int64(val)
    if len(series_msgs) != 1:
        raise ProtocolError(f"frame holds {len(series_msgs)} ChunkedSeries, must hold exactly 1")
    labels: list[tuple[str, str]] = []
    chunks: list[ChunkInfo] = []
    for num, wt, val in _fields(series_msgs[0]):
        if num == 1:
            _expect(wt, 2, "ChunkedSeries.labels")
            labels.append(_label(val))
        elif num == 2:
            _expect(wt, 2, "ChunkedSeries.chunks")
            c = ChunkInfo(0, 0, 0, b"")
            for cnum, cwt, cval in _fields(val):
                if cnum == 1:
                    _expect(cwt, 0, "Chunk.min_time_ms")
                    c.min_time = _int64(cval)
                elif cnum == 2:
                    _expect(cwt, 0, "Chunk.max_time_ms")
                    c.max_time = _int64(cval)
                elif cnum == 3:
                    _expect(cwt, 0, "Chunk.type")
                    c.encoding = cval
                elif cnum == 4:
                    _expect(cwt, 2, "Chunk.data")
                    c.data = bytes(cval)
            chunks.append(c)
    return Frame(query_index, tuple(labels), chunks, size)


def _label_sort_key(labels: Labels):
    # the TSDB order: pairs compared name first, then value, byte-wise; a prefix sorts first
    return [(n.encode(), v.encode()) for n, v in labels]


def decode_streamed_body(body: bytes, queries: list[tuple[int, int, list]],
                         max_pad_bits: int = 7) -> list[SeriesSet]:
    """A STREAMED_XOR_CHUNKS body -> one series set per query, samples trimmed to each
    query's [start, end] as the Prometheus client does. Checks the framing rules of
    remote-read.md §4.3 and, per chunk, that min/max time match the decoded samples.
    ``max_pad_bits``: see tests/xor_reference.decode_chunk (8 for Prometheus' chunks)."""
    results: list[SeriesSet] = [{} for _ in queries]
    last_query, last_labels, last_size = -1, None, 0
    for frame in iter_stream_frames(body):
        qi = frame.query_index
        if not 0 <= qi < len(queries):
            raise ProtocolError(f"query_index {qi} out of range")
        _check_labels(frame.labels, "streamed series")
        if qi < last_query:
            raise ProtocolError(f"query {qi} streamed after query {last_query}")
        if qi != last_query:
            last_query, last_labels = qi, None
        if last_labels is not None:
            if frame.labels == last_labels:
                # a continuation frame: allowed only for a series too large for one frame
                if last_size < 1 << 19:
                    raise ProtocolError(f"series {frame.labels} split over several frames "
                                        f"although its first frame is only {last_size} bytes")
            elif _label_sort_key(frame.labels) < _label_sort_key(last_labels):
                raise ProtocolError(f"series out of order: {frame.labels} after {last_labels}")
        if frame.labels != last_labels and frame.labels in results[qi]:
            raise ProtocolError(f"series {frame.labels} streamed again after other series")
        last_labels, last_size = frame.labels, frame.size
        start, end = queries[qi][0], queries[qi][1]
        samples = results[qi].setdefault(frame.labels, [])
        prev_min = None
        for c in frame.chunks:
            if c.encoding != 1:
                raise ProtocolError(f"chunk encoding {c.encoding}, expected XOR (1)")
            if prev_min is not None and c.min_time < prev_min:
                raise ProtocolError(f"chunks of {frame.labels} not in ascending min_time")
            prev_min = c.min_time
            decoded = decode_chunk(c.data, max_pad_bits=max_pad_bits)
            if not decoded:
                raise ProtocolError(f"empty chunk in {frame.labels}")
            if len(decoded) > 65535:
                raise ProtocolError("chunk with more than 65535 samples")
            if decoded[0][0] != c.min_time or decoded[-1][0] != c.max_time:
                raise ProtocolError(
                    f"chunk of {frame.labels} says [{c.min_time}, {c.max_time}] but holds "
                    f"[{decoded[0][0]}, {decoded[-1][0]}]")
            ts = [t for t, _ in decoded]
            if any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
                raise ProtocolError(f"chunk of {frame.labels} has non-ascending timestamps")
            samples.extend(s for s in decoded if start <= s[0] <= end)
    for series in results:
        for labels in list(series):
            samples = sorted(set(series[labels]))
            if len({t for t, _ in samples}) != len(samples):
                raise ProtocolError(f"overlapping chunks of {labels} disagree on a value")
            if samples:
                series[labels] = samples
            else:
                del series[labels]  # chunks entirely outside the range: the client drops them
    return results


# --------------------------------------------------------------------------------------------
# One call
# --------------------------------------------------------------------------------------------


def read(port: int, queries: list[tuple[int, int, list[tuple[str, str, str]]]],
         accepted: list[int] | None = None,
         max_pad_bits: int = 7) -> tuple[list[SeriesSet], RawResponse]:
    """Run a remote read and decode whichever response type the server chose (by its
    Content-Type, as the Prometheus client does)."""
    resp = post_read(port, build_request(queries, accepted))
    if resp.status != 200:
        raise ProtocolError(f"remote read answered {resp.status}: {resp.body[:500]!r}")
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith(STREAMED_CONTENT_TYPE):
        return decode_streamed_body(resp.body, queries, max_pad_bits), resp
    if ctype.startswith(SAMPLES_CONTENT_TYPE):
        return decode_samples_body(resp.body, len(queries)), resp
    raise ProtocolError(f"unknown remote-read Content-Type {ctype!r}")
