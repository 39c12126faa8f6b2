"""Combine: functions that merge several series into fewer (graphite-web's 'Combine'
group): the aggregates (``sumSeries`` and friends, ``aggregate``), ``divideSeries``,
``asPercent``, ``countSeries`` and the ``groupBy*`` family.

An aggregate is named after its inputs' distinct path expressions
(``sumSeries(servers.*.cpu.user)``), keeps the tags all inputs agree on, and gets
``aggregatedBy``; ``name`` becomes the new name unless every input had the same one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_aggregation import aggregate_axis, normalize, resolve_agg, xff_ok
from tsdb.query.graphite.functions_base import (
    SERIES_LIST,
    SERIES_LISTS,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    count,
    flat,
    param,
    pick,
    registrar,
    replace,
    request_xff,
    series_lists_args,
)
from tsdb.query.graphite.functions_naming import (
    agg_key,
    default_tags,
    format_path_expressions,
    parse_tagged,
)
from tsdb.query.graphite.series import SeriesList

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Combine")


def _single(name: str, tags: dict[str, str], start: int, step: int, values: np.ndarray,
            path_expression: str | None = None) -> SeriesList:
    return SeriesList([name], [tags], start, step, values.reshape(1, -1),
                      path_expressions=[path_expression or name])


def aggregate_lists(ctx: RenderContext, lists: Lists, func: str,
                    xfiles_factor: float | None = None) -> Lists:
    """graphite's ``aggregate``: one series from all of ``lists``; [] when empty."""
    raw = func
    if func.endswith("Series"):
        func = func[:-6]
    canon = resolve_agg(func, raw)
    norm = normalize(lists, request_xff(ctx))
    if norm is None:
        return []
    if xfiles_factor is None:
        xfiles_factor = request_xff(ctx)
    name = "%sSeries(%s)" % (func, format_path_expressions(norm.path_expressions))
    n_valid = (~np.isnan(norm.values)).sum(axis=0)
    values = np.where(xff_ok(n_valid, norm.values.shape[0], xfiles_factor),
                      aggregate_axis(canon, norm.values, axis=0), np.nan)
    all_tags = norm.tags
    tags = {k: v for k, v in all_tags[0].items()
            if all(t.get(k) == v for t in all_tags[1:])}
    tags.setdefault("name", name)
    tags["aggregatedBy"] = func
    return [_single(name, tags, norm.start, norm.step, values)]


@register("aggregate", [SERIES_LIST, param("func", "aggFunc", required=True),
                        param("xFilesFactor", "float")])
def aggregate(ctx: RenderContext, seriesList: Lists, func: str,
              xFilesFactor: float | None = None) -> Lists:
    """Aggregate series point by point with ``func`` (sum, average, median, min, max,
    diff, stddev, count, range, multiply, last, avg_zero)."""
    return aggregate_lists(ctx, seriesList, func, xFilesFactor)


def _aggregator(func: str, name: str, aliases: tuple[str, ...] = ()) -> None:
    def impl(ctx: RenderContext, *seriesLists: Lists) -> Lists:
        return aggregate_lists(ctx, series_lists_args(seriesLists), func)

    impl.__doc__ = "Point-wise %s of all series (nulls ignored)." % func
    impl.__name__ = name
    register(name, [SERIES_LISTS], aliases)(impl)


_aggregator("sum", "sumSeries", ("sum",))
_aggregator("average", "averageSeries", ("avg",))
_aggregator("min", "minSeries", ("min",))
_aggregator("max", "maxSeries", ("max",))
_aggregator("diff", "diffSeries")
_aggregator("stddev", "stddevSeries")
_aggregator("rangeOf", "rangeOfSeries")

#: functions an ``aggOrSeriesFunc`` parameter accepts besides the aggregation names
AGGREGATOR_FUNCTIONS = ["sumSeries", "sum", "averageSeries", "avg", "minSeries", "min",
                        "maxSeries", "max", "diffSeries", "stddevSeries", "rangeOfSeries",
                        "multiplySeries", "countSeries", "asPercent"]


@register("multiplySeries", [SERIES_LISTS])
def multiplySeries(ctx: RenderContext, *seriesLists: Lists) -> Lists:
    """Point-wise product; a null anywhere makes the point null. A single series is
    returned unchanged."""
    if len(seriesLists) == 1 and count(seriesLists[0]) == 1:
        return seriesLists[0]
    return aggregate_lists(ctx, series_lists_args(seriesLists), "multiply")


