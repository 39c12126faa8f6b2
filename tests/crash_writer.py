"""Writer process for test_crash.py: writes deterministic batches with fsync on and prints
the number of every batch once ``write`` returned (i.e. the batch is acknowledged)."""

from __future__ import annotations

import sys

import numpy as np

from tsdb.storage.database import Database
from tsdb.storage.options import DatabaseOptions, NamespaceOptions

T0 = 1_700_000_000_000
STEP = 15_000
SERIES = 50


def batch(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sids = np.arange(SERIES)
    return sids, np.full(SERIES, T0 + i * STEP), i + sids / 1000.0


def options() -> DatabaseOptions:
    ns = NamespaceOptions(retention_ms=0, block_ms=60_000, buffer_past_ms=0)
    return DatabaseOptions(shards=4, namespaces=(ns,), commitlog_segment_bytes=64 << 10)


def main() -> None:
    path, first = sys.argv[1], int(sys.argv[2])
    db = Database(path, options())
    sids = db.series_ids([(("__name__", "m"), ("i", str(k))) for k in range(SERIES)])
    assert sids.tolist() == list(range(SERIES))
    i = first
    while True:
        db.write(*batch(i))
        print(i, flush=True)
        if i % 7 == 0:
            db.flush()
        i += 1


if __name__ == "__main__":
    main()
