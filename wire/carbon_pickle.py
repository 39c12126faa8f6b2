"""Carbon's pickle protocol (port 2004) without unpickling: a reader of the opcode stream
that can build lists, tuples, strings, bytes, numbers and None, and nothing else.

Python's unpickler imports and calls whatever a pickle names (``GLOBAL`` + ``REDUCE``), so a
sender could run code in the server. This module never calls ``pickle.loads``: it walks the
opcodes itself and refuses every opcode outside the data-only subset carbon senders use
(protocols 0-5), with limits on nesting and on the size of what it builds. The result must
be a list (or tuple) of ``(path, (timestamp, value))``; items of another shape are skipped
one by one as carbon does, while anything the reader refuses fails the whole message
(:class:`PickleRefused`, and the listener closes the connection).

Frames on the wire: a 4-byte big-endian length, then that many bytes of pickle.
"""

from __future__ import annotations

import codecs
import math
import struct
from collections.abc import Callable

import numpy as np

from wire.carbon_plaintext import (
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    NAN_VALUE,
    CarbonBatch,
)

MAX_FRAME = 1 << 20  # carbon's PICKLE_RECEIVER_MAX_LENGTH default
FRAME_HEADER = struct.Struct("!L")
INVALID_ITEM = "invalid_pickle_item"  # an element that is not (path, (timestamp, value))

_MAX_DEPTH = 64  # open MARKs plus nesting of built containers
_MAX_LONG_BYTES = 64  # LONG1/LONG4 and text longs beyond this are refused
_MAX_MS = 9.2e18


class PickleRefused(ValueError):
    """The message is not a data-only pickle of the expected shape; the text says why."""


class _Mark:
    """What MARK pushes (a separate class, so no data value can be mistaken for it)."""


_MARK = _Mark()


class _Reader:
    """The opcode walker; one instance per message."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.stack: list = []
        self.marks: list[int] = []  # stack heights at each MARK
        self.memo: dict[int, object] = {}

    # -- bytes ----------------------------------------------------------------------------

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise PickleRefused("pickle ends inside an opcode argument")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def line(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise PickleRefused("pickle ends inside a text argument")
        chunk = self.data[self.pos:end]
        self.pos = end + 1
        return chunk

    def u(self, fmt: str) -> int:
        s = struct.Struct(fmt)
        return s.unpack(self.take(s.size))[0]

    # -- stack ----------------------------------------------------------------------------

    def push(self, value: object) -> None:
        self.stack.append(value)

    def pop(self) -> object:
        if len(self.stack) <= (self.marks[-1] + 1 if self.marks else 0):
            raise PickleRefused("pickle pops an empty stack (or a MARK)")
        return self.stack.pop()

    def pop_mark(self) -> list:
        if not self.marks:
            raise PickleRefused("pickle closes a MARK it never opened")
        height = self.marks.pop()
        items = self.stack[height + 1:]  # stack[height] is the mark itself
        del self.stack[height:]
        return items

    def mark(self) -> None:
        if len(self.marks) >= _MAX_DEPTH:
            raise PickleRefused(f"pickle nests deeper than {_MAX_DEPTH}")
        self.marks.append(len(self.stack))
        self.stack.append(_MARK)

    def top_list(self) -> list:
        if not self.stack or not isinstance(self.stack[-1], list):
            raise PickleRefused("APPEND to something that is not a list")
        return self.stack[-1]


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PickleRefused(f"string is not UTF-8: {exc}") from None


def _raw_unicode(raw: bytes) -> str:
    try:
        return raw.decode("raw_unicode_escape")
    except UnicodeDecodeError as exc:
        raise PickleRefused(f"UNICODE argument does not decode: {exc}") from None


def _quoted(raw: bytes) -> bytes:
    """STRING's argument: a Python 2 repr of a str (quotes, backslash escapes)."""
    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
        raise PickleRefused("STRING argument is not quoted")
    try:
        return codecs.escape_decode(raw[1:-1])[0]
    except ValueError as exc:
        raise PickleRefused(f"STRING argument does not decode: {exc}") from None


def _int_text(raw: bytes) -> int:
    text = raw.rstrip(b"L")
    if len(text) > _MAX_LONG_BYTES * 3 or not text.lstrip(b"+-").isdigit():
        raise PickleRefused("bad or oversized integer literal")
    return int(text)


def _long_bytes(raw: bytes) -> int:
    if len(raw) > _MAX_LONG_BYTES:
        raise PickleRefused(f"integer of {len(raw)} bytes is larger than {_MAX_LONG_BYTES}")
    return int.from_bytes(raw, "little", signed=True)


def _op_int(r: _Reader) -> None:
    raw = r.line()
    if raw == b"00":
        r.push(False)
    elif raw == b"01":
        r.push(True)
    else:
        r.push(_int_text(raw))


def _op_float(r: _Reader) -> None:
    try:
        r.push(float(r.line()))
    except ValueError:
        raise PickleRefused("bad FLOAT literal") from None


