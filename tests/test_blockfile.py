"""Block container: zero-copy sections, checksums, atomic replacement."""

from __future__ import annotations

import numpy as np
import pytest

from tsdb.storage.blockfile import BlockFile, CorruptBlock, write_block


def sections():
    return {
        "counts": np.full(1000, 480, np.uint16),           # compressible: lz4
        "body_words": np.arange(500, dtype=np.uint64) * 0x9E3779B97F4A7C15,  # raw bit stream
        "matrix": np.arange(12, dtype="<i4").reshape(3, 4),
        "empty": np.zeros(0, np.uint8),
    }


def test_round_trip_zero_copy_and_meta(tmp_path):
    path = tmp_path / "b.blk"
    size = write_block(path, {"window_start": 7200000, "samples": 3}, sections())
    assert size == path.stat().st_size and size % 8 == 0
    bf = BlockFile(path)
    assert bf.meta == {"window_start": 7200000, "samples": 3}
    for name, want in sections().items():
        got = bf.sections[name]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
    words = bf.sections["body_words"]
    assert not words.flags.owndata and not words.flags.writeable  # a view of the mapping
    assert len(list(tmp_path.iterdir())) == 1  # no temporary left behind
    bf.close()


@pytest.mark.parametrize("offset", [0, 9, 20, -1, -100])
def test_any_flipped_byte_is_detected(tmp_path, offset):
    path = tmp_path / "b.blk"
    write_block(path, {"x": 1}, sections())
    data = bytearray(path.read_bytes())
    pos = offset % len(data)
    # the final bytes may be alignment padding, which no reader looks at
    if offset == -1:
        pos = len(data) - 1
        while data[pos] == 0 and pos > 0:
            pos -= 1
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptBlock, ValueError)):
        BlockFile(path)


def test_truncated_file_is_rejected(tmp_path):
    path = tmp_path / "b.blk"
    write_block(path, {}, sections())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptBlock, match="past the end|checksum"):
        BlockFile(path)
