"""Carbon's plaintext protocol (``path value timestamp`` lines) -> arrays, parsed in bulk.

The rules are carbon 1.1's (``MetricLineReceiver``, ``MetricDatagramReceiver``,
``MetricReceiver.metricReceived``): a line is decoded as UTF-8, stripped, split on runs of
whitespace and must have exactly three fields; value and timestamp are parsed by Python's
``float``; a NaN value is dropped; a timestamp whose ``int()`` is -1 means "now". Timestamps
are seconds and become milliseconds as ``round(ts * 1000)``.

Where we differ from carbon: a line over 16384 bytes, a line that is not UTF-8, and an
infinite or NaN timestamp are rejected like any bad line, whereas carbon drops the whole
connection for them.

A buffer is parsed with numpy, not line by line: the positions of the bytes outside
``!``..``~`` (spaces, newlines, anything else) are found in one pass; a line whose only such
bytes are two single spaces and its newline (optionally ``\r\n``) is on the fast path. Its
value and timestamp, when they are plain decimals (``[-]digits[.digits]``, at most 16
characters, digits at most 2**53 as an integer), are converted exactly by word arithmetic
(:func:`parse_decimals`): the integer and the power of ten it is divided by are both exact
doubles, so the one division rounds correctly, as ``float()`` does. Other numbers on
fast-path lines (``nan``, ``1e300``, 17-digit repr output) go through numpy's bytes->float
cast, which uses Python's own float parser; only lines with other bytes (tabs, repeated
spaces, UTF-8, control characters) take the per-line reference path,
:func:`parse_line_reference`. Series names are cut out through one byte matrix
(:func:`slices`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAX_LINE = 16384  # bytes; Twisted's LineOnlyReceiver.MAX_LENGTH, which carbon uses

# why a line was refused (the ``reason`` label of tsdb_carbon_lines_rejected_total)
INVALID_LINE = "invalid_line"  # not three whitespace-separated fields
INVALID_VALUE = "invalid_value"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_UTF8 = "invalid_utf8"
LINE_TOO_LONG = "line_too_long"
NAN_VALUE = "nan_value"  # carbon drops these silently; counted, never logged

MAX_EXAMPLES = 4  # rejected lines kept per parse for the log

_U64 = np.uint64
_LOW_NIBBLES = _U64(0x0F0F0F0F0F0F0F0F)
_HIGH = _U64(0x8080808080808080)
_LOW7 = _U64(0x7F7F7F7F7F7F7F7F)
_ZEROS = _U64(0x3030303030303030)  # '0' in every byte
_NINES = _U64(0x3939393939393939)
_DOTS = _U64(0x2E2E2E2E2E2E2E2E)
_MINUSES = _U64(0x2D2D2D2D2D2D2D2D)


def _byte_masks(byte_sets: list[range]) -> np.ndarray:
    """uint64 words with 0xff in the bytes of each set (byte 0 = the lowest)."""
    return np.array([sum(0xFF << (8 * b) for b in bs) for bs in byte_sets], np.uint64)


# per field length L (0..16), for the 16-byte window that ends where the field ends: the
# field's bytes in the low word (window bytes 0-7) and in the high word (8-15), and its
# first byte
_INSIDE_LO = _byte_masks([range(16 - n, 8) if n > 8 else range(0) for n in range(17)])
_INSIDE_HI = _byte_masks([range(max(0, 8 - n), 8) for n in range(17)])
_FIRST_LO = _byte_masks([range(16 - n, 17 - n) if n > 8 else range(0) for n in range(17)])
_FIRST_HI = _byte_masks([range(8 - n, 9 - n) if 0 < n <= 8 else range(0)
                         for n in range(17)])
_BYTES_MASK = _U64(0x00FF00FF00FF00FF)
_SHORTS_MASK = _U64(0x0000FFFF0000FFFF)
_P10_INT = 10 ** np.arange(17, dtype=np.int64)
_MAX_MANTISSA = 1 << 53
_P10_FLOAT = 10.0 ** np.arange(17)  # all exact doubles
_MAX_MS = 9.2e18  # |ms| beyond this does not fit int64
_MAX_GATHERED_KEY = 256  # longest series name read through the byte matrix


@dataclass
class CarbonBatch:
    """Accepted points in input order, and what was refused (plaintext or pickle)."""

    keys: list[bytes]  # the series name of each point, as sent (the series-cache key)
    timestamps: np.ndarray  # int64 milliseconds
    values: np.ndarray  # float64
    rejected: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, bytes]] = field(default_factory=list)  # (reason, line)

    def reject(self, reason: str, lines: list[bytes], count: int | None = None) -> None:
        """Count ``count`` (default: ``len(lines)``) refused lines; keep a few for the log."""
        n = len(lines) if count is None else count
        if n:
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        if reason != NAN_VALUE:
            room = MAX_EXAMPLES - len(self.examples)
            self.examples.extend((reason, line[:400]) for line in lines[:max(room, 0)])


def parse_decimals(data: np.ndarray, starts: np.ndarray,
                   lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of each field ``data[start:start + length]`` and whether it was converted here.

    Converted are plain decimals of at most 16 ASCII characters, ``[-]digits[.digits]`` (the
    dot may also lead or end), whose digits as an integer are at most 2**53: exact, see the
    module doc. Exponents, ``nan``, ``inf`` and longer numbers are left to
    :func:`parse_floats`.

    SWAR ("SIMD within a register"): each field is read as the 16 bytes ending where it
    ends, two little-endian uint64 words (``lo`` = the window's first 8 bytes, ``hi`` = its
    last 8), and every byte test is a few word operations that leave a flag in each byte's
    top bit. Eight ASCII digits then combine with three multiplications (the trick of
    simdjson and others); bytes before the field, the sign and the dot count as '0', and
    the dot's place is taken out of the integer afterwards.
    """
    ends = starts + lengths
    padded = np.concatenate([np.zeros(16, np.uint8), data])
    words = sliding_window_view(padded, 16)[ends].view("<u8")  # data[end - 16:end]
    size = np.minimum(lengths, 16)
    lo = _parse_word(words[:, 0], _INSIDE_LO[size])
    hi = _parse_word(words[:, 1], _INSIDE_HI[size])
    minus_ok = ((lo.minus & ~_FIRST_LO[size]) | (hi.minus & ~_FIRST_HI[size])) == 0
    n_dots = np.bitwise_count(lo.dot) + np.bitwise_count(hi.dot)
    ok = ((lengths <= 16) & lo.known & hi.known & minus_ok & (n_dots <= 1)
          & ((lo.digit | hi.digit) != 0))
    digits = (lo.value * _U64(100_000_000) + hi.value).astype(np.int64)
    # characters after the dot: its byte index counted from the window's end
    dot_in_hi = hi.dot != 0
    dot_byte = np.bitwise_count(np.where(dot_in_hi, hi.dot, lo.dot) - _U64(1)) // 8
    frac = np.where(n_dots > 0, np.where(dot_in_hi, 7, 15) - dot_byte, 0).astype(np.int64)
    below = digits % _P10_INT[frac]  # the digits after the dot; the dot's '0' is above them
    mantissa = np.where(n_dots > 0, (digits - below) // 10 + below, digits)
    ok &= mantissa <= _MAX_MANTISSA
    value = mantissa.astype(np.float64) / _P10_FLOAT[frac]
    return np.where((lo.minus | hi.minus) != 0, -value, value), ok


@dataclass
class _Word:
    value: np.ndarray  # the 8 characters' digits as an integer (non-digits count as 0)
    digit: np.ndarray  # top bit set in each byte of the field that is a digit
    dot: np.ndarray  # ... that is '.'
    minus: np.ndarray  # ... that is '-'
    known: np.ndarray  # bool: every byte of the field here is a digit, '.' or '-'


def _parse_word(word: np.ndarray, inside: np.ndarray) -> _Word:
    """Byte classes and digit value of 8 characters (``inside``: 0xff on field bytes)."""
    ascii_ = (word & inside & _HIGH) == 0
    x = (word & inside) | (_ZEROS & ~inside)  # outside bytes become '0'
    x &= ~_HIGH  # (non-ASCII is refused through ascii_; this keeps the tests carry-free)
    inside_top = inside & _HIGH
    digit = ((x | _HIGH) - _ZEROS) & ((_HIGH | _NINES) - x) & inside_top
    dot = _zero_bytes(x ^ _DOTS) & inside_top
    minus = _zero_bytes(x ^ _MINUSES) & inside_top
    known = ascii_ & ((digit | dot | minus) == inside_top)
    x &= (digit >> _U64(7)) * _U64(0xFF)  # digit bytes only
    x &= _LOW_NIBBLES
    x = ((x * _U64(2561)) >> _U64(8)) & _BYTES_MASK
    x = ((x * _U64(6553601)) >> _U64(16)) & _SHORTS_MASK
    x = (x * _U64(42949672960001)) >> _U64(32)
    return _Word(x, digit, dot, minus, known)


def _zero_bytes(x: np.ndarray) -> np.ndarray:
    """Top bit set in each zero byte of x (exact for bytes below 0x80: no carries)."""
    return ~(((x & _LOW7) + _LOW7) | x | _LOW7) & _HIGH


def parse_floats(fields: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``float(field)`` of each field (numpy's cast uses Python's parser) and which parsed.

    A batch with a bad field is halved until the bad ones are isolated, so a few bad lines
    cost a few extra casts, not one call per line.
    """
    values = np.zeros(len(fields))
    ok = np.ones(len(fields), bool)

    def convert(lo: int, hi: int) -> None:
        try:
            values[lo:hi] = np.array(fields[lo:hi], dtype="S").astype(np.float64)
        except (ValueError, UnicodeDecodeError):
            if hi - lo == 1:
                ok[lo] = False
            else:
                mid = (lo + hi) // 2
                convert(lo, mid)
                convert(mid, hi)

    if fields:
        convert(0, len(fields))
    return values, ok


def _numbers(buf: bytes, data: np.ndarray, starts: np.ndarray,
             ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, ok = parse_decimals(data, starts, ends - starts)
    rest = np.flatnonzero(~ok)
    if len(rest):
        fields = list(map(buf.__getitem__, map(slice, starts[rest].tolist(),
                                               ends[rest].tolist())))
        values[rest], ok[rest] = parse_floats(fields)
    return values, ok


def slices(buf: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[bytes]:
    """``[buf[s:e] for s, e in zip(starts, ends)]`` for slices without NUL bytes.

    Short slices are gathered into a (slices x width) byte matrix, zeroed past each end and
    read back as numpy fixed-width bytes (which drop trailing NULs): about half the cost of
    one slice call each.
    """
    lengths = ends - starts
    width = int(lengths.max()) if len(lengths) else 0
    if width > _MAX_GATHERED_KEY or width == 0:
        return list(map(buf.__getitem__, map(slice, starts.tolist(), ends.tolist())))
    padded = np.concatenate([data, np.zeros(width, np.uint8)])
    matrix = sliding_window_view(padded, width)[starts]
    matrix *= _prefix_masks(width)[lengths]
    return matrix.view(f"S{width}").ravel().tolist()


@functools.lru_cache(maxsize=16)
def _prefix_masks(width: int) -> np.ndarray:
    """Row L: L ones then zeros (uint8), L = 0..width."""
    return (np.arange(width) < np.arange(width + 1)[:, None]).view(np.uint8)


def _timestamps_ms(ts: np.ndarray, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds (``-1`` as carbon reads it: any ts with ``int(ts) == -1``) and validity."""
    now = (ts > -2) & (ts <= -1)
    ms = np.rint(ts * 1000.0)
    ok = np.isfinite(ms) & (np.abs(ms) < _MAX_MS)
    out = np.where(ok, ms, 0).astype(np.int64)
    out[now] = now_ms
    return out, ok


def _reference_line(text: str, now_ms: int) -> tuple[bytes, int, float] | str:
    """One line as carbon parses it: the point, or the reason it is refused."""
    fields = text.strip().split()
    if len(fields) != 3:
        return INVALID_LINE
    path, value_text, ts_text = fields
    try:
        ts = float(ts_text)
    except ValueError:
        return INVALID_TIMESTAMP
    try:
        value = float(value_text)
    except ValueError:
        return INVALID_VALUE
    if value != value:
        return NAN_VALUE
    if not math.isfinite(ts) or abs(ts * 1000.0) >= _MAX_MS:
        return INVALID_TIMESTAMP
    ms = now_ms if int(ts) == -1 else round(ts * 1000.0)
    return path.encode("utf-8"), ms, value


def parse_line_reference(line: bytes, now_ms: int,
                         datagram: bool = False) -> list[tuple[bytes, int, float] | str]:
    """The points (or refusal reasons) of one ``\\n``-free line, the slow way: carbon's code.

    A datagram is split with ``str.splitlines`` as carbon's UDP receiver does, so ``\\r``
    and the other Unicode line breaks separate lines there.
    """
    if len(line) > MAX_LINE:
        return [LINE_TOO_LONG]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return [INVALID_UTF8]
    if not datagram:
        return [_reference_line(text, now_ms)]
    return [_reference_line(t, now_ms) for t in text.splitlines()] if text else [INVALID_LINE]


def parse_lines(buf: bytes, now_ms: int, datagram: bool = False) -> CarbonBatch:
    """Every line of ``buf`` (a final line without ``\\n`` counts too).

    ``now_ms`` stands in for ``-1`` timestamps. ``datagram``: split lines as carbon's UDP
    receiver does (see :func:`parse_line_reference`).
    """
    if buf and buf[-1] != 0x0A:
        buf = buf + b"\n"
    data = np.frombuffer(buf, np.uint8)
    special = np.flatnonzero(data.view(np.int8) <= 32)  # space, controls, non-ASCII
    kinds = data[special]
    is_nl = kinds == 0x0A
    newline = special[is_nl]
    n = len(newline)
    out = CarbonBatch([], np.zeros(0, np.int64), np.zeros(0))
    if n == 0:
        return out
    starts = np.empty(n, np.int64)
    starts[0] = 0
    starts[1:] = newline[:-1] + 1
    per_line = np.diff(np.flatnonzero(is_nl), prepend=-1)  # specials incl. the newline
    first = np.cumsum(per_line) - per_line

    def kind(j: int) -> np.ndarray:  # the j-th special byte of each line
        return kinds[np.minimum(first + j, len(kinds) - 1)]

    def position(j: int) -> np.ndarray:  # ... and where it is
        return special[np.minimum(first + j, len(special) - 1)]

    crlf = (per_line == 4) & (kind(2) == 0x0D) & (position(2) == newline - 1)
    fast = ((per_line == 3) | crlf) & (kind(0) == 0x20) & (kind(1) == 0x20)
    sp1, sp2 = position(0), position(1)
    ends = np.where(crlf, newline - 1, newline)
    fast &= (sp1 > starts) & (sp2 > sp1 + 1) & (ends > sp2 + 1)
    fast &= newline - starts <= MAX_LINE

    fast_idx = np.flatnonzero(fast)
    k = len(fast_idx)
    numbers, number_ok = _numbers(buf, data, np.concatenate([sp1[fast_idx], sp2[fast_idx]]) + 1,
                                  np.concatenate([sp2[fast_idx], ends[fast_idx]]))
    values, ts, value_ok, ts_ok = numbers[:k], numbers[k:], number_ok[:k], number_ok[k:]
    ms, ms_ok = _timestamps_ms(ts, now_ms)
    nan = value_ok & ts_ok & np.isnan(values)
    point_ok = value_ok & ts_ok & ~nan & ms_ok
    if not point_ok.all():
        bad_ts = ~ts_ok | (value_ok & ~nan & ~ms_ok)
        for reason, bad in ((INVALID_TIMESTAMP, bad_ts), (INVALID_VALUE, ts_ok & ~value_ok),
                            (NAN_VALUE, nan)):
            shown = fast_idx[bad][:MAX_EXAMPLES].tolist()
            out.reject(reason, [buf[starts[i]:newline[i]] for i in shown], int(bad.sum()))
    good = np.flatnonzero(point_ok)
    keep = fast_idx[good]
    keys = slices(buf, data, starts[keep], sp1[keep])
    ms, values = ms[good], values[good]

    slow = np.flatnonzero(~fast)
    if len(slow):  # carbon's own rules, line by line; then all points back in line order
        extra: list[tuple[int, bytes, int, float]] = []
        for i in slow.tolist():
            line = buf[starts[i]:newline[i]]
            for result in parse_line_reference(line, now_ms, datagram):
                if isinstance(result, str):
                    out.reject(result, [line])
                else:
                    extra.append((i, *result))
        if extra:
            order = np.argsort(np.concatenate([keep, [e[0] for e in extra]]), kind="stable")
            all_keys = keys + [e[1] for e in extra]
            keys = [all_keys[j] for j in order.tolist()]
            ms = np.concatenate([ms, np.array([e[2] for e in extra], np.int64)])[order]
            values = np.concatenate([values, np.array([e[3] for e in extra])])[order]
    out.keys, out.timestamps, out.values = keys, ms, values
    return out


class LineBuffer:
    """Whole lines out of a TCP stream: carries a partial line over reads, and drops (and
    counts) a line that grows beyond :data:`MAX_LINE` without a newline."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._tail = b""
        self._skipping = False  # inside an overlong line: drop up to the next newline

    def feed(self, chunks: Sequence[bytes]) -> tuple[bytes, int]:
        """(the complete lines now available, overlong lines dropped) after ``chunks`` (the
        stream's next bytes, in order; joined once, so passing reads as they came is cheap)."""
        k, cut = len(chunks) - 1, -1
        while k >= 0 and (cut := chunks[k].rfind(b"\n")) < 0:
            k -= 1
        if k < 0:  # no line ends here
            if not self._skipping:
                self._tail = b"".join([self._tail, *chunks])
                if len(self._tail) > self.max_line:
                    self._tail, self._skipping = b"", True
                    return b"", 1
            return b"", 0
        lines = b"".join([self._tail, *chunks[:k], chunks[k][:cut + 1]])
        rest = b"".join([chunks[k][cut + 1:], *chunks[k + 1:]])
        if self._skipping:  # the overlong line ends in this read: drop through its newline
            lines = lines[lines.find(b"\n") + 1:]
            self._skipping = False
        dropped = 0
        if len(rest) > self.max_line:
            self._tail, self._skipping, dropped = b"", True, 1
        else:
            self._tail = rest
        return lines, dropped

    def flush(self) -> bytes:
        """What is left at the end of the stream (a last line without newline)."""
        tail, self._tail = self._tail, b""
        return b"" if self._skipping else tail
