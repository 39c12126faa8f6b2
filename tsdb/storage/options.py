"""Database and namespace settings with sane embedded defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
             "w": 604_800_000, "y": 31_536_000_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration_ms(text: str | int) -> int:
    """'15d', '2h30m', '500ms' or a bare number of milliseconds ('0' = zero)."""
    if isinstance(text, int):
        return text
    s = text.strip()
    if s.isdigit():
        return int(s)
    pos, total = 0, 0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"invalid duration {text!r}: use e.g. 15d, 2h, 90m, 30s or 0")
    return total


@dataclass(frozen=True)
class NamespaceOptions:
    name: str = "default"
    #: 0 keeps data forever
    retention_ms: int = 15 * 86_400_000
    block_ms: int = 2 * 3_600_000
    #: a window is sealed once the newest sample is this far past its end
    buffer_past_ms: int = 3_600_000
    #: samples further in the future than this (wall clock) are rejected
    future_limit_ms: int = 3_600_000

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", self.name):
            raise ValueError(f"namespace name {self.name!r}: use letters, digits, _ and -")
        if self.block_ms <= 0 or 86_400_000 % self.block_ms and self.block_ms % 86_400_000:
            raise ValueError(f"namespace {self.name}: block size must divide a day or be "
                             f"a multiple of one, got {self.block_ms} ms")
        if self.retention_ms < 0:
            raise ValueError(f"namespace {self.name}: retention must be >= 0")


@dataclass(frozen=True)
class DatabaseOptions:
    #: virtual shards: a power of two, fixed when the data directory is created
    shards: int = 64
    #: group commit: how long the syncer waits to gather more writes before an fsync
    commitlog_sync_interval_s: float = 0.0
    commitlog_segment_bytes: int = 128 << 20
    #: tests and benchmarks may turn fsync off; durability claims then do not hold
    fsync: bool = True
    namespaces: tuple[NamespaceOptions, ...] = field(
        default_factory=lambda: (NamespaceOptions(),))

    def __post_init__(self) -> None:
        if self.shards <= 0 or self.shards & (self.shards - 1):
            raise ValueError(f"shards must be a power of two, got {self.shards}")
        names = [ns.name for ns in self.namespaces]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"namespaces must be non-empty and unique: {names}")
