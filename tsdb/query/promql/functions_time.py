"""``time()``, ``timestamp()`` and the calendar functions (``minute``, ``hour``,
``day_of_week``, ``day_of_month``, ``day_of_year``, ``days_in_month``, ``month``, ``year``).

The calendar functions read a Unix time in seconds from each sample (default: the step
time) and answer in UTC. Prometheus does this with Go's ``time`` package after a plain
``int64(value)`` conversion, so the fields here are computed with Go's own algorithm on
the same unsigned "absolute" seconds: fractional seconds truncate toward zero, and NaN,
±Inf and out-of-range values (which the conversion turns into the minimum int64 on amd64)
give the same odd but deterministic dates as Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tsdb.query.promql.functions_base import (
    Function,
    FunctionCall,
    map_values,
    one_series,
    vector_arg,
)
from tsdb.query.promql.values import InstantVector, Scalar

_SECONDS_PER_DAY = 86_400
_DAYS_PER_400_YEARS = 365 * 400 + 97
_DAYS_PER_100_YEARS = 365 * 100 + 24
_DAYS_PER_4_YEARS = 365 * 4 + 1
_ABSOLUTE_ZERO_YEAR = -292_277_022_399
# Go's unixToInternal + internalToAbsolute: Unix seconds -> seconds since the absolute epoch
_UNIX_TO_ABSOLUTE = np.uint64(9_223_372_028_715_321_600)
_DAYS_BEFORE = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365])
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_INT64_MIN = np.iinfo(np.int64).min


def go_float_to_int64(x: np.ndarray) -> np.ndarray:
    """Go's ``int64(x)`` on amd64: truncation; NaN and out-of-range give the minimum."""
    inside = (x >= -(2.0**63)) & (x < 2.0**63)
    out = np.full(x.shape, _INT64_MIN, dtype=np.int64)
    out[inside] = np.trunc(x[inside]).astype(np.int64)
    return out


class _Calendar:
    """Go's ``absDate`` and clock fields for an array of Unix seconds."""

    def __init__(self, unix_seconds: np.ndarray) -> None:
        # uint64 arithmetic wraps exactly like Go's conversion of the int64 sum
        self.abs = unix_seconds.astype(np.int64).view(np.uint64) + _UNIX_TO_ABSOLUTE
        d = self.abs // np.uint64(_SECONDS_PER_DAY)
        n = d // np.uint64(_DAYS_PER_400_YEARS)
        y = np.uint64(400) * n
        d -= np.uint64(_DAYS_PER_400_YEARS) * n
        n = d // np.uint64(_DAYS_PER_100_YEARS)
        n -= n >> np.uint64(2)
        y += np.uint64(100) * n
        d -= np.uint64(_DAYS_PER_100_YEARS) * n
        n = d // np.uint64(_DAYS_PER_4_YEARS)
        y += np.uint64(4) * n
        d -= np.uint64(_DAYS_PER_4_YEARS) * n
        n = d // np.uint64(365)
        n -= n >> np.uint64(2)
        y += n
        d -= np.uint64(365) * n
        self.year = y.view(np.int64) + _ABSOLUTE_ZERO_YEAR
        self.yday = d.astype(np.int64)  # 0-based day of the year
        self.leap = (self.year % 4 == 0) & ((self.year % 100 != 0) | (self.year % 400 == 0))

    def month_day(self) -> tuple[np.ndarray, np.ndarray]:
        day = self.yday.copy()
        leap_day = self.leap & (day == 31 + 29 - 1)
        day = np.where(self.leap & (day > 31 + 29 - 1), day - 1, day)
        month0 = day // 31  # may be one month too low
        end = _DAYS_BEFORE[np.minimum(month0 + 1, 12)]
        later = day >= end
        month0 = np.where(later, month0 + 1, month0)
        begin = _DAYS_BEFORE[np.minimum(month0, 12)]
        month = np.where(leap_day, 2, month0 + 1)
        mday = np.where(leap_day, 29, day - begin + 1)
        return month, mday

    def hour(self) -> np.ndarray:
        return ((self.abs % np.uint64(_SECONDS_PER_DAY)) // np.uint64(3600)).astype(np.int64)

    def minute(self) -> np.ndarray:
        return ((self.abs % np.uint64(3600)) // np.uint64(60)).astype(np.int64)

    def weekday(self) -> np.ndarray:
        # January 1 of the absolute year was a Monday (1).
        week = np.uint64(7 * _SECONDS_PER_DAY)
        shifted = (self.abs + np.uint64(_SECONDS_PER_DAY)) % week
        return (shifted // np.uint64(_SECONDS_PER_DAY)).astype(np.int64)


def _days_in_month(c: _Calendar) -> np.ndarray:
    month, _ = c.month_day()
    return _DAYS_IN_MONTH[month - 1] + ((month == 2) & c.leap)


_FIELDS: dict[str, Callable[[_Calendar], np.ndarray]] = {
    "minute": _Calendar.minute,
    "hour": _Calendar.hour,
    "day_of_week": _Calendar.weekday,
    "day_of_month": lambda c: c.month_day()[1],
    "day_of_year": lambda c: c.yday + 1,
    "days_in_month": _days_in_month,
    "month": lambda c: c.month_day()[0],
    "year": lambda c: c.year,
}


def _calendar_function(field: Callable[[_Calendar], np.ndarray]) -> Function:
    def func(call: FunctionCall) -> InstantVector:
        if not call.args:
            # Go: time.Unix(ts / 1000, 0), integer division truncating toward zero
            steps = np.asarray(call.ctx.steps, dtype=np.int64)
            seconds = np.where(steps < 0, -((-steps) // 1000), steps // 1000)
            return one_series(field(_Calendar(seconds)).astype(np.float64))
        vec = vector_arg(call, 0)
        seconds = go_float_to_int64(vec.values)
        return map_values(vec, field(_Calendar(seconds)).astype(np.float64))

    return func


def func_time(call: FunctionCall) -> Scalar:
    return Scalar(np.asarray(call.ctx.steps, dtype=np.int64) / 1000)


def func_timestamp(call: FunctionCall) -> InstantVector:
    """The evaluation time of each sample. For a plain selector argument Prometheus
    answers with the samples' own timestamps; the evaluator handles that case itself."""
    vec = vector_arg(call, 0)
    times = np.broadcast_to(np.asarray(call.ctx.steps, dtype=np.int64), vec.values.shape)
    return map_values(vec, times / 1000)


FUNCTIONS: dict[str, Function] = {
    "time": func_time,
    "timestamp": func_timestamp,
    **{name: _calendar_function(field) for name, field in _FIELDS.items()},
}