def _tuple_n(n: int) -> Callable[[_Reader], None]:
    def op(r: _Reader) -> None:
        items = [r.pop() for _ in range(n)]
        r.push(tuple(reversed(items)))
    return op


def _append(r: _Reader) -> None:
    item = r.pop()
    r.top_list().append(item)


def _pop_mark(r: _Reader) -> None:
    r.pop_mark()


def _appends(r: _Reader) -> None:
    items = r.pop_mark()
    r.top_list().extend(items)


def _list(r: _Reader) -> None:
    r.push(r.pop_mark())


def _put(r: _Reader, index: int) -> None:
    if not r.stack or r.stack[-1] is _MARK:
        raise PickleRefused("memo PUT with nothing to store")
    r.memo[index] = r.stack[-1]


def _get(r: _Reader, index: int) -> None:
    try:
        r.push(r.memo[index])
    except KeyError:
        raise PickleRefused(f"memo GET of an unknown index {index}") from None


def _frame(r: _Reader) -> None:
    r.take(8)  # a framing hint only; the data follows inline


def _proto(r: _Reader) -> None:
    if r.take(1)[0] > 5:
        raise PickleRefused("pickle protocol above 5")


_OPS: dict[int, Callable[[_Reader], None]] = {
    0x80: _proto,  # PROTO
    0x95: _frame,  # FRAME
    ord("("): _Reader.mark,  # MARK
    ord("]"): lambda r: r.push([]),  # EMPTY_LIST
    ord("l"): _list,  # LIST
    ord("a"): _append,  # APPEND
    ord("e"): _appends,  # APPENDS
    ord(")"): lambda r: r.push(()),  # EMPTY_TUPLE
    ord("t"): lambda r: r.push(tuple(r.pop_mark())),  # TUPLE
    0x85: _tuple_n(1),
    0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    ord("0"): lambda r: r.pop(),  # POP
    ord("1"): _pop_mark,  # POP_MARK
    ord("X"): lambda r: r.push(_text(r.take(r.u("<I")))),  # BINUNICODE
    0x8C: lambda r: r.push(_text(r.take(r.take(1)[0]))),  # SHORT_BINUNICODE
    0x8D: lambda r: r.push(_text(r.take(r.u("<Q")))),  # BINUNICODE8
    ord("V"): lambda r: r.push(_raw_unicode(r.line())),  # UNICODE
    ord("U"): lambda r: r.push(r.take(r.take(1)[0])),  # SHORT_BINSTRING
    ord("T"): lambda r: r.push(r.take(r.u("<i"))),  # BINSTRING
    ord("S"): lambda r: r.push(_quoted(r.line())),  # STRING
    ord("C"): lambda r: r.push(r.take(r.take(1)[0])),  # SHORT_BINBYTES
    ord("B"): lambda r: r.push(r.take(r.u("<I"))),  # BINBYTES
    ord("J"): lambda r: r.push(r.u("<i")),  # BININT
    ord("K"): lambda r: r.push(r.take(1)[0]),  # BININT1
    ord("M"): lambda r: r.push(r.u("<H")),  # BININT2
    ord("I"): _op_int,  # INT
    ord("L"): lambda r: r.push(_int_text(r.line())),  # LONG
    0x8A: lambda r: r.push(_long_bytes(r.take(r.take(1)[0]))),  # LONG1
    0x8B: lambda r: r.push(_long_bytes(r.take(r.u("<i")))),  # LONG4
    ord("G"): lambda r: r.push(r.u(">d")),  # BINFLOAT
    ord("F"): _op_float,  # FLOAT
    ord("N"): lambda r: r.push(None),  # NONE
    0x88: lambda r: r.push(True),  # NEWTRUE
    0x89: lambda r: r.push(False),  # NEWFALSE
    ord("p"): lambda r: _put(r, _int_text(r.line())),  # PUT
    ord("q"): lambda r: _put(r, r.take(1)[0]),  # BINPUT
    ord("r"): lambda r: _put(r, r.u("<I")),  # LONG_BINPUT
    0x94: lambda r: _put(r, len(r.memo)),  # MEMOIZE
    ord("g"): lambda r: _get(r, _int_text(r.line())),  # GET
    ord("h"): lambda r: _get(r, r.take(1)[0]),  # BINGET
    ord("j"): lambda r: _get(r, r.u("<I")),  # LONG_BINGET
}

