"""Maps the raw label bytes of remote-write series to series ids.

Prometheus sends the full label set with every sample, as the same bytes each time. Keeping
those bytes as the identity key means a known series costs one dict lookup and no parsing;
labels are parsed, validated and canonicalised only the first time a key is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

import numpy as np

from tsdb.storage.database import Database
from tsdb.storage.labels import InvalidLabels, labels_key, validate_sent_labels
from wire.errors import WireError
from wire.remote_write import parse_label_bytes

_MAX_CACHED = 4_000_000  # keys; beyond this the cache restarts (the engine keeps the truth)


class SeriesResolver:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sid_of: dict[bytes, int] = {}

    def lookup(self, keys: Sequence[bytes]) -> np.ndarray:
        """Series id per key already met, -1 for the others (the decoder's ``key_ids``)."""
        return np.fromiter(map(self._sid_of.get, keys, repeat(-1)), dtype=np.int64,
                           count=len(keys))

    def resolve(self, keys: Sequence[bytes],
                known: np.ndarray | None = None) -> tuple[np.ndarray, str | None]:
        """Series id per key (-1 where the labels are invalid) and the first problem found,
        for the error message. ``known`` is a :meth:`lookup` answer already at hand."""
        sids = self.lookup(keys) if known is None else known.copy()
        missing = np.flatnonzero(sids < 0)
        if len(missing) == 0:
            return sids, None
        return self._create(keys, sids, missing)

    def _create(self, keys: Sequence[bytes], sids: np.ndarray,
                missing: np.ndarray) -> tuple[np.ndarray, str | None]:
        first_problem = None
        new_raw: list[bytes] = []
        canonical: list[bytes] = []
        seen: set[bytes] = set()
        for i in missing.tolist():
            raw = keys[i]
            if raw in seen:
                continue
            seen.add(raw)
            try:
                labels = validate_sent_labels(parse_label_bytes(raw))
            except (InvalidLabels, WireError) as exc:
                first_problem = first_problem or str(exc)
                continue
            new_raw.append(raw)
            canonical.append(labels_key(labels))
        if new_raw:
            created = self.db.series_ids_for_keys(canonical)
            if len(self._sid_of) + len(new_raw) > _MAX_CACHED:
                self._sid_of.clear()
            self._sid_of.update(zip(new_raw, created.tolist(), strict=True))
        get = self._sid_of.get
        sids[missing] = [get(keys[i], -1) for i in missing.tolist()]
        return sids, first_problem

