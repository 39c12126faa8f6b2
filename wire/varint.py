"""Protobuf base-128 varints (LEB128), scalar helpers for slow paths and tests."""

from __future__ import annotations

from wire.errors import WireError


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative integer < 2**64 as an unsigned varint."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | memoryview, pos: int = 0, max_bytes: int = 10) -> tuple[int, int]:
    """Read an unsigned varint at ``pos``; return ``(value, next_pos)``.

    Raises WireError when the varint is truncated or longer than ``max_bytes`` bytes
    (10 for 64-bit protobuf varints, 5 for the 32-bit snappy length).
    """
    start = pos
    result = 0
    for shift in range(0, 7 * max_bytes, 7):
        if pos >= len(data):
            raise WireError(f"truncated varint at byte {start}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
    raise WireError(f"varint longer than {max_bytes} bytes at byte {start}")
