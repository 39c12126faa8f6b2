"""Transform: functions that change each series' values (graphite-web's 'Transform'
group): arithmetic (``scale``, ``offset``...), differences (``derivative``,
``nonNegativeDerivative``, ``perSecond``), running sums, gap filling
(``keepLastValue``, ``transformNull``), re-bucketing (``summarize``, ``hitcount``) and
``timeShift``.

Each kernel (``*_values``) works on a whole (N, P) matrix; NaN is graphite's None.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import aggregate_axis, py_round, resolve_agg, xff_ok
from tsdb.query.graphite.functions_base import (
    CONSOLIDATION_FUNCS,
    SERIES_LIST,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    interval_arg,
    map_lists,
    param,
    reevaluate,
    registrar,
    renamed,
    replace,
    request_xff,
)
from tsdb.query.graphite.functions_naming import default_tags, fmt_g
from tsdb.query.graphite.series import SeriesList

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Transform")
INF = math.inf


def _names(fmt: str, sl: SeriesList, *args: object) -> list[str]:
    return [fmt % (n, *args) for n in sl.names]


def _finite_or_null(result: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Python's math raises (graphite writes None) where numpy gives inf/NaN."""
    return np.where(np.isfinite(result) | ~np.isfinite(inputs), result, np.nan)


# --- arithmetic -------------------------------------------------------------------------


@register("scale", [SERIES_LIST, param("factor", "float", required=True)])
def scale(ctx: RenderContext, seriesList: Lists, factor: float) -> Lists:
    """Multiply every value by ``factor``."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("scale(%s,%s)", sl, fmt_g(factor)), sl.values * float(factor),
        ("scale", factor)))


@register("offset", [SERIES_LIST, param("factor", "float", required=True)])
def offset(ctx: RenderContext, seriesList: Lists, factor: float) -> Lists:
    """Add ``factor`` to every value."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("offset(%s,%s)", sl, fmt_g(factor)), sl.values + factor,
        ("offset", factor)))


@register("add", [SERIES_LIST, param("constant", "float", required=True)])
def add(ctx: RenderContext, seriesList: Lists, constant: float) -> Lists:
    """Add ``constant`` to every value (named with the integer part, as graphite)."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("add(%s,%d)", sl, constant), sl.values + constant, ("add", constant)))


@register("absolute", [SERIES_LIST])
def absolute(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Absolute value of every point."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("absolute(%s)", sl), np.abs(sl.values), ("absolute", 1)))


def _pow(values: np.ndarray, exponent: float) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _finite_or_null(np.power(values, exponent), values)


@register("pow", [SERIES_LIST, param("factor", "float", required=True)])
def pow_(ctx: RenderContext, seriesList: Lists, factor: float) -> Lists:
    """Raise every value to the power ``factor`` (null where undefined)."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("pow(%s,%s)", sl, fmt_g(factor)), _pow(sl.values, factor),
        ("pow", factor)))


