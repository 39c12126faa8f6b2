"""Vector and matrix selectors: storage samples -> step-vectorised values.

Prometheus 2.42 semantics, with ``ref`` the step time (or the ``@`` time) minus the offset:

* an instant vector selector takes, per step, the newest sample with
  ``ref - lookback <= t <= ref``; if that sample is a stale marker the series is absent;
* a range selector's window is ``[ref - range, ref]``, both ends inclusive, stale markers
  left out.

Each selector reads storage once, for the union of all its windows. The per-step window
bounds come from locating every sample among the (non-decreasing) window edges (integer
arithmetic for evenly spaced steps, ``searchsorted`` otherwise), a ``bincount`` per
(series, step) and a cumulative sum along the steps: no loop over series, steps or
samples.
"""

from __future__ import annotations

import numpy as np

from tsdb.query.promql.values import InstantVector, RangeVector
from tsdb.storage.database import Database, SeriesSet
from tsdb.storage.labels import Matcher

#: Prometheus' StaleNaN (``value.StaleNaN``): a NaN with this exact bit pattern
STALE_BITS = np.uint64(0x7FF0000000000002)


def is_stale(v: np.ndarray) -> np.ndarray:
    return v.view(np.uint64) == STALE_BITS


def select(db: Database, matchers: list[Matcher], start_ms: int, end_ms: int) -> SeriesSet:
    return db.select(matchers, int(start_ms), int(end_ms))


def _first_admitting_step(bounds: np.ndarray, t: np.ndarray, inclusive: bool) -> np.ndarray:
    """Index of the first bound with ``t <= bound`` (``inclusive``) or ``t < bound``;
    ``len(bounds)`` where none does. Evenly spaced bounds (every range query) take integer
    arithmetic instead of a binary search per sample."""
    steps = len(bounds)
    if steps > 1:
        interval = int(bounds[1] - bounds[0])
        regular = interval > 0 and bool((np.diff(bounds) == interval).all())
    else:
        regular, interval = steps == 1, 1
    if not regular:
        return np.searchsorted(bounds, t, side="left" if inclusive else "right")
    delta = t - bounds[0]
    if inclusive:       # ceil(delta / interval)
        first = -((-delta) // interval)
    else:               # floor(delta / interval) + 1
        first = delta // interval + 1
    np.clip(first, 0, steps, out=first)
    return first


def sample_rows(series: SeriesSet) -> np.ndarray:
    """(M,) the index of every sample's series."""
    return np.repeat(np.arange(len(series), dtype=np.int64), np.diff(series.offsets))


def samples_upto(series: SeriesSet, bounds: np.ndarray, inclusive: bool,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """(N, S) number of samples of each series with ``t <= bounds[j]`` (``inclusive``) or
    ``t < bounds[j]``; ``bounds`` must be non-decreasing. ``rows`` (from
    :func:`sample_rows`) says which output row counts each sample."""
    n, steps = len(series), len(bounds)
    if n == 0 or len(series.t) == 0:
        return np.zeros((n, steps), np.int64)
    if rows is None:
        rows = sample_rows(series)
    first_step = _first_admitting_step(bounds, series.t, inclusive)
    # one extra column collects the samples no step admits
    cell = rows * (steps + 1) + first_step
    per_cell = np.bincount(cell, minlength=n * (steps + 1)).reshape(n, steps + 1)
    return np.cumsum(per_cell[:, :steps], axis=1)


def instant_vector(series: SeriesSet, refs: np.ndarray, lookback_ms: int,
                   timestamps: bool = False) -> InstantVector:
    """Per step the newest sample in ``[ref - lookback, ref]`` unless it is stale. With
    ``timestamps`` the values are the samples' timestamps in seconds (``timestamp()``)."""
    steps = len(refs)
    if len(series) == 0:
        return InstantVector.empty(steps)
    labels = series.labels
    newest = samples_upto(series, refs, True)      # samples up to the step, per series
    present = newest > 0
    # -> global index of the newest of them (0 where there is none), in place
    newest += series.offsets[:-1, None] - 1
    np.maximum(newest, 0, out=newest)
    t = series.t[newest]
    present &= t >= refs - lookback_ms
    v = series.v[newest]
    if is_stale(series.v).any():
        present &= ~is_stale(v)
    keep = present.any(axis=1)
    values = t / 1000.0 if timestamps else v
    if keep.all():
        return InstantVector(list(labels), values, present)
    rows = np.flatnonzero(keep)
    return InstantVector([labels[i] for i in rows], values[rows], present[rows])


def drop_stale(series: SeriesSet) -> SeriesSet:
    """The same series without stale markers (and without series left empty)."""
    stale = is_stale(series.v)
    if not stale.any():
        return series
    row = np.repeat(np.arange(len(series)), np.diff(series.offsets))
    keep = ~stale
    counts = np.bincount(row[keep], minlength=len(series))
    offsets = np.zeros(len(series) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = SeriesSet(series.sids, list(series.labels), offsets, series.t[keep], series.v[keep])
    if (counts > 0).all():
        return out
    return _keep_rows(out, np.flatnonzero(counts > 0))


def _keep_rows(series: SeriesSet, rows: np.ndarray) -> SeriesSet:
    starts, ends = series.offsets[rows], series.offsets[rows + 1]
    counts = ends - starts
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    take = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    return SeriesSet(series.sids[rows], [series.labels[i] for i in rows], offsets,
                     series.t[take], series.v[take])


def range_vector(series: SeriesSet, refs: np.ndarray, range_ms: int) -> RangeVector:
    """Windows ``[ref - range, ref]`` over the (stale-free) samples of each series."""
    series = drop_stale(series)
    rows = sample_rows(series)
    hi = samples_upto(series, refs, True, rows)
    lo = samples_upto(series, refs - range_ms, False, rows)
    # series with no sample in any window contribute nothing
    keep = (hi > lo).any(axis=1) if len(series) else np.zeros(0, bool)
    if not keep.all():
        rows = np.flatnonzero(keep)
        series = _keep_rows(series, rows)
        hi, lo = hi[rows], lo[rows]
    base = series.offsets[:-1, None]
    return RangeVector(list(series.labels), series.t, series.v, series.offsets,
                       base + lo, base + hi, np.asarray(refs, np.int64), range_ms)
