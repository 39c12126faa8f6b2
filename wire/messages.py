"""Protobuf helpers shared by the remote-write and remote-read codecs."""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError, Message

from wire.errors import WireError
from wire.pbdiag import explain
from wire.varint import encode_uvarint

U64 = np.uint64


def parse_message(cls: type[Message], data: bytes, what: str, path: str = "") -> Message:
    """``cls.FromString(data)``; on failure a WireError naming ``what`` and the field at fault
    (byte offsets are relative to ``path`` when given)."""
    try:
        return cls.FromString(data)
    except DecodeError:
        why = explain(data, cls.DESCRIPTOR, path) or "malformed protobuf"
        where = f" (byte offsets within {path})" if path else ""
        raise WireError(f"invalid {what}: {why}{where}") from None


def label_record(name: str, value: str) -> tuple[bytes, int]:
    """A ``Label`` record as protobuf writes it (tag 0x0a, length, then name (field 1) and
    value (field 2), each left out when empty) and the size of the Label message inside."""
    n, v = name.encode("utf-8"), value.encode("utf-8")
    inner = b"".join([b"\x0a" + encode_uvarint(len(n)) + n if n else b"",
                      b"\x12" + encode_uvarint(len(v)) + v if v else b""])
    return b"\x0a" + encode_uvarint(len(inner)) + inner, len(inner)


def join7(x: np.ndarray) -> np.ndarray:
    """The values of varints of up to 8 bytes held in little-endian words with continuation
    bits and bytes past the end cleared: the 7-bit groups joined, three shift steps."""
    x = (x & U64(0x007F_007F_007F_007F)) | ((x & U64(0x7F00_7F00_7F00_7F00)) >> U64(1))
    x = (x & U64(0x0000_3FFF_0000_3FFF)) | ((x & U64(0x3FFF_0000_3FFF_0000)) >> U64(2))
    return (x & U64(0x0FFF_FFFF)) | ((x & U64(0x0FFF_FFFF_0000_0000)) >> U64(4))
