"""Alias: renaming series (graphite-web's 'Alias' group). Renames change the name only:
tags and the path expression (which aggregates are named after) stay."""

from __future__ import annotations

import math
import re

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import aggregate_axis, resolve_agg
from tsdb.query.graphite.functions_base import (
    SERIES_LIST,
    VALID_AGG_FUNCS,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    param,
    registrar,
)
from tsdb.query.graphite.functions_base import replace as with_fields
from tsdb.query.graphite.functions_naming import agg_key

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Alias")


@register("alias", [SERIES_LIST, param("newName", "string", required=True)])
def alias(ctx: RenderContext, seriesList: Lists, newName: str) -> Lists:
    """Name every series ``newName``."""
    return concat([with_fields(sl, names=[str(newName)] * len(sl)) for sl in seriesList])


@register("aliasSub", [SERIES_LIST, param("search", "string", required=True),
                       param("replace", "string", required=True)])
def aliasSub(ctx: RenderContext, seriesList: Lists, search: str, replace: str) -> Lists:
    r"""Rename with Python's ``re.sub(search, replace, name)`` (``\1`` back-references)."""
    try:
        regex = re.compile(search)
        return concat([with_fields(sl, names=[regex.sub(replace, n) for n in sl.names])
                       for sl in seriesList])
    except (re.error, TypeError, IndexError) as e:
        raise GraphiteError("aliasSub(): %s" % e, 500) from None


@register("aliasByNode", [SERIES_LIST, param("nodes", "nodeOrTag", required=True,
                                             multiple=True)])
def aliasByNode(ctx: RenderContext, seriesList: Lists, *nodes: int | str) -> Lists:
    """Name each series by the given nodes of its path (negative from the end; a string
    picks a tag), joined by ``.``; a function-wrapped name is read through its first
    path expression."""
    return concat([with_fields(sl, names=[agg_key(n, t, nodes) for n, t in zip(sl.names, sl.tags,
                                                                              strict=True)])
                   for sl in seriesList])


@register("aliasByTags", [SERIES_LIST, param("tags", "nodeOrTag", required=True,
                                             multiple=True)])
def aliasByTags(ctx: RenderContext, seriesList: Lists, *tags: int | str) -> Lists:
    """Name each series by tag values (numbers pick nodes of the name), joined by ``.``."""
    return aliasByNode(ctx, seriesList, *tags)


def _metric(name: str) -> str:
    """graphite's ``substr(name, -1)``: the last node of the innermost path."""
    left = name.rfind("(") + 1
    right = name.find(")")
    if right < 0:
        right = len(name) + 1
    return re.sub(",.*$", "", name[left:right].split(".")[-1])


@register("aliasByMetric", [SERIES_LIST])
def aliasByMetric(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Name each series by the last node of its path."""
    return concat([with_fields(sl, names=[_metric(n) for n in sl.names]) for sl in seriesList])


_UNIT_SYSTEMS = {
    "binary": (("Pi", 1024.0 ** 5), ("Ti", 1024.0 ** 4), ("Gi", 1024.0 ** 3),
               ("Mi", 1024.0 ** 2), ("Ki", 1024.0)),
    "si": (("P", 1000.0 ** 5), ("T", 1000.0 ** 4), ("G", 1000.0 ** 3), ("M", 1000.0 ** 2),
           ("k", 1000.0)),
}


def format_units(v: float, system: str = "si", units: str | None = None) -> tuple[float, str]:
    """graphite's ``glyph.format_units``: ``v`` scaled to the largest fitting prefix."""
    for prefix, size in _UNIT_SYSTEMS[system]:
        if abs(v) >= size:
            v2 = v / size
            if (v2 - math.floor(v2)) < 0.00000000001 and v > 1:
                v2 = float(math.floor(v2))
            return v2, prefix + units if units else prefix
    if (v - math.floor(v)) < 0.00000000001 and v > 1:
        v = float(math.floor(v))
    return v, units or ""


def _py_value(func: str, values: np.ndarray) -> object:
    """graphite's aggregation function on one series, as the Python value it prints."""
    result = float(aggregate_axis(resolve_agg(func), values, axis=0))
    if math.isnan(result):
        return None
    return int(result) if func == "count" else result


@register("legendValue", [SERIES_LIST,
                          param("valuesTypes", "string", multiple=True,
                                options=VALID_AGG_FUNCS + [f + "Series" for f in VALID_AGG_FUNCS]
                                + ["si", "binary"])])
def legendValue(ctx: RenderContext, seriesList: Lists, *valueTypes: str) -> Lists:
    """Append aggregates of each series to its name: ``x (avg: 12.5)``; a last argument
    ``si`` or ``binary`` formats them with unit prefixes in aligned columns."""
    system = None
    if valueTypes and valueTypes[-1] in ("si", "binary"):
        system, valueTypes = valueTypes[-1], valueTypes[:-1]
    out = []
    for sl in seriesList:
        names = list(sl.names)
        for value_type in valueTypes:
            for i in range(len(sl)):
                try:
                    value: object = _py_value(value_type, sl.values[i])
                except GraphiteError:
                    value = "(?)"
                if system is None:
                    names[i] += " (%s: %s)" % (value_type, value)
                else:
                    formatted = value if isinstance(value, str) else (
                        None if value is None
                        else "%.2f%s" % format_units(float(value), system))  # type: ignore
                    names[i] = "%-20s%-5s%-10s" % (names[i], value_type, formatted)
        out.append(with_fields(sl, names=names))
    return concat(out)


@register("aliasQuery", [SERIES_LIST, param("search", "string", required=True),
                         param("replace", "string", required=True),
                         param("newName", "string", required=True)])
def aliasQuery(ctx: RenderContext, seriesList: Lists, search: str, replace: str,
               newName: str) -> Lists:
    """Name each series ``newName % v``, where v is the last value of the target that
    ``re.sub(search, replace, name)`` gives."""
    out = []
    for sl in seriesList:
        names = []
        for name in sl.names:
            query = re.sub(search, replace, name)
            found = [x for x in ctx.evaluate(query, ctx.start, ctx.end) if len(x)]
            if not found:
                raise GraphiteError("No series found with query: " + query)
            current = float(aggregate_axis("last", found[0].values[0], axis=0))
            if math.isnan(current):
                raise GraphiteError("Cannot get last value of series: " + found[0].names[0])
            names.append(newName % current)
        out.append(with_fields(sl, names=names))
    return concat(out)
