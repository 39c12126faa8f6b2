"""Subqueries: the evaluation grid of ``expr[range:step]`` and its result as a range vector.

Prometheus 2.42 evaluates the inner expression at absolute multiples of the step (the
first one at or after ``start - offset - range``) and then reads the points like a range
selector: the window of outer step ``t`` is ``[ref - range, ref]`` with ``ref = t - offset``
(or the ``@`` time minus the offset), both ends inclusive.
"""

from __future__ import annotations

import numpy as np

from tsdb.query.promql.values import InstantVector, RangeVector


def subquery_grid(refs: np.ndarray, range_ms: int, step_ms: int) -> np.ndarray:
    """The multiples of ``step_ms`` inside at least one window ``[ref - range, ref]``
    (``refs`` non-decreasing)."""
    first = -((-(int(refs[0]) - range_ms)) // step_ms) * step_ms   # ceil to a multiple
    grid = np.arange(first, int(refs[-1]) + 1, step_ms, dtype=np.int64)
    if len(grid) == 0:
        return grid
    # the first window ending at or after the grid point contains it if it starts early enough
    window = np.searchsorted(refs, grid, side="left")
    inside = window < len(refs)
    inside[inside] = refs[window[inside]] - range_ms <= grid[inside]
    return grid[inside]


def as_range_vector(inner: InstantVector, grid: np.ndarray, refs: np.ndarray,
                    range_ms: int) -> RangeVector:
    """The inner result's points as samples, with each outer step's window over them."""
    keep = inner.present.any(axis=1)
    rows = np.flatnonzero(keep)
    present = inner.present[rows]
    labels = [inner.labels[i] for i in rows]
    counts = present.sum(axis=1)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    t = np.broadcast_to(grid, present.shape)[present]
    v = inner.values[rows][present]
    seen = np.zeros((len(rows), len(grid) + 1), np.int64)
    np.cumsum(present, axis=1, out=seen[:, 1:])
    first = np.searchsorted(grid, refs - range_ms, side="left")
    last = np.searchsorted(grid, refs, side="right")
    base = offsets[:-1, None]
    return RangeVector(labels, t, v, offsets, base + seen[:, first], base + seen[:, last],
                       np.asarray(refs, np.int64), range_ms)
