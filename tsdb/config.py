"""Server settings: embedded defaults, an optional YAML file, then command-line flags.

Example file (every key optional)::

    data_dir: /var/lib/tsdb
    listen: 0.0.0.0:9201
    retention: 30d            # 0 keeps data forever
    shards: 64                # fixed when the data directory is created
    block_size: 2h
    commitlog_sync_interval: 0s
    head_memory_limit: 4GiB   # above this remote write answers 429
    max_request_bytes: 32MiB  # compressed body and declared decoded size
    query_timeout: 2m         # PromQL queries (Prometheus' --query.timeout)
    query_max_samples: 50000000  # samples one query may hold (--query.max-samples)
    lookback_delta: 5m        # how far back an instant selector looks (--query.lookback-delta)
    decode_workers: auto      # processes decoding remote-write bodies; 0 = in the event loop
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from tsdb.storage.options import DatabaseOptions, NamespaceOptions, parse_duration_ms

_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
               "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


class ConfigError(ValueError):
    pass


def parse_size(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"invalid size {text!r}: use e.g. 512MiB, 4GiB or a byte count")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"invalid listen address {text!r}: use HOST:PORT, e.g. 0.0.0.0:9201")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class ServerConfig:
    data_dir: str = "./data"
    listen: str = "0.0.0.0:9201"
    retention: str = "15d"
    shards: int = 64
    block_size: str = "2h"
    commitlog_sync_interval: str = "0s"
    head_memory_limit: str = "4GiB"
    max_request_bytes: str = "32MiB"
    flush_interval: str = "10s"
    fsync: bool = True
    query_timeout: str = "2m"
    query_max_samples: int = 50_000_000
    lookback_delta: str = "5m"
    #: "auto" = one per core beyond the first, at most 4 (0 on one core)
    decode_workers: int | str = "auto"

    def database_options(self) -> DatabaseOptions:
        try:
            ns = NamespaceOptions(retention_ms=parse_duration_ms(self.retention),
                                  block_ms=parse_duration_ms(self.block_size))
            return DatabaseOptions(
                shards=self.shards, fsync=self.fsync, namespaces=(ns,),
                commitlog_sync_interval_s=parse_duration_ms(self.commitlog_sync_interval) / 1e3)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def head_memory_limit_bytes(self) -> int:
        return parse_size(self.head_memory_limit)

    @property
    def max_request_size(self) -> int:
        return parse_size(self.max_request_bytes)

    @property
    def flush_interval_s(self) -> float:
        return parse_duration_ms(self.flush_interval) / 1e3

    @property
    def query_timeout_s(self) -> float:
        return parse_duration_ms(self.query_timeout) / 1e3

    @property
    def lookback_delta_ms(self) -> int:
        return parse_duration_ms(self.lookback_delta)

    @property
    def decode_worker_count(self) -> int:
        if self.decode_workers == "auto":
            return max(0, min(4, (os.cpu_count() or 1) - 1))
        try:
            count = int(self.decode_workers)
        except ValueError:
            raise ValueError(f"decode_workers must be 'auto' or a number of processes, "
                             f"got {self.decode_workers!r}") from None
        if count < 0:
            raise ValueError(f"decode_workers must not be negative, got {count}")
        return count

    def validate(self) -> ServerConfig:
        self.database_options()
        try:
            _ = (self.listen_address, self.head_memory_limit_bytes, self.max_request_size,
                 self.flush_interval_s, self.query_timeout_s, self.lookback_delta_ms,
                 self.decode_worker_count)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.query_timeout_s <= 0 or self.lookback_delta_ms <= 0:
            raise ConfigError("query_timeout and lookback_delta must be positive")
        if not isinstance(self.query_max_samples, int) or self.query_max_samples <= 0:
            raise ConfigError(f"query_max_samples must be a positive integer, "
                              f"got {self.query_max_samples!r}")
        return self


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    """Defaults, then the YAML file (if any), then non-None ``overrides`` (flags)."""
    config = ServerConfig()
    known = {f.name for f in fields(ServerConfig)}
    if path:
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"config file {path}: expected a mapping of settings")
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"config file {path}: unknown settings {unknown}; "
                              f"known: {sorted(known)}")
        verbatim = ("shards", "fsync", "query_max_samples", "decode_workers")
        config = replace(config, **{k: (str(v) if isinstance(v, int | float) and
                                        k not in verbatim else v)
                                    for k, v in doc.items()})
    if overrides:
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return config.validate()
