"""Special: ``constantLine``, ``changed``, ``cumulative``, ``setXFilesFactor``,
``substr``, ``fallbackSeries``, ``seriesByTag`` (listed only: the fetch layer evaluates it)
and ``identity``/``minMax``."""

from __future__ import annotations

import math
import re

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import aggregate_axis
from tsdb.query.graphite.functions_base import (
    SERIES_LIST,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    count,
    flat,
    map_lists,
    param,
    registrar,
    renamed,
    replace,
)
from tsdb.query.graphite.functions_naming import default_tags
from tsdb.query.graphite.series import SeriesList

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Special")


def constant_line(ctx: RenderContext, value: float | None) -> SeriesList:
    """Three points at ``from``, the middle and ``until`` (graphite's step is
    ``int((until - from) / 2)``), named ``str(value)``."""
    step = max(int((ctx.end - ctx.start) / 2.0), 1)
    name = str(value)
    v = np.nan if value is None else float(value)
    return SeriesList([name], [default_tags(name)], ctx.start, step, np.full((1, 3), v),
                      path_expressions=["constantLine(%s)" % name])


@register("constantLine", [param("value", "float", required=True)])
def constantLine(ctx: RenderContext, value: float) -> Lists:
    """A horizontal line at ``value`` over the requested range."""
    if isinstance(value, str):
        raise GraphiteError("constantLine(): value must be a number", 500)
    return [constant_line(ctx, value)]


def changed_values(values: np.ndarray) -> np.ndarray:
    """1 where a value differs from the last earlier value, else 0 (nulls are 0)."""
    n, p = values.shape
    valid = ~np.isnan(values)
    last = np.maximum.accumulate(np.where(valid, np.arange(p), -1), axis=1)
    prev_idx = np.full((n, p), -1)
    prev_idx[:, 1:] = last[:, :-1]
    prev = np.take_along_axis(values, np.maximum(prev_idx, 0), axis=1)
    return (valid & (prev_idx >= 0) & (values != prev)).astype(np.float64)


@register("changed", [SERIES_LIST])
def changed(ctx: RenderContext, seriesList: Lists) -> Lists:
    """1 where the value changed since the previous value, 0 elsewhere."""
    return map_lists(seriesList, lambda sl: renamed(
        sl, ["changed(%s)" % n for n in sl.names], changed_values(sl.values)))


@register("cumulative", [SERIES_LIST])
def cumulative(ctx: RenderContext, seriesList: Lists) -> Lists:
    """``consolidateBy(seriesList, 'sum')``."""
    from tsdb.query.graphite.functions_transform import consolidateBy

    return consolidateBy(ctx, seriesList, "sum")


@register("setXFilesFactor", [SERIES_LIST, param("xFilesFactor", "float", required=True)],
          aliases=("xFilesFactor",))
def setXFilesFactor(ctx: RenderContext, seriesList: Lists, xFilesFactor: float) -> Lists:
    """Set the share of non-null points a consolidated bucket needs (0..1)."""
    ctx.notes["xFilesFactor"] = xFilesFactor
    out = []
    for sl in seriesList:
        out.append(replace(sl, tags=[dict(t, xFilesFactor=str(xFilesFactor))
                                     for t in sl.tags]))
    return concat(out)


@register("substr", [SERIES_LIST, param("start", "node", default=0),
                     param("stop", "node", default=0)])
def substr(ctx: RenderContext, seriesList: Lists, start: int = 0, stop: int = 0) -> Lists:
    """Keep nodes ``start`` to ``stop`` of the innermost path in each name."""
    def one(name: str) -> str:
        left = name.rfind("(") + 1
        right = name.find(")")
        if right < 0:
            right = len(name) + 1
        nodes = name[left:right].split(".")
        kept = nodes[int(start):] if int(stop) == 0 else nodes[int(start):int(stop)]
        return re.sub(",.*$", "", ".".join(kept))
    return concat([replace(sl, names=[one(n) for n in sl.names]) for sl in seriesList])