@register("countSeries", [param("seriesLists", "seriesList", multiple=True)])
def countSeries(ctx: RenderContext, *seriesLists: Lists) -> Lists:
    """The number of series at every point (0 as a constant line without arguments)."""
    if not seriesLists:
        from tsdb.query.graphite.functions_special import constant_line
        line = constant_line(ctx, 0)
        return [replace(line, path_expressions=["countSeries()"])]
    norm = normalize(series_lists_args(seriesLists), request_xff(ctx))
    if norm is None:
        return []
    name = "countSeries(%s)" % format_path_expressions(norm.path_expressions)
    values = np.full(norm.values.shape[1], float(norm.values.shape[0]))
    return [_single(name, default_tags(name), norm.start, norm.step, values)]


def _with_wildcards(ctx: RenderContext, lists: Lists, func: str,
                    positions: tuple[int, ...]) -> Lists:
    groups: dict[str, list[tuple[SeriesList, int]]] = {}
    for sl, i in flat(lists):
        nodes = sl.names[i].split(".")
        key = ".".join(n for k, n in enumerate(nodes) if k not in positions)
        groups.setdefault(key, []).append((sl, i))
    out: Lists = []
    for key, items in groups.items():
        [agg] = aggregate_lists(ctx, pick(items), func)
        out.append(replace(agg, names=[key]))
    return concat(out)


@register("aggregateWithWildcards", [SERIES_LIST, param("func", "aggFunc", required=True),
                                     param("positions", "node", multiple=True)])
def aggregateWithWildcards(ctx: RenderContext, seriesList: Lists, func: str,
                           *positions: int) -> Lists:
    """Aggregate the series whose names agree once the given nodes are ignored."""
    return _with_wildcards(ctx, seriesList, func, positions)


for _func, _name in (("sum", "sumSeriesWithWildcards"), ("average", "averageSeriesWithWildcards"),
                     ("multiply", "multiplySeriesWithWildcards")):
    def _ww(ctx: RenderContext, seriesList: Lists, *position: int,
            _f: str = _func) -> Lists:
        return _with_wildcards(ctx, seriesList, _f, position)

    _ww.__doc__ = "``aggregateWithWildcards`` with ``%s``." % _func
    register(_name, [SERIES_LIST, param("position", "node", multiple=True)])(_ww)


def _pairwise(ctx: RenderContext, first: Lists, second: Lists, func: str,
              xfiles_factor: float | None = None) -> Lists:
    a, b = flat(first), flat(second)
    if len(a) != len(b):
        raise GraphiteError("seriesListFirstPos and seriesListSecondPos argument must have "
                            "equal length")
    out: Lists = []
    for x, y in zip(a, b, strict=True):
        agg = aggregate_lists(ctx, pick([x, y]), func, xfiles_factor)
        if agg:
            agg_name = agg[0].names[0]
            name = agg_name[:agg_name.find("Series(")] + "Series(%s,%s)" % (
                x[0].names[x[1]], y[0].names[y[1]])
            out.append(replace(agg[0], names=[name]))
    return concat(out)


@register("aggregateSeriesLists", [param("seriesListFirstPos", "seriesList", required=True),
                                   param("seriesListSecondPos", "seriesList", required=True),
                                   param("func", "aggFunc", required=True),
                                   param("xFilesFactor", "float")])
def aggregateSeriesLists(ctx: RenderContext, seriesListFirstPos: Lists,
                         seriesListSecondPos: Lists, func: str,
                         xFilesFactor: float | None = None) -> Lists:
    """Aggregate the i-th series of the first list with the i-th of the second."""
    return _pairwise(ctx, seriesListFirstPos, seriesListSecondPos, func, xFilesFactor)


for _func, _name in (("sum", "sumSeriesLists"), ("diff", "diffSeriesLists"),
                     ("multiply", "multiplySeriesLists")):
    def _sl(ctx: RenderContext, seriesListFirstPos: Lists,
            seriesListSecondPos: Lists, _f: str = _func) -> Lists:
        return _pairwise(ctx, seriesListFirstPos, seriesListSecondPos, _f)

    _sl.__doc__ = "``aggregateSeriesLists`` with ``%s``." % _func
    register(_name, [param("seriesListFirstPos", "seriesList", required=True),
                     param("seriesListSecondPos", "seriesList", required=True)])(_sl)


