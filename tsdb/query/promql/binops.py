"""Binary operators over scalars and instant vectors, all steps at once.

Vector matching follows Prometheus 2.42 (``VectorBinop``, ``VectorAnd/Or/Unless``,
``resultMetric``): series are matched per step by a signature (the ``on`` labels, or all
labels but the ``ignoring`` ones and ``__name__``). Every series of one side is paired
with every series of the other side that has the same signature; a pair produces a value
at the steps where both have one. Because the "one" side must be unique per step, each
series of the "many" side has at most one live pair per step.
"""

from __future__ import annotations

import numpy as np

from tsdb.query.promql import labelsets as ls_
from tsdb.query.promql.ast import VectorMatching
from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.values import InstantVector, Scalar, Value

ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPERATORS = frozenset({"and", "or", "unless"})
#: operators whose result loses ``__name__`` (Prometheus' ``shouldDropMetricName``: not atan2)
DROPS_NAME = frozenset({"+", "-", "*", "/", "%", "^"})


def arithmetic(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's float64 semantics: IEEE division, ``math.Mod`` (sign of the dividend),
    ``math.Pow``, ``math.Atan2``."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
    raise QueryError(f"operator {op!r} not allowed for arithmetic", "bad_data")


def compare(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        if op == "<=":
            return a <= b
    raise QueryError(f"operator {op!r} not allowed for comparison", "bad_data")


def binary(op: str, lhs: Value, rhs: Value, matching: VectorMatching | None,
           return_bool: bool) -> Value:
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        return _scalar_scalar(op, lhs, rhs)
    if isinstance(lhs, InstantVector) and isinstance(rhs, InstantVector):
        if op in SET_OPERATORS:
            return _set_operation(op, lhs, rhs, matching or VectorMatching("many-to-many"))
        return _vector_vector(op, lhs, rhs, matching or VectorMatching(), return_bool)
    if isinstance(lhs, InstantVector) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values, swap=False, return_bool=return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, InstantVector):
        return _vector_scalar(op, rhs, lhs.values, swap=True, return_bool=return_bool)
    raise QueryError(f"operator {op!r} not defined between {type(lhs).__name__} and "
                     f"{type(rhs).__name__}", "bad_data")


def _scalar_scalar(op: str, lhs: Scalar, rhs: Scalar) -> Scalar:
    if op in COMPARISON:
        return Scalar(compare(op, lhs.values, rhs.values).astype(np.float64))
    return Scalar(arithmetic(op, lhs.values, rhs.values))


def _vector_scalar(op: str, vec: InstantVector, scalar: np.ndarray, swap: bool,
                   return_bool: bool) -> InstantVector:
    s = scalar[None, :]
    a, b = (s, vec.values) if swap else (vec.values, s)
    if op in ARITHMETIC:
        labels = ls_.drop_name(vec.labels) if op in DROPS_NAME else vec.labels
        return ls_.merge_same_labels(InstantVector(labels, arithmetic(op, a, b), vec.present))
    keep = compare(op, a, b)
    if return_bool:
        out = InstantVector(ls_.drop_name(vec.labels), keep.astype(np.float64), vec.present)
        return ls_.merge_same_labels(out)
    # a filter keeps the vector's own value, on whichever side it stands
    present = vec.present & keep
    rows = np.flatnonzero(present.any(axis=1))
    return InstantVector([vec.labels[i] for i in rows], vec.values[rows], present[rows])


# --- set operators -----------------------------------------------------------------------


def _signatures(lhs: InstantVector, rhs: InstantVector, matching: VectorMatching):
    table: dict = {}
    lsig, _ = ls_.intern(ls_.signature_keys(lhs.labels, matching.matching_labels,
                                             matching.on), table)
    rsig, uniq = ls_.intern(ls_.signature_keys(rhs.labels, matching.matching_labels,
                                                matching.on), table)
    return lsig, rsig, len(uniq), uniq


def _set_operation(op: str, lhs: InstantVector, rhs: InstantVector,
                   matching: VectorMatching) -> InstantVector:
    lsig, rsig, n_sig, _ = _signatures(lhs, rhs, matching)
    if op == "or":
        lhs_has = ls_.group_any(lsig, n_sig, lhs.present)
        rhs_present = rhs.present & ~lhs_has[rsig]
        out = InstantVector(lhs.labels + rhs.labels,
                            np.concatenate([lhs.values, rhs.values]),
                            np.concatenate([lhs.present, rhs_present]))
        return _drop_empty(ls_.merge_same_labels(out))
    rhs_has = ls_.group_any(rsig, n_sig, rhs.present)
    matched = rhs_has[lsig]
    present = lhs.present & (matched if op == "and" else ~matched)
    return _drop_empty(InstantVector(lhs.labels, lhs.values, present))


def _drop_empty(vec: InstantVector) -> InstantVector:
    keep = vec.present.any(axis=1)
    if keep.all():
        return vec
    rows = np.flatnonzero(keep)
    return InstantVector([vec.labels[i] for i in rows], vec.values[rows], vec.present[rows])


# --- one-to-one, many-to-one, one-to-many ------------------------------------------------


def _vector_vector(op: str, lhs: InstantVector, rhs: InstantVector,
                   matching: VectorMatching, return_bool: bool) -> InstantVector:
    steps = lhs.values.shape[1]
    one_to_many = matching.card == "one-to-many"
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    msig, osig, n_sig, sig_keys = _signatures(many, one, matching)

    # Prometheus returns nothing for a step where either side is empty, before any check
    live_steps = many.present.any(axis=0) & one.present.any(axis=0)
    one_count = ls_.group_count(osig, n_sig, one.present)
    duplicated = (one_count > 1) & live_steps
    if duplicated.any():
        g, step = (int(x) for x in np.argwhere(duplicated)[0])
        rows = np.flatnonzero((osig == g) & one.present[:, step]).tolist()
        side = "left" if one_to_many else "right"
        shown = ", ".join(ls_.format_labels(one.labels[i]) for i in rows[:2])
        raise QueryError(
            f"found duplicate series for the match group {ls_.format_labels(sig_keys[g])} "
            f"on the {side} hand-side of the operation: [{shown}];many-to-many matching "
            f"not allowed: matching labels must be unique on one side")

    pm, po = _pairs(msig, osig, n_sig)
    if len(pm):
        live = many.present[pm] & one.present[po]
        alive = live.any(axis=1)
        pm, po, live = pm[alive], po[alive], live[alive]
    if len(pm) == 0:
        return InstantVector.empty(steps)

    mv, ov = many.values[pm], one.values[po]
    lv, rv = (ov, mv) if one_to_many else (mv, ov)
    if op in ARITHMETIC:
        values, keep = arithmetic(op, lv, rv), live
    elif return_bool:
        values, keep = compare(op, lv, rv).astype(np.float64), live
    else:
        values, keep = lv, live & compare(op, lv, rv)

    labels = _result_labels(op, many, one, pm, po, matching, return_bool)
    sig = msig[pm]
    if matching.card == "one-to-one":
        if (ls_.group_count(sig, n_sig, keep) > 1).any():
            raise QueryError("multiple matches for labels: many-to-one matching must be "
                             "explicit (group_left/group_right)")
    else:
        table: dict = {}
        out_ids, uniq = ls_.intern(zip(sig.tolist(), labels, strict=True), table)
        if len(uniq) < len(labels) and \
                (ls_.group_count(out_ids, len(uniq), keep) > 1).any():
            raise QueryError("multiple matches for labels: grouping labels must ensure "
                             "unique matches")
    out = InstantVector(labels, values, keep)
    return _drop_empty(ls_.merge_same_labels(out))


def _pairs(msig: np.ndarray, osig: np.ndarray, n_sig: int) -> tuple[np.ndarray, np.ndarray]:
    """All (many row, one row) pairs with equal signatures."""
    one_groups = ls_.Groups(osig, n_sig)
    per_sig_count = np.zeros(n_sig, np.int64)
    per_sig_start = np.zeros(n_sig, np.int64)
    per_sig_count[one_groups.group_ids] = one_groups.sizes
    per_sig_start[one_groups.group_ids] = one_groups.starts
    reps = per_sig_count[msig]
    total = int(reps.sum())
    pm = np.repeat(np.arange(len(msig), dtype=np.int64), reps)
    first_of_run = np.repeat(np.cumsum(reps) - reps, reps)
    within = np.arange(total, dtype=np.int64) - first_of_run
    po = one_groups.order[np.repeat(per_sig_start[msig], reps) + within]
    return pm, po


def _result_labels(op: str, many: InstantVector, one: InstantVector, pm: np.ndarray,
                   po: np.ndarray, matching: VectorMatching, return_bool: bool):
    """``resultMetric``: the many side's labels, ``__name__`` dropped for arithmetic (and
    ``bool``), reduced to / stripped of the matching labels for one-to-one, plus the
    ``group_x(...)`` labels copied from the one side."""
    drop_name = op in DROPS_NAME or return_bool
    one_to_one = matching.card == "one-to-one"
    on_names = frozenset(matching.matching_labels)
    ignored = on_names | ({ls_.NAME} if drop_name else frozenset())
    include = matching.include
    cache: dict = {}
    out = []
    for i, j in zip(pm.tolist(), po.tolist(), strict=True):
        key = (i, j) if include else i
        got = cache.get(key)
        if got is None:
            base = many.labels[i]
            if one_to_one and matching.on:
                base = ls_.keep_labels(base, on_names - ({ls_.NAME} if drop_name else set()))
            elif one_to_one:
                base = ls_.without_labels(base, ignored)
            elif drop_name:
                base = ls_.without_labels(base, frozenset({ls_.NAME}))
            if include:
                extra = dict(one.labels[j])
                d = dict(base)
                for name in include:
                    v = extra.get(name, "")
                    if v:
                        d[name] = v
                    else:
                        d.pop(name, None)
                base = tuple(sorted(d.items()))
            got = cache[key] = base
        out.append(got)
    return out