@register("squareRoot", [SERIES_LIST])
def squareRoot(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Square root of every value (null for negative values)."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("squareRoot(%s)", sl), _pow(sl.values, 0.5), ("squareRoot", 1)))


@register("invert", [SERIES_LIST])
def invert(ctx: RenderContext, seriesList: Lists) -> Lists:
    """1/x for every value (null for 0)."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("invert(%s)", sl), _pow(sl.values, -1.0), ("invert", 1)))


@register("exp", [SERIES_LIST])
def exp(ctx: RenderContext, seriesList: Lists) -> Lists:
    """e to the power of every value."""
    with np.errstate(over="ignore"):
        return map_lists(seriesList, lambda sl: renamed(
            sl, _names("exp(%s)", sl), np.exp(sl.values), ("exp", "e")))


@register("log", [SERIES_LIST, param("base", "integer", default=10)])
def log(ctx: RenderContext, seriesList: Lists, base: float = 10) -> Lists:
    """Logarithm in ``base`` (null for values <= 0)."""
    def one(sl: SeriesList) -> SeriesList:
        with np.errstate(all="ignore"):
            values = np.where(sl.values > 0, np.log(sl.values) / math.log(base), np.nan)
        return renamed(sl, _names("log(%s, %s)", sl, base), values, ("log", base))
    return map_lists(seriesList, one)


@register("sigmoid", [SERIES_LIST])
def sigmoid(ctx: RenderContext, seriesList: Lists) -> Lists:
    """1 / (1 + exp(-x)) for every value."""
    with np.errstate(over="ignore"):
        return map_lists(seriesList, lambda sl: renamed(
            sl, _names("sigmoid(%s)", sl), 1 / (1 + np.exp(-sl.values)),
            ("sigmoid", "sigmoid")))


@register("logit", [SERIES_LIST])
def logit(ctx: RenderContext, seriesList: Lists) -> Lists:
    """log(x / (1 - x)) for every value (null outside (0, 1))."""
    def one(sl: SeriesList) -> SeriesList:
        with np.errstate(all="ignore"):
            values = _finite_or_null(np.log(sl.values / (1 - sl.values)), sl.values)
        return renamed(sl, _names("logit(%s)", sl), values, ("logit", "logit"))
    return map_lists(seriesList, one)


@register("scaleToSeconds", [SERIES_LIST, param("seconds", "float", required=True)])
def scaleToSeconds(ctx: RenderContext, seriesList: Lists, seconds: float) -> Lists:
    """Values per step turned into values per ``seconds`` (rounded to 6 decimals)."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("scaleToSeconds(%s,%d)", sl, seconds),
        py_round(sl.values * (seconds / sl.step), 6), ("scaleToSeconds", seconds)))


@register("offsetToZero", [SERIES_LIST])
def offsetToZero(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Subtract each series' minimum, so that it starts at 0."""
    out = []
    for sl in seriesList:
        minimum = aggregate_axis("min", sl.values, axis=1)
        tags = [dict(t, offsetToZero=str(None if math.isnan(m) else float(m)))
                for t, m in zip(sl.tags, minimum, strict=True)]
        names = _names("offsetToZero(%s)", sl)
        out.append(replace(sl, names=names, tags=tags, values=sl.values - minimum[:, None],
                           path_expressions=names))
    return concat(out)


@register("round", [SERIES_LIST, param("precision", "integer", default=0)])
def round_(ctx: RenderContext, seriesList: Lists, precision: int | None = None) -> Lists:
    """Round every value to ``precision`` decimals (Python's rounding)."""
    def one(sl: SeriesList) -> SeriesList:
        names = (_names("round(%s)", sl) if precision is None
                 else _names("round(%s,%s)", sl, fmt_g(int(precision))))
        return renamed(sl, names, py_round(sl.values, int(precision or 0)),
                       ("round", precision or 0))
    return map_lists(seriesList, one)


# --- differences and running sums -------------------------------------------------------


def derivative_values(values: np.ndarray) -> np.ndarray:
    """Difference to the previous point; null when either is null."""
    out = np.full_like(values, np.nan)
    out[:, 1:] = values[:, 1:] - values[:, :-1]
    return out


def non_negative_delta_values(values: np.ndarray, max_value: float | None = None,
                              min_value: float | None = None) -> np.ndarray:
    """graphite's ``_nonNegativeDelta`` over every point: the increase since the
    previous point; a decrease (counter reset) is null, or a wrap-around when
    ``maxValue`` (``max + 1 + v - prev - min``) or ``minValue`` (``v - min``) is given.
    Values above ``maxValue`` or below ``minValue`` are null and reset the previous."""
    with np.errstate(invalid="ignore"):
        out_of_range = np.zeros(values.shape, dtype=bool)
        if max_value is not None:
            out_of_range |= values > max_value
        if min_value is not None:
            out_of_range |= values < min_value
        usable = np.where(out_of_range, np.nan, values)
        prev = np.full_like(values, np.nan)
        prev[:, 1:] = usable[:, :-1]
        out = np.full_like(values, np.nan)
        both = ~np.isnan(usable) & ~np.isnan(prev)
        up = both & (usable >= prev)
        out[up] = usable[up] - prev[up]
        down = both & (usable < prev)
        if max_value is not None:
            wrapped = max_value + 1 + usable - prev - (min_value or 0)
            out[down] = wrapped[down]
        elif min_value is not None:
            out[down] = (usable - min_value)[down]
    return out


def integral_values(values: np.ndarray) -> np.ndarray:
    """Running sum (left to right); null stays null and adds nothing."""
    return np.where(np.isnan(values), np.nan, np.nancumsum(values, axis=1))


@register("derivative", [SERIES_LIST])
def derivative(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Change from the previous point."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("derivative(%s)", sl), derivative_values(sl.values), ("derivative", 1)))


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@register("nonNegativeDerivative", [SERIES_LIST, param("maxValue", "float"),
                                    param("minValue", "float")])
def nonNegativeDerivative(ctx: RenderContext, seriesList: Lists,
                          maxValue: float | None = None,
                          minValue: float | None = None) -> Lists:
    """Increase from the previous point; counter resets are null (or wrap-arounds
    given ``maxValue``/``minValue``)."""
    hi, lo = _opt_float(maxValue), _opt_float(minValue)
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("nonNegativeDerivative(%s)", sl),
        non_negative_delta_values(sl.values, hi, lo), ("nonNegativeDerivative", 1)))


