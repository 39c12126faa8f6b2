"""The node's durable list of series: sid -> canonical label key, in ``series.reg``.

Byte layout: docs/format/series.md. A 16-byte header (magic, version, CRC32C) is followed
by frames, one per ``append`` call (big calls are split)::

    u32 payload length | u32 CRC32C(payload) | payload:
        u32 count | u32 sid[count] | the count keys joined by the byte 0xfe

0xfe never occurs in a canonical key (keys are UTF-8 plus 0xff separators), so one
``bytes.split`` recovers every key of a frame: loading a million series costs a few numpy
calls per frame instead of a Python loop with a CRC call per record.

Frames are only ever appended. A crash can leave a torn or corrupt tail; ``load`` keeps every
frame before the first bad one, truncates the file there and logs a warning instead of
raising. When the cut looks like damage in the middle of the file rather than an interrupted
append, the cut bytes are first copied to ``series.reg.broken-<offset>``.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
from crc32c import crc32c

from tsdb.storage.fsutil import fsync_dir

__all__ = ["SeriesRegistry", "FILE_NAME", "MAGIC", "VERSION", "encode_frames", "decode_frames"]

log = logging.getLogger(__name__)

FILE_NAME = "series.reg"
MAGIC = b"TSDBSREG"
VERSION = 1
_HEAD = struct.Struct("<8sI")  # magic, version; followed by u32 CRC32C of these 12 bytes
HEADER_SIZE = _HEAD.size + 4
_FRAME = struct.Struct("<III")  # payload length, CRC32C(payload), count (first payload field)
_U32 = struct.Struct("<I")
FRAME_HEADER = 8
KEY_SEP = b"\xfe"
MAX_SID = 0xFFFF_FFFF
MAX_KEY = 1 << 20  # bytes in one canonical key
FRAME_RECORDS = 1 << 16  # a writer puts at most this many series in one frame...
FRAME_BYTES = 8 << 20  # ...and starts a new frame beyond this many payload bytes
MAX_PAYLOAD = FRAME_BYTES + MAX_KEY + 16  # a longer length field is corrupt


def _header() -> bytes:
    head = _HEAD.pack(MAGIC, VERSION)
    return head + _U32.pack(crc32c(head))


def encode_frames(sids: Sequence[int] | np.ndarray, keys: Sequence[bytes]) -> bytes:
    """Frames holding ``(sid, key)`` pairs; ``ValueError`` for an id or key that cannot be
    stored (id beyond 32 bits, key longer than ``MAX_KEY`` or containing 0xfe)."""
    sid_arr = np.asarray(sids, dtype=np.int64).reshape(-1)
    n = len(sid_arr)
    if n != len(keys):
        raise ValueError("sids and keys must have the same length")
    if n == 0:
        return b""
    if int(sid_arr.min()) < 0 or int(sid_arr.max()) > MAX_SID:
        raise ValueError("series ids must fit in 32 bits")
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    if int(lengths.max()) > MAX_KEY:
        raise ValueError(f"a label key is longer than {MAX_KEY} bytes")
    ends = np.cumsum(lengths + 5)  # payload bytes used up to each record (sid + key + sep)
    out: list[bytes] = []
    start = 0
    while start < n:
        stop = min(n, start + FRAME_RECORDS)
        limit = (ends[start - 1] if start else 0) + FRAME_BYTES
        stop = max(start + 1, min(stop, int(np.searchsorted(ends, limit, side="right"))))
        chunk = keys[start:stop]
        area = KEY_SEP.join(chunk)
        if area.count(KEY_SEP) != len(chunk) - 1:
            raise ValueError("a label key contains the byte 0xfe (not a canonical key)")
        payload = b"".join(
            (_U32.pack(len(chunk)), sid_arr[start:stop].astype("<u4").tobytes(), area)
        )
        out.append(struct.pack("<II", len(payload), crc32c(payload)))
        out.append(payload)
        start = stop
    return b"".join(out)


def decode_frames(buf: bytes, start: int = 0) -> tuple[np.ndarray, list[bytes], int, str]:
    """Decode frames from ``buf[start:]`` up to the first torn or corrupt one.

    Returns ``(sids, keys, end, problem)``: ``end`` is the offset just past the last good
    frame; ``problem`` is ``""`` when every byte was decoded, else ``"short"`` (the data
    stops inside a frame), ``"length"`` (implausible length or count) or ``"checksum"``.
    """
    sid_parts: list[np.ndarray] = []
    keys: list[bytes] = []
    view = memoryview(buf)
    size = len(buf)
    pos = start
    problem = ""
    while pos < size:
        if size - pos < _FRAME.size:
            problem = "short"
            break
        length, checksum, count = _FRAME.unpack_from(buf, pos)
        end = pos + FRAME_HEADER + length
        if length > MAX_PAYLOAD or count == 0 or length < 4 + 4 * count:
            problem = "length"
            break
        if end > size:
            problem = "short"
            break
        if crc32c(view[pos + FRAME_HEADER : end]) != checksum:
            problem = "checksum"
            break
        sids_at = pos + FRAME_HEADER + 4
        parts = buf[sids_at + 4 * count : end].split(KEY_SEP)
        if len(parts) != count:
            problem = "length"  # well-formed CRC over a badly built frame
            break
        sid_parts.append(np.frombuffer(buf, dtype="<u4", count=count, offset=sids_at))
        keys.extend(parts)
        pos = end
    sids = np.concatenate(sid_parts).astype(np.int64) if sid_parts else np.empty(0, np.int64)
    return sids, keys, pos, problem


class SeriesRegistry:
    """Append-only ``series.reg`` in ``directory``.

    ``load()`` once at start-up (it also repairs the tail), then ``append`` new series and
    ``sync()`` before acknowledging anything that refers to them.
    """

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.fsync = fsync
        self._file: BinaryIO | None = None
        self._recovered = False

    # --- reading -------------------------------------------------------------------------

    def load(self) -> tuple[np.ndarray, list[bytes]]:
        """All intact series as ``(sids int64 array, keys)``, in append order.

        A torn or corrupt tail is cut off (logged as a warning). Raises ``ValueError`` only
        when the file is not a series registry at all (foreign magic or unknown version), so
        that nobody else's file is ever truncated.
        """
        if self._file is not None:
            self._file.flush()
        try:
            buf = self.path.read_bytes()
        except FileNotFoundError:
            self._recovered = True
            return np.empty(0, dtype=np.int64), []
        if not self._header_ok(buf):
            self._recovered = True
            return np.empty(0, dtype=np.int64), []
        sids, keys, end, problem = decode_frames(buf, HEADER_SIZE)
        if problem:
            self._cut_tail(buf, end, problem)
        self._recovered = True
        return self._first_occurrences(sids, keys)

    def _first_occurrences(
        self, sids: np.ndarray, keys: list[bytes]
    ) -> tuple[np.ndarray, list[bytes]]:
        """Drop repeated sids or keys (never written by the engine), keeping the first."""
        if len(sids) < 2:
            return sids, keys
        increasing = bool(np.all(sids[1:] > sids[:-1]))
        if increasing and len(dict.fromkeys(keys)) == len(keys):
            return sids, keys
        keep = np.zeros(len(sids), dtype=np.bool_)
        keep[np.unique(sids, return_index=True)[1]] = True
        first_of_key = dict.fromkeys(keys, -1)
        for i in range(len(keys) - 1, -1, -1):
            first_of_key[keys[i]] = i
        by_key = np.zeros(len(sids), dtype=np.bool_)
        by_key[list(first_of_key.values())] = True
        keep &= by_key
        log.warning("%s: %d repeated series entries ignored", self.path, int((~keep).sum()))
        return sids[keep], [k for k, m in zip(keys, keep.tolist(), strict=True) if m]

    def _header_ok(self, buf: bytes) -> bool:
        """Check the header; False means the file is (now) empty.

        A header torn while the file was created is reset. A damaged header in front of
        intact frames is rewritten. A foreign file, or an intact header of another version,
        raises ``ValueError`` so that it is never truncated.
        """
        expected = _header()
        if buf[:HEADER_SIZE] == expected:
            return True
        if len(buf) < HEADER_SIZE and expected.startswith(buf):
            log.warning("%s: header torn at creation; starting empty", self.path)
            self._truncate(0)
            return False
        head = buf[: _HEAD.size]
        if len(buf) >= HEADER_SIZE and _U32.unpack_from(buf, _HEAD.size)[0] == crc32c(head):
            magic, version = _HEAD.unpack(head)
            if magic == MAGIC:
                raise ValueError(f"{self.path}: unsupported series registry version {version}")
        elif len(buf) >= HEADER_SIZE:
            sids, _, _, _ = decode_frames(buf[: HEADER_SIZE + MAX_PAYLOAD], HEADER_SIZE)
            if len(sids) or (len(buf) == HEADER_SIZE and buf.startswith(MAGIC)):
                log.warning("%s: damaged header in front of intact data; rewriting it", self.path)
                with open(self.path, "r+b") as f:
                    f.write(expected)
                    f.flush()
                    if self.fsync:
                        os.fsync(f.fileno())
                return True
        raise ValueError(f"{self.path} is not a series registry (header {buf[:16]!r})")

    def _cut_tail(self, buf: bytes, end: int, problem: str) -> None:
        tail = buf[end:]
        claimed = _U32.unpack_from(tail)[0] if len(tail) >= 4 else 0
        # An interrupted append leaves a short frame, a bad last frame, or zeros. A bad frame
        # with more data after it is damage in the middle: keep those bytes around.
        damaged_middle = (problem == "checksum" and FRAME_HEADER + claimed < len(tail)) or (
            problem == "length" and bool(tail.strip(b"\0"))
        )
        what = {
            "short": "torn frame",
            "length": f"implausible frame (length {claimed})",
            "checksum": "frame checksum mismatch",
        }[problem]
        if damaged_middle:
            saved = self.path.with_name(f"{FILE_NAME}.broken-{end}")
            saved.write_bytes(tail)
            log.warning(
                "%s: %s at offset %d in the middle of the file; truncating %d bytes (series "
                "registered after that point are forgotten); the cut bytes were saved to %s",
                self.path,
                what,
                end,
                len(tail),
                saved,
            )
        else:
            log.warning("%s: %s at offset %d; truncating %d bytes", self.path, what, end, len(tail))
        self._truncate(end)

    def _truncate(self, size: int) -> None:
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.ftruncate(fd, size)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    # --- writing -------------------------------------------------------------------------

    def append(self, sids: Sequence[int] | np.ndarray, keys: Sequence[bytes]) -> None:
        """Queue new series (buffered; durable after ``sync``)."""
        data = encode_frames(sids, keys)
        if data:
            self._open().write(data)

    def sync(self) -> None:
        """Flush buffered frames and fsync them."""
        f = self._file
        if f is not None:
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

    def close(self) -> None:
        """Sync and close; the registry may be reopened by appending again."""
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

    def __enter__(self) -> SeriesRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> BinaryIO:
        if self._file is None:
            if not self._recovered:
                self.load()  # find (and cut) a bad tail before appending after it
            self.directory.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "ab", buffering=1 << 16)  # noqa: SIM115 - stays open
            if f.tell() == 0:
                f.write(_header())
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
                    fsync_dir(self.directory)
            self._file = f
        return self._file

