"""Calculate: moving windows (``movingAverage``, ``movingMedian``, ``movingWindow``...),
percentiles, ``stdev`` and ``aggregateLine`` (graphite-web's 'Calculate' group), plus
``percentileOfSeries`` (Combine) and the percentile filters (Filter Data).

A moving window in graphite-web 1.1 fetches its target again from ``from - window`` and
gives the point at ``t`` the aggregate of the ``window`` points **before** ``t`` (the
point itself excluded).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import (
    aggregate_axis,
    normalize,
    py_round,
    resolve_agg,
    xff_ok,
)
from tsdb.query.graphite.functions_base import (
    INTERVAL_SUGGESTIONS,
    SERIES_LIST,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    count,
    flat,
    interval_arg,
    map_lists,
    param,
    reevaluate,
    registrar,
    renamed,
    replace,
    request_xff,
)
from tsdb.query.graphite.functions_naming import fmt_g
from tsdb.query.graphite.series import SeriesList

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Calculate")

#: elements of a (series × windows × window) block evaluated at once
_BLOCK = 1 << 21


def moving_values(values: np.ndarray, window: int, func: str,
                  xfiles_factor: float | None = None) -> np.ndarray:
    """graphite's ``movingWindow`` kernel: output ``i`` (of ``P - window``) aggregates the
    non-null values among input points ``i .. i + window - 1`` with ``func``; null when
    there is none or fewer than ``xFilesFactor × window``."""
    canon = resolve_agg(func)
    n, p = values.shape
    n_out = max(p - window, 0)
    out = np.full((n, n_out), np.nan)
    if n_out == 0 or window <= 0:
        return out
    valid = ~np.isnan(values)
    counts = np.zeros((n, p + 1))
    counts[:, 1:] = np.cumsum(valid, axis=1)
    n_valid = counts[:, window:window + n_out] - counts[:, :n_out]
    keep = xff_ok(n_valid, window, xfiles_factor)
    if canon in ("sum", "average", "avg_zero", "count") and window > 256:
        # long windows: prefix sums (differences of running sums, not re-added)
        sums = np.zeros((n, p + 1))
        sums[:, 1:] = np.cumsum(np.where(valid, values, 0.0), axis=1)
        total = sums[:, window:window + n_out] - sums[:, :n_out]
        with np.errstate(invalid="ignore", divide="ignore"):
            result = {"sum": total, "count": n_valid}.get(canon, total / n_valid)
        return np.where(keep, result, np.nan)
    windows = sliding_window_view(values, window, axis=1)[:, :n_out]   # (N, P-w, w) view
    chunk = max(1, _BLOCK // max(1, n * window))
    for lo in range(0, n_out, chunk):
        block = windows[:, lo:lo + chunk]
        # graphite aggregates the list of non-null values: nulls are absent, not null
        out[:, lo:lo + chunk] = aggregate_axis(canon, block, axis=2,
                                               present=~np.isnan(block))
    return np.where(keep, out, np.nan)


def _window_arg(windowSize: object) -> tuple[bool, str]:
    if isinstance(windowSize, str):
        return True, windowSize
    if isinstance(windowSize, bool) or not isinstance(windowSize, (int, float)):
        raise GraphiteError("windowSize must be an integer or an interval string, got %r"
                            % (windowSize,))
    return False, str(windowSize)


@register("movingWindow", [SERIES_LIST,
                           param("windowSize", "intOrInterval", required=True,
                                 suggestions=INTERVAL_SUGGESTIONS),
                           param("func", "aggFunc", default="average"),
                           param("xFilesFactor", "float")])
def movingWindow(ctx: RenderContext, seriesList: Lists, windowSize: int | str,
                 func: str = "average", xFilesFactor: float | None = None) -> Lists:
    """Aggregate with ``func`` over a window of points (an integer) or of time (an
    interval string) before each point; history before ``from`` is fetched."""
    if not count(seriesList):
        return []
    is_interval, window_text = _window_arg(windowSize)
    if is_interval:
        preview = abs(interval_arg(windowSize))
    else:
        preview = max(sl.step for sl in seriesList if len(sl)) * int(windowSize)  # type: ignore
    resolve_agg(func)
    tag_name = "moving" + func.capitalize()
    out = []
    for sl in reevaluate(ctx, seriesList, ctx.start - preview, ctx.end):
        if not len(sl):
            continue
        if is_interval:
            points = preview // sl.step
            names = ['%s(%s,"%s")' % (tag_name, n, windowSize) for n in sl.names]
        else:
            points = int(windowSize)  # type: ignore[arg-type]
            names = ["%s(%s,%s)" % (tag_name, n, windowSize) for n in sl.names]
        xff = xFilesFactor if xFilesFactor is not None else request_xff(ctx)
        values = moving_values(sl.values, points, func, xff)
        out.append(renamed(sl, names, values, (tag_name, window_text),
                           start=sl.start + preview))
    return concat(out)


def _moving(func: str, name: str) -> None:
    def impl(ctx: RenderContext, seriesList: Lists, windowSize: int | str,
             xFilesFactor: float | None = None) -> Lists:
        return movingWindow(ctx, seriesList, windowSize, func, xFilesFactor)

    impl.__doc__ = ("Moving %s over a window of points or of time before each point."
                    % func)
    impl.__name__ = name
    register(name, [SERIES_LIST,
                    param("windowSize", "intOrInterval", required=True,
                          suggestions=INTERVAL_SUGGESTIONS),
                    param("xFilesFactor", "float")])(impl)


for _func, _name in (("average", "movingAverage"), ("median", "movingMedian"),
                     ("sum", "movingSum"), ("min", "movingMin"), ("max", "movingMax")):
    _moving(_func, _name)


# --- percentiles ----------------------------------------------------------------------


def percentile_values(values: np.ndarray, n: float, interpolate: bool = False,
                      axis: int = -1) -> np.ndarray:
    """graphite's ``_getPercentile`` over ``axis`` of the non-null values: the value of
    rank ``ceil(n/100 × (count + 1))`` (or interpolated); null without values."""
    a = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    ordered = np.sort(a, axis=-1)                     # NaN sort last
    size = (~np.isnan(a)).sum(axis=-1)
    fractional = (n / 100.0) * (size + 1)
    rank = np.floor(fractional).astype(np.int64)
    fraction = fractional - rank
    if not interpolate:
        rank = rank + np.ceil(fraction).astype(np.int64)
    if np.any((rank - 1 > size) & (size > 0)):
        raise GraphiteError("percentile %s out of range" % n, 500)
    idx = np.where(rank == 0, 0, np.where(rank - 1 == size, size - 1, rank - 1))
    idx = np.clip(idx, 0, max(a.shape[-1] - 1, 0))
    if a.shape[-1] == 0:
        return np.full(a.shape[:-1], np.nan)
    result = np.take_along_axis(ordered, idx[..., None], axis=-1)[..., 0]
    if interpolate:
        nxt = np.take_along_axis(ordered, np.clip(rank, 0, a.shape[-1] - 1)[..., None],
                                 axis=-1)[..., 0]
        result = np.where(rank != size, result + fraction * (nxt - result), result)
    return np.where(size > 0, result, np.nan)


@register("nPercentile", [SERIES_LIST, param("n", "float", required=True)])
def nPercentile(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """A constant line per series at its ``n``-th percentile (series without values are
    dropped)."""
    if not n:
        raise GraphiteError("The requested percent is required to be greater than 0", 500)
    out = []
    for sl in seriesList:
        perc = percentile_values(sl.values, n, axis=1)
        keep = np.flatnonzero(~np.isnan(perc))
        if not len(keep):
            continue
        part = sl.take(keep)
        names = ["nPercentile(%s, %s)" % (name, fmt_g(n)) for name in part.names]
        out.append(renamed(part, names, np.repeat(perc[keep, None], sl.points, axis=1),
                           ("nPercentile", n)))
    return concat(out)


@register("percentileOfSeries", [SERIES_LIST, param("n", "float", required=True),
                                 param("interpolate", "boolean", default=False)],
          group_name="Combine")
def percentileOfSeries(ctx: RenderContext, seriesList: Lists, n: float,
                       interpolate: bool = False) -> Lists:
    """The ``n``-th percentile across the series at every point."""
    if n <= 0:
        raise GraphiteError("The requested percent is required to be greater than 0")
    norm = normalize(seriesList, request_xff(ctx))
    if norm is None:
        return []
    name = "percentileOfSeries(%s,%s)" % (norm.path_expressions[0], fmt_g(n))
    values = percentile_values(norm.values, n, bool(interpolate), axis=0)
    return [SeriesList([name], [{"name": name}], norm.start, norm.step, values[None, :])]


def _remove_percentile(seriesList: Lists, n: float, above: bool) -> Lists:
    out = []
    label = "removeAbovePercentile" if above else "removeBelowPercentile"
    for sl in seriesList:
        if not len(sl):
            continue
        perc = percentile_values(sl.values, n, axis=1)[:, None]
        with np.errstate(invalid="ignore"):
            drop = (sl.values > perc) if above else (np.isnan(sl.values) | (sl.values < perc))
        # a series without values keeps them (graphite skips it)
        drop &= ~np.isnan(perc)
        names = ["%s(%s, %s)" % (label, name, fmt_g(n)) for name in sl.names]
        # graphite's nPercentile tags the series it measured (a shared tag dict)
        tags = [dict(t, nPercentile=str(n)) if not np.isnan(v) else dict(t)
                for t, v in zip(sl.tags, perc[:, 0], strict=True)]
        out.append(replace(sl, names=names, tags=tags, values=np.where(drop, np.nan, sl.values),
                           path_expressions=names))
    return concat(out)


@register("removeAbovePercentile", [SERIES_LIST, param("n", "float", required=True)],
          group_name="Filter Data")
def removeAbovePercentile(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Null out the values above each series' ``n``-th percentile."""
    return _remove_percentile(seriesList, n, True)


