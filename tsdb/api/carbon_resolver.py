"""Maps Graphite series names, as carbon senders write them, to series ids.

The key is the name's bytes as sent (``a.b.c``, ``disk.used;rack=a1;dc=eu``, ...), so a known
series costs one dict lookup. Only a name seen for the first time is parsed: carbon's tag
rules and canonical order (:func:`wire.graphite_names.parse_sent_name`), then the
``__g<i>__`` labels of its path plus its tags; two spellings of one series (tags in another
order) get the same id. Names that break the rules are remembered too, with the reason,
so that a sender repeating a bad name costs a lookup, not a parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

import numpy as np

from tsdb.storage.database import Database
from tsdb.storage.labels import InvalidLabels, labels_key, validate_labels
from wire.graphite_names import InvalidName, parse_sent_name, path_labels

_MAX_CACHED = 4_000_000  # names; beyond this the cache restarts (the engine keeps the truth)
_MAX_INVALID = 10_000  # bad names remembered


def labels_of_name(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The label set a carbon series name is stored as; InvalidName/InvalidLabels if bad."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidName(f"series name {raw[:200]!r} is not UTF-8") from None
    path, tags = parse_sent_name(text)
    return validate_labels(path_labels(path, tags))


class CarbonResolver:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sid_of: dict[bytes, int] = {}
        self._invalid: dict[bytes, str] = {}

    def lookup(self, keys: Sequence[bytes]) -> np.ndarray:
        """Series id per name already met, -1 for the others."""
        return np.fromiter(map(self._sid_of.get, keys, repeat(-1)), dtype=np.int64,
                           count=len(keys))

    def resolve(self, keys: Sequence[bytes]) -> tuple[np.ndarray, list[tuple[bytes, int]],
                                                      dict[bytes, str]]:
        """Series id per name (-1 where the name is invalid), the (name, id) pairs created or
        first met now (for the parsing workers' caches), and the invalid names with why."""
        sids = self.lookup(keys)
        missing = np.flatnonzero(sids < 0)
        if len(missing) == 0:
            return sids, [], {}
        new_raw: list[bytes] = []
        canonical: list[bytes] = []
        invalid: dict[bytes, str] = {}
        for raw in dict.fromkeys(keys[i] for i in missing.tolist()):
            problem = self._invalid.get(raw)
            if problem is None:
                try:
                    new_raw.append(raw)
                    canonical.append(labels_key(labels_of_name(raw)))
                    continue
                except (InvalidName, InvalidLabels) as exc:
                    new_raw.pop()
                    problem = str(exc)
                    if len(self._invalid) >= _MAX_INVALID:
                        self._invalid.clear()
                    self._invalid[raw] = problem
            invalid[raw] = problem
        learned: list[tuple[bytes, int]] = []
        if new_raw:
            created = self.db.series_ids_for_keys(canonical).tolist()
            if len(self._sid_of) + len(new_raw) > _MAX_CACHED:
                self._sid_of.clear()
            learned = list(zip(new_raw, created, strict=True))
            self._sid_of.update(learned)
        get = self._sid_of.get
        sids[missing] = [get(keys[i], -1) for i in missing.tolist()]
        return sids, learned, invalid
