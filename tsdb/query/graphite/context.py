"""What a render function may use besides its arguments (graphite's ``requestContext``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tsdb.query.graphite.series import SeriesList

#: Evaluate a target expression (``a.b.*``, ``seriesByTag('x=y')``, ``scale(a.*,2)``) over
#: ``(start, end]`` seconds; returns its series grouped by grid, in graphite's order.
Evaluate = Callable[[str, int, int], list[SeriesList]]


@dataclass
class RenderContext:
    start: int                  # ``from`` in Unix seconds (exclusive, as graphite-web)
    end: int                    # ``until`` in Unix seconds (inclusive)
    now: int                    # the request's "now" (``now`` parameter or wall clock)
    evaluate: Evaluate          # re-evaluation, e.g. timeShift / movingAverage history
    #: set by functions that must not be consolidated further, warnings, etc.
    notes: dict[str, object] = field(default_factory=dict)
