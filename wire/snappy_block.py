"""Snappy block format (not framed) with a size limit checked before decompressing.

Remote write/read bodies are one snappy *block*: a little-endian base-128 varint holding
the uncompressed length, then literal/copy elements. The declared length is read first so
that an oversized body is refused without allocating it.
"""

from __future__ import annotations

import snappy

from wire.errors import BodyTooLarge, WireError
from wire.varint import decode_uvarint

# Every framed snappy stream starts with this stream-identifier chunk ("sNaPpY").
FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"
DEFAULT_MAX_DECODED = 32 << 20  # client_golang's remote API limit


def declared_length(body: bytes) -> int:
    """The uncompressed length a snappy block announces in its header varint."""
    if body.startswith(FRAMED_MAGIC):
        raise WireError("snappy framed stream; remote write/read bodies use the block format")
    try:
        length, _ = decode_uvarint(body, 0, max_bytes=5)
    except WireError as exc:
        raise WireError(f"bad snappy block header: {exc}") from None
    if length >= 1 << 32:
        raise WireError("bad snappy block header: length does not fit in 32 bits")
    return length


def decompress_block(body: bytes, max_decoded: int = DEFAULT_MAX_DECODED) -> bytes:
    """Decompress one snappy block; BodyTooLarge if it declares more than ``max_decoded``."""
    length = declared_length(body)
    if length > max_decoded:
        raise BodyTooLarge(length, max_decoded, "declared decoded size")
    try:
        out = snappy.uncompress(body)
    except (snappy.UncompressError, ValueError) as exc:
        detail = str(exc) or str(exc.__cause__ or "") or "corrupt data"
        raise WireError(f"undecodable snappy block: {detail}") from None
    if len(out) != length:
        raise WireError(f"snappy block decoded to {len(out)} bytes, header said {length}")
    return out


def compress_block(data: bytes) -> bytes:
    """Compress ``data`` as one snappy block."""
    return snappy.compress(data)
