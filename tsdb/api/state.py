"""What the HTTP handlers share: config, the engine (once open), metrics, series cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tsdb.api.decode_workers import DecodePool
from tsdb.api.metrics import Metrics
from tsdb.api.series_resolver import SeriesResolver
from tsdb.config import ServerConfig
from tsdb.storage.database import Database


@dataclass
class ServerState:
    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    db: Database | None = None
    resolver: SeriesResolver | None = None
    #: worker processes decoding remote-write bodies (None: decode in the event loop)
    decoders: DecodePool | None = None

    def attach(self, db: Database) -> None:
        """The engine is open (commit log replayed): the server becomes ready."""
        self.resolver = SeriesResolver(db)
        self.metrics.db = db
        self.db = db

    @property
    def ready(self) -> bool:
        return self.db is not None


#: where the application keeps its ServerState
STATE = web.AppKey("state", ServerState)
