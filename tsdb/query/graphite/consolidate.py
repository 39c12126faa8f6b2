"""``maxDataPoints``: graphite-web's consolidation of render output (``renderViewJson`` and
``TimeSeries.__consolidatingGenerator`` in 1.1.8), over a whole series × points matrix.

For the request, ``timeRange = max(end) - min(start)`` over every returned series. Then
per series, with ``step`` its step:

* ``maxDataPoints == 1``: one bucket holding every point;
* else if ``timeRange / step > maxDataPoints``: ``valuesPerPoint = ceil(timeRange / step /
  maxDataPoints)``, ``secondsPerPoint = valuesPerPoint * step``; the start moves forward by
  ``nudge = secondsPerPoint + start % step - start % secondsPerPoint`` so buckets stay put
  across refreshes, and ``nudge / step - 1`` leading values are dropped (one fewer than
  the nudge covers: graphite-web's own off-by-one, kept so timestamps agree);
* each bucket of ``valuesPerPoint`` values (the last may be shorter) becomes one point, the
  series' consolidation function over its non-null values (``sum``, ``average``/``avg``,
  ``avg_zero`` (nulls count as 0), ``min``, ``max``, ``first``, ``last``), or null when it
  has no value or ``nonNull / valuesPerPoint < xFilesFactor``;
* timestamps run from the (nudged) start by ``secondsPerPoint`` up to the series' end
  inclusive; values and timestamps are paired up to the shorter of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsdb.query.graphite.series import SeriesList

FUNCTIONS = ("sum", "average", "avg_zero", "max", "min", "first", "last")
ALIASES = {"avg": "average"}


class ConsolidationError(ValueError):
    """An unknown consolidation function (graphite-web fails the request)."""


@dataclass
class Rendered:
    """Series ready to be written out: shared timestamps, one row of values per series."""

    names: list[str]
    tags: list[dict[str, str]]
    timestamps: np.ndarray      # (P,) int64 seconds
    values: np.ndarray          # (N, P) float64, NaN = null
    # the series' grid before consolidation (``raw`` output)
    start: int = 0
    end: int = 0
    step: int = 0


def time_range(lists: list[SeriesList]) -> int:
    present = [sl for sl in lists if len(sl)]
    if not present:
        return 0
    return max(sl.end for sl in present) - min(sl.start for sl in present)


def consolidate(lists: list[SeriesList], max_data_points: int | None,
                xfiles_factor: float = 0.0) -> list[Rendered]:
    """Apply ``maxDataPoints`` (None: keep every point) to each list; order kept."""
    span = time_range(lists)
    return [_one(sl, max_data_points, span, xfiles_factor) for sl in lists if len(sl)]


def _one(sl: SeriesList, max_data_points: int | None, span: int, xff: float) -> Rendered:
    start, step, end = sl.start, sl.step, sl.end
    values = sl.values
    per_point = 1
    if max_data_points is not None:
        if max_data_points == 1:
            per_point = sl.points
        elif max_data_points < span / step:
            per_point = math.ceil(span / step / max_data_points)
            seconds = per_point * step
            nudge = seconds + start % step - start % seconds
            start += nudge
            drop = int(nudge / step) - 1
            if drop > values.shape[1]:  # graphite-web fails deleting from an empty list
                raise ConsolidationError(f"cannot drop {drop} of {values.shape[1]} points")
            if drop > 0:
                values = values[:, drop:]
    if per_point > 1:
        values = reduce_buckets(values, per_point, sl.consolidate, xff)
    elif per_point < 1:
        raise ConsolidationError("cannot consolidate a series without points")
    timestamps = np.arange(start, end + 1, step * per_point, dtype=np.int64)
    n = min(values.shape[1], len(timestamps))
    return Rendered(list(sl.names), [dict(t) for t in sl.tags], timestamps[:n],
                    values[:, :n], sl.start, end, step)


def reduce_buckets(values: np.ndarray, per_point: int, functions: list[str],
                   xff: float) -> np.ndarray:
    """Consolidate each row's consecutive groups of ``per_point`` values with that row's
    function; a group with no value, or too few (``xFilesFactor``), is null."""
    rows, points = values.shape
    groups = -(-points // per_point)
    padded = np.full((rows, groups * per_point), np.nan)
    padded[:, :points] = values
    cube = padded.reshape(rows, groups, per_point)
    valid = ~np.isnan(cube)
    count = valid.sum(axis=2)
    zeroed = np.where(valid, cube, 0.0)
    total = np.cumsum(zeroed, axis=2)[:, :, -1]  # left to right, as Python's sum()
    group_len = np.full(groups, per_point)
    if groups:
        group_len[-1] = points - (groups - 1) * per_point
    out = np.full((rows, groups), np.nan)
    for name in set(functions):
        fn = ALIASES.get(name, name)
        if fn not in FUNCTIONS:
            raise ConsolidationError(f"Invalid consolidation function: '{name}'")
        sel = np.array([f == name for f in functions])
        out[sel] = _reduce(fn, cube[sel], valid[sel], count[sel], total[sel], group_len)
    usable = (count > 0) & (count / per_point >= xff)
    return np.where(usable, out, np.nan)


def _reduce(fn: str, cube: np.ndarray, valid: np.ndarray, count: np.ndarray,
            total: np.ndarray, group_len: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if fn == "sum":
            return total
        if fn == "average":
            return total / count
        if fn == "avg_zero":
            return total / group_len
    if fn == "max":
        return np.where(valid, cube, -np.inf).max(axis=2)
    if fn == "min":
        return np.where(valid, cube, np.inf).min(axis=2)
    width = cube.shape[2]
    if fn == "first":
        at = valid.argmax(axis=2)
    else:  # last
        at = width - 1 - valid[:, :, ::-1].argmax(axis=2)
    return np.take_along_axis(cube, at[:, :, None], axis=2)[:, :, 0]
