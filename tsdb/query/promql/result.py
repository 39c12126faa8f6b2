"""What a query returns to the HTTP layer, independent of JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsdb.storage.labels import Labels


@dataclass
class QueryResult:
    """``result_type`` is the Prometheus API ``resultType``.

    * ``matrix`` (range queries): ``series`` holds ``(labels, t_ms, values)`` per series,
      sorted by labels, series without points left out.
    * ``vector`` (instant queries): ``series`` holds one point per series, at the query
      time, in the order Prometheus returns them (sorted for ``sort``/``sort_desc``).
    * ``scalar``: ``scalar = (t_ms, value)``; ``string``: ``string = (t_ms, text)``.
    """

    result_type: str
    series: list[tuple[Labels, np.ndarray, np.ndarray]] = field(default_factory=list)
    scalar: tuple[int, float] | None = None
    string: tuple[int, str] | None = None
    warnings: list[str] = field(default_factory=list)
