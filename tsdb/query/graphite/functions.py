"""The Graphite render function library (graphite-web 1.1.x semantics): name -> function.

The target evaluator looks a call up in :data:`FUNCTIONS` and calls
``FUNCTIONS[name].impl(ctx, *args, **kwargs)``: series-list arguments are
``list[SeriesList]`` (each inner list one grid), the others Python values in graphite-web's
positional order (keyword arguments by graphite-web's parameter names). The result is a
``list[SeriesList]``. Arguments are converted as graphite-web's ``validateParams`` does
(``scale(x, 2)`` gets ``2.0``). Errors are :class:`GraphiteError`: status 400 where
graphite-web raises ``InputParameterError`` (bad aggregation function, ``divideSeries``
with several divisors...), 500 where it crashes (a missing required argument, a bad regex,
arguments of the wrong type).

Re-evaluating functions (``timeShift``, ``timeStack``, moving windows, ``hitcount(...,
true)``, ``smartSummarize``, ``linearRegression``) use ``ctx.notes["args"]`` (the source
text of the call's arguments, graphite-web's ``requestContext['args']``) when the
evaluator sets it, else the series' path expressions. ``ctx.notes["xFilesFactor"]`` is the
request's ``xFilesFactor`` and ``ctx.notes["tz"]`` its time zone name (bucket alignment).

Where the functions live (graphite-web's groups):

* :mod:`functions_combine`: aggregates, ``divideSeries``, ``asPercent``, ``groupBy*``;
* :mod:`functions_transform`: arithmetic, derivatives, ``summarize``, ``hitcount``,
  ``keepLastValue``, ``transformNull``, ``timeShift``, ``consolidateBy``;
* :mod:`functions_calculate`: moving windows, percentiles, ``stdev``, ``aggregateLine``;
* :mod:`functions_filter`: ``highest*``/``lowest*``, ``limit``, ``exclude``, ``grep``,
  ``remove*Value``, ``sortBy*``;
* :mod:`functions_alias`: ``alias``, ``aliasSub``, ``aliasByNode``, ``aliasByTags``,
  ``aliasByMetric``;
* :mod:`functions_special`: ``constantLine``, ``changed``, ``substr``, ``cactiStyle``,
  ``seriesByTag`` (listed for ``/functions``; the fetch layer evaluates it) and more;
* :mod:`functions_graph`: drawing hints (``color``, ``stacked``, ``threshold``...), which
  in JSON answers rename, tag or stack.

Shared machinery: :mod:`functions_base` (registry entry, argument validation, walking
series lists of several grids, re-evaluation), :mod:`functions_aggregation` (graphite's
aggregation functions over a NaN matrix, consolidation, normalize) and
:mod:`functions_naming` (names and tags as graphite-web builds them).
"""

from __future__ import annotations

from tsdb.query.graphite import (
    functions_alias,
    functions_calculate,
    functions_combine,
    functions_filter,
    functions_graph,
    functions_special,
    functions_transform,
)
from tsdb.query.graphite.functions_base import GraphiteError, GraphiteFunction

__all__ = ["FUNCTIONS", "GraphiteError", "GraphiteFunction"]

FUNCTIONS: dict[str, GraphiteFunction] = {
    **functions_combine.FUNCTIONS,
    **functions_transform.FUNCTIONS,
    **functions_calculate.FUNCTIONS,
    **functions_filter.FUNCTIONS,
    **functions_alias.FUNCTIONS,
    **functions_special.FUNCTIONS,
    **functions_graph.FUNCTIONS,
}
