"""Explain why protobuf bytes do not parse, naming the field (slow path, errors only).

The upb runtime only says "Error parsing message". When a parse fails the decoders call
``explain`` to walk the bytes against the message descriptor the way upb does (proto3
rules: unknown fields and wire-type mismatches are skipped, repeated scalars may be packed,
strings must be valid UTF-8) and report the first problem as e.g.
``timeseries[3].samples[0].timestamp: truncated varint at byte 812``.

The walk is pure Python, so it gives up after ``max_fields`` fields: a hostile body must
not cost more to diagnose than to reject.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from wire.errors import WireError
from wire.varint import decode_uvarint

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
_FD = FieldDescriptor
_WIRE_TYPE_OF = {
    **dict.fromkeys((_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_UINT32, _FD.TYPE_UINT64,
                     _FD.TYPE_SINT32, _FD.TYPE_SINT64, _FD.TYPE_BOOL, _FD.TYPE_ENUM), _VARINT),
    **dict.fromkeys((_FD.TYPE_FIXED64, _FD.TYPE_SFIXED64, _FD.TYPE_DOUBLE), _I64),
    **dict.fromkeys((_FD.TYPE_FIXED32, _FD.TYPE_SFIXED32, _FD.TYPE_FLOAT), _I32),
    **dict.fromkeys((_FD.TYPE_STRING, _FD.TYPE_BYTES, _FD.TYPE_MESSAGE), _LEN),
}
_MAX_DEPTH = 100
MAX_FIELDS = 50_000


class _Bad(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)


def explain(data: bytes, descriptor: Descriptor, path: str = "",
            max_fields: int = MAX_FIELDS) -> str | None:
    """First reason why ``data`` is not a valid ``descriptor`` message, or None if it is.

    ``path`` prefixes the reported field path (byte offsets stay relative to ``data``).
    """
    walker = _Walker(memoryview(data), max_fields)
    try:
        walker.message(0, len(data), descriptor, path, 0)
    except _Bad as bad:
        return str(bad)
    return None


class _Walker:
    def __init__(self, buf: memoryview, max_fields: int) -> None:
        self.buf = buf
        self.fields_left = max_fields

    def message(self, pos: int, end: int, desc: Descriptor, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _Bad(path, "messages nested too deeply")
        seen: dict[int, int] = {}
        fields = desc.fields_by_number
        while pos < end:
            tag_pos = pos
            number, wire_type, pos = self.tag(pos, end, path)
            field = fields.get(number)
            here = _field_path(path, field, number, seen)
            if wire_type == _EGROUP:
                raise _Bad(path, f"unexpected end-group tag at byte {tag_pos}")
            expected = _WIRE_TYPE_OF.get(field.type) if field is not None else None
            if wire_type != _LEN or expected is None or not (
                    expected == _LEN or field.is_repeated):
                # scalars, unknown fields and wire-type mismatches (upb: unknown) are skipped
                pos = self.skip(pos, end, number, wire_type, here, depth)
                continue
            size, pos = self.varint(pos, end, here, 10)
            if size > end - pos:
                raise _Bad(here, f"length {size} at byte {pos} exceeds the {end - pos} bytes left")
            stop = pos + size
            if field.type == _FD.TYPE_MESSAGE:
                self.message(pos, stop, field.message_type, here, depth + 1)
            elif field.type == _FD.TYPE_STRING:
                try:
                    bytes(self.buf[pos:stop]).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Bad(here, f"invalid UTF-8 at byte {pos + exc.start}") from None
            elif field.type != _FD.TYPE_BYTES:  # packed repeated scalars
                self.packed(pos, stop, expected, here)
            pos = stop

    def tag(self, pos: int, end: int, path: str) -> tuple[int, int, int]:
        self.fields_left -= 1
        if self.fields_left < 0:
            raise _Bad("", "malformed protobuf (diagnosis stopped: too many fields)")
        tag_pos = pos
        tag, pos = self.varint(pos, end, path, 5)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise _Bad(path, f"field number 0 at byte {tag_pos}")
        if wire_type in (6, 7):
            raise _Bad(path, f"invalid wire type {wire_type} at byte {tag_pos}")
        return number, wire_type, pos

    def packed(self, pos: int, end: int, wire_type: int, path: str) -> None:
        if wire_type == _VARINT:
            while pos < end:
                _, pos = self.varint(pos, end, path, 10)
        else:
            width = 8 if wire_type == _I64 else 4
            if (end - pos) % width:
                raise _Bad(path, f"packed length {end - pos} is not a multiple of {width}")

    def skip(self, pos: int, end: int, number: int, wire_type: int, path: str,
             depth: int) -> int:
        if wire_type == _VARINT:
            return self.varint(pos, end, path, 10)[1]
        if wire_type in (_I64, _I32):
            width = 8 if wire_type == _I64 else 4
            if end - pos < width:
                raise _Bad(path, f"truncated {width * 8}-bit value at byte {pos}")
            return pos + width
        if wire_type == _LEN:
            size, pos = self.varint(pos, end, path, 10)
            if size > end - pos:
                raise _Bad(path, f"length {size} at byte {pos} exceeds the {end - pos} bytes left")
            return pos + size
        # start group: skip fields until the matching end-group tag
        if depth > _MAX_DEPTH:
            raise _Bad(path, "groups nested too deeply")
        while pos < end:
            tag_pos = pos
            inner_number, inner_type, pos = self.tag(pos, end, path)
            if inner_type == _EGROUP:
                if inner_number != number:
                    raise _Bad(path, f"mismatched end-group tag at byte {tag_pos}")
                return pos
            pos = self.skip(pos, end, inner_number, inner_type, path, depth + 1)
        raise _Bad(path, "unterminated group")

    def varint(self, pos: int, end: int, path: str, max_bytes: int) -> tuple[int, int]:
        if pos < end and self.buf[pos] < 0x80:
            return self.buf[pos], pos + 1
        try:
            return decode_uvarint(self.buf[:end], pos, max_bytes)
        except WireError as exc:
            raise _Bad(path, str(exc)) from None


def _field_path(path: str, field: FieldDescriptor | None, number: int,
                seen: dict[int, int]) -> str:
    """``path.name`` for a field, with ``[i]`` (occurrence count) for repeated ones."""
    name = field.name if field is not None else f"<unknown field {number}>"
    here = f"{path}.{name}" if path else name
    if field is not None and field.is_repeated:
        index = seen.get(number, 0)
        seen[number] = index + 1
        here = f"{here}[{index}]"
    return here
