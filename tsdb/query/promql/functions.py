"""The PromQL function library of Prometheus 2.42: name -> implementation.

The evaluator builds a :class:`FunctionCall` (evaluated arguments, their syntax, the
evaluation context) and calls ``FUNCTIONS[name](call)``, which returns a
:class:`~values.Scalar` or :class:`~values.InstantVector` covering every step. Functions
never deduplicate label sets; the evaluator checks for duplicates after the call.

Where the functions live:

* :mod:`functions_range`: rate, increase, delta, irate, idelta, deriv, predict_linear,
  holt_winters, resets, changes and the ``*_over_time`` family (bar absent_over_time);
* :mod:`functions_math`: elementwise math, rounding, clamping, ``pi``;
* :mod:`functions_time`: ``time``, ``timestamp`` and the calendar functions;
* :mod:`functions_labels`: ``label_replace``, ``label_join``;
* :mod:`functions_histogram`: ``histogram_quantile`` and the native-histogram functions;
* :mod:`functions_vector`: ``sort``, ``sort_desc``, ``scalar``, ``vector``, ``absent``,
  ``absent_over_time``.

``__name__`` is kept by ``last_over_time``, ``sort``, ``sort_desc``, ``label_replace`` and
``label_join`` (as in 2.42) and dropped by every other function that passes series on.
"""

from __future__ import annotations

from tsdb.query.promql import (
    functions_histogram,
    functions_labels,
    functions_math,
    functions_range,
    functions_time,
    functions_vector,
)
from tsdb.query.promql.functions_base import Function, FunctionCall

__all__ = ["FUNCTIONS", "FunctionCall", "Function", "KEEPS_METRIC_NAME"]

FUNCTIONS: dict[str, Function] = {
    **functions_range.FUNCTIONS,
    **functions_math.FUNCTIONS,
    **functions_time.FUNCTIONS,
    **functions_labels.FUNCTIONS,
    **functions_histogram.FUNCTIONS,
    **functions_vector.FUNCTIONS,
}

#: Functions whose output series keep the input's ``__name__``.
KEEPS_METRIC_NAME = frozenset({"last_over_time", "sort", "sort_desc", "label_replace",
                               "label_join"})
