"""Immutable block files: a JSON header plus named numpy sections, read zero-copy.

Layout (all integers little-endian; see docs/format/block.md)::

    magic      8 bytes  b"TSDBBLK1"
    hdr_len    u32      length of the JSON header in bytes
    hdr_crc    u32      CRC32C of the JSON header
    header     hdr_len bytes of UTF-8 JSON, zero padded to a multiple of 8
    sections   each at an 8-byte aligned offset given in the header

Files are written to a temporary name, fsynced, renamed into place and the directory fsynced,
so a reader sees either no file or a whole one.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any

import crc32c
import lz4.block
import numpy as np

from tsdb.storage.fsutil import fsync_dir

MAGIC = b"TSDBBLK1"
_PREFIX = struct.Struct("<8sII")
# sections holding bit streams are dense already; metadata columns often shrink with lz4
_LZ4_MIN_GAIN = 0.9


class CorruptBlock(Exception):
    """A block file failed its checks; the message names the file and the problem."""


def _align8(n: int) -> int:
    return (n + 7) & ~7


def write_block(path: str | os.PathLike, meta: dict[str, Any],
                sections: dict[str, np.ndarray], *, fsync: bool = True) -> int:
    """Write a block file atomically; returns its size in bytes."""
    path = Path(path)
    entries = []
    payloads = []
    for name, array in sections.items():
        array = np.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        raw = array.tobytes()
        data, codec = raw, "raw"
        if not name.endswith("_words") and len(raw) > 64:
            packed = lz4.block.compress(raw, store_size=False)
            if len(packed) < _LZ4_MIN_GAIN * len(raw):
                data, codec = packed, "lz4"
        entries.append({
            "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
            "codec": codec, "length": len(data), "raw_length": len(raw),
            "crc32c": crc32c.crc32c(data),
        })
        payloads.append(data)
    # offsets depend on the header length, which depends on the offsets' digits: fix point
    offset_guess = 0
    while True:
        pos = _align8(_PREFIX.size + offset_guess)
        for entry, data in zip(entries, payloads, strict=True):
            entry["offset"] = pos
            pos = _align8(pos + len(data))
        header = json.dumps({"version": 1, "meta": meta, "sections": entries},
                            separators=(",", ":")).encode()
        if len(header) == offset_guess:
            break
        offset_guess = len(header)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(_PREFIX.pack(MAGIC, len(header), crc32c.crc32c(header)))
        f.write(header)
        written = _PREFIX.size + len(header)
        for entry, data in zip(entries, payloads, strict=True):
            f.write(b"\0" * (entry["offset"] - written))
            f.write(data)
            written = entry["offset"] + len(data)
        f.write(b"\0" * (_align8(written) - written))
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
    return _align8(written)


class BlockFile:
    """An open block file: ``meta`` and ``sections`` (zero-copy views of the mapping)."""

    def __init__(self, path: str | os.PathLike, *, verify: bool = True) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _PREFIX.size:
                raise CorruptBlock(f"{self.path}: {size} bytes is too short for a block file")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        magic, hdr_len, hdr_crc = _PREFIX.unpack_from(self._map, 0)
        if magic != MAGIC:
            raise CorruptBlock(f"{self.path}: bad magic {magic!r}")
        header = bytes(self._map[_PREFIX.size:_PREFIX.size + hdr_len])
        if len(header) != hdr_len or crc32c.crc32c(header) != hdr_crc:
            raise CorruptBlock(f"{self.path}: header checksum mismatch")
        doc = json.loads(header)
        self.meta: dict[str, Any] = doc["meta"]
        self.size = size
        self.sections: dict[str, np.ndarray] = {}
        buf = memoryview(self._map)
        for entry in doc["sections"]:
            start, length = entry["offset"], entry["length"]
            if start + length > size:
                raise CorruptBlock(f"{self.path}: section {entry['name']} runs past the end")
            data = buf[start:start + length]
            if verify and crc32c.crc32c(data) != entry["crc32c"]:
                raise CorruptBlock(f"{self.path}: section {entry['name']} checksum mismatch")
            if entry["codec"] == "lz4":
                data = lz4.block.decompress(data, uncompressed_size=entry["raw_length"])
            array = np.frombuffer(data, dtype=np.dtype(entry["dtype"]))
            self.sections[entry["name"]] = array.reshape(entry["shape"])

    def close(self) -> None:
        """Drop the mapping (views handed out keep it alive until they are gone)."""
        self.sections = {}
        try:
            self._map.close()
        except BufferError:
            pass  # still referenced by arrays somebody holds; freed with them
