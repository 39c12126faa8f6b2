"""What the HTTP handlers share: config, the engine (once open), metrics, series cache."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tsdb.api.decode_workers import DecodePool
from tsdb.api.metrics import Metrics
from tsdb.api.series_resolver import SeriesResolver
from tsdb.config import ServerConfig
from tsdb.storage.database import Database
from tsdb.storage.metadata import MetadataStore


@dataclass
class ServerState:
    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    db: Database | None = None
    resolver: SeriesResolver | None = None
    #: worker processes decoding remote-write bodies (None: decode in the event loop)
    decoders: DecodePool | None = None
    #: metric metadata from remote write (``/api/v1/metadata``)
    metadata: MetadataStore | None = None
    #: the carbon listeners (``tsdb.api.carbon``), once started
    carbon: Any = None
    #: the PromQL engine, created on the first query (``tsdb.api.query_api``)
    engine: Any = None
    #: the Graphite renderer, created on the first Graphite request (``graphite_api``)
    graphite: Any = None
    started_at: float = field(default_factory=time.time)

    def attach(self, db: Database) -> None:
        """The engine is open (commit log replayed): the server becomes ready."""
        self.resolver = SeriesResolver(db)
        self.metadata = MetadataStore(db.directory / "metadata.json")
        self.metrics.db = db
        self.db = db

    @property
    def ready(self) -> bool:
        return self.db is not None


#: where the application keeps its ServerState
STATE = web.AppKey("state", ServerState)
