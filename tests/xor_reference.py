"""Reference decoder for Prometheus XOR chunks, written from shared/spec/xor-chunk.md §6 and
independent of wire.xor_chunk. Deliberately naive: one bit at a time. Shared by the codec
tests (tests/test_xor_chunk.py) and the end-to-end remote-read tests (tests/e2e/)."""

from __future__ import annotations

MASK64 = 2**64 - 1


def as_int64(u: int) -> int:
    u &= MASK64
    return u - 2**64 if u >= 2**63 else u


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(format(b, "08b") for b in data)
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise EOFError("read past the end of the chunk")
        out = 0
        for _ in range(n):
            out = (out << 1) | (self.bits[self.pos] == "1")
            self.pos += 1
        return out

    def uvarint(self) -> int:
        out = 0
        for i in range(10):
            byte = self.read(8)
            if i == 9 and byte > 1:
                raise ValueError("uvarint overflows 64 bits")
            out |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                return out
        raise ValueError("uvarint longer than 10 bytes")


def decode_chunk(data: bytes, trace: dict | None = None,
                 max_pad_bits: int = 7) -> list[tuple[int, int]]:
    """(timestamp, value bits) of every sample. ``trace`` collects dod bucket widths and
    XOR record kinds so tests can check encoder choices. ``max_pad_bits``: zero bits allowed
    after the last sample; Prometheus' own writer sometimes leaves a whole zero byte (its
    byte-wise writes always append the next byte), so reading its chunks needs 8."""
    trace = trace if trace is not None else {}
    trace.update(dod_bits=[], records=[])
    r = BitReader(data)
    count = r.read(16)
    if count == 0:
        return []
    window = [0, 0]  # leading, trailing; the decoder starts at L = T = 0

    def read_value(v: int) -> int:
        if r.read(1) == 0:
            trace["records"].append("0")
            return v
        if r.read(1) == 1:
            lead = r.read(5)
            sig = r.read(6) or 64
            window[:] = [lead, 64 - lead - sig]
            trace["records"].append("11")
        else:
            trace["records"].append("10")
        lead, trail = window
        return v ^ (r.read(64 - lead - trail) << trail)

    z = r.uvarint()
    t = as_int64((z >> 1) ^ -(z & 1))
    v = r.read(64)
    out = [(t, v)]
    if count > 1:
        delta = r.uvarint()
        t = as_int64(t + delta)
        v = read_value(v)
        out.append((t, v))
    for _ in range(count - 2):
        ones = 0
        while ones < 4 and r.read(1) == 1:
            ones += 1
        n = {0: 0, 1: 14, 2: 17, 3: 20, 4: 64}[ones]
        u = r.read(n)
        dod = as_int64(u) if n == 64 else (u - 2**n if u > 2 ** (n - 1) else u)
        trace["dod_bits"].append(ones + n + (ones < 4))
        delta = (delta + dod) & MASK64
        t = as_int64(t + delta)
        v = read_value(v)
        out.append((t, v))
    # the chunk ends with at most 7 zero padding bits (the final byte's)
    rest = r.bits[r.pos :]
    assert len(rest) <= max_pad_bits and set(rest) <= {"0"}, f"bad chunk end {rest!r}"
    return out
