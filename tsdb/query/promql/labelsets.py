"""Label-set helpers of the evaluator: interning, matching signatures, grouping keys,
per-group reductions over ``(N, S)`` matrices and the duplicate-label-set check.

Label sets are Python tuples (one per series), so turning them into small integer ids is
the one place a loop over series is unavoidable; everything after that works on the ids
with numpy, for all steps at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.values import InstantVector
from tsdb.storage.labels import Labels

NAME = "__name__"
DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


def drop_name(labels: Sequence[Labels]) -> list[Labels]:
    """The label sets without ``__name__`` (it sorts first when present, by byte order only
    after names starting with ``_`` and upper-case letters, so look for it)."""
    out = []
    for ls in labels:
        for k, (name, _) in enumerate(ls):
            if name == NAME:
                ls = ls[:k] + ls[k + 1:]
                break
        out.append(ls)
    return out


def intern(keys: Iterable, table: dict | None = None) -> tuple[np.ndarray, list]:
    """Integer id per key (first occurrence order) and the distinct keys. Passing the same
    ``table`` to several calls gives ids that are comparable across them."""
    table = {} if table is None else table
    ids = np.fromiter((table.setdefault(k, len(table)) for k in keys), dtype=np.int64)
    return ids, list(table)


def keep_labels(ls: Labels, names: frozenset[str]) -> Labels:
    return tuple(p for p in ls if p[0] in names)


def without_labels(ls: Labels, names: frozenset[str]) -> Labels:
    return tuple(p for p in ls if p[0] not in names)


def signature_keys(labels: Sequence[Labels], names: Sequence[str], on: bool) -> list[Labels]:
    """The part of each label set that vector matching compares: the ``on`` labels, or
    everything but the ``ignoring`` labels and ``__name__``."""
    if on:
        wanted = frozenset(names)
        return [keep_labels(ls, wanted) for ls in labels]
    dropped = frozenset(names) | {NAME}
    return [without_labels(ls, dropped) for ls in labels]


def grouping_keys(labels: Sequence[Labels], grouping: Sequence[str],
                  without: bool) -> list[Labels]:
    """Aggregation groups: ``by`` keeps the listed labels (``__name__`` only if listed),
    ``without`` drops the listed ones and ``__name__``. The key is the output label set."""
    if without:
        dropped = frozenset(grouping) | {NAME}
        return [without_labels(ls, dropped) for ls in labels]
    wanted = frozenset(grouping)
    return [keep_labels(ls, wanted) for ls in labels]


class Groups:
    """Rows partitioned by integer id: ``order`` lists the rows group by group (stable),
    group ``k`` (id ``ids_present[k]``) owning ``order[starts[k]:ends[k]]``."""

    def __init__(self, ids: np.ndarray, n_groups: int) -> None:
        self.ids = ids
        self.n_groups = n_groups
        self.order = np.argsort(ids, kind="stable")
        sorted_ids = ids[self.order]
        boundary = np.ones(len(ids), bool)
        boundary[1:] = sorted_ids[1:] != sorted_ids[:-1]
        self.starts = np.flatnonzero(boundary)
        self.ends = np.append(self.starts[1:], len(ids)).astype(np.int64)
        self.group_ids = sorted_ids[self.starts]
        self.sizes = self.ends - self.starts
        self.unique = len(self.starts) == len(ids)

    def reduce(self, ufunc: np.ufunc, matrix: np.ndarray, fill) -> np.ndarray:
        """``ufunc`` over the rows of each group: (n_groups, S); ``fill`` for empty ids."""
        out = np.full((self.n_groups,) + matrix.shape[1:], fill, dtype=matrix.dtype)
        if len(self.ids) == 0:
            return out
        if self.unique:
            out[self.ids] = matrix
        else:
            out[self.group_ids] = ufunc.reduceat(matrix[self.order], self.starts, axis=0)
        return out


def group_count(ids: np.ndarray, n_groups: int, present: np.ndarray) -> np.ndarray:
    """(n_groups, S) number of present rows per group and step."""
    return Groups(ids, n_groups).reduce(np.add, present.astype(np.int64), 0)


def group_any(ids: np.ndarray, n_groups: int, present: np.ndarray) -> np.ndarray:
    """(n_groups, S) does any row of the group have a value at the step?"""
    return Groups(ids, n_groups).reduce(np.logical_or, present, False)


def merge_same_labels(vec: InstantVector, per_step: bool = True) -> InstantVector:
    """Merge rows with equal label sets into one series.

    Rows with the same labels may coexist as long as they never have a value at the same
    step (``or``, matching against a series that changed its labels over time...). If two
    do, the result is Prometheus' "vector cannot contain metrics with the same labelset"
    error. With ``per_step=False`` (results of range-vector functions and unary minus,
    which Prometheus checks as whole series) any two rows with points at all conflict.
    """
    n = len(vec.labels)
    if n < 2:
        return vec
    ids, uniq = intern(vec.labels)
    if len(uniq) == n:
        return vec
    groups = Groups(ids, len(uniq))
    if per_step:
        clash = (groups.reduce(np.add, vec.present.astype(np.int64), 0) > 1).any()
    else:
        clash = (groups.reduce(np.add, vec.present.any(axis=1).astype(np.int64), 0) > 1).any()
    if clash:
        raise QueryError(DUPLICATE_LABELSET)
    # one present row per (group, step) at most: pick it (the last present one)
    rank = np.where(vec.present, np.arange(1, n + 1)[:, None], 0)
    chosen = groups.reduce(np.maximum, rank, 0)
    present = chosen > 0
    values = np.take_along_axis(vec.values, np.maximum(chosen - 1, 0), axis=0)
    values = np.where(present, values, np.nan)
    return InstantVector(uniq, values, present)


def sort_order(labels: Sequence[Labels]) -> list[int]:
    """Row order sorting label sets like Prometheus' ``labels.Compare`` (name, then value,
    pair by pair; Python's str order is code-point order, the same as UTF-8 byte order)."""
    return sorted(range(len(labels)), key=labels.__getitem__)


def format_labels(ls: Labels) -> str:
    """``{a="b", c="d"}`` as Prometheus prints a label set in error messages."""
    inner = ", ".join(
        '%s="%s"' % (n, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for n, v in ls)
    return "{" + inner + "}"
