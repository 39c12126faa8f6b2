"""Values the evaluator passes between nodes, all vectorised over the evaluation steps.

A query is evaluated at ``S`` step times at once (an instant query is a range query with
one step). Every intermediate value covers all steps:

* :class:`Scalar`: one float per step.
* :class:`InstantVector`: ``N`` series × ``S`` steps; a series may have no value at some
  steps, so a boolean ``present`` mask goes with the float matrix (NaN is a legal value).
* :class:`RangeVector`: for each series its raw samples (CSR over ``t``/``v``) plus, per
  step, the half-open index range ``[lo, hi)`` of the samples inside that step's window.
  Range functions reduce each window to one value per step without a Python loop over
  samples (cumulative sums, ``np.maximum.reduceat`` and friends).
* :class:`String`: a string literal (only for instant queries and function arguments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsdb.storage.labels import Labels


@dataclass
class Scalar:
    values: np.ndarray          # (S,) float64


@dataclass
class String:
    value: str


@dataclass
class InstantVector:
    labels: list[Labels]        # N label sets, each sorted by name
    values: np.ndarray          # (N, S) float64
    present: np.ndarray         # (N, S) bool; values where not present are meaningless

    @classmethod
    def empty(cls, steps: int) -> InstantVector:
        return cls([], np.empty((0, steps)), np.zeros((0, steps), bool))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class RangeVector:
    labels: list[Labels]        # N label sets
    t: np.ndarray               # (M,) int64 ms, grouped by series, ascending within one
    v: np.ndarray               # (M,) float64, stale markers already removed
    offsets: np.ndarray         # (N+1,) int64: series i owns t[offsets[i]:offsets[i+1]]
    lo: np.ndarray              # (N, S) int64 global index of the first sample in window
    hi: np.ndarray              # (N, S) int64 global index one past the last one
    window_end: np.ndarray      # (S,) int64 ms: step time after ``@`` and offset
    range_ms: int               # window is [window_end - range_ms, window_end], inclusive

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def window_start(self) -> np.ndarray:
        return self.window_end - self.range_ms

    @property
    def counts(self) -> np.ndarray:
        """(N, S) number of samples in each window."""
        return self.hi - self.lo


Value = Scalar | String | InstantVector | RangeVector


@dataclass
class EvalContext:
    """What every node evaluation may read: the step times and the query limits."""

    steps: np.ndarray           # (S,) int64 ms, the query's evaluation timestamps
    start_ms: int               # first step (for ``@ start()``)
    end_ms: int                 # last step (for ``@ end()``)
    step_ms: int                # interval between steps (instant query: 0)
    lookback_ms: int = 300_000

    @property
    def n_steps(self) -> int:
        return len(self.steps)