# --- division and percentages ----------------------------------------------------------


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """graphite's ``safeDiv``: null for a null operand or a zero divisor."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isnan(b) | (b == 0), np.nan, a / b)


def _divide_by_one(dividends: SeriesList, divisor: SeriesList, name_fmt: str,
                   percent: bool, xff: float | None) -> SeriesList:
    """Every series of ``dividends`` over the single series ``divisor``, normalised
    together (the grid graphite's per-pair normalize gives)."""
    norm = normalize([dividends, divisor], xff)
    assert norm is not None
    quotient = _safe_div(norm.values[:-1], norm.values[-1:])
    if percent:
        quotient = quotient * 100.0
    names = [name_fmt % (n, divisor.names[0]) for n in dividends.names]
    return SeriesList(names, [default_tags(n) for n in names], norm.start, norm.step,
                      quotient, path_expressions=names)


@register("divideSeries", [param("dividendSeriesList", "seriesList", required=True),
                           param("divisorSeries", "seriesList", required=True)])
def divideSeries(ctx: RenderContext, dividendSeriesList: Lists,
                 divisorSeries: Lists) -> Lists:
    """Each dividend divided by the single divisor series (null where it is 0)."""
    n_divisors = count(divisorSeries)
    if n_divisors == 0:
        out = []
        for sl in dividendSeriesList:
            names = ["divideSeries(%s,MISSING)" % n for n in sl.names]
            out.append(replace(sl, names=names, values=np.full_like(sl.values, np.nan),
                               path_expressions=names))
        return concat(out)
    if n_divisors > 1:
        raise GraphiteError("divideSeries second argument must reference exactly 1 series "
                            "(got %d)" % n_divisors)
    divisor = pick(flat(divisorSeries))[0]
    xff = request_xff(ctx)
    return concat([_divide_by_one(sl, divisor, "divideSeries(%s,%s)", False, xff)
                   for sl in dividendSeriesList if len(sl)])


@register("divideSeriesLists", [param("dividendSeriesList", "seriesList", required=True),
                                param("divisorSeriesList", "seriesList", required=True)])
def divideSeriesLists(ctx: RenderContext, dividendSeriesList: Lists,
                      divisorSeriesList: Lists) -> Lists:
    """The i-th dividend divided by the i-th divisor."""
    a, b = flat(dividendSeriesList), flat(divisorSeriesList)
    if len(a) != len(b):
        raise GraphiteError("dividendSeriesList and divisorSeriesList argument must have "
                            "equal length")
    xff = request_xff(ctx)
    return concat([_divide_by_one(pick([x])[0], pick([y])[0], "divideSeries(%s,%s)", False, xff)
                   for x, y in zip(a, b, strict=True)])


def _on_own_grid(sl: SeriesList, values: np.ndarray, names: list[str]) -> SeriesList:
    """Result series on ``sl``'s grid, as graphite builds them from ``series.start``,
    ``series.step`` and a value list that normalize may have consolidated."""
    width = min(values.shape[1], sl.points + 1)
    return SeriesList(names, [default_tags(n) for n in names], sl.start, sl.step,
                      values[:, :width], path_expressions=names)


def _percent_of_values(lists: Lists, values: np.ndarray, total: np.ndarray,
                       total_text: str | None) -> Lists:
    """``values`` (the normalised rows of ``lists``) as percent of ``total``, zipped by
    position (the longer one padded with nulls), each on its own series' grid."""
    width = max(values.shape[1], total.shape[-1])
    padded = np.full((values.shape[0], width), np.nan)
    padded[:, :values.shape[1]] = values
    totals = np.full(width, np.nan)
    totals[:total.shape[-1]] = total
    percent = _safe_div(padded, totals) * 100.0
    out = []
    row = 0
    for sl in lists:
        if not len(sl):
            continue
        names = ["asPercent(%s,%s)" % (n, total_text or p)
                 for n, p in zip(sl.names, sl.path_expressions, strict=True)]
        out.append(_on_own_grid(sl, percent[row:row + len(sl)], names))
        row += len(sl)
    return concat(out)


def _percent_pair(series: SeriesList, total: SeriesList, xff: float | None) -> SeriesList:
    return _divide_by_one(series, total, "asPercent(%s,%s)", True, xff)


def _group_total(items: list[tuple[SeriesList, int]], xff: float | None) -> SeriesList:
    """The total of a group for ``asPercent`` with nodes: the series itself, or the
    null-ignoring sum named ``sumSeries(...)``."""
    if len(items) == 1:
        return pick(items)[0]
    norm = normalize(pick(items), xff)
    assert norm is not None
    name = "sumSeries(%s)" % format_path_expressions(norm.path_expressions)
    return _single(name, default_tags(name), norm.start, norm.step,
                   aggregate_axis("sum", norm.values, axis=0))


def _missing(sl: SeriesList, name: str) -> SeriesList:
    return SeriesList([name], [default_tags(name)], sl.start, sl.step,
                      np.full((1, sl.points), np.nan), path_expressions=[name])


def _as_percent_nodes(lists: Lists, total: object, nodes: tuple, xff: float | None) -> Lists:
    keys: list[str] = []
    groups: dict[str, list[tuple[SeriesList, int]]] = {}
    for sl, i in flat(lists):
        key = agg_key(sl.names[i], sl.tags[i], nodes)
        if key not in groups:
            keys.append(key)
        groups.setdefault(key, []).append((sl, i))
    totals: dict[str, SeriesList] = {}
    if total is None:
        totals = {key: _group_total(groups[key], xff) for key in keys}
    elif isinstance(total, list):
        total_groups: dict[str, list[tuple[SeriesList, int]]] = {}
        for sl, i in flat(total):
            key = agg_key(sl.names[i], sl.tags[i], nodes)
            if key not in total_groups and key not in keys:
                keys.append(key)
            total_groups.setdefault(key, []).append((sl, i))
        totals = {key: _group_total(items, xff) for key, items in total_groups.items()}
    else:
        raise GraphiteError("total must be None or a seriesList")
    out: Lists = []
    for key in keys:
        if key not in groups:
            out.append(_missing(totals[key], "asPercent(MISSING,%s)" % totals[key].names[0]))
            continue
        for sl, i in groups[key]:
            one = sl.take([i])
            if key not in totals:
                out.append(_missing(one, "asPercent(%s,MISSING)" % one.names[0]))
            else:
                out.append(_percent_pair(one, totals[key], xff))
    return concat(out)


@register("asPercent", [SERIES_LIST, param("total", "any"),
                        param("nodes", "nodeOrTag", multiple=True)], aliases=("pct",))
def asPercent(ctx: RenderContext, seriesList: Lists, total: object = None,
              *nodes: object) -> Lists:
    """Each series as a percentage of ``total``: the sum of the list when omitted, a
    number, one series, as many series as the list (matched by sorted name), or per
    group of ``nodes``."""
    xff = request_xff(ctx)
    if normalize(seriesList) is None:
        return []
    if nodes:
        return _as_percent_nodes(seriesList, total, nodes, xff)
    lists = [sl for sl in seriesList if len(sl)]
    if total is None:
        norm = normalize(lists, xff)
        assert norm is not None
        return _percent_of_values(
            lists, norm.values, aggregate_axis("sum", norm.values, axis=0),
            "sumSeries(%s)" % format_path_expressions(norm.path_expressions))
    if isinstance(total, list):
        n_series, n_total = count(lists), count(total)
        if n_total not in (1, n_series):
            raise GraphiteError("asPercent second argument must be missing, a single digit, "
                                "reference exactly 1 series or reference the same number of "
                                "series as the first argument")
        if n_total == n_series:
            by_name = sorted(flat(lists), key=lambda item: item[0].names[item[1]])
            totals_by_name = sorted(flat(total), key=lambda item: item[0].names[item[1]])
            return concat([_percent_pair(pick([s])[0], pick([t])[0], xff)
                           for s, t in zip(by_name, totals_by_name, strict=True)])
        total_series = pick(flat(total))[0]
        norm = normalize([*lists, total_series], xff)
        assert norm is not None
        return _percent_of_values(lists, norm.values[:-1], norm.values[-1],
                                  total_series.names[0])
    if isinstance(total, bool) or not isinstance(total, (int, float)):
        raise GraphiteError("asPercent(): total must be a number or a series list", 500)
    norm = normalize(lists, xff)
    assert norm is not None
    return _percent_of_values(lists, norm.values, np.full(lists[0].points, float(total)),
                              str(total))


# --- grouping ---------------------------------------------------------------------------


def _apply_callback(ctx: RenderContext, lists: Lists, callback: object) -> SeriesList:
    """graphite: a registered function name is called on the group, else ``aggregate``."""
    from tsdb.query.graphite.functions import FUNCTIONS as ALL

    if isinstance(callback, str) and callback in ALL:
        result = ALL[callback].impl(ctx, lists)
    else:
        if not isinstance(callback, str):
            raise GraphiteError("invalid aggregation callback %r" % (callback,), 500)
        result = aggregate_lists(ctx, lists, callback)
    if not result or not len(result[0]):
        raise GraphiteError("aggregation callback %s returned nothing" % callback, 500)
    return result[0].take([0])


def _group(lists: Lists, key_of: Callable[[SeriesList, int], str]
           ) -> dict[str, list[tuple[SeriesList, int]]]:
    groups: dict[str, list[tuple[SeriesList, int]]] = {}
    for sl, i in flat(lists):
        groups.setdefault(key_of(sl, i), []).append((sl, i))
    return groups


@register("groupByNodes", [SERIES_LIST,
                           param("callback", "aggOrSeriesFunc", required=True,
                                 options=AGGREGATOR_FUNCTIONS),
                           param("nodes", "nodeOrTag", multiple=True)])
def groupByNodes(ctx: RenderContext, seriesList: Lists, callback: str,
                 *nodes: object) -> Lists:
    """Group by the values of several nodes (or tags) and aggregate each group; the
    group key becomes the name. Groups come in order of first appearance."""
    groups = _group(seriesList, lambda sl, i: agg_key(sl.names[i], sl.tags[i], nodes))
    out = [replace(_apply_callback(ctx, pick(items), callback), names=[key])
           for key, items in groups.items()]
    return concat(out)


@register("groupByNode", [SERIES_LIST, param("nodeNum", "nodeOrTag", required=True),
                          param("callback", "aggOrSeriesFunc", default="average",
                                options=AGGREGATOR_FUNCTIONS)])
def groupByNode(ctx: RenderContext, seriesList: Lists, nodeNum: object,
                callback: str = "average") -> Lists:
    """Group by one node (or tag) and aggregate each group with ``callback``."""
    return groupByNodes(ctx, seriesList, callback, nodeNum)


@register("groupByTags", [SERIES_LIST,
                          param("callback", "aggOrSeriesFunc", required=True,
                                options=AGGREGATOR_FUNCTIONS),
                          param("tags", "tag", required=True, multiple=True)])
def groupByTags(ctx: RenderContext, seriesList: Lists, callback: str,
                *tags: str) -> Lists:
    """Group by tag values; each result is named ``<name>;tag=value;...`` (the common
    ``name`` tag, or the callback when names differ) and tagged accordingly."""
    if not tags:
        raise GraphiteError("groupByTags(): no tags specified")
    items = flat(seriesList)
    if "name" not in tags:
        names = {sl.tags[i].get("name", sl.names[i]) for sl, i in items}
        common = next(iter(names)) if len(names) == 1 else str(callback)

        def key_of(sl: SeriesList, i: int) -> str:
            t = sl.tags[i]
            return ";".join([common] + sorted(tag + "=" + t.get(tag, "") for tag in tags))
    else:
        def key_of(sl: SeriesList, i: int) -> str:
            t = sl.tags[i]
            return ";".join([t.get("name", sl.names[i])]
                            + sorted(tag + "=" + t.get(tag, "") for tag in tags
                                     if tag != "name"))
    out = []
    for key, group in _group(seriesList, key_of).items():
        try:
            key_tags = parse_tagged(key)
        except ValueError as e:
            raise GraphiteError(str(e), 500) from None
        agg = _apply_callback(ctx, pick(group), callback)
        out.append(replace(agg, names=[key], tags=[key_tags], path_expressions=[key]))
    return concat(out)


@register("group", [param("seriesLists", "seriesList", multiple=True)])
def group(ctx: RenderContext, *seriesLists: Lists) -> Lists:
    """All the series of all arguments as one list."""
    return concat(series_lists_args(seriesLists))


@register("weightedAverage", [param("seriesListAvg", "seriesList", required=True),
                              param("seriesListWeight", "seriesList", required=True),
                              param("nodes", "nodeOrTag", multiple=True)])
def weightedAverage(ctx: RenderContext, seriesListAvg: Lists, seriesListWeight: Lists,
                    *nodes: object) -> Lists:
    """Average of the first list weighted by the second, series paired by ``nodes``."""
    avgs, weights = flat(seriesListAvg), flat(seriesListWeight)
    if len(avgs) != len(weights):
        raise GraphiteError("weightedAverage must receive the same number of series for "
                            "seriesListAvg and seriesListWeight but received respectively "
                            "%d and %d" % (len(avgs), len(weights)))
    pairs: dict[str, dict[str, tuple[SeriesList, int]]] = {}
    for (a, i), (w, j) in zip(avgs, weights, strict=True):
        pairs.setdefault(agg_key(a.names[i], a.tags[i], nodes), {})["avg"] = (a, i)
        pairs.setdefault(agg_key(w.names[j], w.tags[j], nodes), {})["weight"] = (w, j)
    products: Lists = []
    for pair in pairs.values():
        if "avg" not in pair or "weight" not in pair:
            continue
        (a, i), (w, j) = pair["avg"], pair["weight"]
        width = max(a.points, w.points)
        va, vw = np.full(width, np.nan), np.full(width, np.nan)
        va[:a.points], vw[:w.points] = a.values[i], w.values[j]
        name = "product(%s,%s)" % (w.names[j], a.names[i])
        products.append(_single(name, default_tags(name), a.start, a.step, va * vw))
    if not products:
        return []
    [sum_products] = aggregate_lists(ctx, products, "sum")
    [sum_weights] = aggregate_lists(ctx, seriesListWeight, "sum")
    width = max(sum_products.points, sum_weights.points)
    num, den = np.full(width, np.nan), np.full(width, np.nan)
    num[:sum_products.points], den[:sum_weights.points] = sum_products.values[0], \
        sum_weights.values[0]
    name = "weightedAverage(%s, %s, %s)" % (
        ",".join(sorted({p for sl in seriesListAvg for p in sl.path_expressions})),
        ",".join(sorted({p for sl in seriesListWeight for p in sl.path_expressions})),
        ",".join(map(str, nodes)))
    return [_single(name, default_tags(name), sum_products.start, sum_products.step,
                    _safe_div(num, den))]


@register("powSeries", [param("seriesList", "seriesList", required=True, multiple=True)])
def powSeries(ctx: RenderContext, *seriesLists: Lists) -> Lists:
    """First series to the power of the second, to the power of the third...; null
    where any is null or the power is undefined."""
    norm = normalize(series_lists_args(seriesLists), request_xff(ctx))
    if norm is None:
        return []
    result = norm.values[0].copy()
    with np.errstate(all="ignore"):
        for row in norm.values[1:]:                  # a fold over series, not points
            powered = np.power(result, row)
            finite_inputs = np.isfinite(result) & np.isfinite(row)
            result = np.where(finite_inputs & ~np.isfinite(powered), np.nan, powered)
    name = "powSeries(%s)" % ",".join(norm.names)
    return [_single(name, default_tags(name), norm.start, norm.step, result)]


@register("applyByNode", [SERIES_LIST, param("nodeNum", "node", required=True),
                          param("templateFunction", "string", required=True),
                          param("newName", "string")])
def applyByNode(ctx: RenderContext, seriesList: Lists, nodeNum: int, templateFunction: str,
                newName: str | None = None) -> Lists:
    """For each distinct path prefix up to ``nodeNum``, evaluate ``templateFunction`` with
    ``%`` replaced by the prefix (and name the results ``newName`` likewise)."""
    items = flat(seriesList)
    if not items:
        return []
    prefixes = sorted({".".join(sl.names[i].split(".")[:nodeNum + 1]) for sl, i in items})
    last, last_row = items[-1]          # graphite reuses the loop's last series for the grid
    out: Lists = []
    for prefix in prefixes:
        for sl in ctx.evaluate(templateFunction.replace("%", prefix), ctx.start, ctx.end):
            if not len(sl):
                continue
            names = [newName.replace("%", prefix)] * len(sl) if newName else sl.names
            width = max(0, min(sl.points, (last.end - last.start) // sl.step + 1))
            out.append(replace(sl, names=names, values=sl.values[:, :width], start=last.start,
                               path_expressions=[prefix] * len(sl)))
    return concat(out)
