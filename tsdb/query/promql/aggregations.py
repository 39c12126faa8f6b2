"""Aggregation operators (``sum``, ``avg``, ``topk``, ``count_values``...) over all steps.

Series are put into groups (``by``/``without``) once; each reduction then runs over the
``(N, S)`` value matrix with the rows of a group made contiguous (``ufunc.reduceat``) or
sorted per step (``topk``/``bottomk``/``quantile``). Absent points are neutral elements of
the reduction; NaN handling follows Prometheus 2.42's ``aggregation()``: ``min``/``max``
ignore NaN unless every value is NaN, ``sum`` and ``avg`` propagate it.
"""

from __future__ import annotations

import math

import numpy as np

from tsdb.query.promql import labelsets as ls_
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.goformat import format_float_f
from tsdb.query.promql.values import InstantVector, Scalar, String, Value

MAX_INT64_FLOAT = 9223372036854774784.0
MIN_INT64_FLOAT = -9223372036854775808.0
_LABEL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")


def aggregate(op: str, vec: InstantVector, param: Value | None, grouping: list[str],
              without: bool) -> InstantVector:
    steps = vec.values.shape[1]
    if op == "count_values":
        assert isinstance(param, String)
        return _count_values(vec, param.value, grouping, without)
    if op in ("topk", "bottomk"):
        assert isinstance(param, Scalar)
        return _topk(vec, param.values, grouping, without, op == "bottomk")
    if len(vec) == 0:
        return InstantVector.empty(steps)
    keys = ls_.grouping_keys(vec.labels, grouping, without)
    ids, uniq = ls_.intern(keys)
    groups = ls_.Groups(ids, len(uniq))
    present = vec.present
    count = groups.reduce(np.add, present.astype(np.int64), 0)
    out_present = count > 0
    values = vec.values
    with np.errstate(all="ignore"):
        if op == "sum":
            result = groups.reduce(np.add, np.where(present, values, 0.0), 0.0)
        elif op == "avg":
            result = _mean(groups, values, present, count)
        elif op == "count":
            result = count.astype(np.float64)
        elif op == "group":
            result = np.ones(count.shape)
        elif op == "max":
            result = groups.reduce(np.fmax, np.where(present, values, np.nan), np.nan)
        elif op == "min":
            result = groups.reduce(np.fmin, np.where(present, values, np.nan), np.nan)
        elif op in ("stddev", "stdvar"):
            result = _variance(groups, ids, values, present, count)
            if op == "stddev":
                result = np.sqrt(result)
        elif op == "quantile":
            assert isinstance(param, Scalar)
            result = _quantile(groups, ids, values, present, count, param.values)
        else:
            raise QueryError(f"unknown aggregation {op!r}", "bad_data")
    rows = np.flatnonzero(out_present.any(axis=1))
    return InstantVector([uniq[g] for g in rows], result[rows], out_present[rows])


def _mean(groups: ls_.Groups, values: np.ndarray, present: np.ndarray,
          count: np.ndarray) -> np.ndarray:
    """sum / count; where that overflows although no input is infinite, Prometheus'
    incremental mean stays finite: recompute those cells as the sum of value / count."""
    masked = np.where(present, values, 0.0)
    mean = groups.reduce(np.add, masked, 0.0) / count
    overflow = np.isinf(mean)
    if overflow.any():
        n = np.maximum(count, 1)[groups.ids]
        scaled = groups.reduce(np.add, masked / n, 0.0)
        has_inf = groups.reduce(np.logical_or, np.isinf(masked), False)
        fix = overflow & ~has_inf
        mean[fix] = scaled[fix]
    return mean


def _variance(groups: ls_.Groups, ids: np.ndarray, values: np.ndarray, present: np.ndarray,
              count: np.ndarray) -> np.ndarray:
    """Population variance, two-pass; exactly 0 when all values of a group are equal (as
    Welford's update used by Prometheus gives) and for a group of one (even NaN)."""
    masked = np.where(present, values, 0.0)
    mean = groups.reduce(np.add, masked, 0.0) / count
    dev = np.where(present, values - mean[ids], 0.0)
    var = groups.reduce(np.add, dev * dev, 0.0) / count
    lo = groups.reduce(np.minimum, np.where(present, values, np.inf), np.inf)
    hi = groups.reduce(np.maximum, np.where(present, values, -np.inf), -np.inf)
    var[((lo == hi) & np.isfinite(lo)) | (count == 1)] = 0.0
    return var


def _sorted_per_step(ids: np.ndarray, values: np.ndarray, present: np.ndarray,
                     nan_first: bool) -> np.ndarray:
    """(N, S) row order per step: by group id, present rows first, then by value (NaN
    first or last). Every group occupies the same positions in every column."""
    n, steps = values.shape
    gid = np.broadcast_to(ids[:, None], (n, steps))
    nan = np.isnan(values)
    nan_key = ~nan if nan_first else nan
    value_key = np.where(nan | ~present, 0.0, values)
    order = np.lexsort((value_key, nan_key, ~present, gid), axis=0)
    return order


