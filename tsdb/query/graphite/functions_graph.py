"""Graph: graphite-web's drawing hints. In JSON answers most only rename or tag the
series (``color``, ``alpha``, ``lineWidth`` change nothing at all); ``stacked`` really
changes values (running totals across the series) and ``threshold`` draws a line.
Grafana hides this group, but dashboards migrated from graphite-web still use them."""

from __future__ import annotations

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions_base import (
    SERIES_LIST,
    GraphiteError,
    GraphiteFunction,
    Lists,
    concat,
    flat,
    param,
    pick,
    registrar,
    replace,
)
from tsdb.query.graphite.functions_naming import fmt_g

FUNCTIONS: dict[str, GraphiteFunction] = {}
register = registrar(FUNCTIONS, "Graph")


def _unchanged_doc(what: str) -> str:
    return "Sets the %s of the drawn line; JSON answers are unchanged." % what


def _hint(name: str, what: str, extra: list[dict]) -> None:
    def impl(ctx: RenderContext, seriesList: Lists, *args: object) -> Lists:
        return seriesList

    impl.__doc__ = _unchanged_doc(what)
    impl.__name__ = name
    register(name, [SERIES_LIST, *extra])(impl)


_hint("alpha", "transparency", [param("alpha", "float", required=True)])
_hint("color", "colour", [param("theColor", "string", required=True)])
_hint("lineWidth", "width", [param("width", "float", required=True)])


def _wrap(lists: Lists, fmt: str, tag: tuple[str, str] | None, *args: object) -> Lists:
    out = []
    for sl in lists:
        names = [fmt % (n, *args) for n in sl.names]
        tags = [dict(t, **({tag[0]: tag[1]} if tag else {})) for t in sl.tags]
        out.append(replace(sl, names=names, tags=tags))
    return concat(out)


@register("dashed", [SERIES_LIST, param("dashLength", "float", default=5)])
def dashed(ctx: RenderContext, seriesList: Lists, dashLength: float = 5) -> Lists:
    """Draw dashed; renames to ``dashed(x, 5)``."""
    return _wrap(seriesList, "dashed(%s, %s)", ("dashed", str(dashLength)), fmt_g(dashLength))


@register("drawAsInfinite", [SERIES_LIST])
def drawAsInfinite(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Draw non-zero values as vertical lines; renames to ``drawAsInfinite(x)``."""
    return _wrap(seriesList, "drawAsInfinite(%s)", ("drawAsInfinite", "1"))


@register("secondYAxis", [SERIES_LIST])
def secondYAxis(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Draw on the right axis; renames to ``secondYAxis(x)``."""
    return _wrap(seriesList, "secondYAxis(%s)", ("secondYAxis", "1"))


@register("stacked", [SERIES_LIST, param("stack", "string")])
def stacked(ctx: RenderContext, seriesList: Lists, stackName: str = "__DEFAULT__") -> Lists:
    """Each series plus all series before it (nulls stay null and add nothing); the
    totals carry over to later ``stacked`` calls of the request with the same name."""
    stacks = ctx.notes.setdefault("totalStack", {})
    assert isinstance(stacks, dict)
    total = np.asarray(stacks.get(stackName, np.zeros(0)), dtype=np.float64)
    out = []
    for sl in seriesList:
        if not len(sl):
            continue
        width = max(total.shape[0], sl.points)
        base = np.zeros(width)
        base[:total.shape[0]] = total
        increments = np.where(np.isnan(sl.values), 0.0, sl.values)
        # graphite adds series by series: cumulative sums starting from the carried totals
        running = np.cumsum(np.vstack([base[None, :sl.points], increments]), axis=0)[1:]
        base[:sl.points] = running[-1]
        total = base
        values = np.where(np.isnan(sl.values), np.nan, running)
        if stackName == "__DEFAULT__":
            names = ["stacked(%s)" % n for n in sl.names]
            tags = [dict(t, stacked=stackName) for t in sl.tags]
            out.append(replace(sl, names=names, tags=tags, values=values,
                               path_expressions=names))
        else:
            out.append(replace(sl, values=values))
    stacks[stackName] = total
    return concat(out)


@register("areaBetween", [SERIES_LIST])
def areaBetween(ctx: RenderContext, seriesList: Lists) -> Lists:
    """Fill between exactly two series; both are named ``areaBetween(<upper path>)``."""
    items = flat(seriesList)
    if len(items) != 2:
        raise GraphiteError("areaBetween series argument must reference *exactly* 2 series",
                            500)
    upper_list, upper_row = items[1]
    name = "areaBetween(%s)" % upper_list.path_expressions[upper_row]
    tags = dict(upper_list.tags[upper_row], areaBetween="1")
    return concat([replace(one, names=[name] * len(one),
                           tags=[dict(tags) for _ in range(len(one))]) for one in pick(items)])


@register("threshold", [param("value", "float", required=True), param("label", "string"),
                        param("color", "string")])
def threshold(ctx: RenderContext, value: float, label: str | None = None,
              color: str | None = None) -> Lists:
    """A horizontal line at ``value``, named ``label`` when given."""
    from tsdb.query.graphite.functions_special import constant_line

    line = constant_line(ctx, value)
    return [replace(line, names=[label]) if label else line]
