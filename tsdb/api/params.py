"""Time, duration and limit parameters of the Prometheus HTTP API, parsed the way
Prometheus 2.42 parses them (``web/api/v1/api.go``: ``parseTime``, ``parseDuration``) and
with its error messages, so that clients see the same answers from either server.

Times become integer milliseconds (Prometheus' ``timestamp.FromTime``); durations become
integer nanoseconds (Go's ``time.Duration``), which the callers narrow to milliseconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

_I64_MAX = (1 << 63) - 1
_I64_MIN = -(1 << 63)
_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

#: Prometheus' "unbounded" times (``minTime``/``maxTime`` in api.go) and how clients spell
#: them; Go's time parser cannot read these years, so Prometheus matches the strings.
MIN_TIME_MS = -9_223_309_901_257_974_000
MAX_TIME_MS = 9_223_309_901_257_974_999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"

# What Go's strconv.ParseFloat accepts in decimal form (no spaces, no underscores).
_GO_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                      r"(?:(Z)|([+-])(\d{2}):(\d{2}))")
# prometheus/common model.ParseDuration: each unit at most once, largest first.
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                       r"(?:(\d+)ms)?")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000,
                      1000, 1)


class ParamError(ValueError):
    """A parameter Prometheus would refuse; ``str()`` is Prometheus' message."""


def _go_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where Go reports an error."""
    if _GO_DECIMAL.fullmatch(text):
        value = float(text)
        return None if math.isinf(value) else value  # Go: ErrRange
    if _GO_SPECIAL.fullmatch(text):
        return float(text)
    return None


def _go_round(x: float) -> float:
    """Go's ``math.Round``: halves away from zero (Python's ``round`` goes to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def parse_time(text: str) -> int:
    """Unix seconds (``1700000000``, ``1700000000.123``, ``-1``) or RFC 3339
    (``2015-07-01T20:10:51.781Z``, ``...+02:00``) to milliseconds."""
    value = _go_float(text)
    if value is not None:
        # Prometheus' own arithmetic, step by step, so that the milliseconds agree bit for
        # bit: modf, round the fraction to ms, to integer ns (truncating), then floor to ms.
        if not math.isfinite(value) or abs(value) > _I64_MAX // 1000:
            raise ParamError(f"cannot parse {go_quote(text)} to a valid timestamp")
        frac, whole = math.modf(value)
        frac = _go_round(frac * 1000) / 1000
        nanos = int(whole) * _NS_PER_S + int(frac * _NS_PER_S)
        return nanos // _NS_PER_MS
    m = _RFC3339.fullmatch(text)
    if m:
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        fraction, utc, sign, off_h, off_m = m.groups()[6:]
        try:
            if utc:
                tz = UTC
            else:
                offset = timedelta(hours=int(off_h), minutes=int(off_m))
                tz = timezone(offset if sign == "+" else -offset)
            dt = datetime(year, month, day, hour, minute, second, tzinfo=tz)
        except ValueError:
            pass
        else:
            ms = (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
            return ms + int((fraction or "0")[:3].ljust(3, "0"))
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise ParamError(f"cannot parse {go_quote(text)} to a valid timestamp")


def parse_time_param(value: str | None, name: str, default: int) -> int:
    """An optional time parameter (Prometheus' ``parseTimeParam``): ``default`` when
    absent or empty."""
    if not value:
        return default
    try:
        return parse_time(value)
    except ParamError as exc:
        raise ParamError(f"Invalid time value for '{name}': {exc}") from None


def parse_duration(text: str) -> int:
    """A float number of seconds (``15``, ``0.5``) or a Prometheus duration (``1h30m``,
    ``90s``) to nanoseconds."""
    value = _go_float(text)
    if value is not None:
        if math.isnan(value):
            return _I64_MIN  # what Go's int64(NaN) gives on amd64: a negative duration
        ns = value * _NS_PER_S
        if ns > _I64_MAX or ns < _I64_MIN:
            raise ParamError(f"cannot parse {go_quote(text)} to a valid duration. "
                             "It overflows int64")
        return int(ns)
    if text == "0":
        return 0
    m = _DURATION.fullmatch(text) if text else None
    if m:
        total_ms = sum(int(n) * unit for n, unit in zip(m.groups(), _DURATION_UNITS_MS,
                                                        strict=True) if n)
        if total_ms * _NS_PER_MS <= _I64_MAX:
            return total_ms * _NS_PER_MS
    raise ParamError(f"cannot parse {go_quote(text)} to a valid duration")


def parse_limit(text: str | None) -> int:
    """``limit`` of the label and series endpoints (Prometheus 2.54+): a non-negative
    integer, ``0`` or absent meaning none. Returns 0 for "no limit"."""
    if not text:
        return 0
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ParamError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    limit = int(text)
    if limit < 0:
        raise ParamError("limit must be non-negative")
    return limit


def go_quote(text: str) -> str:
    """Go's ``%q`` for the printable strings clients send (close to a JSON string)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
