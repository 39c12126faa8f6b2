"""Filter Series, Filter Data and Sorting (graphite-web's groups of those names):
choosing series (``highest*``, ``lowest*``, ``*Above``/``*Below``, ``limit``,
``exclude``, ``grep``...), nulling points (``removeAboveValue``, ``removeBelowValue``)
and reordering (``sortBy*``).

Rankings compute one number per series (its average, maximum, last value...) in one
numpy reduction; a series without values ranks as ``-inf`` (graphite's ``keyFunc``), and
ties keep their order (Python's stable sort, also with ``reverse``).
"""

from __future__ import annotations

import re

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import aggregate_axis, resolve_agg
from tsdb.query.graphite.functions_base import (
    SERIES_LIST,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    flat,
    pick,
    registrar,
    renamed,
    select,
)
from tsdb.query.graphite.functions_base import param as p
from tsdb.query.graphite.functions_naming import fmt_g
from tsdb.query.graphite.series import SeriesList

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Filter Series")


def series_stat(lists: Lists, func: str) -> np.ndarray:
    """``func`` (an aggregation name) of each series' values, in order; NaN = None."""
    canon = resolve_agg(func)
    parts = [aggregate_axis(canon, sl.values, axis=1) for sl in lists if len(sl)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _order(keys: np.ndarray, reverse: bool) -> np.ndarray:
    """Python's stable ``sort(key, reverse)``: equal keys keep their order."""
    keys = np.where(np.isnan(keys), -np.inf, keys)
    if reverse:
        # a stable descending order: sort the negated keys ascending
        return np.argsort(-keys, kind="stable")
    return np.argsort(keys, kind="stable")


def _ranked(lists: Lists, func: str, reverse: bool, n: int | None = None) -> Lists:
    order = _order(series_stat(lists, func), reverse)
    return select(lists, order if n is None else order[:int(n)])     # Python slicing


N_INT = p("n", "integer", required=True)
N_FLOAT = p("n", "float", required=True)


@register("highest", [SERIES_LIST, N_INT, p("func", "aggFunc", default="average")])
def highest(ctx: RenderContext, seriesList: Lists, n: int = 1, func: str = "average") -> Lists:
    """The ``n`` series with the highest ``func`` of their values, highest first."""
    return _ranked(seriesList, func, True, n)


@register("lowest", [SERIES_LIST, N_INT, p("func", "aggFunc", default="average")])
def lowest(ctx: RenderContext, seriesList: Lists, n: int = 1, func: str = "average") -> Lists:
    """The ``n`` series with the lowest ``func`` of their values, lowest first."""
    return _ranked(seriesList, func, False, n)


def _ranking(name: str, func: str, reverse: bool, doc: str) -> None:
    def impl(ctx: RenderContext, seriesList: Lists, n: int) -> Lists:
        return _ranked(seriesList, func, reverse, n)

    impl.__doc__ = doc
    impl.__name__ = name
    register(name, [SERIES_LIST, N_INT])(impl)


_ranking("highestCurrent", "last", True, "The ``n`` series with the highest last value.")
_ranking("highestMax", "max", True, "The ``n`` series with the highest maximum.")
_ranking("highestAverage", "average", True, "The ``n`` series with the highest average.")
_ranking("lowestCurrent", "last", False, "The ``n`` series with the lowest last value.")
_ranking("lowestAverage", "average", False, "The ``n`` series with the lowest average.")

_OPERATORS = {
    "=": lambda v, t: ~np.isnan(v) & (v == t),
    "!=": lambda v, t: np.isnan(v) | (v != t),
    ">": lambda v, t: ~np.isnan(v) & (v > t),
    ">=": lambda v, t: ~np.isnan(v) & (v >= t),
    "<": lambda v, t: np.isnan(v) | (v < t),
    "<=": lambda v, t: np.isnan(v) | (v <= t),
}


def _filtered(lists: Lists, func: str, operator: str, threshold: float) -> Lists:
    if operator not in _OPERATORS:
        raise GraphiteError("Unsupported operator: %s" % operator)
    stat = series_stat(lists, func)
    with np.errstate(invalid="ignore"):
        keep = _OPERATORS[operator](stat, float(threshold))
    return select(lists, np.flatnonzero(keep))


@register("filterSeries", [SERIES_LIST, p("func", "aggFunc", required=True),
                           p("operator", "string", required=True, options=sorted(_OPERATORS)),
                           p("threshold", "float", required=True)])
def filterSeries(ctx: RenderContext, seriesList: Lists, func: str, operator: str,
                 threshold: float) -> Lists:
    """Keep the series whose ``func`` of values compares true with ``threshold``
    (a series without values counts as below anything)."""
    return _filtered(seriesList, func, operator, threshold)


def _threshold_filter(name: str, func: str, operator: str, doc: str) -> None:
    def impl(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
        return _filtered(seriesList, func, operator, n)

    impl.__doc__ = doc
    impl.__name__ = name
    register(name, [SERIES_LIST, N_FLOAT])(impl)


_threshold_filter("maximumAbove", "max", ">", "Series whose maximum is above ``n``.")
_threshold_filter("minimumAbove", "min", ">", "Series whose minimum is above ``n``.")
_threshold_filter("maximumBelow", "max", "<=", "Series whose maximum is at most ``n``.")
_threshold_filter("minimumBelow", "min", "<=", "Series whose minimum is at most ``n``.")
_threshold_filter("currentAbove", "last", ">", "Series whose last value is above ``n``.")
_threshold_filter("currentBelow", "last", "<=", "Series whose last value is at most ``n``.")
_threshold_filter("averageAbove", "average", ">", "Series whose average is above ``n``.")
_threshold_filter("averageBelow", "average", "<=", "Series whose average is at most ``n``.")


@register("limit", [SERIES_LIST, N_INT])
def limit(ctx: RenderContext, seriesList: Lists, n: int) -> Lists:
    """The first ``n`` series."""
    items = flat(seriesList)
    return pick(items[0:n])


def _regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as e:
        raise GraphiteError("invalid regular expression %r: %s" % (pattern, e), 500) from None


@register("exclude", [SERIES_LIST, p("pattern", "string", required=True)])
def exclude(ctx: RenderContext, seriesList: Lists, pattern: str) -> Lists:
    """Drop the series whose name matches the regular expression anywhere."""
    regex = _regex(pattern)
    return pick([(sl, i) for sl, i in flat(seriesList) if not regex.search(sl.names[i])])


@register("grep", [SERIES_LIST, p("pattern", "string", required=True)])
def grep(ctx: RenderContext, seriesList: Lists, pattern: str) -> Lists:
    """Keep the series whose name matches the regular expression anywhere."""
    regex = _regex(pattern)
    return pick([(sl, i) for sl, i in flat(seriesList) if regex.search(sl.names[i])])


@register("removeEmptySeries", [SERIES_LIST, p("xFilesFactor", "float")])
def removeEmptySeries(ctx: RenderContext, seriesList: Lists,
                      xFilesFactor: float | None = None) -> Lists:
    """Drop series without values (or with a share of values below ``xFilesFactor``)."""
    factor = float(xFilesFactor or 0)
    keep = []
    for sl, i in flat(seriesList):
        n_valid = int((~np.isnan(sl.values[i])).sum())
        if sl.points and n_valid and n_valid / sl.points >= factor:
            keep.append((sl, i))
    return pick(keep)


@register("unique", [p("seriesLists", "seriesList", required=True, multiple=True)])
def unique(ctx: RenderContext, *seriesLists: Lists) -> Lists:
    """The series of all arguments, the first of each name only."""
    seen: set[str] = set()
    keep = []
    for lists in seriesLists:
        for sl, i in flat(lists):
            if sl.names[i] not in seen:
                seen.add(sl.names[i])
                keep.append((sl, i))
    return pick(keep)


@register("mostDeviant", [SERIES_LIST, N_INT])
def mostDeviant(ctx: RenderContext, seriesList: Lists, n: int) -> Lists:
    """The ``n`` series with the largest standard deviation."""
    sigma = series_stat(seriesList, "stddev") ** 2
    candidates = np.flatnonzero(~np.isnan(sigma))
    order = candidates[_order(sigma[candidates], True)]
    return select(seriesList, order[:max(int(n), 0)])


# --- Filter Data --------------------------------------------------------------------------


def _remove_value(seriesList: Lists, n: float, above: bool) -> Lists:
    label = "removeAboveValue" if above else "removeBelowValue"
    out = []
    for sl in seriesList:
        if not len(sl):
            continue
        with np.errstate(invalid="ignore"):
            drop = sl.values > n if above else sl.values < n
        names = ["%s(%s, %s)" % (label, name, fmt_g(n)) for name in sl.names]
        out.append(renamed(sl, names, np.where(drop, np.nan, sl.values)))
    return concat(out)


@register("removeAboveValue", [SERIES_LIST, N_FLOAT], group_name="Filter Data")
def removeAboveValue(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Null out the values above ``n``."""
    return _remove_value(seriesList, n, True)


@register("removeBelowValue", [SERIES_LIST, N_FLOAT], group_name="Filter Data")
def removeBelowValue(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Null out the values below ``n``."""
    return _remove_value(seriesList, n, False)


# --- Sorting ----------------------------------------------------------------------------


@register("sortBy", [SERIES_LIST, p("func", "aggFunc", default="average"),
                     p("reverse", "boolean", default=False)], group_name="Sorting")
def sortBy(ctx: RenderContext, seriesList: Lists, func: str = "average",
           reverse: bool = False) -> Lists:
    """Series ordered by ``func`` of their values, ascending unless ``reverse``."""
    return _ranked(seriesList, func, bool(reverse))


def _natural_key(name: str) -> str:
    return re.sub(r"(\d+)", lambda m: f"{int(m.group(0)):010}", name)


@register("sortByName", [SERIES_LIST, p("natural", "boolean", default=False),
                         p("reverse", "boolean", default=False)], group_name="Sorting")
def sortByName(ctx: RenderContext, seriesList: Lists, natural: bool = False,
               reverse: bool = False) -> Lists:
    """Series ordered by name (numbers by value with ``natural``)."""
    items = flat(seriesList)

    def key(item: tuple[SeriesList, int]) -> str:
        name = item[0].names[item[1]]
        return _natural_key(name) if natural else name
    return pick(sorted(items, key=key, reverse=bool(reverse)))


@register("sortByTotal", [SERIES_LIST], group_name="Sorting")
def sortByTotal(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Series ordered by the sum of their values, largest first."""
    return _ranked(seriesList, "sum", True)


@register("sortByMaxima", [SERIES_LIST], group_name="Sorting")
def sortByMaxima(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Series ordered by their maximum, largest first."""
    return _ranked(seriesList, "max", True)


@register("sortByMinima", [SERIES_LIST], group_name="Sorting")
def sortByMinima(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Series with a positive maximum, ordered by their minimum, smallest first."""
    maxima = np.nan_to_num(series_stat(seriesList, "max"), nan=0.0)
    candidates = np.flatnonzero(maxima > 0)
    minima = series_stat(seriesList, "min")[candidates]
    return select(seriesList, candidates[_order(minima, False)])


@register("useSeriesAbove", [SERIES_LIST, p("value", "float", required=True),
                             p("search", "string", required=True),
                             p("replace", "string", required=True)])
def useSeriesAbove(ctx: RenderContext, seriesList: Lists, value: float, search: str,
                   replace: str) -> Lists:
    """For each series whose maximum is above ``value``, the series named
    ``re.sub(search, replace, name)`` instead."""
    maxima = series_stat(seriesList, "max")
    new_names = [re.sub(search, replace, sl.names[i])
                 for (sl, i), m in zip(flat(seriesList), maxima, strict=True) if m > value]
    if not new_names:
        return []
    found = ctx.evaluate("group(%s)" % ",".join(new_names), ctx.start, ctx.end)
    return [sl for sl in found if len(sl) and sl.points]


def _percentile(values: np.ndarray, n: float) -> float:
    from tsdb.query.graphite.functions_calculate import percentile_values

    return float(percentile_values(values[None, :], n, axis=1)[0])


@register("averageOutsidePercentile", [SERIES_LIST, N_FLOAT])
def averageOutsidePercentile(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Series whose average lies outside the n-th and (100-n)-th percentiles of the
    averages."""
    averages = series_stat(seriesList, "average")
    if n < 50:
        n = 100 - n
    low, high = _percentile(averages, 100 - n), _percentile(averages, n)
    with np.errstate(invalid="ignore"):
        inside = (low < averages) & (averages < high)
    return select(seriesList, np.flatnonzero(~inside))


@register("removeBetweenPercentile", [SERIES_LIST, N_FLOAT])
def removeBetweenPercentile(ctx: RenderContext, seriesList: Lists, n: float) -> Lists:
    """Series with at least one point outside the n-th and (100-n)-th percentiles of the
    values of all series at that time."""
    from tsdb.query.graphite.functions_calculate import percentile_values

    items = flat(seriesList)
    if not items:
        return []
    if n < 50:
        n = 100 - n
    width = min(sl.points for sl, _ in items)         # graphite zips the series
    matrix = np.array([sl.values[i, :width] for sl, i in items]).reshape(len(items), width)
    low = percentile_values(matrix, 100 - n, axis=0)
    high = percentile_values(matrix, n, axis=0)
    with np.errstate(invalid="ignore"):
        inside = (low < matrix) & (matrix < high)
    return select(seriesList, np.flatnonzero((~inside).any(axis=1)))
