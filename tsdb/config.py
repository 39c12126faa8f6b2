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
    carbon_listen: 0.0.0.0:2003         # carbon plaintext, TCP and UDP; "" = off
    carbon_pickle_listen: 0.0.0.0:2004  # carbon pickle, TCP; "" = off
    carbon_workers: auto      # processes parsing carbon payloads; 0 = in the event loop
    graphite_resolutions:     # Graphite read step per series, like carbon's storage-schemas:
      - {pattern: '^collectd\\.', resolution: 60s}   # first regex found in the name wins
    graphite_default_resolution: 10s  # when no rule matches
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)  # the write path reads its limits on every request
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
    carbon_listen: str | None = "0.0.0.0:2003"
    carbon_pickle_listen: str | None = "0.0.0.0:2004"
    #: "auto" = one per core, at most 4 (0 on one core)
    carbon_workers: int | str = "auto"
    #: ({"pattern": regex, "resolution": duration}, ...): the step Graphite reads use for a
    #: series, first regex that ``re.search``-es its name wins (storage-schemas.conf)
    graphite_resolutions: tuple | list = ()
    graphite_default_resolution: str = "10s"

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
    def carbon_listen_address(self) -> tuple[str, int] | None:
        return parse_listen(self.carbon_listen) if self.carbon_listen else None

    @property
    def carbon_pickle_listen_address(self) -> tuple[str, int] | None:
        return parse_listen(self.carbon_pickle_listen) if self.carbon_pickle_listen else None

    @property
    def carbon_worker_count(self) -> int:
        cores = os.cpu_count() or 1
        return _worker_count("carbon_workers", self.carbon_workers,
                             0 if cores == 1 else min(4, cores))

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

    @property
    def graphite_resolution_rules(self) -> list[tuple[str, int]]:
        """``graphite_resolutions`` as (regex, step seconds) pairs, checked."""
        rules = []
        for rule in self.graphite_resolutions or ():
            if not isinstance(rule, dict) or set(rule) != {"pattern", "resolution"}:
                raise ValueError(f"graphite_resolutions: each rule is {{pattern: REGEX, "
                                 f"resolution: DURATION}}, got {rule!r}")
            try:
                re.compile(str(rule["pattern"]))
            except re.error as exc:
                raise ValueError(f"graphite_resolutions: bad pattern {rule['pattern']!r}: "
                                 f"{exc}") from None
            rules.append((str(rule["pattern"]), _whole_seconds(str(rule["resolution"]))))
        return rules

    @property
    def graphite_default_step_s(self) -> int:
        return _whole_seconds(self.graphite_default_resolution)

    def validate(self) -> ServerConfig:
        self.database_options()
        try:
            _ = (self.listen_address, self.head_memory_limit_bytes, self.max_request_size,
                 self.flush_interval_s, self.query_timeout_s, self.lookback_delta_ms,
                 self.decode_worker_count, self.carbon_listen_address,
                 self.carbon_pickle_listen_address, self.carbon_worker_count,
                 self.graphite_resolution_rules, self.graphite_default_step_s)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.query_timeout_s <= 0 or self.lookback_delta_ms <= 0:
            raise ConfigError("query_timeout and lookback_delta must be positive")
        if not isinstance(self.query_max_samples, int) or self.query_max_samples <= 0:
            raise ConfigError(f"query_max_samples must be a positive integer, "
                              f"got {self.query_max_samples!r}")
        return self


def _whole_seconds(text: str) -> int:
    """A Graphite step: ``10s``, ``1m``... or a bare number of seconds (as carbon writes)."""
    ms = int(text) * 1000 if text.strip().isdigit() else parse_duration_ms(text)
    if ms <= 0 or ms % 1000:
        raise ValueError(f"a Graphite resolution must be a positive whole number of seconds, "
                         f"got {text!r}")
    return ms // 1000


def _worker_count(name: str, setting: int | str, auto: int) -> int:
    if setting == "auto":
        return auto
    try:
        count = int(setting)
    except ValueError:
        raise ValueError(f"{name} must be 'auto' or a number of processes, "
                         f"got {setting!r}") from None
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return count


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
        verbatim = ("shards", "fsync", "query_max_samples", "decode_workers",
                    "carbon_workers", "carbon_listen", "carbon_pickle_listen")
        config = replace(config, **{k: (str(v) if isinstance(v, int | float) and
                                        k not in verbatim else v)
                                    for k, v in doc.items()})
    if overrides:
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return config.validate()