_NAMES = {0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x52: "REDUCE", 0x62: "BUILD", 0x69: "INST",
          0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2",
          0x84: "EXT4", 0x50: "PERSID", 0x51: "BINPERSID", 0x7D: "EMPTY_DICT", 0x64: "DICT",
          0x73: "SETITEM", 0x75: "SETITEMS", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
          0x91: "FROZENSET", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER"}


_I32, _U32, _U16, _F64 = (struct.Struct(f) for f in ("<i", "<I", "<H", ">d"))


def load(data: bytes) -> list | tuple:
    """The object a data-only pickle describes; PickleRefused for anything else.

    The opcodes of carbon's messages (strings, small ints, floats, TUPLE2, memo puts,
    APPEND) are handled inline; the rest through :data:`_OPS`.
    """
    r = _Reader(data)
    stack, memo, marks = r.stack, r.memo, r.marks
    push = stack.append
    n = len(data)
    pos = 0
    try:
        while pos < n:
            code = data[pos]
            pos += 1
            if code == 0x8C or code == 0x58:  # SHORT_BINUNICODE, BINUNICODE
                if code == 0x8C:
                    size, pos = data[pos], pos + 1
                else:
                    size, pos = _U32.unpack_from(data, pos)[0], pos + 4
                if pos + size > n:
                    raise PickleRefused("pickle ends inside a string")
                push(_text(data[pos:pos + size]))
                pos += size
            elif code == 0x4A:  # BININT
                push(_I32.unpack_from(data, pos)[0])
                pos += 4
            elif code == 0x4B:  # BININT1
                push(data[pos])
                pos += 1
            elif code == 0x4D:  # BININT2
                push(_U16.unpack_from(data, pos)[0])
                pos += 2
            elif code == 0x47:  # BINFLOAT
                push(_F64.unpack_from(data, pos)[0])
                pos += 8
            elif code == 0x86:  # TUPLE2
                if len(stack) - (marks[-1] + 1 if marks else 0) < 2:
                    raise PickleRefused("TUPLE2 with fewer than two items")
                second = stack.pop()
                stack[-1] = (stack[-1], second)
            elif code == 0x71 or code == 0x94:  # BINPUT, MEMOIZE
                if not stack or stack[-1] is _MARK:
                    raise PickleRefused("memo PUT with nothing to store")
                if code == 0x71:
                    memo[data[pos]] = stack[-1]
                    pos += 1
                else:
                    memo[len(memo)] = stack[-1]
            elif code == 0x2E:  # STOP
                if marks or len(stack) != 1:
                    raise PickleRefused("pickle stops with an unbalanced stack")
                result = stack[0]
                if not isinstance(result, list | tuple):
                    raise PickleRefused(f"pickle holds a {type(result).__name__}, not a list")
                return result
            else:
                op = _OPS.get(code)
                if op is None:
                    name = _NAMES.get(code, f"0x{code:02x}")
                    raise PickleRefused(f"pickle opcode {name} is not allowed (data-only "
                                        "pickles)")
                r.pos = pos
                op(r)
                pos = r.pos
    except (IndexError, struct.error):
        raise PickleRefused("pickle ends inside an opcode argument") from None
    raise PickleRefused("pickle has no STOP opcode")


def _number(x: object) -> float | None:
    """``float(x)`` as carbon coerces (ints, floats, numeric strings), None if it fails."""
    if isinstance(x, bytes):
        try:
            x = x.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(x, int | float | str):
        try:
            return float(x)
        except (ValueError, OverflowError):
            return None
    return None


def _has_surrogates(text: str) -> bool:
    """UNICODE ('V') can carry lone surrogates, which have no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _describe(i: int, item: object) -> bytes:
    """A short, safe description of a refused item (never repr: items may share structure
    through the memo, and their repr can be exponentially long)."""
    kind = type(item).__name__
    size = f" of {len(item)}" if isinstance(item, list | tuple) else ""
    shown = repr(item)[:120] if isinstance(item, str | bytes | int | float) else ""
    return f"item {i}: {kind}{size} {shown}".strip().encode()


def points(message: list | tuple, now_ms: int) -> CarbonBatch:
    """The points of an unpickled message, with carbon's item rules: items that are not
    ``(path, (timestamp, value))`` with str/bytes path and numeric fields are skipped; NaN
    values are dropped; a timestamp with ``int(ts) == -1`` means now."""
    out = CarbonBatch([], np.zeros(0, np.int64), np.zeros(0))
    keys: list[bytes] = []
    stamps: list[int] = []
    values: list[float] = []
    for i, item in enumerate(message):
        try:
            path, (ts_raw, value_raw) = item  # carbon's own unpacking: any 2-sequences
        except (TypeError, ValueError):
            out.reject(INVALID_ITEM, [_describe(i, item)])
            continue
        if isinstance(path, str) and not _has_surrogates(path):
            key = path.encode("utf-8")
        elif isinstance(path, bytes):
            key = path
        else:
            out.reject(INVALID_ITEM, [_describe(i, item)])
            continue
        ts, value = _number(ts_raw), _number(value_raw)
        if ts is None:
            out.reject(INVALID_TIMESTAMP, [_describe(i, item)])
        elif value is None:
            out.reject(INVALID_VALUE, [_describe(i, item)])
        elif value != value:
            out.reject(NAN_VALUE, [], 1)
        elif not math.isfinite(ts) or abs(ts * 1000.0) >= _MAX_MS:
            out.reject(INVALID_TIMESTAMP, [_describe(i, item)])
        else:
            keys.append(key)
            stamps.append(now_ms if int(ts) == -1 else round(ts * 1000.0))
            values.append(value)
    out.keys = keys
    out.timestamps = np.array(stamps, np.int64)
    out.values = np.array(values, np.float64)
    return out
