"""graphite-web's numeric machinery, vectorised: its aggregation functions over one axis
of a NaN matrix, ``TimeSeries.consolidate`` and ``normalize``.

* an aggregation function (``sum``, ``average``, ``median``...) ignores nulls, and a
  bucket (row of series, summarize interval, moving window) with no value is null;
* sums are **sequential** (``np.cumsum``), as Python's ``sum`` adds left to right, so
  results are bit-identical where later cancellation would amplify a difference;
* ``normalize`` brings series of different steps to the least common multiple step by
  consolidating each with its own consolidation function, then lines the series up
  **by position** (graphite zips the value lists), from the earliest start.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

from tsdb.query.graphite.functions_base import (
    AGG_ALIASES,
    AGG_FUNCS,
    CONSOLIDATION_FUNCS,
    GraphiteError,
    Lists,
    flat,
)
from tsdb.query.graphite.series import SeriesList

# --- graphite's aggregation functions over one axis ---------------------------------------


def resolve_agg(func: str, raw: str | None = None) -> str:
    """The canonical aggregation name for ``func`` (``avg`` -> ``average``), or 400."""
    if func in AGG_FUNCS:
        return func
    if func in AGG_ALIASES:
        return AGG_ALIASES[func]
    raise GraphiteError("Unsupported aggregation function: %s" % (raw or func))


def _seq_sum(a: np.ndarray) -> np.ndarray:
    """Left-to-right sum over the last axis (NaN already replaced)."""
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1])
    return np.cumsum(a, axis=-1)[..., -1]


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[..., idx]`` with one index per row."""
    if a.shape[-1] == 0:
        return np.full(a.shape[:-1], np.nan)
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _first_valid(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    idx = np.argmax(valid, axis=-1)
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _last_valid(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    idx = a.shape[-1] - 1 - np.argmax(valid[..., ::-1], axis=-1)
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def aggregate_axis(func: str, a: np.ndarray, axis: int = -1,
                   present: np.ndarray | None = None) -> np.ndarray:
    """graphite's ``func`` (canonical name, or a consolidation function ``first``) over
    ``axis`` of ``a``; NaN is null. ``present`` marks positions that exist (padding to a
    rectangle is absent): ``avg_zero`` divides by the present count and ``multiply`` is
    null only for a present null. Where no value is present the result is NaN."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    valid = ~np.isnan(a)
    if present is not None:
        present = np.moveaxis(np.broadcast_to(present, np.moveaxis(a, -1, axis).shape),
                              axis, -1)
        valid &= present
    n_valid = valid.sum(axis=-1)
    empty = n_valid == 0
    zeroed = np.where(valid, a, 0.0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if func == "sum":
            out = _seq_sum(zeroed)
        elif func == "average":
            out = _seq_sum(zeroed) / n_valid
        elif func == "avg_zero":
            n = a.shape[-1] if present is None else present.sum(axis=-1)
            out = _seq_sum(zeroed) / n
        elif func == "median":
            # NaN sorts last: the values are the first n_valid of each sorted row
            ordered = np.sort(np.where(valid, a, np.nan), axis=-1)
            last = max(a.shape[-1] - 1, 0)
            mid = n_valid // 2
            upper = _take(ordered, np.clip(mid, 0, last))
            lower = _take(ordered, np.clip(mid - 1, 0, last))
            out = np.where(n_valid % 2 == 0, (lower + upper) / 2, upper)
        elif func == "min":
            out = np.fmin.reduce(np.where(valid, a, np.nan), axis=-1) if a.shape[-1] else \
                np.full(a.shape[:-1], np.nan)
        elif func == "max":
            out = np.fmax.reduce(np.where(valid, a, np.nan), axis=-1) if a.shape[-1] else \
                np.full(a.shape[:-1], np.nan)
        elif func == "range":
            out = aggregate_axis("max", a, -1, present) - aggregate_axis("min", a, -1, present)
        elif func == "diff":
            first_idx = np.argmax(valid, axis=-1)[..., None]
            is_first = np.arange(a.shape[-1]) == first_idx
            out = _seq_sum(np.where(is_first, zeroed, -zeroed))
        elif func == "stddev":
            mean = _seq_sum(zeroed) / n_valid
            dev = np.where(valid, a - mean[..., None], 0.0)
            out = np.sqrt(_seq_sum(dev * dev) / n_valid)
        elif func == "count":
            out = n_valid.astype(np.float64)
        elif func == "multiply":
            null_present = ~valid if present is None else (present & ~valid)
            prod = np.cumprod(np.where(valid, a, 1.0), axis=-1)[..., -1] if a.shape[-1] \
                else np.ones(a.shape[:-1])
            out = np.where(null_present.any(axis=-1), np.nan, prod)
        elif func == "last":
            out = _last_valid(a, valid) if a.shape[-1] else np.full(a.shape[:-1], np.nan)
        elif func == "first":
            out = _first_valid(a, valid) if a.shape[-1] else np.full(a.shape[:-1], np.nan)
        else:
            raise GraphiteError("Unsupported aggregation function: %s" % func)
    return np.where(empty, np.nan, out)


def xff_ok(n_valid: np.ndarray, total: float | np.ndarray,
           xfiles_factor: float | None) -> np.ndarray:
    """graphite's ``xff``: some value, and ``n_valid / total >= xFilesFactor``."""
    factor = 0.0 if xfiles_factor is None else float(xfiles_factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n_valid > 0) & (np.asarray(total) > 0) & (n_valid / total >= factor)


# --- consolidation and normalize -------------------------------------------------------


def consolidate(values: np.ndarray, vpp: int, funcs: Sequence[str],
                xfiles_factor: float | None = None) -> np.ndarray:
    """``TimeSeries.consolidate(vpp)``: groups of ``vpp`` points from the first one (the
    last group may be partial), each reduced with its series' consolidation function;
    null where a group has no value or ``non-null / vpp`` is below the factor."""
    n, p = values.shape
    if vpp <= 1:
        return values
    buckets = -(-p // vpp)
    padded = np.full((n, buckets * vpp), np.nan)
    padded[:, :p] = values
    cube = padded.reshape(n, buckets, vpp)
    present = (np.arange(buckets * vpp) < p).reshape(buckets, vpp)
    out = np.full((n, buckets), np.nan)
    for func in dict.fromkeys(funcs):
        if func == "avg":
            canon = "average"
        elif func in CONSOLIDATION_FUNCS:
            canon = func
        else:
            raise GraphiteError("Invalid consolidation function: '%s'" % func, 500)
        rows = np.array([f == func for f in funcs])
        out[rows] = aggregate_axis(canon, cube[rows], -1, present)
    n_valid = (~np.isnan(cube)).sum(axis=-1)
    return np.where(xff_ok(n_valid, vpp, xfiles_factor), out, np.nan)


def lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


@dataclass
class Normalized:
    """Series brought to one step and lined up by position (graphite's ``normalize``)."""

    values: np.ndarray                   # (N, P)
    start: int
    step: int
    items: list[tuple[SeriesList, int]]  # the input series, in order

    @property
    def names(self) -> list[str]:
        return [sl.names[i] for sl, i in self.items]

    @property
    def tags(self) -> list[dict[str, str]]:
        return [sl.tags[i] for sl, i in self.items]

    @property
    def path_expressions(self) -> list[str]:
        return [sl.path_expressions[i] for sl, i in self.items]


def normalize(lists: Lists, xfiles_factor: float | None = None) -> Normalized | None:
    """graphite's ``normalize``; None when there is no series (``NormalizeEmptyResult``).
    ``xfiles_factor`` is the series' own (graphite gives fetched series the request's)."""
    lists = [sl for sl in lists if len(sl)]
    if not lists:
        return None
    step = reduce(lcm, [sl.step for sl in lists])
    start = min(sl.start for sl in lists)
    end = max(sl.end for sl in lists)
    end -= (end - start) % step
    blocks = [consolidate(sl.values, step // sl.step, sl.consolidate, xfiles_factor)
              for sl in lists]
    width = max(b.shape[1] for b in blocks)
    if all(b.shape[1] == width for b in blocks):
        values = np.vstack(blocks)
    else:
        values = np.full((sum(b.shape[0] for b in blocks), width), np.nan)
        row = 0
        for b in blocks:
            values[row:row + b.shape[0], :b.shape[1]] = b
            row += b.shape[0]
    # graphite writes min(len(values), len(range(start, end + 1, step))) points
    width = min(width, (end - start) // step + 1)
    return Normalized(values[:, :width], start, step, flat(lists))


def py_round(values: np.ndarray, ndigits: int) -> np.ndarray:
    """Python's ``round(x, ndigits)`` (correctly rounded) over an array: numpy's scaled
    rounding, redone with Python where a value is within reach of a tie."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.round(values, ndigits)
        scaled = np.abs(values * 10.0 ** ndigits)
        near_tie = np.isfinite(scaled) & (np.abs(scaled % 1.0 - 0.5) < 1e-6)
    # too large to have decimals: Python returns the value itself
    out = np.where(np.isfinite(scaled) | ~np.isfinite(values), out, values)
    for idx in zip(*np.nonzero(near_tie), strict=True):
        out[idx] = round(float(values[idx]), ndigits)
    return out
