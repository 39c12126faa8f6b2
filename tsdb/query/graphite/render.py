"""Evaluating render targets (graphite-web's ``evaluateTarget``/``evaluateTokens``).

* a path expression is fetched (:mod:`tsdb.query.graphite.fetch`);
* ``seriesByTag(...)`` is a fetch too: its string arguments are the tag expressions and
  its call text is the series' path expression;
* ``template(body, ...)`` replaces ``$1``/``$name`` in the body's paths (a path that is
  exactly ``$name`` becomes the value itself, as in graphite-web);
* any other call is looked up in the function library (``functions.FUNCTIONS``; a few
  built-ins here fill gaps) and called as ``impl(ctx, *args, **kwargs)`` with series-list
  arguments evaluated to ``list[SeriesList]`` and literals as Python values. While it runs,
  ``ctx.notes["args"]`` holds the source text of its positional arguments (graphite's
  ``requestContext['args']``), so a function can re-evaluate one over another range with
  ``ctx.evaluate(text, start, end)``; ``ctx.notes`` also carries the request's
  ``xFilesFactor``, ``maxDataPoints`` and ``tz`` (zone name, None for UTC).

Errors follow graphite-web 1.1.8: an unknown function, a misused ``template`` or a
function that reports bad arguments (an exception with ``status`` 400, graphite's
``InputParameterError``; graphite-web swallows it, then fails the call with "unknown token
in target evaluator", also a 400) is a 400; any other failure is a 500. A target with no
parsable prefix is a 500 too (pyparsing's exception), while trailing garbage after a valid
prefix is ignored (see ``target.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tsdb.query.graphite.context import RenderContext
from tsdb.query.graphite.fetch import GraphiteStore
from tsdb.query.graphite.series import SeriesList, concat
from tsdb.query.graphite.target import (
    Call,
    Expr,
    Literal,
    PathExpr,
    TargetSyntaxError,
    Template,
    parse_target,
    source,
)

_NUMERIC = re.compile(r"^-?[\d.]+$")


class RenderError(Exception):
    """A failed render: ``status`` 400 (graphite's InputParameterError) or 500."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _library() -> Mapping[str, Any]:
    try:
        from tsdb.query.graphite.functions import FUNCTIONS
    except ImportError:  # the library is optional for the evaluator
        return {}
    return FUNCTIONS


@dataclass
class Renderer:
    """Evaluates targets against a store with a function registry (name -> object with
    ``impl(ctx, *args, **kwargs)``)."""

    store: GraphiteStore
    functions: Mapping[str, Any] | None = None
    builtins: dict[str, Callable[..., list[SeriesList]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.functions is None:
            self.functions = _library()
        self.builtins.setdefault("constantLine", constant_line)

    def function(self, name: str) -> Callable[..., Any] | None:
        fn = (self.functions or {}).get(name)
        if fn is not None:
            return fn.impl
        return self.builtins.get(name)

    # -- requests ---------------------------------------------------------------------

    def render(self, targets: list[str], start: int, end: int, now: int,
               xfiles_factor: float = 0.0, max_data_points: int | None = None,
               template: Mapping[str, str] | None = None, tz: str | None = None,
               notes_out: dict[str, Any] | None = None) -> list[SeriesList]:
        """Every target's series in order (``(start, end]``, whole seconds). ``notes_out``
        receives the context's notes afterwards (``setXFilesFactor`` changes one)."""
        notes = {"xFilesFactor": xfiles_factor, "maxDataPoints": max_data_points,
                 "template": dict(template or {}), "tz": tz}
        ctx = self.context(start, end, now, notes)
        out: list[SeriesList] = []
        for text in targets:
            if not text or not text.strip():
                continue
            result = self.evaluate_text(text, ctx)
            if result:
                out.extend(result)
        if notes_out is not None:
            notes_out.update(ctx.notes)
        return concat(out)

    def context(self, start: int, end: int, now: int, notes: dict[str, Any]) -> RenderContext:
        ctx = RenderContext(start, end, now, lambda e, s, t: [], dict(notes))

        def evaluate(text: str, s: int, t: int) -> list[SeriesList]:
            inner = self.context(s, t, now, {k: v for k, v in notes.items() if k != "args"})
            return self.evaluate_text(text, inner) or []

        ctx.evaluate = evaluate
        return ctx

    def evaluate_text(self, text: str, ctx: RenderContext) -> Any:
        try:
            expr = parse_target(text)
        except TargetSyntaxError as exc:
            raise RenderError(f"cannot parse target {text!r}: {exc}", 500) from None
        return self.evaluate(expr, text, ctx)

    # -- evaluation -------------------------------------------------------------------

    def evaluate(self, expr: Expr, text: str, ctx: RenderContext,
                 replacements: Mapping[str, Any] | None = None) -> Any:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Template):
            args: dict[str, Any] = {k: v.value for k, v in expr.kwargs}
            args.update({str(i + 1): a.value for i, a in enumerate(expr.args)})
            args.update(ctx.notes.get("template") or {})
            return self.evaluate(expr.body, text, ctx, args)
        if isinstance(expr, PathExpr):
            pattern = expr.text
            for name, value in (replacements or {}).items():
                if pattern == "$" + name:
                    if not isinstance(value, str):
                        return value
                    return float(value) if _NUMERIC.match(value) else value
                pattern = pattern.replace("$" + name, str(value))
            return self.store.fetch_path(pattern, ctx.start, ctx.end, ctx.now)
        assert isinstance(expr, Call)
        return self._call(expr, text, ctx, replacements)

    def _call(self, call: Call, text: str, ctx: RenderContext,
              replacements: Mapping[str, Any] | None) -> Any:
        if call.name == "template":
            raise RenderError("invalid template() syntax, only string/numeric arguments are "
                              "allowed", 400)
        if call.name == "seriesByTag":
            expressions = [a.value for a in call.args
                           if isinstance(a, Literal) and a.kind == "string"]
            try:
                return self.store.fetch_tagged(expressions, call.raw, ctx.start, ctx.end,
                                               ctx.now)
            except ValueError as exc:
                raise RenderError(str(exc), 500) from None
        impl = self.function(call.name)
        if impl is None:
            raise RenderError(f"Received request for unknown function: {call.name}", 400)
        args = [self.evaluate(a, text, ctx, replacements) for a in call.args]
        kwargs = {k: self.evaluate(v, text, ctx, replacements) for k, v in call.kwargs}
        ctx.notes["args"] = [source(a, text) for a in call.args]
        return impl(ctx, *args, **kwargs)


def constant_line(ctx: RenderContext, value: float) -> list[SeriesList]:
    """``constantLine(value)``: three points, at ``from``, halfway and ``until``, named
    after the value as a float (``constantLine(100)`` is ``100.0``)."""
    import numpy as np

    value = float(value)
    step = max(1, int((ctx.end - ctx.start) / 2.0))
    name = str(value)
    return [SeriesList([name], [{"name": name}], ctx.start, step, np.full((1, 3), value),
                       path_expressions=[f"constantLine({value})"])]
