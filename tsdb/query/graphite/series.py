"""The value render functions pass around: series on one shared time grid.

graphite-web keeps a list of ``TimeSeries`` (name, start, end, step, values with None).
Here a *list* of series that share ``start`` and ``step`` is one float matrix, so a
function over N series × P points is a handful of numpy operations; NaN stands for
graphite's ``None`` (carbon drops NaN on ingestion, so no real value is NaN).
Series with different grids (after ``summarize``, ``timeShift``...) live in separate
``SeriesList`` objects; :func:`concat` keeps them apart when a function returns several.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SeriesList:
    """N series on the grid ``start + k*step`` (k < P), Unix seconds."""

    names: list[str]                       # N series names, as graphite formats them
    tags: list[dict[str, str]]             # N tag dicts (always with "name")
    start: int                             # first timestamp, seconds
    step: int                              # seconds between points
    values: np.ndarray                     # (N, P) float64, NaN = null
    #: per series: the consolidation function for maxDataPoints (``consolidateBy``)
    consolidate: list[str] = field(default_factory=list)
    #: per series: path expression it came from (graphite's ``pathExpression``), used to
    #: name aggregates like ``sumSeries(servers.*.cpu)``
    path_expressions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.names)
        if not self.consolidate:
            self.consolidate = ["average"] * n
        if not self.path_expressions:
            self.path_expressions = list(self.names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def points(self) -> int:
        return self.values.shape[1]

    @property
    def end(self) -> int:
        """Timestamp one step past the last point (graphite's ``end``)."""
        return self.start + self.points * self.step

    def timestamps(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.points, dtype=np.int64)

    def take(self, idx: list[int] | np.ndarray) -> SeriesList:
        """The series at ``idx``, in that order."""
        idx = [int(i) for i in idx]
        return SeriesList([self.names[i] for i in idx], [dict(self.tags[i]) for i in idx],
                          self.start, self.step, self.values[idx],
                          [self.consolidate[i] for i in idx],
                          [self.path_expressions[i] for i in idx])


def concat(lists: list[SeriesList]) -> list[SeriesList]:
    """Merge adjacent lists that share a grid; others stay separate (order kept)."""
    out: list[SeriesList] = []
    for s in lists:
        if not len(s):
            continue
        last = out[-1] if out else None
        if last is not None and (last.start, last.step, last.points) == \
                (s.start, s.step, s.points):
            out[-1] = SeriesList(last.names + s.names, last.tags + s.tags, last.start,
                                 last.step, np.vstack([last.values, s.values]),
                                 last.consolidate + s.consolidate,
                                 last.path_expressions + s.path_expressions)
        else:
            out.append(s)
    return out
