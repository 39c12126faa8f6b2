"""Errors raised by the wire decoders."""

from __future__ import annotations


class WireError(ValueError):
    """Undecodable input: bad snappy, bad protobuf, bad framing. Maps to HTTP 400."""


class BodyTooLarge(WireError):
    """A body (or its declared decoded size) exceeds the configured limit.

    Prometheus' own receiver answers 413 for an oversized body and 400 for an oversized
    declared decoded size; the handler chooses, hence the separate class.
    """

    def __init__(self, size: int, limit: int, what: str = "decoded body") -> None:
        super().__init__(f"{what} of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.what = what