@register("removeBelowPercentile", [SERIES_LIST, param("n", "float", required=True)],
          group_name="Filter Data")
def removeBelowPercentile(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Null out the values below each series' ``n``-th percentile."""
    return _remove_percentile(seriesList, n, False)


# --- others ------------------------------------------------------------------------------


def stdev_values(values: np.ndarray, points: int, tolerance: float = 0.1) -> np.ndarray:
    """Standard deviation over the last ``points`` points including the current one
    (fewer at the start); null when the share of values is below ``tolerance``."""
    n, p = values.shape
    valid = ~np.isnan(values)
    zeroed = np.where(valid, values, 0.0)

    def window_sum(a: np.ndarray) -> np.ndarray:
        c = np.zeros((n, p + 1))
        c[:, 1:] = np.cumsum(a, axis=1)
        lo = np.maximum(np.arange(p) + 1 - points, 0)
        return c[:, 1:] - c[:, lo]

    n_valid = window_sum(valid.astype(np.float64))
    total = window_sum(zeroed)
    squares = window_sum(zeroed * zeroed)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance_n2 = n_valid * squares - total * total
        dev = np.sqrt(variance_n2) / n_valid
        ok = (n_valid > 0) & (n_valid / points >= tolerance) & (variance_n2 >= 0)
    return np.where(ok, dev, np.nan)


@register("stdev", [SERIES_LIST, param("points", "integer", required=True),
                    param("windowTolerance", "float", default=0.1)])
def stdev(ctx: RenderContext, seriesList: Lists, points: int,
          windowTolerance: float = 0.1) -> Lists:
    """Moving standard deviation over ``points`` points."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, ["stdev(%s,%d)" % (name, int(points)) for name in sl.names],
        stdev_values(sl.values, int(points), float(windowTolerance)), ("stdev", points)))


@register("aggregateLine", [SERIES_LIST, param("func", "aggFunc", default="average"),
                            param("keepStep", "boolean", default=False)])
def aggregateLine(ctx: RenderContext, seriesList: Lists, func: str = "average",
                  keepStep: bool = False) -> Lists:
    """A constant line per series at the aggregate (``func``) of its values."""
    from tsdb.query.graphite.functions_special import constant_line

    canon = resolve_agg(func)
    out = []
    for sl, i in flat(seriesList):
        value = float(aggregate_axis(canon, sl.values[i], axis=0))
        label = "None" if math.isnan(value) else fmt_g(value)
        name = "aggregateLine(%s, %s)" % (sl.names[i], label)
        if keepStep:
            out.append(renamed(sl.take([i]), [name], np.full((1, sl.points), value)))
        else:
            line = constant_line(ctx, None if math.isnan(value) else value)
            out.append(replace(line, names=[name], path_expressions=[name]))
    return concat(out)


def affine_scan(a: np.ndarray, b: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """``e[i] = a[i] * e[i-1] + b[i]`` from ``e[-1] = initial`` along the last axis, as a
    log-depth prefix scan of the affine maps (numpy passes, not a loop over points)."""
    a, b = a.copy(), b.copy()
    shift = 1
    while shift < a.shape[-1]:
        b[..., shift:] = a[..., shift:] * b[..., :-shift] + b[..., shift:]
        a[..., shift:] = a[..., shift:] * a[..., :-shift]
        shift *= 2
    return a * initial[..., None] + b


@register("exponentialMovingAverage", [SERIES_LIST,
                                       param("windowSize", "intOrInterval", required=True,
                                             suggestions=INTERVAL_SUGGESTIONS)])
def exponentialMovingAverage(ctx: RenderContext, seriesList: Lists,
                             windowSize: int | str) -> Lists:
    """Exponential moving average with ``2 / (window + 1)`` (window in points, or in
    seconds for an interval string, as graphite-web), seeded with the average of the
    first window; values rounded to 6 decimals."""
    if not count(seriesList):
        return []
    is_interval, window_text = _window_arg(windowSize)
    if is_interval:
        preview = abs(interval_arg(windowSize))
        constant = 2.0 / (preview + 1)
    else:
        preview = max(sl.step for sl in seriesList if len(sl)) * int(windowSize)  # type: ignore
        constant = 2.0 / (int(windowSize) + 1)  # type: ignore[arg-type]
    out = []
    for sl in reevaluate(ctx, seriesList, ctx.start - preview, ctx.end):
        if not len(sl):
            continue
        if is_interval:
            points = preview // sl.step
            names = ['exponentialMovingAverage(%s,"%s")' % (n, windowSize) for n in sl.names]
        else:
            points = int(windowSize)  # type: ignore[arg-type]
            names = ["exponentialMovingAverage(%s,%s)" % (n, windowSize) for n in sl.names]
        seed = np.nan_to_num(aggregate_axis("average", sl.values[:, :points], axis=1), nan=0.0)
        rest = sl.values[:, points:]
        valid = ~np.isnan(rest)
        ema = affine_scan(np.where(valid, 1 - constant, 1.0),
                          np.where(valid, constant * np.where(valid, rest, 0.0), 0.0), seed)
        values = np.concatenate([seed[:, None], np.where(valid, ema, np.nan)], axis=1)
        out.append(renamed(sl, names, py_round(values, 6),
                           ("exponentialMovingAverage", window_text), start=sl.start + preview))
    return concat(out)


@register("linearRegression", [SERIES_LIST, param("startSourceAt", "date"),
                               param("endSourceAt", "date")])
def linearRegression(ctx: RenderContext, seriesList: Lists, startSourceAt: str | None = None,
                     endSourceAt: str | None = None) -> Lists:
    """The least-squares line of each series (fitted over ``startSourceAt`` ..
    ``endSourceAt`` when given), drawn over the request's range."""
    from tsdb.query.graphite.timespec import parse_attime, timezone

    tz = timezone(str(ctx.notes.get("tz") or ""))
    try:
        start = ctx.start if startSourceAt is None else int(
            parse_attime(str(startSourceAt), ctx.now, tz))
        end = ctx.end if endSourceAt is None else int(parse_attime(str(endSourceAt), ctx.now, tz))
    except ValueError as e:
        raise GraphiteError("linearRegression(): %s" % e) from None
    sources = flat(reevaluate(ctx, seriesList, start, end))
    out = []
    for (src, i), (sl, j) in zip(sources, flat(seriesList), strict=False):
        y = src.values[i]
        valid = ~np.isnan(y)
        idx = np.arange(src.points, dtype=np.float64)
        n = float(valid.sum())
        # sequential sums, as graphite's: the line's offset cancels large terms
        sum_i, sum_ii = idx[valid].sum(), (idx[valid] ** 2).sum()        # exact integers
        sum_v = float(np.cumsum(y[valid])[-1]) if n else 0.0
        sum_iv = float(np.cumsum(idx[valid] * y[valid])[-1]) if n else 0.0
        denominator = n * sum_ii - sum_i * sum_i
        if denominator == 0:
            continue
        factor = (n * sum_iv - sum_i * sum_v) / denominator / src.step
        offset = (sum_ii * sum_v - sum_iv * sum_i) / denominator - factor * src.start
        name = "linearRegression(%s, %d, %d)" % (sl.names[j], start, end)
        line = offset + sl.timestamps().astype(np.float64) * factor
        tags = dict(sl.tags[j], linearRegressions="%d, %d" % (start, end))
        out.append(replace(sl.take([j]), names=[name], tags=[tags], values=line[None, :],
                           path_expressions=[name]))
    return concat(out)
