"""Graphite time specifications: ``from``/``until``/``now`` (graphite-web's
``render/attime.py``) and the interval strings functions take (``"5min"``, ``"-1d"``).

Ported rule by rule from graphite-web 1.1.8, quirks included, so that the same parameter
gives the same second on both servers:

* the input is lower-cased and ``_``, ``,`` and spaces are removed;
* all digits is Unix seconds, except an 8-digit string that looks like ``YYYYMMDD``;
* otherwise it splits once at the first ``+`` (else the first ``-``) into a *reference*
  (``now``, ``noon``, ``6pm``, ``04:00``, ``yesterday``, ``20110501``, ``monday``,
  ``jan1``, ``12/31/99`` and combinations) and an *offset* (``-1h30min``);
* offsets are plain elapsed seconds (units by prefix: ``s``, ``min``, ``h``, ``d``, ``w``,
  ``mon`` = 30 days, ``y`` = 365 days; a bare ``m`` is an error);
* references are local times in the request's timezone (``tz`` parameter, else UTC); a
  local time that falls twice or never (DST changes) is read as standard time, as pytz's
  ``localize(is_dst=False)`` does.

Times are returned as float Unix seconds (a relative spec keeps the microseconds of
"now"); graphite truncates to whole seconds only after comparing ``from`` with ``until``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_UNIT_SECONDS = (("s", 1), ("min", 60), ("h", 3600), ("d", 86400), ("w", 7 * 86400),
                 ("mon", 30 * 86400), ("y", 365 * 86400))


class TimeSpecError(ValueError):
    """A time or interval graphite-web would refuse; the message says why."""


def timezone(name: str | None, default: tzinfo = UTC) -> tzinfo:
    """The ``tz`` parameter: an IANA zone name; unknown or empty names fall back to
    ``default`` (graphite-web ignores an unknown ``tz``)."""
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return default


def parse_interval(text: str) -> int:
    """Signed seconds of an interval string (graphite's ``parseTimeOffset``): ``"5min"``,
    ``"-1d"``, ``"+15min"``, ``"1h30min"``, ``"2weeks"``. Raises :class:`TimeSpecError`."""
    if not isinstance(text, str):
        raise TimeSpecError(f"invalid interval {text!r}: not a string")
    if not text:
        return 0
    rest = text
    sign = 1
    if not rest[0].isdigit():
        if rest[0] not in "+-":
            raise TimeSpecError(f"invalid offset {text!r}")
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    total = 0
    while rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        if i == 0:
            raise TimeSpecError(f"invalid offset {text!r}: expected a number at {rest!r}")
        try:
            num = int(rest[:i])
        except ValueError:  # a unicode digit int() refuses
            raise TimeSpecError(f"invalid offset {text!r}") from None
        rest = rest[i:]
        j = 0
        while j < len(rest) and rest[j].isalpha():
            j += 1
        unit, rest = rest[:j], rest[j:]
        total += sign * num * unit_seconds(unit)
    return total


def unit_seconds(unit: str) -> int:
    """Seconds of an offset unit, matched by prefix as graphite does (``getUnitString``)."""
    for prefix, seconds in _UNIT_SECONDS:
        if unit.startswith(prefix):
            return seconds
    raise TimeSpecError(f"Invalid offset unit '{unit}'")


def now_seconds() -> float:
    return time.time()


def parse_attime(text: str, now: float | None = None, tz: tzinfo = UTC) -> float:
    """Unix seconds of a graphite time spec (``parseATTime``), relative to ``now`` (Unix
    seconds, default the wall clock) in timezone ``tz``. Raises :class:`TimeSpecError`."""
    if now is None:
        now = now_seconds()
    s = text.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    if s.isdigit():
        try:
            looks_like_date = (len(s) == 8 and int(s[:4]) > 1900 and int(s[4:6]) < 13
                               and int(s[6:]) < 32)
            if not looks_like_date:
                return float(int(s))
        except ValueError:  # unicode digits
            raise TimeSpecError(f"invalid time {text!r}") from None
    if "+" in s:
        ref, offset = s.split("+", 1)
        offset = "+" + offset
    elif "-" in s:
        ref, offset = s.split("-", 1)
        offset = "-" + offset
    else:
        ref, offset = s, ""
    return _reference(ref, now, tz) + parse_interval(offset)


def _reference(ref: str, now: float, tz: tzinfo) -> float:
    """``parseTimeReference``: a local wall-clock reference, as Unix seconds."""
    if not ref or ref == "now":
        return now
    raw = ref
    try:
        hour, minute = 0, 0
        i = ref.find(":")
        if 0 < i < 3:
            hour = int(ref[:i])
            minute = int(ref[i + 1:i + 3])
            ref = ref[i + 3:]
            if ref[:2] == "am":
                ref = ref[2:]
            elif ref[:2] == "pm":
                hour = (hour + 12) % 24
                ref = ref[2:]
        i = ref.find("am")
        if 0 < i < 3:
            hour = int(ref[:i])
            ref = ref[i + 2:]
        i = ref.find("pm")
        if 0 < i < 3:
            hour = (int(ref[:i]) + 12) % 24
            ref = ref[i + 2:]
        if ref.startswith("noon"):
            hour, minute, ref = 12, 0, ref[4:]
        elif ref.startswith("midnight"):
            hour, minute, ref = 0, 0, ref[8:]
        elif ref.startswith("teatime"):
            hour, minute, ref = 16, 0, ref[7:]

        local_now = datetime.fromtimestamp(now, tz)
        date = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0,
                                 tzinfo=None)
        if ref in ("yesterday", "today", "tomorrow"):
            if ref == "yesterday":
                date -= timedelta(days=1)
            elif ref == "tomorrow":
                date += timedelta(days=1)
        elif ref.count("/") == 2:  # MM/DD/YY[YY]
            m, d, y = map(int, ref.split("/"))
            if y < 1900:
                y += 1900
            if y < 1970:
                y += 100
            date = datetime(year=y, month=m, day=d, hour=hour, minute=minute)
        elif len(ref) == 8 and ref.isdigit():  # YYYYMMDD
            date = datetime(year=int(ref[:4]), month=int(ref[4:6]), day=int(ref[6:8]),
                            hour=hour, minute=minute)
        elif ref[:3] in MONTHS:  # month name + day of month
            if ref[-2:].isdigit():
                day = int(ref[-2:])
            elif ref[-1:].isdigit():
                day = int(ref[-1:])
            else:
                raise TimeSpecError("Day of month required after month name")
            date = datetime(year=date.year, month=MONTHS.index(ref[:3]) + 1, day=day,
                            hour=hour, minute=minute)
        elif ref[:3] in WEEKDAYS:  # the most recent such day, today included
            today = (date.weekday() + 1) % 7  # graphite counts from Sunday
            offset = today - WEEKDAYS.index(ref[:3])
            if offset < 0:
                offset += 7
            date -= timedelta(days=offset)
        elif ref:
            raise TimeSpecError(f"Unknown day reference: {raw}")
    except TimeSpecError:
        raise
    except (ValueError, OverflowError) as exc:
        raise TimeSpecError(f"invalid time reference {raw!r}: {exc}") from None
    return _localize(date, tz)


def _localize(naive: datetime, tz: tzinfo) -> float:
    """A local wall-clock time in ``tz`` as Unix seconds; ambiguous or skipped times are
    read with the zone's standard offset (pytz ``localize(is_dst=False)``)."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    chosen = first
    if first.utcoffset() != second.utcoffset() and first.dst() != timedelta(0):
        chosen = second
    return chosen.timestamp()


def whole_seconds(t: float) -> int:
    """graphite's ``int(epoch(dt))``: the second a time falls in."""
    return math.floor(t)