def _quantile(groups: ls_.Groups, ids: np.ndarray, values: np.ndarray, present: np.ndarray,
              count: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Prometheus' ``quantile()``: sort (NaN first), interpolate between the two closest
    ranks; phi < 0 gives -Inf, phi > 1 +Inf."""
    order = _sorted_per_step(ids, values, present, nan_first=True)
    sorted_values = np.take_along_axis(values, order, axis=0)
    start = np.zeros(groups.n_groups, np.int64)
    start[groups.group_ids] = groups.starts
    n = count.astype(np.float64)
    rank = phi[None, :] * (n - 1)
    lower = np.maximum(0.0, np.floor(rank))
    upper = np.minimum(n - 1, lower + 1)
    weight = rank - np.floor(rank)
    ok = (count > 0) & np.isfinite(rank) & (phi[None, :] >= 0) & (phi[None, :] <= 1)
    lower_i = np.where(ok, lower, 0).astype(np.int64) + start[:, None]
    upper_i = np.where(ok, upper, 0).astype(np.int64) + start[:, None]
    cols = np.arange(values.shape[1])[None, :]
    result = sorted_values[lower_i, cols] * (1 - weight) + sorted_values[upper_i, cols] * weight
    result = np.where(ok, result, np.nan)
    result = np.where(phi[None, :] < 0, -np.inf, result)
    result = np.where(phi[None, :] > 1, np.inf, result)
    return result


def _int_param(k: np.ndarray) -> np.ndarray:
    bad = ~((k <= MAX_INT64_FLOAT) & (k >= MIN_INT64_FLOAT))
    if bad.any():
        raise QueryError(f"Scalar value {_go_float(float(k[bad][0]))} overflows int64")
    return np.trunc(k).astype(np.int64)


def _go_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _topk(vec: InstantVector, k_param: np.ndarray, grouping: list[str], without: bool,
          bottom: bool) -> InstantVector:
    steps = vec.values.shape[1]
    k = _int_param(k_param)
    if len(vec) == 0:
        return InstantVector.empty(steps)
    vec = _in_label_order(vec)
    keys = ls_.grouping_keys(vec.labels, grouping, without)
    ids, uniq = ls_.intern(keys)
    groups = ls_.Groups(ids, len(uniq))
    values, present = vec.values, vec.present
    # per step (rows of the transposed arrays): order the series by value, best first,
    # absent and NaN last (both NaN keys), stable so that ties keep the input order; then
    # stably by group, so every group's series are contiguous and best first
    key = np.where(present, values if bottom else -values, np.nan).T
    nan_present = present & np.isnan(values)
    if nan_present.any():
        # Prometheus' heap evicts a NaN before anything else, so of several NaNs the
        # later ones survive: NaNs after every number, in reverse input order, then absent
        row = np.arange(len(ids), dtype=np.float64)[None, :]
        cls = np.where(present, np.where(nan_present, 1, 0), 2).T
        secondary = np.where(nan_present.T, -row, np.where(present.T, key, 0.0))
        order = np.lexsort((secondary, cls), axis=1)
    else:
        order = np.argsort(key, axis=1, kind="stable")
    if groups.n_groups > 1:
        by_group = np.argsort(ids[order], axis=1, kind="stable")
        order = np.take_along_axis(order, by_group, axis=1)
    present_sorted = np.take_along_axis(present.T, order, axis=1)
    seen = np.cumsum(present_sorted, axis=1)          # present series up to here, inclusive
    before_group = np.zeros((steps, groups.n_groups), np.int64)
    nonfirst = groups.starts > 0
    before_group[:, groups.group_ids[nonfirst]] = seen[:, groups.starts[nonfirst] - 1]
    rank = seen - 1 - before_group[:, np.sort(ids)]
    keep_sorted = present_sorted & (rank < k[:, None])
    keep_t = np.zeros((steps, len(ids)), bool)
    np.put_along_axis(keep_t, order, keep_sorted, axis=1)
    keep = keep_t.T
    rows = np.flatnonzero(keep.any(axis=1))
    return InstantVector([vec.labels[i] for i in rows], values[rows], keep[rows])


def _in_label_order(vec: InstantVector) -> InstantVector:
    """The rows sorted by labels: the order Prometheus reads series from storage, which
    decides which of several equal values ``topk``/``bottomk`` keep."""
    labels = vec.labels
    if all(labels[i] < labels[i + 1] for i in range(len(labels) - 1)):
        return vec
    order = sorted(range(len(labels)), key=labels.__getitem__)
    return InstantVector([labels[i] for i in order], vec.values[order], vec.present[order])


def _valid_label_name(name: str) -> bool:
    return bool(name) and not name[0].isdigit() and set(name) <= _LABEL_NAME_CHARS


def _count_values(vec: InstantVector, label: str, grouping: list[str],
                  without: bool) -> InstantVector:
    steps = vec.values.shape[1]
    if not _valid_label_name(label):
        raise QueryError(f'invalid label name "{label}"')
    if len(vec) == 0:
        return InstantVector.empty(steps)
    # the value label replaces any label of that name before grouping (Prometheus sets it
    # on the series first), so group on the series labels without it plus the value
    if without:
        base_keys = ls_.grouping_keys(vec.labels, [*grouping, label], True)
        value_counts = label not in grouping
    else:
        base_keys = ls_.grouping_keys(vec.labels, [g for g in grouping if g != label], False)
        value_counts = True
    base_ids, base_uniq = ls_.intern(base_keys)
    rows, cols = np.nonzero(vec.present)
    v = vec.values[rows, cols]
    bits = np.where(np.isnan(v), np.uint64(0x7FF8000000000001), v.view(np.uint64))
    if not value_counts:
        bits = np.zeros_like(bits)
    pair = np.stack([base_ids[rows].astype(np.uint64), bits], axis=1)
    uniq_pairs, out_id = np.unique(pair, axis=0, return_inverse=True)
    out_id = out_id.reshape(-1)
    labels = []
    for base, b in uniq_pairs.tolist():
        key = base_uniq[base]
        if value_counts:
            text = format_float_f(float(np.uint64(b).view(np.float64)))
            key = tuple(sorted(key + ((label, text),)))
        labels.append(key)
    n_out = len(labels)
    counts = np.bincount(out_id * steps + cols, minlength=n_out * steps).reshape(n_out, steps)
    return InstantVector(labels, counts.astype(np.float64), counts > 0)
