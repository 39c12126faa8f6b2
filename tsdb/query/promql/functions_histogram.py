"""``histogram_quantile`` over classic ``le`` buckets, and the native-histogram functions
(``histogram_count``, ``histogram_sum``, ``histogram_fraction``), which only look at native
histogram samples: this store has none, so they return an empty vector, as Prometheus
does for float samples.

Buckets are grouped by their full label set without ``le`` (``__name__`` included, so two
histograms differing only in name stay apart); the output drops ``le`` and ``__name__``.
All groups and steps are computed at once on a ``(groups, buckets, steps)`` array.
"""

from __future__ import annotations

import numpy as np

from tsdb.query.promql.functions_base import (
    METRIC_NAME,
    Function,
    FunctionCall,
    go_parse_float,
    scalar_arg,
    vector_arg,
)
from tsdb.query.promql.values import InstantVector
from tsdb.storage.labels import Labels

BUCKET_LABEL = "le"


def _group_buckets(
    labels: list[Labels],
) -> tuple[list[Labels], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort the series into histograms and bucket slots.

    Returns the output labels per group, and per usable series (one whose ``le`` parses)
    its row in the input, group, slot, and the slot upper bounds ``(G, K)`` (slots sorted by
    bound, one per distinct bound, padded with NaN). Series with equal bounds share a slot,
    which sums them (Prometheus' ``coalesceBuckets``).
    """
    group_of: dict[Labels, int] = {}
    out_labels: list[Labels] = []
    rows: list[int] = []
    groups: list[int] = []
    bounds: list[float] = []
    for row, lbls in enumerate(labels):
        le = next((value for name, value in lbls if name == BUCKET_LABEL), "")
        bound = go_parse_float(le)
        if bound is None:
            continue  # no or malformed bucket label: skipped, as in Prometheus
        key = tuple(pair for pair in lbls if pair[0] != BUCKET_LABEL)
        group = group_of.get(key)
        if group is None:
            group = group_of[key] = len(out_labels)
            out_labels.append(tuple(pair for pair in key if pair[0] != METRIC_NAME))
        rows.append(row)
        groups.append(group)
        bounds.append(bound)
    row_arr = np.array(rows, dtype=np.int64)
    group_arr = np.array(groups, dtype=np.int64)
    bound_arr = np.array(bounds, dtype=np.float64)
    if not rows:
        return out_labels, row_arr, group_arr, np.empty(0, np.int64), np.empty((0, 0))

    # distinct (group, bound) pairs in bound order; NaN bounds sort last
    order = np.lexsort((bound_arr, group_arr))
    g_sorted, b_sorted = group_arr[order], bound_arr[order]
    new_slot = np.ones(len(order), dtype=bool)
    same_group = g_sorted[1:] == g_sorted[:-1]
    both_nan = np.isnan(b_sorted[1:]) & np.isnan(b_sorted[:-1])
    same_bound = (b_sorted[1:] == b_sorted[:-1]) | both_nan
    new_slot[1:] = ~(same_group & same_bound)
    slot_id = np.cumsum(new_slot) - 1
    group_start = np.ones(len(order), dtype=bool)
    group_start[1:] = ~same_group
    first_slot_of_group = np.zeros(len(out_labels), dtype=np.int64)
    first_slot_of_group[g_sorted[group_start]] = slot_id[group_start]
    slot_in_group = np.empty(len(order), dtype=np.int64)
    slot_in_group[order] = slot_id - first_slot_of_group[g_sorted]

    width = int(slot_in_group.max()) + 1
    upper = np.full((len(out_labels), width), np.nan)
    upper[group_arr, slot_in_group] = bound_arr
    return out_labels, row_arr, group_arr, slot_in_group, upper


def func_histogram_quantile(call: FunctionCall) -> InstantVector:
    """Prometheus 2.42 ``bucketQuantile`` per histogram and step: quantile outside [0, 1]
    gives ±Inf, a histogram whose highest bucket is not +Inf or that has fewer than two
    buckets gives NaN, cumulative counts are forced monotonic, and the value is linearly
    interpolated inside the bucket holding the rank (the lowest bucket starts at 0 unless
    its bound is not positive)."""
    q = scalar_arg(call, 0)
    vec = vector_arg(call, 1)
    steps = call.ctx.n_steps
    out_labels, rows, groups, slots, upper = _group_buckets(vec.labels)
    if not out_labels:
        return InstantVector.empty(steps)
    values = np.empty((len(out_labels), steps))
    present = np.empty((len(out_labels), steps), dtype=bool)
    chunk = max(1, _CHUNK_CELLS // upper.size)
    for start in range(0, steps, chunk):
        cols = slice(start, start + chunk)
        values[:, cols], present[:, cols] = _bucket_quantiles(
            q[cols], vec.values[rows, cols], vec.present[rows, cols], groups, slots, upper
        )
    return InstantVector(out_labels, values, present)


_CHUNK_CELLS = 1 << 20  # (group, bucket, step) cells handled at once


def _bucket_quantiles(
    q: np.ndarray,
    values: np.ndarray,
    present: np.ndarray,
    groups: np.ndarray,
    slots: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of every histogram at a range of steps: ``(G, S)`` values and presence."""
    n_groups, width = upper.shape
    steps = len(q)
    # (G, K, S) bucket counts, summed over series sharing a bound, present if any is
    counts = np.zeros((n_groups, width, steps))
    has = np.zeros((n_groups, width, steps), dtype=bool)
    np.add.at(counts, (groups, slots), np.where(present, values, 0.0))
    np.logical_or.at(has, (groups, slots), present)
    n_buckets = has.sum(axis=1)  # (G, S)

    # compact each (group, step) to its present buckets, in bound order
    compact = np.argsort(~has, axis=1, kind="stable")
    counts = np.take_along_axis(counts, compact, axis=1)
    bounds = np.take_along_axis(np.broadcast_to(upper[:, :, None], has.shape), compact, axis=1)
    slot = np.arange(width)[None, :, None]
    # ensureMonotonic: a running maximum, where a NaN count takes the maximum so far
    counts = np.where(slot < n_buckets[:, None, :], counts, -np.inf)
    counts = np.fmax.accumulate(counts, axis=1)
    counts[np.isnan(counts)] = -np.inf  # only NaN so far: the maximum is still -Inf

    def at(index: np.ndarray, arr: np.ndarray) -> np.ndarray:
        return np.take_along_axis(arr, np.clip(index, 0, width - 1)[:, None, :], axis=1)[:, 0]

    last = n_buckets - 1
    highest = at(last, bounds)
    with np.errstate(all="ignore"):
        observations = at(last, counts)
        rank = q[None, :] * observations
        # b: the first bucket (the last one excluded) whose count reaches the rank
        reaches = counts >= rank[:, None, :]
        b = (~reaches & (slot < last[:, None, :])).sum(axis=1)
        bucket_end = at(b, bounds)
        count_b = at(b, counts)
        prev_end = np.where(b > 0, at(b - 1, bounds), 0.0)
        prev_count = np.where(b > 0, at(b - 1, counts), 0.0)
        fraction = (rank - prev_count) / (count_b - prev_count)
        value = prev_end + (bucket_end - prev_end) * fraction
        value = np.where((b == 0) & (bucket_end <= 0), bucket_end, value)
        value = np.where(b == last, at(last - 1, bounds), value)
        value = np.where(observations == 0, np.nan, value)
        value = np.where(n_buckets < 2, np.nan, value)
        value = np.where(highest == np.inf, value, np.nan)
    value = np.where(q[None, :] > 1, np.inf, value)
    value = np.where(q[None, :] < 0, -np.inf, value)
    value = np.where(np.isnan(q)[None, :], np.nan, value)
    return value, n_buckets > 0


def _native_only(call: FunctionCall) -> InstantVector:
    return InstantVector.empty(call.ctx.n_steps)


FUNCTIONS: dict[str, Function] = {
    "histogram_quantile": func_histogram_quantile,
    "histogram_count": _native_only,
    "histogram_sum": _native_only,
    "histogram_fraction": _native_only,
}
