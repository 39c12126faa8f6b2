"""What every render-function module shares: the error type, parameter specs and
graphite-web's argument validation, the registry entry, the walk over a series list that
spans several grids, and re-evaluation over another time range.

The numeric kernels (aggregation functions, consolidation, normalize) are in
:mod:`functions_aggregation`, the naming helpers in :mod:`functions_naming`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.series import SeriesList
from tsdb.query.graphite.timespec import parse_interval

Lists = list[SeriesList]

class GraphiteError(Exception):
    """A render error: ``status`` 400 for bad arguments (graphite-web's
    ``InputParameterError``), 500 where graphite-web crashes."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- parameter specs (the /functions index and argument coercion) ------------------------

AGG_FUNCS = ["average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count",
             "range", "multiply", "last"]
AGG_ALIASES = {"rangeOf": "range", "avg": "average", "total": "sum", "current": "last"}
#: what graphite accepts as ``aggFunc`` (``sumSeries`` style names are deprecated but valid)
VALID_AGG_FUNCS = AGG_FUNCS + list(AGG_ALIASES)
CONSOLIDATION_FUNCS = ["sum", "average", "avg", "avg_zero", "min", "max", "first", "last"]


def param(name: str, type_: str, required: bool = False, default: object = None,
          multiple: bool = False, options: Sequence[object] | None = None,
          suggestions: Sequence[object] | None = None) -> dict:
    """One parameter as graphite-web's ``Param.toJSON`` writes it (keys only when set)."""
    spec: dict = {"name": name, "type": type_}
    if required:
        spec["required"] = True
    if default is not None:
        spec["default"] = default
    if multiple:
        spec["multiple"] = True
    opts = list(options or [])
    if type_ in ("aggFunc", "aggOrSeriesFunc"):
        opts += VALID_AGG_FUNCS
    if opts:
        spec["options"] = sorted(set(opts), key=str)
    if suggestions:
        spec["suggestions"] = list(suggestions)
    return spec


SERIES_LIST = param("seriesList", "seriesList", required=True)
SERIES_LISTS = param("seriesLists", "seriesList", required=True, multiple=True)
INTERVAL_SUGGESTIONS = [5, 7, 10, "1min", "5min", "10min", "30min", "1hour"]


# --- walking a series list that spans several grids --------------------------------------


def concat(lists: Iterable[SeriesList]) -> Lists:
    """Like :func:`series.concat` (adjacent lists of one grid merged, empty ones dropped),
    stacking each run of same-grid lists once (linear in the number of lists)."""
    out: Lists = []
    run: Lists = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first = run[0]
            out.append(SeriesList(
                [n for sl in run for n in sl.names], [t for sl in run for t in sl.tags],
                first.start, first.step, np.vstack([sl.values for sl in run]),
                [c for sl in run for c in sl.consolidate],
                [p for sl in run for p in sl.path_expressions]))

    for sl in lists:
        if not len(sl):
            continue
        if run and (run[-1].start, run[-1].step, run[-1].points) != (sl.start, sl.step,
                                                                     sl.points):
            flush()
            run = []
        run.append(sl)
    flush()
    return out


def flat(lists: Iterable[SeriesList]) -> list[tuple[SeriesList, int]]:
    """Every series as (its list, its row), in order."""
    return [(sl, i) for sl in lists for i in range(len(sl))]


def count(lists: Iterable[SeriesList]) -> int:
    return sum(len(sl) for sl in lists)


def pick(items: Sequence[tuple[SeriesList, int]]) -> Lists:
    """The series ``items`` in that order, adjacent rows of one list taken together."""
    out: Lists = []
    run: list[int] = []
    run_list: SeriesList | None = None
    for sl, i in items:
        if sl is not run_list and run_list is not None:
            out.append(run_list.take(run))
            run = []
        run_list = sl
        run.append(i)
    if run_list is not None and run:
        out.append(run_list.take(run))
    return concat(out)


def select(lists: Lists, order: Iterable[int]) -> Lists:
    """Series by global index (position in the flattened list)."""
    items = flat(lists)
    return pick([items[i] for i in order])


def replace(sl: SeriesList, *, names: list[str] | None = None,
            tags: list[dict[str, str]] | None = None, values: np.ndarray | None = None,
            start: int | None = None, step: int | None = None,
            consolidate: list[str] | None = None,
            path_expressions: list[str] | None = None) -> SeriesList:
    """A new list from ``sl`` with some fields replaced (tags are copied)."""
    return SeriesList(
        list(names) if names is not None else list(sl.names),
        tags if tags is not None else [dict(t) for t in sl.tags],
        sl.start if start is None else start,
        sl.step if step is None else step,
        sl.values if values is None else values,
        list(consolidate) if consolidate is not None else list(sl.consolidate),
        list(path_expressions) if path_expressions is not None else list(sl.path_expressions))


