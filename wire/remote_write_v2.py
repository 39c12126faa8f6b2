"""Remote write 2.0: decompressed ``io.prometheus.write.v2.Request`` bytes -> WriteBatch.

The result is the same :class:`wire.remote_write.WriteBatch` as for 1.0, so the HTTP layer
treats both alike: each series key is the 1.0 form of the series' labels, its ``Label``
records ``0a len [0a len name] [12 len value]`` written canonically (an empty name or value
left out, as protobuf writers do), so :func:`parse_label_bytes` reads it and a label set has
the same key whichever protocol carried it. Start timestamps -- rc.3
``TimeSeries.created_timestamp`` (6), rc.4 ``Sample.start_timestamp`` (3) -- are accepted
and ignored. Histograms and exemplars are counted, not decoded; ``metadata`` counts the
series whose metadata has a field set.

Validation (spec §7.1; a failure rejects the request with a WireError naming it):
``symbols[0]`` is ``""``, every ref (labels, exemplar labels, help, unit) indexes
``symbols``, ``labels_refs`` lists have even length, no series has both samples and
histograms, and every series carries a sample, a histogram or an exemplar. (The spec asks
for a sample or a histogram, but Prometheus' sender puts an exemplar whose sample went out
earlier in a series of its own; refusing those would drop whole batches.) The label rules
of §3 are the store's, as for 1.0: ``parse_label_bytes`` checks UTF-8, the resolver the rest.

Decoding (Prometheus sends ~2000 one-sample series per request; reading them through
protobuf objects costs ~4.5 us per series, this path ~1.2 us):

1. ``RequestV2Raw`` splits the request into symbols and series, as bytes;
2. numpy walks the fields of all series in step (one iteration per field: 3 for
   Prometheus' ``labels_refs, sample, metadata``) and decodes the packed ``labels_refs``
   of all series at once;
3. a Sample is an optional ``09 <double>`` then varint fields, a Metadata varint fields
   only: read field by field in the writers' order for all messages at once, or, in any
   other order, as streams of varints (tag, value, ...);
4. series the walk does not vouch for (histograms, exemplars, over ``_MAX_FIELDS`` fields,
   repeated or mistyped fields, long tags...) are parsed one by one with
   ``TimeSeriesV2Raw``, their Sample messages left as bytes for step 3; Sample and
   Metadata messages step 3 cannot read (repeated fields, ...) are parsed with protobuf;
5. label records are built once per distinct (name, value) pair of the request (~200 of
   10k labels in 2000 node-exporter series) by one byte gather, then joined into keys.

Anything invalid, or that the fast path cannot classify, goes to the reference path (full
generated-schema parse, Python loops): it defines the behaviour, producing the result or
the error message. ``fast_path=False`` runs it alone (tests compare both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError, Message

from tsdb.encoding.segments import expand_ranges
from wire.errors import WireError
from wire.messages import join7, label_record, parse_message
from wire.proto import raw_pb2, write_v2_pb2
from wire.remote_write import WriteBatch

__all__ = ["decode_write_request_v2"]

U64 = np.uint64
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_PAD = bytes(16)  # reads of a field header never leave the buffer
_MAX_FIELDS = 32  # per series in the numpy walk; longer series are parsed one by one
_DEDUPE_TABLE_MAX = 1 << 20  # labels are deduplicated by a table up to this many codes


class _Unsure(Exception):
    """The fast path cannot vouch for the request: the reference path decides."""


def decode_write_request_v2(body: bytes, *, fast_path: bool = True) -> WriteBatch:
    """Decode a snappy-decompressed 2.0 ``Request``; WireError if malformed or invalid."""
    if fast_path:
        try:
            return _decode_fast(body)
        except _Unsure:
            pass
    return _decode_reference(body)


# --- reference path ---------------------------------------------------------------------


def _decode_reference(body: bytes) -> WriteBatch:
    request = parse_message(write_v2_pb2.Request, body, "remote-write 2.0 Request")
    symbols = list(request.symbols)
    _check_symbol_zero(symbols, len(request.timeseries))
    n_symbols = len(symbols)
    records: dict[tuple[int, int], bytes] = {}  # label record per (name, value) ref pair
    keys: list[bytes] = []
    counts: list[int] = []
    all_ts: list[np.ndarray] = [np.empty(0, np.int64)]
    all_vals: list[np.ndarray] = [np.empty(0, np.float64)]
    histograms = exemplars = metadata = 0
    for i, ts in enumerate(request.timeseries):
        where = f"timeseries[{i}]"
        refs = list(ts.labels_refs)
        _check_refs(refs, n_symbols, f"{where}.labels_refs")
        n_samples, n_histograms = len(ts.samples), len(ts.histograms)
        n_exemplars = len(ts.exemplars)
        _check_contents(where, n_samples, n_histograms, n_exemplars)
        for k, exemplar in enumerate(ts.exemplars):
            _check_refs(list(exemplar.labels_refs), n_symbols,
                        f"{where}.exemplars[{k}].labels_refs")
        meta = ts.metadata
        _check_metadata_refs(where, meta.help_ref, meta.unit_ref, n_symbols)
        key = []
        for pair in zip(refs[::2], refs[1::2], strict=True):
            record = records.get(pair)
            if record is None:
                record = records[pair] = label_record(symbols[pair[0]], symbols[pair[1]])[0]
            key.append(record)
        keys.append(b"".join(key))
        counts.append(n_samples)
        all_ts.append(np.fromiter((s.timestamp for s in ts.samples), np.int64, n_samples))
        all_vals.append(np.fromiter((s.value for s in ts.samples), np.float64, n_samples))
        histograms += n_histograms
        exemplars += n_exemplars
        metadata += bool(meta.type or meta.help_ref or meta.unit_ref)
    sample_series = np.repeat(np.arange(len(keys), dtype=np.int64),
                              np.array(counts, dtype=np.int64))
    return WriteBatch(keys, sample_series, np.concatenate(all_ts), np.concatenate(all_vals),
                      histograms, exemplars, metadata)


def _check_symbol_zero(symbols: list[str], n_series: int) -> None:
    if symbols and symbols[0] != "":
        raise WireError(f"invalid remote-write 2.0 Request: symbols[0] must be the empty "
                        f"string, got {symbols[0][:64]!r}")
    if not symbols and n_series:
        raise WireError("invalid remote-write 2.0 Request: the symbol table is empty "
                        "(symbols[0] must be the empty string)")


def _check_refs(refs: list[int], n_symbols: int, where: str) -> None:
    if len(refs) % 2:
        raise WireError(f"invalid remote-write 2.0 Request: {where} has odd length "
                        f"{len(refs)} (name/value pairs expected)")
    for k, ref in enumerate(refs):
        if ref >= n_symbols:
            raise WireError(f"invalid remote-write 2.0 Request: {where}[{k}] = {ref} is out "
                            f"of range: there are {n_symbols} symbols")


def _check_contents(where: str, n_samples: int, n_histograms: int, n_exemplars: int) -> None:
    if n_samples and n_histograms:
        raise WireError(f"invalid remote-write 2.0 Request: {where} has both samples "
                        f"({n_samples}) and histograms ({n_histograms})")
    if not (n_samples or n_histograms or n_exemplars):
        raise WireError(f"invalid remote-write 2.0 Request: {where} has no samples, "
                        "histograms or exemplars")


def _check_metadata_refs(where: str, help_ref: int, unit_ref: int, n_symbols: int) -> None:
    for name, ref in (("help_ref", help_ref), ("unit_ref", unit_ref)):
        if ref >= n_symbols:
            raise WireError(f"invalid remote-write 2.0 Request: {where}.metadata.{name} = "
                            f"{ref} is out of range: there are {n_symbols} symbols")


# --- fast path --------------------------------------------------------------------------


def _decode_fast(body: bytes) -> WriteBatch:
    try:
        request = raw_pb2.RequestV2Raw.FromString(body)
    except DecodeError:
        raise _Unsure from None
    symbols = list(request.symbols)
    series = list(request.timeseries)
    if (symbols and symbols[0]) or (series and not symbols):
        raise _Unsure
    table = _SymbolTable(symbols)
    if not series:
        return WriteBatch([], np.empty(0, np.int64), np.empty(0, np.int64),
                          np.empty(0, np.float64))

    lengths = np.fromiter(map(len, series), dtype=np.int64, count=len(series))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    joined = b"".join([*series, _PAD])
    buf = np.frombuffer(joined, dtype=np.uint8)
    walk = _SeriesWalk.of(buf, starts, ends)
    slow = _SlowSeries.parse(series, np.flatnonzero(~walk.fast), table.size)

    refs, ref_counts = _merge_refs(walk, slow, len(series))
    if np.any(ref_counts & 1) or (len(refs) and int(refs.max()) >= table.size):
        raise _Unsure
    keys = table.label_keys(refs.astype(np.int64), ref_counts // 2)

    # Sample messages: the fast series' spans in the joined series, then the slow series'
    # messages appended behind them; decoded together, then put in wire order
    if slow.sample_payloads:
        buf = np.frombuffer(b"".join([joined, *slow.sample_payloads, _PAD]), dtype=np.uint8)
    slow_lengths = np.fromiter(map(len, slow.sample_payloads), dtype=np.int64,
                               count=len(slow.sample_payloads))
    slow_ends = len(joined) + np.cumsum(slow_lengths)  # behind the first padding
    sample_series = np.concatenate([walk.sample_series, slow.sample_series])
    sample_starts = np.concatenate([walk.sample_starts, slow_ends - slow_lengths])
    sample_ends = np.concatenate([walk.sample_ends, slow_ends])
    if np.any(sample_series[1:] < sample_series[:-1]):
        order = np.argsort(sample_series, kind="stable")  # keeps each series' sample order
        sample_series, sample_starts, sample_ends = (
            sample_series[order], sample_starts[order], sample_ends[order])
    # a Sample is an optional ``09 <8-byte value>`` then varint fields
    has_value = (buf[sample_starts] == 0x09) & (sample_ends - sample_starts >= 9)
    fields, ok = _varint_messages(buf, sample_starts + 9 * has_value, sample_ends,
                                  ((0x10, 2), (0x18, 3)))
    bits = np.zeros(len(sample_starts), dtype=U64)
    bits[has_value] = _read_u64(buf, sample_starts[has_value] + 1)
    timestamps = fields[2].view(np.int64)
    for i in np.flatnonzero(~ok).tolist():
        sample = _parse_or_unsure(write_v2_pb2.Sample, buf, sample_starts[i], sample_ends[i])
        bits[i] = np.float64(sample.value).view(U64)
        timestamps[i] = sample.timestamp
    if np.any((np.bincount(sample_series, minlength=len(series)) == 0) & walk.fast):
        raise _Unsure  # a fast series has no histograms or exemplars: it needs a sample

    # metadata: type 1, help_ref 3, unit_ref 4 (32-bit fields)
    fields, ok = _varint_messages(buf, walk.meta_starts, walk.meta_ends,
                                  ((0x08, 1), (0x18, 3), (0x20, 4)))
    kind, help_ref, unit_ref = (fields[k] & U64(0xFFFF_FFFF) for k in (1, 3, 4))
    for i in np.flatnonzero(~ok).tolist():
        meta = _parse_or_unsure(write_v2_pb2.Metadata, buf, walk.meta_starts[i],
                                walk.meta_ends[i])
        kind[i], help_ref[i], unit_ref[i] = meta.type & 0xFFFF_FFFF, meta.help_ref, meta.unit_ref
    if len(kind) and max(int(help_ref.max()), int(unit_ref.max())) >= table.size:
        raise _Unsure
    metadata = int(np.count_nonzero(kind | help_ref | unit_ref)) + slow.metadata
    return WriteBatch(keys, sample_series, timestamps, bits.view(np.float64), slow.histograms,
                      slow.exemplars, metadata)


@dataclass
class _SeriesWalk:
    """Which series the numpy walk decodes (``fast``) and the spans of their fields."""

    fast: np.ndarray  # bool per series
    refs: np.ndarray  # uint64 labels_refs of the fast series, in series order
    ref_counts: np.ndarray  # int64 per fast series, in series order
    sample_series: np.ndarray  # int64 series of each Sample message (wire order per series)
    sample_starts: np.ndarray
    sample_ends: np.ndarray
    meta_starts: np.ndarray  # the Metadata message of each fast series that has one
    meta_ends: np.ndarray

    @classmethod
    def of(cls, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> _SeriesWalk:
        n = len(starts)
        f = _tokenize(buf, starts, ends, _MAX_FIELDS)
        num, wire, msg = f.number, f.wire_type, f.msg
        fast = f.complete.copy()
        # histograms and exemplars (counted and checked by protobuf), mistyped known fields
        slow = ((num == 3) | (num == 4) | (((num == 1) | (num == 2) | (num == 5)) & (wire != _LEN))
                | ((num == 6) & (wire != _VARINT)))
        fast[msg[slow]] = False
        for number in (1, 5):  # several packed chunks, several metadata to merge: protobuf
            fast &= np.bincount(msg[num == number], minlength=n) <= 1

        is_refs = np.flatnonzero((num == 1) & fast[msg])
        is_refs = is_refs[np.argsort(msg[is_refs], kind="stable")]
        refs, counts, clean = _packed_varints(buf, f.start[is_refs], f.end[is_refs], 4)
        if not clean.all():  # 5-byte varints (truncated to 32 bits by protobuf), bad ends
            fast[msg[is_refs[~clean]]] = False
            is_refs = is_refs[clean]
            refs, counts, _ = _packed_varints(buf, f.start[is_refs], f.end[is_refs], 4)
        ref_counts = np.zeros(n, dtype=np.int64)
        ref_counts[msg[is_refs]] = counts

        is_sample = (num == 2) & fast[msg]
        is_meta = (num == 5) & fast[msg]
        return cls(fast, refs, ref_counts[fast], msg[is_sample], f.start[is_sample],
                   f.end[is_sample], f.start[is_meta], f.end[is_meta])


@dataclass
class _SlowSeries:
    """Series parsed one by one with ``TimeSeriesV2Raw`` (Sample messages left as bytes)."""

    index: list[int]
    refs: list[list[int]]
    sample_series: np.ndarray  # int64 per Sample message
    sample_payloads: list[bytes]
    histograms: int = 0
    exemplars: int = 0
    metadata: int = 0

    @classmethod
    def parse(cls, series: list[bytes], index: np.ndarray, n_symbols: int) -> _SlowSeries:
        out = cls(index.tolist(), [], np.empty(0, np.int64), [])
        owners: list[int] = []
        for i in out.index:
            try:
                ts = raw_pb2.TimeSeriesV2Raw.FromString(series[i])
            except DecodeError:
                raise _Unsure from None
            n_samples, n_histograms, n_exemplars = (len(ts.samples), len(ts.histograms),
                                                    len(ts.exemplars))
            if (n_samples and n_histograms) or not (n_samples or n_histograms or n_exemplars):
                raise _Unsure
            for exemplar in ts.exemplars:
                refs = exemplar.labels_refs
                if len(refs) % 2 or (len(refs) and max(refs) >= n_symbols):
                    raise _Unsure
            meta = ts.metadata
            if meta.help_ref >= n_symbols or meta.unit_ref >= n_symbols:
                raise _Unsure
            out.refs.append(list(ts.labels_refs))
            out.sample_payloads += ts.samples
            owners += [i] * n_samples
            out.histograms += n_histograms
            out.exemplars += n_exemplars
            out.metadata += bool(meta.type or meta.help_ref or meta.unit_ref)
        out.sample_series = np.array(owners, dtype=np.int64)
        return out


def _merge_refs(walk: _SeriesWalk, slow: _SlowSeries, n: int) -> tuple[np.ndarray, np.ndarray]:
    """labels_refs of all series back to back in series order (uint64), and their counts."""
    counts = np.zeros(n, dtype=np.int64)
    counts[walk.fast] = walk.ref_counts
    if not slow.index:
        return walk.refs, counts
    slow_counts = np.fromiter(map(len, slow.refs), dtype=np.int64, count=len(slow.refs))
    counts[slow.index] = slow_counts
    starts = np.cumsum(counts) - counts
    refs = np.empty(int(counts.sum()), dtype=U64)
    refs[expand_ranges(starts[walk.fast], walk.ref_counts)] = walk.refs
    refs[expand_ranges(starts[slow.index], slow_counts)] = [r for refs in slow.refs for r in refs]
    return refs, counts


def _parse_or_unsure(cls: type[Message], buf: np.ndarray, start: int, end: int) -> Message:
    try:
        return cls.FromString(buf[start:end].tobytes())
    except DecodeError:
        raise _Unsure from None


# --- label keys -------------------------------------------------------------------------


class _SymbolTable:
    """The symbols as one byte blob, to build label records from with numpy."""

    def __init__(self, symbols: list[bytes]) -> None:
        self.size = len(symbols)
        blob = b"".join(symbols)
        self.lengths = np.fromiter(map(len, symbols), dtype=np.int64, count=len(symbols))
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.blob = np.frombuffer(blob, dtype=np.uint8)
        # protobuf checks each string; one check of the joined bytes is as strict when no
        # symbol starts with a continuation byte, i.e. in the middle of a character
        try:
            blob.decode("utf-8")
        except UnicodeDecodeError:
            raise _Unsure from None
        if np.any((self.blob[self.offsets[self.lengths > 0]] & 0xC0) == 0x80):
            raise _Unsure

    def label_keys(self, refs: np.ndarray, pairs_per_series: np.ndarray) -> list[bytes]:
        """Per series, its ``Label`` records; each distinct label's record is built once."""
        names, values = refs[0::2], refs[1::2]
        # a request has few label names: number them, then code each label by (name, value)
        name_seen = np.zeros(self.size, dtype=bool)
        name_seen[names] = True
        distinct_names = np.flatnonzero(name_seen)
        name_rank = np.cumsum(name_seen) - 1
        codes = name_rank[names] * self.size + values
        distinct, which = _dedupe(codes, len(distinct_names) * self.size)
        records = np.empty(len(distinct), dtype=object)
        records[:] = self._label_records(distinct_names[distinct // self.size],
                                         distinct % self.size)
        pieces = records[which].tolist()
        bounds = [0, *np.cumsum(pairs_per_series).tolist()]
        return [b"".join(pieces[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _label_records(self, names: np.ndarray, values: np.ndarray) -> list[bytes]:
        """``Label`` record of each (name, value) symbol pair: one gather of five segments per
        label (record head, name head, name, value head, value) from the symbol bytes and
        per-label head matrices."""
        name_len, value_len = self.lengths[names], self.lengths[values]
        name_head, name_head_len = _field_heads(0x0A, name_len)
        value_head, value_head_len = _field_heads(0x12, value_len)
        inner = name_head_len + name_len + value_head_len + value_len
        pair_head, pair_head_len = _field_heads(0x0A, inner, always=True)
        n = len(names)
        source = np.concatenate([self.blob, pair_head.reshape(-1), name_head.reshape(-1),
                                 value_head.reshape(-1)])
        head_row = len(self.blob) + _HEAD_WIDTH * np.arange(n, dtype=np.int64)
        seg_start = np.stack([head_row, head_row + _HEAD_WIDTH * n, self.offsets[names],
                              head_row + 2 * _HEAD_WIDTH * n, self.offsets[values]], axis=1)
        seg_len = np.stack([pair_head_len, name_head_len, name_len, value_head_len, value_len],
                           axis=1)
        data = source[expand_ranges(seg_start.reshape(-1), seg_len.reshape(-1))].tobytes()
        bounds = [0, *np.cumsum(pair_head_len + inner).tolist()]
        return [data[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _dedupe(codes: np.ndarray, code_range: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct codes and the index of each code among them (np.unique's
    return_inverse); by table when the codes are small, which saves a sort."""
    if code_range > _DEDUPE_TABLE_MAX:
        return np.unique(codes, return_inverse=True)
    seen = np.zeros(code_range, dtype=bool)
    seen[codes] = True
    distinct = np.flatnonzero(seen)
    rank = np.empty(code_range, dtype=np.int64)
    rank[distinct] = np.arange(len(distinct))
    return distinct, rank[codes]


_HEAD_WIDTH = 6  # a tag and a varint length below 2**35


def _field_heads(tag: int, lengths: np.ndarray, always: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Tag and varint length of LEN fields as rows of a (n, 6) byte matrix, and their sizes;
    size 0 where the length is 0 (proto3 leaves empty strings out) unless ``always``."""
    n = len(lengths)
    heads = np.zeros((n, _HEAD_WIDTH), dtype=np.uint8)
    heads[:, 0] = tag
    size = np.full(n, 2, dtype=np.int64)
    rest = lengths.copy()
    for k in range(1, _HEAD_WIDTH):
        more = rest >= 0x80
        heads[:, k] = (rest & 0x7F) | (more << 7)
        size += more
        rest >>= 7
    if not always:
        size[lengths == 0] = 0
    return heads, size


# --- numpy protobuf walk ----------------------------------------------------------------


@dataclass
class _Fields:
    """Fields of many messages, found in step: every message's first field, then every
    message's second field... so each message's fields stay in order."""

    msg: np.ndarray  # int64 index of the message
    number: np.ndarray  # int64 field number
    wire_type: np.ndarray  # int64
    start: np.ndarray  # int64 payload start (LEN: after the length)
    end: np.ndarray  # int64 payload end
    complete: np.ndarray  # bool per message: all fields read (at most max_fields), well formed


def _tag_table() -> tuple[np.ndarray, np.ndarray]:
    """Indexed by a field's first byte: the size of a fixed-size value after the tag (8 for
    I64, 4 for I32; -1: a varint or a length follows; -2: a tag the walk does not read),
    and whether the field is LEN."""
    tag = np.arange(256)
    wire = tag & 7
    size = np.select([wire == _I64, wire == _I32, (wire == _VARINT) | (wire == _LEN)],
                     [8, 4, -1], -2)
    size[(tag < 8) | (tag >= 0x80)] = -2  # field number 0, or a tag longer than one byte
    return size.astype(np.int64), wire == _LEN


_FIXED_SIZE, _IS_LEN = _tag_table()


def _tokenize(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              max_fields: int) -> _Fields:
    """Split messages ``buf[starts[i]:ends[i]]`` into fields. Only one-byte tags (field
    numbers 1-15) and wire types VARINT, I64, LEN, I32 are read; a message with anything
    else, a bad varint, a field running past its end or more than ``max_fields`` fields is
    not ``complete`` (the fields read before are still listed)."""
    complete = np.ones(len(starts), dtype=bool)
    pos = starts.copy()
    active = np.flatnonzero(pos < ends)
    found: list[tuple[np.ndarray, ...]] = []
    for _ in range(max_fields):
        if not len(active):
            break
        at = pos[active]
        tag = buf.take(at)
        fixed = _FIXED_SIZE.take(tag)
        is_len = _IS_LEN.take(tag)
        value, nbytes = _varints(buf, at + 1)
        start = at + 1 + nbytes * is_len
        length = np.minimum(value, U64(1 << 40)).astype(np.int64)
        end = start + np.where(fixed >= 0, fixed, np.where(is_len, length, nbytes))
        message_end = ends[active]
        good = (end <= message_end) & ((fixed >= 0) | ((fixed == -1) & (nbytes > 0)))
        fields = (active, tag >> 3, tag & 7, start, end)
        if not good.all():
            complete[active[~good]] = False
            fields = tuple(column[good] for column in fields)
            active, end, message_end = active[good], end[good], message_end[good]
        found.append(fields)
        pos[active] = end
        active = active[end < message_end]
    complete[active] = False
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return _Fields(empty, empty, empty, empty, empty, complete)
    msg, number, wire, start, end = (np.concatenate(c) for c in zip(*found, strict=True))
    return _Fields(msg, number.astype(np.int64), wire.astype(np.int64), start, end, complete)


_TEN = np.arange(10)
#: _LOW_BYTES[k] keeps the low k bytes of a word (k = 0..8)
_LOW_BYTES = np.array([(1 << 8 * k) - 1 for k in range(9)], dtype=U64)
_HIGH_BITS = U64(0x8080_8080_8080_8080)


def _words(buf: np.ndarray) -> np.ndarray:
    """The little-endian 8-byte word starting at every byte of ``buf`` (unaligned view;
    ``buf`` ends with padding, so a word may start at any byte of the data)."""
    return np.ndarray((len(buf) - 7,), "<u8", buf, 0, (1,))


def _read_u64(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian 8-byte words at ``at``."""
    return _words(buf)[at]


def _varints(buf: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint64 value and byte count of the varints at ``at``; count 0 for an invalid one
    (no end within 10 bytes, or a 10th byte over 1: more than 64 bits)."""
    first = buf.take(at)
    value = first.astype(U64)
    nbytes = np.ones(len(at), dtype=np.int64)
    longer = np.flatnonzero(first >= 0x80)
    if not len(longer):
        return value, nbytes
    word = _words(buf)[at[longer]]
    ends = ~word & _HIGH_BITS  # the high bit of every byte that ends a varint
    lowest_end = ends & (U64(0) - ends)
    count = np.bitwise_count(lowest_end - U64(1)).astype(np.int64) // 8 + 1  # 9: none
    short = count <= 8
    value[longer] = join7(word & _LOW_BYTES[np.minimum(count, 8)] & ~_HIGH_BITS)
    nbytes[longer] = count
    if not short.all():  # 9 or 10 bytes (negative int64 values), or invalid
        long_at = longer[~short]
        window = buf[at[long_at, None] + _TEN]
        last = window < 0x80
        count = np.where(last.any(axis=1), last.argmax(axis=1) + 1, 0)
        count[(count == 10) & (window[:, 9] > 1)] = 0
        groups = (window & 0x7F).astype(U64) << _SHIFTS
        groups[_TEN >= count[:, None]] = 0
        value[long_at] = np.bitwise_or.reduce(groups, axis=1)
        nbytes[long_at] = count
    return value, nbytes


_SHIFTS = (7 * np.arange(10)).astype(U64)


def _packed_varints(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_bytes: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The varints filling each span, decoded for all spans at once: values (uint64, spans
    back to back), count per span, and whether each span is clean (it ends where a varint
    ends, no varint is longer than ``max_bytes`` or overflows 64 bits). Spans that are not
    clean contribute no values (count 0)."""
    lengths = ends - starts
    where = expand_ranges(starts, lengths)
    is_last = buf[where] < 0x80
    span_ends = np.cumsum(lengths)
    varint_ends = np.flatnonzero(is_last)
    varint_starts = np.empty_like(varint_ends)
    varint_starts[:1] = 0
    varint_starts[1:] = varint_ends[:-1] + 1
    width = varint_ends - varint_starts + 1
    clean = (lengths == 0) | np.concatenate([[True], is_last])[span_ends]
    too_long = width > max_bytes
    if np.any(too_long):
        clean[np.searchsorted(span_ends, varint_starts[too_long], side="right")] = False
    if not clean.all():
        values, counts, _ = _packed_varints(buf, starts, np.where(clean, ends, starts),
                                            max_bytes)
        return values, counts, clean
    at = where[varint_starts]
    if width.max(initial=1) <= 8:
        values = buf[at].astype(U64)
        multi = np.flatnonzero(width > 1)
        values[multi] = join7(_words(buf)[at[multi]] & _LOW_BYTES[width[multi]] & ~_HIGH_BITS)
    else:  # 9- or 10-byte varints (negative int64 values)
        values, nbytes = _varints(buf, at)
        if np.any(nbytes != width):  # a 10th byte over 1
            clean[np.searchsorted(span_ends, varint_starts[nbytes != width], side="right")] = False
            values, counts, _ = _packed_varints(buf, starts, np.where(clean, ends, starts),
                                                max_bytes)
            return values, counts, clean
    ends_before = np.searchsorted(varint_ends, span_ends)
    counts = ends_before.copy()
    counts[1:] -= ends_before[:-1]
    return values, counts, clean


def _varint_messages(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                     layout: tuple[tuple[int, int], ...]
                     ) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Messages made of varint fields, e.g. ``08 02 18 05``, decoded for all messages at
    once. ``layout`` lists (tag byte, field number) in the order protobuf writers use; a
    message laid out that way (each field optional) is read field by field, others as
    varint streams (:func:`_varint_fields`). Returns each field's value per message (uint64,
    0 if absent) and which messages were decoded; the others are left to protobuf."""
    numbers = tuple(number for _, number in layout)
    out = {number: np.zeros(len(starts), dtype=U64) for number in numbers}
    pos = starts.copy()
    ok = np.ones(len(starts), dtype=bool)
    for tag, number in layout:
        here = np.flatnonzero((pos < ends) & (buf[pos] == tag))
        out[number][here], nbytes = _varints(buf, pos[here] + 1)
        ok[here[nbytes == 0]] = False
        pos[here] += 1 + nbytes
    ok &= pos == ends
    rest = np.flatnonzero(~ok)
    if len(rest):
        fields, ok[rest] = _varint_fields(buf, starts[rest], ends[rest], numbers)
        for number in numbers:
            out[number][rest] = fields[number]
    return out, ok


def _varint_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   numbers: tuple[int, ...]) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Messages made of VARINT fields only, e.g. ``08 02 18 05``: with one-byte tags such a
    message is a stream of varints (tag, value, tag, value...), decoded for all messages at
    once. Returns the value (uint64, 0 if absent) of each field in ``numbers`` per message
    and which messages had this shape with each field at most once (others are left to
    protobuf); other varint fields are skipped, as protobuf skips unknown fields."""
    n = len(starts)
    values, counts, ok = _packed_varints(buf, starts, ends, 10)
    first = np.cumsum(counts) - counts
    ok &= (counts & 1) == 0
    owner = np.repeat(np.arange(n), counts)
    is_tag = np.ones(len(values), dtype=bool)
    if len(values):
        is_tag[(np.arange(len(values)) - np.repeat(first, counts)) & 1 == 1] = False
    tags = values[is_tag]
    tag_owner = owner[is_tag]
    ok[tag_owner[(tags >= 0x80) | (tags & U64(7) != _VARINT) | (tags < 8)]] = False
    take = ok[tag_owner]
    field_of = (tags[take] >> U64(3)).astype(np.int64)
    owner_of = tag_owner[take]
    seen = np.bincount(owner_of * 16 + field_of, minlength=16 * n).reshape(n, 16)
    ok &= ~np.any(seen[:, list(numbers)] > 1, axis=1)
    table = np.zeros((n, 16), dtype=U64)
    keep = ok[owner_of]
    table[owner_of[keep], field_of[keep]] = values[np.flatnonzero(is_tag)[take][keep] + 1]
    return {number: table[:, number] for number in numbers}, ok