@register("fallbackSeries", [SERIES_LIST, param("fallback", "seriesList", required=True)])
def fallbackSeries(ctx: RenderContext, seriesList: Lists, fallback: Lists) -> Lists:
    """``fallback`` when ``seriesList`` is empty."""
    return seriesList if count(seriesList) else fallback


@register("seriesByTag", [param("tagExpressions", "string", required=True, multiple=True)])
def seriesByTag(ctx: RenderContext, *tagExpressions: str) -> Lists:
    """Series whose tags match all expressions (``tag=value``, ``tag!=value``,
    ``tag=~regex``, ``tag!=~regex``). Evaluated by the fetch layer, not here."""
    raise GraphiteError("seriesByTag is evaluated by the fetch layer", 500)


@register("identity", [param("name", "string", required=True)], group_name="Calculate")
def identity(ctx: RenderContext, name: str) -> Lists:
    """A series whose value is its timestamp, one point a minute."""
    step = 60
    times = np.arange(ctx.start, ctx.end, step, dtype=np.float64)
    return [SeriesList([name], [default_tags(name)], ctx.start, step, times[None, :],
                       path_expressions=['identity("%s")' % name])]


@register("minMax", [SERIES_LIST], group_name="Transform")
def minMax(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Scale each series to 0..1 between its minimum and maximum."""
    def one(sl: SeriesList) -> SeriesList:
        lo = np.nan_to_num(aggregate_axis("min", sl.values, axis=1), nan=0.0)[:, None]
        hi = np.nan_to_num(aggregate_axis("max", sl.values, axis=1), nan=0.0)[:, None]
        span = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(span == 0, 0.0, (sl.values - lo) / span)
        values = np.where(np.isnan(sl.values), np.nan, scaled)
        return renamed(sl, ["minMax(%s)" % n for n in sl.names], values)
    return map_lists(seriesList, one)


@register("cactiStyle", [SERIES_LIST, param("system", "string", options=["si", "binary"]),
                         param("units", "string")])
def cactiStyle(ctx: RenderContext, seriesList: Lists, system: str | None = None,
               units: str | None = None) -> Lists:
    """Names padded into columns with the current, maximum and minimum value."""
    from tsdb.query.graphite.functions_alias import format_units

    if system:
        def fmt(x: float) -> str:
            if units:
                return "%.2f %s" % format_units(x, system, units)
            return "%.2f%s" % format_units(x, system)
    else:
        def fmt(x: float) -> str:
            return "%.2f %s" % (x, units) if units else "%.2f" % x
    items = flat(seriesList)
    if not items:
        return seriesList
    stats = {f: np.concatenate([aggregate_axis(f, sl.values, axis=1) for sl in seriesList
                                if len(sl)]) for f in ("last", "max", "min")}

    def width(f: str) -> int:
        # graphite sizes columns from the integer part (3 when there is no value)
        return max([0] + [len(fmt(int(v) if not np.isnan(v) and v else 3)) for v in stats[f]]) + 3

    name_len = max([0] + [len(sl.names[i]) for sl, i in items])
    widths = {f: width(f) for f in stats}

    def cell(v: float) -> object:
        return math.nan if np.isnan(v) else fmt(float(v))
    out, k = [], 0
    for sl in seriesList:
        names = []
        for name in sl.names:
            names.append("%*s Current:%*s Max:%*s Min:%*s " % (
                -name_len, name, -widths["last"], cell(stats["last"][k]),
                -widths["max"], cell(stats["max"][k]), -widths["min"], cell(stats["min"][k])))
            k += 1
        out.append(replace(sl, names=names))
    return concat(out)


@register("randomWalkFunction", [param("name", "string", required=True),
                                 param("step", "integer", default=60)],
          aliases=("randomWalk",))
def randomWalkFunction(ctx: RenderContext, name: str, step: int = 60) -> Lists:
    """A random walk from 0 (steps uniform in -0.5 .. 0.5) every ``step`` seconds."""
    n = len(range(ctx.start, ctx.end, int(step)))
    walk = np.concatenate([[0.0], np.cumsum(np.random.random(max(n - 1, 0)) - 0.5)])[:n]
    return [SeriesList([name], [default_tags(name)], ctx.start, int(step), walk[None, :])]