def renamed(sl: SeriesList, names: list[str], values: np.ndarray | None = None,
            tag: tuple[str, object] | None = None, path_is_name: bool = True,
            **fields: object) -> SeriesList:
    """``sl`` under new names, the way most graphite transforms leave a series: the path
    expression becomes the new name, and ``tag`` (key, value) is added as a string."""
    tags = [dict(t) for t in sl.tags]
    if tag is not None:
        for t in tags:
            t[tag[0]] = str(tag[1])
    return replace(sl, names=names, tags=tags, values=values,
                   path_expressions=names if path_is_name else None, **fields)  # type: ignore


def map_lists(lists: Lists, fn: Callable[[SeriesList], SeriesList]) -> Lists:
    """``fn`` applied to every (non-empty) list."""
    return concat([fn(sl) for sl in lists if len(sl)])


def request_xff(ctx: RenderContext) -> float | None:
    """The request's ``xFilesFactor`` (the plumbing may put it in ``ctx.notes``)."""
    value = ctx.notes.get("xFilesFactor")
    return None if value is None else float(value)  # type: ignore[arg-type]


# --- intervals --------------------------------------------------------------------------


def interval_arg(value: object, what: str = "interval") -> int:
    """An interval string (graphite's ``parseTimeOffset``: ``5min``, ``-1h30min``) as
    signed seconds, or 400."""
    try:
        return parse_interval(str(value))
    except ValueError as e:
        raise GraphiteError("Invalid %s value %r: %s" % (what, value, e)) from None


# --- the registry entry and graphite-web's argument validation ---------------------------


@dataclass
class GraphiteFunction:
    """One render function: ``impl(ctx, *args, **kwargs)`` takes series-list arguments as
    ``list[SeriesList]`` and the others as Python values, in graphite-web's order."""

    name: str
    impl: Callable[..., list[SeriesList]]
    params: list[dict]      # graphite-web's Param.toJSON for /functions
    group: str
    description: str

    def signature(self) -> str:
        """``sumSeries(*seriesLists)``, as graphite-web's ``function`` field."""
        parts = []
        for p in self.params:
            if p.get("multiple"):
                parts.append("*" + p["name"])
            elif "default" in p or not p.get("required"):
                parts.append("%s=%r" % (p["name"], p.get("default")))
            else:
                parts.append(p["name"])
        return "%s(%s)" % (self.name, ", ".join(parts))


def _is_series_lists(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, SeriesList) for v in value)


def _validate_boolean(value: object) -> bool:
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("Invalid boolean value: %r" % value)
    if type(value) in (int, float):
        if value in (0, 1):
            return bool(value)
        raise ValueError("Invalid boolean value: %r" % value)
    return bool(value)


def _validate_integer(value: object) -> int:
    if type(value) is float:
        raise ValueError("Not a valid integer value: %r" % value)
    return int(value)  # type: ignore[call-overload]


def _validate_int_or_inf(value: object) -> float | int:
    try:
        return _validate_integer(value)
    except (TypeError, ValueError):
        pass
    if float(value) == math.inf:  # type: ignore[arg-type]
        return math.inf
    raise ValueError("Not a valid integer nor float value: %r" % value)


def _validate_interval(value: object) -> object:
    parse_interval(value)  # type: ignore[arg-type]
    return value


def _validate_series_list(value: object) -> object:
    if not _is_series_lists(value):
        raise ValueError("Invalid value type, it is not a series list: %r" % (value,))
    return value


def _validate_agg(value: object) -> object:
    valid = VALID_AGG_FUNCS + [f + "Series" for f in VALID_AGG_FUNCS]
    if value in valid:
        return value
    raise ValueError("Invalid aggregation function: %r" % (value,))


_VALIDATORS: dict[str, Callable[[object], object]] = {
    "boolean": _validate_boolean,
    "float": lambda v: float(v),  # type: ignore[arg-type]
    "integer": _validate_integer,
    "node": _validate_integer,
    "intOrInf": _validate_int_or_inf,
    "interval": _validate_interval,
    "seriesList": _validate_series_list,
    "aggFunc": _validate_agg,
}


