"""A minimal Graphite target evaluator for the function-library tests: parses
``f(a.b.*, 'x', 2, key=1)`` calls, fetches paths and ``seriesByTag(...)`` through a
callback, and calls :data:`FUNCTIONS` the way the real evaluator does (including
``ctx.notes["args"]`` for re-evaluating functions). Not the production parser."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.functions import FUNCTIONS, GraphiteError
from tsdb.query.graphite.functions_naming import split_call_args
from tsdb.query.graphite.series import SeriesList, concat

Fetch = Callable[[str, int, int], list[SeriesList]]
_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_KWARG = re.compile(r"^([A-Za-z_]\w*)\s*=(?![=~])(.*)$", re.DOTALL)


def evaluate(target: str, start: int, end: int, fetch: Fetch,
             notes: dict | None = None) -> list[SeriesList]:
    """Evaluate ``target`` over ``(start, end]``."""
    ctx = RenderContext(start, end, end, lambda e, s, t: evaluate(e, s, t, fetch),
                        dict(notes or {}))
    result = _value(target, ctx, fetch)
    if not isinstance(result, list):
        raise GraphiteError("target is not a series list: %r" % (target,), 400)
    return result


def _value(text: str, ctx: RenderContext, fetch: Fetch) -> object:
    text = text.strip()
    m = _CALL.match(text)
    if m:
        name = m.group(1)
        args, _ = split_call_args(text, m.end())
        args = [a for a in args if a]
        if name == "seriesByTag":
            return concat(fetch(text, ctx.start, ctx.end))
        if name not in FUNCTIONS:
            raise GraphiteError("unknown function %s" % name, 400)
        positional, keywords = [], {}
        for a in args:
            km = _KWARG.match(a)
            if km and a[:1] not in "'\"":
                keywords[km.group(1)] = _value(km.group(2), ctx, fetch)
            else:
                positional.append(_value(a, ctx, fetch))
        ctx.notes["args"] = args
        return FUNCTIONS[name].impl(ctx, *positional, **keywords)
    if text[:1] in ("'", '"'):
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "None":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return concat(fetch(text, ctx.start, ctx.end))


def series_from_json(items: list[dict], path_expression: str) -> list[SeriesList]:
    """graphite-web JSON series (``datapoints`` [value, ts]) as series lists."""
    out = []
    for s in items:
        ts = [p[1] for p in s["datapoints"]]
        values = [math.nan if p[0] is None else p[0] for p in s["datapoints"]]
        step = ts[1] - ts[0] if len(ts) > 1 else 10
        out.append(SeriesList([s["target"]], [dict(s["tags"])], ts[0] if ts else 0, step,
                              np.array([values], dtype=np.float64),
                              path_expressions=[path_expression]))
    return concat(out)


def to_json(lists: list[SeriesList]) -> list[dict]:
    """Series lists as graphite-web's JSON (NaN as None); like graphite-web's
    ``renderViewJson`` (``if any(data)``), nothing when no series has a point."""
    if not any(sl.points for sl in lists if len(sl)):
        return []
    out = []
    for sl in lists:
        ts = sl.timestamps()
        for i in range(len(sl)):
            out.append({"target": sl.names[i], "tags": dict(sl.tags[i]),
                        "datapoints": [[None if math.isnan(v) else float(v), int(t)]
                                       for v, t in zip(sl.values[i], ts, strict=True)]})
    return out
