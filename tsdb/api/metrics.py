"""The store's own metrics, exposed at /metrics with prometheus-client.

Hot-path counters are plain prometheus-client counters; engine state (series, head size,
commit-log fsyncs) is read by a collector at scrape time so writes pay nothing for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from tsdb.storage.database import Database

_LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.samples_ingested = Counter(
            "tsdb_samples_ingested", "Samples written durably, by protocol.",
            ["protocol"], registry=self.registry)
        self.samples_rejected = Counter(
            "tsdb_samples_rejected", "Samples refused, by reason.",
            ["reason"], registry=self.registry)
        self.unsupported = Counter(
            "tsdb_remote_write_unsupported", "Remote-write items received but not stored "
            "(native histograms, exemplars, metadata), by kind.", ["kind"],
            registry=self.registry)
        self.carbon_rejected = Counter(
            "tsdb_carbon_lines_rejected", "Carbon plaintext lines and pickle items (or whole "
            "pickle messages) refused, by reason.", ["reason"], registry=self.registry)
        self.carbon_connections = Counter(
            "tsdb_carbon_connections", "Carbon connections accepted, by listener.",
            ["listener"], registry=self.registry)
        self.request_seconds = Histogram(
            "tsdb_http_request_duration_seconds", "HTTP request latency by handler and code.",
            ["handler", "code"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.db: Database | None = None
        self.registry.register(_EngineCollector(self))
        self._latency_children: dict[tuple[str, int], Histogram] = {}

    def request_latency(self, handler: str, code: int) -> Histogram:
        """The latency histogram child for (handler, code), looked up once per pair."""
        key = (handler, code)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.request_seconds.labels(handler, str(code))
        return child


class _EngineCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator:
        db = self.metrics.db
        if db is None:
            return
        ns = db.default_namespace
        now_ms = int(time.time() * 1000)
        yield GaugeMetricFamily("tsdb_series", "Series known to the store.",
                                value=db.series_count)
        yield GaugeMetricFamily("tsdb_active_series",
                                "Series with a sample in the last hour.",
                                value=db.active_series(now_ms - 3_600_000))
        yield GaugeMetricFamily("tsdb_head_samples", "Samples not yet in block files.",
                                value=sum(len(n.head) for n in db.namespaces.values()))
        yield GaugeMetricFamily("tsdb_head_bytes", "Memory held by head samples.",
                                value=db.head_bytes())
        yield GaugeMetricFamily("tsdb_blocks", "Block files of the default namespace.",
                                value=len(ns.block_windows()))
        yield GaugeMetricFamily("tsdb_block_bytes", "Bytes in block files.",
                                value=db.disk_bytes())
        stats = db.commitlog.stats()
        fsync = SummaryMetricFamily("tsdb_commitlog_fsync_seconds",
                                    "Group-commit fsync latency.",
                                    count_value=stats.get("fsyncs", 0),
                                    sum_value=stats.get("fsync_seconds_total", 0.0))
        yield fsync
        yield GaugeMetricFamily("tsdb_commitlog_fsync_seconds_max",
                                "Slowest group-commit fsync since start.",
                                value=stats.get("fsync_seconds_max", 0.0))
        yield CounterMetricFamily("tsdb_commitlog_bytes", "Bytes appended to the commit log.",
                                  value=stats.get("bytes_appended", 0))
        engine = db.stats
        for key in ("flushes", "flushed_blocks", "expired_blocks", "replayed_samples"):
            yield CounterMetricFamily(f"tsdb_{key}", f"Engine counter {key}.",
                                      value=engine[key])