@register("perSecond", [SERIES_LIST, param("maxValue", "float"), param("minValue", "float")])
def perSecond(ctx: RenderContext, seriesList: Lists, maxValue: float | None = None,
              minValue: float | None = None) -> Lists:
    """``nonNegativeDerivative`` divided by the step, rounded to 6 decimals."""
    hi, lo = _opt_float(maxValue), _opt_float(minValue)
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("perSecond(%s)", sl),
        py_round(non_negative_delta_values(sl.values, hi, lo) / sl.step, 6),
        ("perSecond", 1)))


@register("integral", [SERIES_LIST])
def integral(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Running total of the values."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("integral(%s)", sl), integral_values(sl.values), ("integral", 1)))


@register("integralByInterval", [SERIES_LIST, param("intervalUnit", "string", required=True)])
def integralByInterval(ctx: RenderContext, seriesList: Lists, intervalUnit: str) -> Lists:
    """Running total that restarts every ``intervalUnit`` counted from ``from``;
    nulls repeat the running total."""
    interval = abs(interval_arg(intervalUnit))
    if interval == 0:
        raise GraphiteError("integralByInterval(): the interval must not be 0")

    def one(sl: SeriesList) -> SeriesList:
        t = sl.timestamps() - ctx.start
        restart = t // interval != (t - sl.step) // interval
        total = np.cumsum(np.where(np.isnan(sl.values), 0.0, sl.values), axis=1)
        last_restart = np.maximum.accumulate(np.where(restart, np.arange(sl.points), -1))
        before = np.maximum(last_restart - 1, 0)
        values = total - np.where(last_restart >= 1, total[:, before], 0.0)
        return renamed(sl, _names("integralByInterval(%s,'%s')", sl, intervalUnit), values,
                       ("integralByInterval", intervalUnit))
    return map_lists(seriesList, one)


@register("delay", [SERIES_LIST, param("steps", "integer", required=True)])
def delay(ctx: RenderContext, seriesList: Lists, steps: int) -> Lists:
    """Shift the values ``steps`` points later (earlier when negative), nulls filling."""
    def one(sl: SeriesList) -> SeriesList:
        values = np.full_like(sl.values, np.nan)
        p = sl.points
        if steps == 0:
            values = values[:, :0]      # graphite's series[:-0] leaves no point at all
        elif steps > 0:
            if steps < p:
                values[:, steps:] = sl.values[:, :p - steps]
        elif -steps < p:
            values[:, :p + steps] = sl.values[:, -steps:]
        return renamed(sl, _names("delay(%s,%d)", sl, steps), values, ("delay", steps))
    return map_lists(seriesList, one)


# --- gaps -------------------------------------------------------------------------------


def keep_last_values(values: np.ndarray, limit: float = INF) -> np.ndarray:
    """Fill each run of nulls that follows a value and is at most ``limit`` long with
    that value (also at the end of the series)."""
    n, p = values.shape
    valid = ~np.isnan(values)
    idx = np.arange(p)
    last_valid = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    next_valid = np.minimum.accumulate(np.where(valid, idx, p)[:, ::-1], axis=1)[:, ::-1]
    gap = next_valid - last_valid - 1
    fill = ~valid & (last_valid >= 0) & (gap <= limit)
    filled = np.take_along_axis(values, np.maximum(last_valid, 0), axis=1)
    return np.where(fill, filled, values)


@register("keepLastValue", [SERIES_LIST, param("limit", "intOrInf", default=INF)])
def keepLastValue(ctx: RenderContext, seriesList: Lists, limit: float = INF) -> Lists:
    """Continue the last value over gaps of at most ``limit`` nulls."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("keepLastValue(%s)", sl), keep_last_values(sl.values, limit)))


def interpolate_values(values: np.ndarray, limit: float = INF) -> np.ndarray:
    """Linear interpolation over gaps of at most ``limit`` nulls between two values."""
    n, p = values.shape
    valid = ~np.isnan(values)
    idx = np.arange(p)
    last_valid = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    next_valid = np.minimum.accumulate(np.where(valid, idx, p)[:, ::-1], axis=1)[:, ::-1]
    gap = next_valid - last_valid - 1
    fill = ~valid & (last_valid >= 0) & (next_valid < p) & (gap <= limit)
    before = np.take_along_axis(values, np.maximum(last_valid, 0), axis=1)
    after = np.take_along_axis(values, np.minimum(next_valid, p - 1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        line = before + (idx - last_valid) * (after - before) / (gap + 1)
    return np.where(fill, line, values)


@register("interpolate", [SERIES_LIST, param("limit", "intOrInf", default=INF)])
def interpolate(ctx: RenderContext, seriesList: Lists, limit: float = INF) -> Lists:
    """Fill gaps of at most ``limit`` nulls by a straight line between their ends."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("interpolate(%s)", sl), interpolate_values(sl.values, limit)))


@register("transformNull", [SERIES_LIST, param("default", "float", default=0),
                            param("referenceSeries", "seriesList")])
def transformNull(ctx: RenderContext, seriesList: Lists, default: float = 0,
                  referenceSeries: Lists | None = None) -> Lists:
    """Replace nulls by ``default``; with ``referenceSeries`` only where one of those
    series has a value."""
    reference = [sl for sl in referenceSeries or [] if len(sl)]
    fill_at = None
    if reference:
        width = max(sl.points for sl in reference)
        fill_at = np.zeros(width, dtype=bool)
        for sl in reference:
            fill_at[:sl.points] |= (~np.isnan(sl.values)).any(axis=0)
        if width == 0:
            fill_at = None
    fmt = ("transformNull(%s,%s,referenceSeries)" if reference else "transformNull(%s,%s)")
    out = []
    for sl in seriesList:
        if not len(sl):
            continue
        values = sl.values
        if fill_at is not None:
            width = max(sl.points, len(fill_at))
            padded = np.full((len(sl), width), np.nan)
            padded[:, :sl.points] = values
            mask = np.zeros(width, dtype=bool)
            mask[:len(fill_at)] = fill_at
            values = np.where(np.isnan(padded) & mask, default, padded)
        else:
            values = np.where(np.isnan(values), default, values)
        tags = [dict(t, transformNull=str(default)) for t in sl.tags]
        if reference:
            for t in tags:
                t["referenceSeries"] = "1"
        names = _names(fmt, sl, fmt_g(default))
        out.append(replace(sl, names=names, tags=tags, values=values, path_expressions=names))
    return concat(out)


@register("isNonNull", [SERIES_LIST])
def isNonNull(ctx: RenderContext, seriesList: Lists) -> Lists:
    """1 where there is a value, 0 where null."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, _names("isNonNull(%s)", sl), (~np.isnan(sl.values)).astype(np.float64),
        ("isNonNull", 1)))


# --- re-bucketing -----------------------------------------------------------------------


def bucket_cube(values: np.ndarray, bucket_of_point: np.ndarray, n_buckets: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points grouped into buckets: a NaN-padded (N, B, L) cube and the (B, L) mask of
    positions holding a point. ``bucket_of_point`` is non-decreasing."""
    counts = np.bincount(bucket_of_point, minlength=n_buckets)[:n_buckets]
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n_buckets else np.zeros(0, int)
    width = int(counts.max()) if n_buckets and counts.size else 0
    pos = first[:, None] + np.arange(max(width, 1))[None, :]
    present = np.arange(max(width, 1))[None, :] < counts[:, None]
    safe_pos = np.where(present, pos, 0)
    if values.shape[1] == 0:
        cube = np.full((values.shape[0], n_buckets, max(width, 1)), np.nan)
    else:
        cube = np.where(present, values[:, safe_pos], np.nan)
    return cube, present


def summarize_values(values: np.ndarray, start: int, step: int, interval: int, func: str,
                     align_to_from: bool = False, xfiles_factor: float | None = None
                     ) -> tuple[int, np.ndarray]:
    """graphite's ``summarize`` for series on one grid: (new start, (N, B) values).

    Buckets are ``interval`` long from ``start`` rounded down to a multiple of the
    interval (or from ``start`` itself with ``align_to_from``); a bucket holds the points
    with ``bucket_start <= t < bucket_start + interval``."""
    canon = resolve_agg(func)
    end = start + values.shape[1] * step
    if align_to_from:
        new_start, new_end = start, end
    else:
        new_start = start - start % interval
        new_end = end - end % interval + interval
    n_buckets = max(0, -(-(new_end - new_start) // interval))
    times = start + step * np.arange(values.shape[1], dtype=np.int64)
    bucket = (times - new_start) // interval
    inside = bucket < n_buckets
    cube, present = bucket_cube(values[:, inside], bucket[inside], n_buckets)
    n_valid = (~np.isnan(cube)).sum(axis=2)
    out = np.where(xff_ok(n_valid, interval / step, xfiles_factor),
                   aggregate_axis(canon, cube, axis=2, present=present), np.nan)
    return new_start, out


@register("summarize", [SERIES_LIST,
                        param("intervalString", "interval", required=True,
                              suggestions=["10min", "1h", "1d"]),
                        param("func", "aggFunc", default="sum"),
                        param("alignToFrom", "boolean", default=False)])
def summarize(ctx: RenderContext, seriesList: Lists, intervalString: str,
              func: str = "sum", alignToFrom: bool = False) -> Lists:
    """Re-bucket into ``intervalString`` buckets aggregated with ``func``; buckets are
    aligned to the interval unless ``alignToFrom``."""
    interval = interval_arg(intervalString)
    if interval <= 0:
        raise GraphiteError("summarize(): the interval must be positive")
    resolve_agg(func)
    xff = request_xff(ctx)
    suffix = ", true" if alignToFrom else ""

    def one(sl: SeriesList) -> SeriesList:
        new_start, values = summarize_values(sl.values, sl.start, sl.step, interval, func,
                                             bool(alignToFrom), xff)
        names = ['summarize(%s, "%s", "%s"%s)' % (n, intervalString, func, suffix)
                 for n in sl.names]
        tags = [dict(t, summarize=str(intervalString), summarizeFunction=str(func))
                for t in sl.tags]
        return replace(sl, names=names, tags=tags, values=values, start=new_start,
                       step=interval, path_expressions=names)
    return map_lists(seriesList, one)


def hitcount_values(values: np.ndarray, start: int, step: int, end: int, interval: int
                    ) -> tuple[int, np.ndarray]:
    """graphite's ``hitcount``: (new start, (N, B) values). Buckets of ``interval`` end
    at ``end``; each value counts ``value × seconds`` of its step ``[t, t + step)``
    overlapping a bucket; a bucket no value reaches is null."""
    n_buckets = int(math.ceil((end - start) / interval))
    new_start = end - n_buckets * interval
    p = values.shape[1]
    per_point = step // interval + 2          # buckets one point can reach
    t0 = start + step * np.arange(p, dtype=np.int64) - new_start
    first_bucket = t0 // interval
    bucket = first_bucket[:, None] + np.arange(per_point)[None, :]          # (P, M)
    lo = np.maximum(t0[:, None], bucket * interval)
    hi = np.minimum(t0[:, None] + step, (bucket + 1) * interval)
    seconds = hi - lo
    reach = (seconds > 0) & (bucket >= 0) & (bucket < n_buckets)
    pos_point, pos_slot = np.nonzero(reach)          # point-major: buckets non-decreasing
    contrib = values[:, pos_point] * seconds[pos_point, pos_slot]          # (N, K)
    cube, present = bucket_cube(contrib, bucket[pos_point, pos_slot], n_buckets)
    return new_start, aggregate_axis("sum", cube, axis=2, present=present)


def _align_start(ctx: RenderContext, interval: int) -> int:
    """``from`` truncated to the day, hour or minute (by the interval's size), in the
    request's time zone (``ctx.notes["tz"]``, UTC by default)."""
    s = datetime.fromtimestamp(ctx.start, _request_tz(ctx))
    if interval >= 86400:
        s = s.replace(hour=0, minute=0, second=0, microsecond=0)
    elif interval >= 3600:
        s = s.replace(minute=0, second=0, microsecond=0)
    elif interval >= 60:
        s = s.replace(second=0, microsecond=0)
    return int(s.timestamp())


@register("hitcount", [SERIES_LIST,
                       param("intervalString", "interval", required=True,
                             suggestions=["10min", "1h", "1d"]),
                       param("alignToInterval", "boolean", default=False)])
def hitcount(ctx: RenderContext, seriesList: Lists, intervalString: str,
             alignToInterval: bool = False) -> Lists:
    """Rates turned into counts per ``intervalString`` bucket (value × seconds)."""
    interval = interval_arg(intervalString)
    if interval <= 0:
        raise GraphiteError("hitcount(): the interval must be positive")
    lists = seriesList
    ends: list[int] | None = None
    if alignToInterval:
        lists = reevaluate(ctx, seriesList, _align_start(ctx, interval), ctx.end)
        ends = [sl.start + ((sl.end - sl.start) // interval) * interval + interval
                for sl in lists]
    suffix = ", true" if alignToInterval else ""
    out = []
    for k, sl in enumerate(lists):
        if not len(sl):
            continue
        end = ends[k] if ends is not None else sl.end
        new_start, values = hitcount_values(sl.values, sl.start, sl.step, end, interval)
        names = ['hitcount(%s, "%s"%s)' % (n, intervalString, suffix) for n in sl.names]
        tags = [dict(t, hitcount=str(intervalString)) for t in sl.tags]
        out.append(replace(sl, names=names, tags=tags, values=values, start=new_start,
                           step=interval, path_expressions=names))
    return concat(out)


# --- time ---------------------------------------------------------------------------------


def _backwards(interval: str) -> tuple[str, int]:
    """A shift interval as graphite spells it (no sign = back in time) and its seconds."""
    text = str(interval)
    if text[:1].isdigit():
        text = "-" + text
    return text, interval_arg(text)


@register("timeShift", [SERIES_LIST,
                        param("timeShift", "interval", required=True,
                              suggestions=["1h", "6h", "12h", "1d", "2d", "7d", "14d",
                                           "30d"]),
                        param("resetEnd", "boolean", default=True),
                        param("alignDst", "boolean", default=False)])
def timeShift(ctx: RenderContext, seriesList: Lists, timeShift: str, resetEnd: bool = True,
              alignDST: bool = False) -> Lists:
    """The same target over a shifted time range, drawn at the request's times.
    A shift without sign goes back in time. ``alignDST`` has no effect (UTC)."""
    shift, delta = _backwards(timeShift)
    first = next((sl for sl in seriesList if len(sl)), None)
    if first is None:
        return []
    out = []
    for sl in reevaluate(ctx, seriesList, ctx.start + delta, ctx.end + delta):
        if not len(sl):
            continue
        end = first.end if resetEnd else sl.end - sl.start + first.start
        width = max(0, min(sl.points, (end - first.start) // sl.step + 1))
        names = ['timeShift(%s, "%s")' % (n, shift) for n in sl.names]
        tags = [dict(t, timeShift=shift) for t in sl.tags]
        out.append(replace(sl, names=names, tags=tags, values=sl.values[:, :width],
                           start=first.start))
    return concat(out)


@register("consolidateBy", [SERIES_LIST,
                            param("consolidationFunc", "string", required=True,
                                  options=CONSOLIDATION_FUNCS)], group_name="Special")
def consolidateBy(ctx: RenderContext, seriesList: Lists, consolidationFunc: str) -> Lists:
    """Set the function ``maxDataPoints`` consolidation uses for these series."""
    if consolidationFunc not in CONSOLIDATION_FUNCS:
        raise GraphiteError("Invalid consolidation function: '%s'" % consolidationFunc)

    def one(sl: SeriesList) -> SeriesList:
        names = _names('consolidateBy(%s,"%s")', sl, consolidationFunc)
        tags = [dict(t, consolidateBy=consolidationFunc) for t in sl.tags]
        return replace(sl, names=names, tags=tags, path_expressions=names,
                       consolidate=[consolidationFunc] * len(sl))
    return map_lists(seriesList, one)


@register("timeStack", [SERIES_LIST,
                        param("timeShiftUnit", "interval", default="1d",
                              suggestions=["1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d"]),
                        param("timeShiftStart", "integer", default=0),
                        param("timeShiftEnd", "integer", default=7)])
def timeStack(ctx: RenderContext, seriesList: Lists, timeShiftUnit: str = "1d",
              timeShiftStart: int = 0, timeShiftEnd: int = 7) -> Lists:
    """The target shifted back by 0, 1, ... (``timeShiftStart`` to ``timeShiftEnd - 1``)
    units, all drawn at the request's times."""
    unit, delta = _backwards(timeShiftUnit)
    first = next((sl for sl in seriesList if len(sl)), None)
    if first is None:
        return []
    out = []
    for shift in range(int(timeShiftStart), int(timeShiftEnd)):
        for sl in reevaluate(ctx, seriesList, ctx.start + delta * shift,
                             ctx.end + delta * shift):
            if not len(sl):
                continue
            names = ["timeShift(%s, %s, %s)" % (n, unit, shift) for n in sl.names]
            tags = [dict(t, timeShiftUnit=unit, timeShift=str(shift)) for t in sl.tags]
            width = max(0, min(sl.points, (first.end - first.start) // sl.step + 1))
            out.append(replace(sl, names=names, tags=tags, values=sl.values[:, :width],
                               start=first.start, path_expressions=names))
    return concat(out)


_ALIGN_UNITS = [("y", "years"), ("mon", "months"), ("w", "weeks"), ("d", "days"),
                ("h", "hours"), ("min", "minutes"), ("s", "seconds")]


def _smart_start(ctx: RenderContext, align_to: str) -> int:
    """``from`` truncated to the unit of ``align_to`` (weeks to an ISO weekday, 1 unless
    the spec ends in a digit), in the request's time zone."""
    unit = next((u for u, _ in _ALIGN_UNITS if align_to.startswith(u)), None)
    if unit is None:
        raise GraphiteError("Invalid alignTo unit %r" % align_to)
    s = datetime.fromtimestamp(ctx.start, _request_tz(ctx))
    if unit == "y":
        s = s.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "mon":
        s = s.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "w":
        weekday = 1 if align_to[-1].isalpha() else int(align_to[-1])
        back = (s.isoweekday() - weekday) % 7
        s = s.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(s.timestamp()) - back * 86400
    elif unit == "d":
        s = s.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "h":
        s = s.replace(minute=0, second=0, microsecond=0)
    elif unit == "min":
        s = s.replace(second=0, microsecond=0)
    return int(s.timestamp())


@register("smartSummarize", [SERIES_LIST,
                             param("intervalString", "interval", required=True,
                                   suggestions=["10min", "1h", "1d"]),
                             param("func", "aggFunc", default="sum"),
                             param("alignTo", "string",
                                   options=[None, "years", "months", "weeks", "days", "hours",
                                            "minutes", "seconds", True, False])])
def smartSummarize(ctx: RenderContext, seriesList: Lists, intervalString: str,
                   func: str = "sum", alignTo: str | None = None) -> Lists:
    """``summarize`` with buckets from the (re-fetched) start of the range, which
    ``alignTo`` (``1d``, ``hours``, ``weeks3``...) first truncates to its unit."""
    interval = interval_arg(intervalString)
    if interval <= 0:
        raise GraphiteError("smartSummarize(): the interval must be positive")
    resolve_agg(func)
    lists = seriesList
    if alignTo is not None and not isinstance(alignTo, bool):
        lists = reevaluate(ctx, seriesList, _smart_start(ctx, str(alignTo)), ctx.end)
    xff = request_xff(ctx)

    def one(sl: SeriesList) -> SeriesList:
        _, values = summarize_values(sl.values, sl.start, sl.step, interval, func, True, xff)
        names = ['smartSummarize(%s, "%s", "%s")' % (n, intervalString, func)
                 for n in sl.names]
        tags = [dict(t, smartSummarize=str(intervalString), smartSummarizeFunction=str(func))
                for t in sl.tags]
        return replace(sl, names=names, tags=tags, values=values, step=interval,
                       path_expressions=names)
    return map_lists(lists, one)


def _request_tz(ctx: RenderContext) -> tzinfo:
    name = ctx.notes.get("tz")
    if not name:
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def _time_series(ctx: RenderContext, name: str, step: int, values: np.ndarray) -> Lists:
    return [SeriesList([name], [default_tags(name)], ctx.start, step, values[None, :])]


@register("timeFunction", [param("name", "string", required=True),
                           param("step", "integer", default=60)], aliases=("time",))
def timeFunction(ctx: RenderContext, name: str, step: int = 60) -> Lists:
    """A series whose value is its own timestamp, every ``step`` seconds."""
    times = np.arange(ctx.start, ctx.end, int(step), dtype=np.float64)
    return _time_series(ctx, name, int(step), times)


@register("sinFunction", [param("name", "string", required=True),
                          param("amplitude", "integer", default=1),
                          param("step", "integer", default=60)], aliases=("sin",))
def sinFunction(ctx: RenderContext, name: str, amplitude: float = 1, step: int = 60) -> Lists:
    """``amplitude × sin(timestamp)`` every ``step`` seconds."""
    times = np.arange(ctx.start, ctx.end, int(step), dtype=np.float64)
    return _time_series(ctx, name, int(step), np.sin(times) * amplitude)


@register("timeSlice", [SERIES_LIST, param("startSliceAt", "date", required=True),
                        param("endSliceAt", "date", default="now")])
def timeSlice(ctx: RenderContext, seriesList: Lists, startSliceAt: str,
              endSliceAt: str = "now") -> Lists:
    """Null outside ``startSliceAt`` .. ``endSliceAt`` (graphite time specs)."""
    from tsdb.query.graphite.timespec import parse_attime

    try:
        start = int(parse_attime(str(startSliceAt), ctx.now, _request_tz(ctx)))
        end = int(parse_attime(str(endSliceAt), ctx.now, _request_tz(ctx)))
    except ValueError as e:
        raise GraphiteError("timeSlice(): %s" % e) from None

    def one(sl: SeriesList) -> SeriesList:
        # graphite counts time from the request's start, not the series' own
        times = ctx.start + sl.step * np.arange(sl.points)
        values = np.where((times < start) | (times > end), np.nan, sl.values)
        names = ["timeSlice(%s, %d, %d)" % (n, start, end) for n in sl.names]
        tags = [dict(t, timeSliceStart=str(start), timeSliceEnd=str(end)) for t in sl.tags]
        return replace(sl, names=names, tags=tags, values=values)
    return map_lists(seriesList, one)
