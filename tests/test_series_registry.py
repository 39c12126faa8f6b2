"""SeriesRegistry: round trip, framing, torn and corrupt tails, damaged header."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsdb.storage import series_registry as reg
from tsdb.storage.labels import labels_key
from tsdb.storage.series_registry import HEADER_SIZE, SeriesRegistry, decode_frames, encode_frames


def key(i: int) -> bytes:
    return labels_key((("__name__", f"m{i % 7}"), ("instance", f"host-{i}"), ("ü", "日本")))


def write(directory: Path, batches: list[range]) -> list[int]:
    """Append the batches; return the file size after each one."""
    sizes = []
    with SeriesRegistry(directory) as r:
        for b in batches:
            r.append(np.array(b), [key(i) for i in b])
            r.sync()
            sizes.append(r.path.stat().st_size)
    return sizes


def loaded(directory: Path) -> tuple[list[int], list[bytes]]:
    sids, keys = SeriesRegistry(directory).load()
    assert sids.dtype == np.int64
    return sids.tolist(), keys


def test_missing_file_loads_empty(tmp_path: Path) -> None:
    assert loaded(tmp_path) == ([], [])
    assert not (tmp_path / "series.reg").exists()


def test_round_trip(tmp_path: Path) -> None:
    write(tmp_path, [range(0, 3), range(3, 4), range(4, 100)])
    assert loaded(tmp_path) == (list(range(100)), [key(i) for i in range(100)])


def test_reopen_and_append(tmp_path: Path) -> None:
    write(tmp_path, [range(0, 5)])
    r = SeriesRegistry(tmp_path)
    assert len(r.load()[0]) == 5
    r.append([5, 6], [key(5), key(6)])
    r.append([], [])
    r.close()
    r.close()
    assert loaded(tmp_path) == (list(range(7)), [key(i) for i in range(7)])


def test_byte_layout(tmp_path: Path) -> None:
    """The layout documented in docs/format/series.md, decoded by hand."""
    write(tmp_path, [range(7, 9)])
    data = (tmp_path / "series.reg").read_bytes()
    assert data[:8] == b"TSDBSREG"
    assert struct.unpack_from("<I", data, 8)[0] == 1
    assert struct.unpack_from("<I", data, 12)[0] == crc32c(data[:12])
    length, crc = struct.unpack_from("<II", data, 16)
    payload = data[24 : 24 + length]
    assert len(data) == 24 + length
    assert crc == crc32c(payload)
    count = struct.unpack_from("<I", payload)[0]
    assert count == 2
    assert list(struct.unpack_from("<2I", payload, 4)) == [7, 8]
    assert payload[12:].split(b"\xfe") == [key(7), key(8)]


def test_big_appends_are_split_into_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reg, "FRAME_RECORDS", 10)
    data = encode_frames(np.arange(25), [key(i) for i in range(25)])
    sids, keys, end, problem = decode_frames(data)
    assert (sids.tolist(), keys, end, problem) == (
        list(range(25)),
        [key(i) for i in range(25)],
        len(data),
        "",
    )
    assert data.count(struct.pack("<I", 10)) >= 2  # two frames of ten


def test_frame_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reg, "FRAME_BYTES", 200)
    keys = [key(i) for i in range(30)]
    data = encode_frames(np.arange(30), keys)
    sids, got, end, problem = decode_frames(data)
    assert (sids.tolist(), got, end, problem) == (list(range(30)), keys, len(data), "")
    assert data.count(b"\xfe") < 29  # several frames: no separator between frames


def test_rejects_unstorable_input(tmp_path: Path) -> None:
    r = SeriesRegistry(tmp_path)
    with pytest.raises(ValueError, match="32 bits"):
        r.append([2**32], [key(0)])
    with pytest.raises(ValueError, match="0xfe"):
        r.append([1], [b"a\xfe\xff"])
    with pytest.raises(ValueError, match="same length"):
        r.append([1, 2], [key(0)])
    r.close()


@pytest.mark.parametrize("cut_back", [1, 3, 8, 11, 20])
def test_torn_tail_is_truncated(
    tmp_path: Path, cut_back: int, caplog: pytest.LogCaptureFixture
) -> None:
    sizes = write(tmp_path, [range(0, 3), range(3, 6)])
    path = tmp_path / "series.reg"
    with open(path, "r+b") as f:
        f.truncate(sizes[-1] - cut_back)
    with caplog.at_level(logging.WARNING):
        assert loaded(tmp_path) == ([0, 1, 2], [key(i) for i in range(3)])
    assert "truncating" in caplog.text
    assert path.stat().st_size == sizes[0]
    assert not list(tmp_path.glob("*.broken-*"))  # an interrupted append, nothing to keep
    # appending after recovery continues cleanly
    with SeriesRegistry(tmp_path) as r:
        r.append([3], [key(3)])
    assert loaded(tmp_path)[0] == [0, 1, 2, 3]


def test_append_without_load_repairs_first(tmp_path: Path) -> None:
    sizes = write(tmp_path, [range(0, 3), range(3, 6)])
    with open(tmp_path / "series.reg", "r+b") as f:
        f.truncate(sizes[-1] - 5)
    with SeriesRegistry(tmp_path) as r:
        r.append([9], [key(9)])
    assert loaded(tmp_path)[0] == [0, 1, 2, 9]


def test_zero_filled_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sizes = write(tmp_path, [range(0, 3)])
    with open(tmp_path / "series.reg", "ab") as f:
        f.write(b"\0" * 4096)
    with caplog.at_level(logging.WARNING):
        assert loaded(tmp_path)[0] == [0, 1, 2]
    assert (tmp_path / "series.reg").stat().st_size == sizes[0]
    assert not list(tmp_path.glob("*.broken-*"))


@pytest.mark.parametrize("where", ["length", "crc", "count", "sid", "key"])
def test_bit_flip_in_middle_frame(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    sizes = write(tmp_path, [range(0, 3), range(3, 6), range(6, 9)])
    path = tmp_path / "series.reg"
    data = bytearray(path.read_bytes())
    frame = sizes[0]  # the second frame starts where the first ended
    offset = {
        "length": frame,
        "crc": frame + 4,
        "count": frame + 8,
        "sid": frame + 12,
        "key": frame + 30,
    }[where]
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert loaded(tmp_path) == ([0, 1, 2], [key(i) for i in range(3)])
    assert "truncating" in caplog.text
    assert path.stat().st_size == sizes[0]
    broken = list(tmp_path.glob("series.reg.broken-*"))
    assert len(broken) == 1
    assert broken[0].read_bytes() == bytes(data[sizes[0] :])
    assert loaded(tmp_path)[0] == [0, 1, 2]  # repaired for good


def test_bit_flip_in_last_frame(tmp_path: Path) -> None:
    sizes = write(tmp_path, [range(0, 3), range(3, 6)])
    path = tmp_path / "series.reg"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    assert loaded(tmp_path)[0] == [0, 1, 2]
    assert path.stat().st_size == sizes[0]


def test_torn_header_resets(tmp_path: Path) -> None:
    path = tmp_path / "series.reg"
    path.write_bytes(b"TSDBSR")
    assert loaded(tmp_path) == ([], [])
    assert path.stat().st_size == 0
    write(tmp_path, [range(2)])
    assert loaded(tmp_path)[0] == [0, 1]


def test_damaged_header_in_front_of_good_data_is_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, [range(0, 4)])
    path = tmp_path / "series.reg"
    for offset in (2, 9, 13):
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x04
        path.write_bytes(bytes(data))
        with caplog.at_level(logging.WARNING):
            assert loaded(tmp_path)[0] == [0, 1, 2, 3]
        assert "damaged header" in caplog.text
        assert path.read_bytes()[:HEADER_SIZE] == reg._header()


def test_foreign_or_newer_files_are_refused_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "series.reg"
    foreign = b"this is somebody else's file, keep it" * 3
    path.write_bytes(foreign)
    with pytest.raises(ValueError, match="not a series registry"):
        SeriesRegistry(tmp_path).load()
    assert path.read_bytes() == foreign
    head = struct.pack("<8sI", b"TSDBSREG", 2)
    newer = head + struct.pack("<I", crc32c(head)) + b"future frames"
    path.write_bytes(newer)
    with pytest.raises(ValueError, match="version 2"):
        SeriesRegistry(tmp_path).load()
    assert path.read_bytes() == newer


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.integers(1, 20), min_size=1, max_size=6),
    cut=st.floats(0, 1),
)
def test_any_truncation_keeps_a_prefix_of_whole_frames(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], cut: float
) -> None:
    directory = tmp_path_factory.mktemp("reg")
    ranges, start = [], 0
    for size in batches:
        ranges.append(range(start, start + size))
        start += size
    sizes = write(directory, ranges)
    path = directory / "series.reg"
    new_size = int(cut * sizes[-1])
    with open(path, "r+b") as f:
        f.truncate(new_size)
    sids, keys = loaded(directory)
    whole = [i for i, s in enumerate(sizes) if s <= new_size]
    expected = [sid for i in whole for sid in ranges[i]]
    assert sids == expected
    assert keys == [key(i) for i in expected]


def test_repeated_entries_keep_the_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with SeriesRegistry(tmp_path) as r:
        r.append([0, 1, 2], [key(0), key(1), key(2)])
        r.append([1, 3, 4], [key(9), key(3), key(0)])  # sid 1 again; key(0) again
    with caplog.at_level(logging.WARNING):
        assert loaded(tmp_path) == ([0, 1, 2, 3], [key(0), key(1), key(2), key(3)])
    assert "2 repeated" in caplog.text
