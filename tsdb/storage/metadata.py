"""Metric metadata (type, help, unit per metric family), as remote write delivers it.

Prometheus sends every target's metadata about once a minute (``MetricMetadata`` in a 1.0
``WriteRequest``; per-series ``Metadata`` in 2.0), so losing the newest changes in a crash
costs little: the store keeps everything in memory and rewrites one small JSON file now and
then (and on close), atomically. A family may carry several distinct entries (two targets
may disagree on the help text); the most recently seen ones are kept.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: ``prometheus.MetricMetadata.MetricType`` (and remote write 2.0's ``METRIC_TYPE_*``) by
#: enum number, spelled as the HTTP API spells them
METRIC_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary",
                "info", "stateset")

Entry = tuple[str, str, str]  # (type, help, unit)


def metric_type_name(value: int | str) -> str:
    """The API's type name of a protobuf enum number (or of a name already)."""
    if isinstance(value, str):
        return value if value in METRIC_TYPES else "unknown"
    return METRIC_TYPES[value] if 0 <= value < len(METRIC_TYPES) else "unknown"


class MetadataStore:
    def __init__(self, path: str | os.PathLike | None, *, max_per_metric: int = 8,
                 save_interval_s: float = 60.0) -> None:
        self.path = Path(path) if path is not None else None
        self.max_per_metric = max_per_metric
        self.save_interval_s = save_interval_s
        self._lock = threading.Lock()
        # family -> entry -> last time seen (insertion order: oldest first)
        self._families: dict[str, dict[Entry, float]] = {}
        self._dirty = False
        self._saved_at = time.monotonic()
        self._load()

    def __len__(self) -> int:
        return len(self._families)

    def update(self, entries: Iterable[tuple[str, int | str, str, str]]) -> None:
        """Record ``(metric family name, type, help, unit)`` tuples (``type`` as the protobuf
        enum number or the API's name); saves the file when it is due."""
        now = time.time()
        with self._lock:
            for family, mtype, help_text, unit in entries:
                if not family:
                    continue
                known = self._families.setdefault(family, {})
                entry = (metric_type_name(mtype), help_text, unit)
                if entry in known:
                    del known[entry]  # move to the newest end
                elif len(known) >= self.max_per_metric:
                    del known[next(iter(known))]
                known[entry] = now
                self._dirty = True
        if self._dirty and time.monotonic() - self._saved_at >= self.save_interval_s:
            self.save()

    def query(self, metric: str | None = None, limit: int = -1,
              limit_per_metric: int = -1) -> dict[str, list[dict[str, str]]]:
        """What ``/api/v1/metadata`` answers: families sorted by name, newest entry first.
        ``limit < 0`` means all families (0 gives none, as in Prometheus); ``limit_per_metric
        <= 0`` means all entries."""
        with self._lock:
            names = [metric] if metric else sorted(self._families)
            out: dict[str, list[dict[str, str]]] = {}
            for name in names:
                if 0 <= limit <= len(out):
                    break
                known = self._families.get(name)
                if not known:
                    continue
                entries = list(reversed(known))
                if limit_per_metric > 0:
                    entries = entries[:limit_per_metric]
                out[name] = [{"type": t, "help": h, "unit": u} for t, h, u in entries]
            return out

    def save(self) -> None:
        """Write the file now if anything changed (atomically; no fsync, see module doc)."""
        with self._lock:
            self._saved_at = time.monotonic()
            if self.path is None or not self._dirty:
                return
            doc = {"version": 1, "metrics": {
                name: [[*entry, seen] for entry, seen in known.items()]
                for name, known in self._families.items()}}
            self._dirty = False
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot save metric metadata to %s: %s", self.path, exc)
            with self._lock:
                self._dirty = True

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text())
            for name, rows in doc["metrics"].items():
                self._families[name] = {(str(t), str(h), str(u)): float(seen)
                                        for t, h, u, seen in rows}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("ignoring unreadable metric metadata file %s: %s", self.path, exc)
            self._families.clear()