def _validate_value(spec: dict, value: object) -> object:
    if value is None and spec.get("default") is not None:
        return value
    if not spec.get("required") and value is None:
        return value
    options = spec.get("options")
    if options and spec["type"] != "aggOrSeriesFunc" and value not in options:
        raise ValueError("Invalid option for parameter %s: %r" % (spec["name"], value))
    validator = _VALIDATORS.get(spec["type"])
    return value if validator is None else validator(value)


def validate_params(params: list[dict], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """graphite-web's ``validateParams``: values converted to their parameter types
    (``2`` -> ``2.0`` for a float); ValueError when something does not fit."""
    if len(args) + len(kwargs) > len(params):
        if not params or not params[-1].get("multiple"):
            raise ValueError("Too many parameters specified")
        args_params, kwargs_params = params, []
    else:
        args_params, kwargs_params = params[:len(args)], params[len(args):]
    valid_args = tuple(_validate_value(args_params[min(i, len(args_params) - 1)], a)
                       for i, a in enumerate(args))
    valid_kwargs = {}
    for spec in kwargs_params:
        value = kwargs.get(spec["name"])
        if value is None:
            if spec.get("required"):
                raise ValueError("Missing required parameter %s" % spec["name"])
            continue
        valid_kwargs[spec["name"]] = _validate_value(spec, value)
    if len(kwargs) > len(valid_kwargs):
        raise ValueError("Unexpected key word arguments: %s"
                         % ", ".join(k for k in kwargs if k not in valid_kwargs))
    return valid_args, valid_kwargs


def validating(name: str, fn: Callable[..., Lists], params: list[dict]
               ) -> Callable[..., Lists]:
    """``fn`` behind graphite-web's argument handling (ENFORCE_INPUT_VALIDATION off): the
    converted values when they all validate, else the raw ones; a call that does not
    fit the Python signature (a missing required argument), or arguments the function
    cannot use, are graphite-web's 500."""
    signature = inspect.signature(fn)

    def call(ctx: RenderContext, *args: object, **kwargs: object) -> Lists:
        try:
            args, kwargs = validate_params(params, args, kwargs)
        except (ValueError, TypeError, OverflowError, KeyError):
            pass
        try:
            signature.bind(ctx, *args, **kwargs)
        except TypeError as e:
            raise GraphiteError("%s(): %s" % (name, e), 500) from None
        try:
            return fn(ctx, *args, **kwargs)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError,
                ZeroDivisionError, OverflowError) as e:
            # graphite-web answers 500 for whatever a function raises on odd arguments
            raise GraphiteError("%s(): %s" % (name, e), 500) from e

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def registrar(table: dict[str, GraphiteFunction], group: str) -> Callable[..., Callable]:
    """A decorator ``@register(name, params, aliases=())`` filling ``table``."""

    def register(name: str, params: list[dict], aliases: Sequence[str] = (),
                 group_name: str | None = None) -> Callable[[Callable], Callable]:
        def deco(fn: Callable[..., Lists]) -> Callable[..., Lists]:
            impl = validating(name, fn, params)
            doc = inspect.cleandoc(fn.__doc__ or "")
            for n in (name, *aliases):
                table[n] = GraphiteFunction(n, impl, params, group_name or group, doc)
            return fn
        return deco

    return register


def series_lists_args(args: Iterable[object]) -> Lists:
    """Series-list arguments (``*seriesLists``) flattened into one list."""
    out: Lists = []
    for a in args:
        if not _is_series_lists(a):
            raise GraphiteError("expected a series list, got %r" % (a,), 500)
        out.extend(a)  # type: ignore[arg-type]
    return out


# --- re-evaluation over another time range -----------------------------------------------

#: ``ctx.notes`` key under which the plumbing may put the raw texts of the arguments of
#: the call being made (graphite-web's ``requestContext['args']``)
ARGS_NOTE = "args"


def reevaluate(ctx: RenderContext, lists: Lists, start: int, end: int) -> Lists:
    """The first argument again over ``(start, end]`` (timeShift, movingAverage...).

    graphite-web re-evaluates the raw text of the call's first argument; when the
    plumbing provides it (``ctx.notes["args"]``) so do we, else each distinct path
    expression of the argument's series is evaluated, in order (the same unless an
    ``alias*`` renamed the series)."""
    raw = ctx.notes.get(ARGS_NOTE)
    if isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], str):
        return concat(ctx.evaluate(raw[0], start, end))
    out: Lists = []
    for expr in dict.fromkeys(p for sl in lists for p in sl.path_expressions):
        out.extend(ctx.evaluate(expr, start, end))
    return concat(out)
