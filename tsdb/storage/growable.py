"""A numpy array with amortised O(1) appends, for per-series and per-sample columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class GrowableArray:
    """A numpy array with amortised O(1) append (capacity grows by half)."""

    __slots__ = ("buf", "n")

    def __init__(self, dtype: type, capacity: int = 16) -> None:
        self.buf = np.empty(capacity, dtype=dtype)
        self.n = 0

    def _reserve(self, need: int) -> None:
        if need > len(self.buf):
            new = np.empty(max(need, len(self.buf) * 3 // 2), dtype=self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new

    def extend(self, values: np.ndarray | Sequence[int]) -> None:
        need = self.n + len(values)
        self._reserve(need)
        self.buf[self.n : need] = values
        self.n = need

    def resize(self, n: int, fill: int) -> None:
        """Grow to ``n`` elements, the new ones set to ``fill``."""
        if n > self.n:
            self._reserve(n)
            self.buf[self.n : n] = fill
            self.n = n

    @property
    def view(self) -> np.ndarray:
        return self.buf[: self.n]

    @property
    def nbytes(self) -> int:
        return self.buf.nbytes

    def clear(self) -> None:
        self.n = 0
