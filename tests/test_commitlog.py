"""Tests for tsdb.storage.commitlog: framing, replay/truncation, group commit, crashes."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsdb.storage import commitlog
from tsdb.storage.commitlog import (
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    CommitLog,
    CommitLogClosed,
    CommitLogError,
)

LOGGER = "tsdb.storage.commitlog"
HDR = SEGMENT_HEADER_SIZE
REPO = Path(__file__).resolve().parents[1]


def replay_all(log: CommitLog) -> list[tuple[int, int, bytes]]:
    return [(sid, rtype, bytes(payload)) for sid, rtype, payload in log.replay()]


def reopen(directory, **kwargs) -> tuple[CommitLog, list[tuple[int, int, bytes]]]:
    log = CommitLog(directory, **kwargs)
    return log, replay_all(log)


def seg_path(directory, segment_id: int) -> Path:
    return Path(directory) / f"{segment_id:016d}.log"


def layout(sizes: list[int], segment_bytes: int) -> list[tuple[int, int, int]]:
    """(segment index, start, end) of each record, by the documented rotation rule."""
    out = []
    seg, size = 0, None
    for n in sizes:
        rec = RECORD_HEADER_SIZE + n
        if size is None:
            size = HDR
        elif size > HDR and size + rec > segment_bytes:
            seg, size = seg + 1, HDR
        out.append((seg, size, size + rec))
        size += rec
    return out


def write_records(directory, records, **kwargs) -> None:
    with CommitLog(directory, fsync=False, **kwargs) as log:
        for rtype, payload in records:
            log.append(rtype, payload)


# ---------------------------------------------------------------------------- basics


def test_round_trip_and_format(tmp_path):
    arr = np.arange(1000, dtype=np.float64)
    with CommitLog(tmp_path, fsync=False) as log:
        assert log.current_segment_id == 0
        p1 = log.append(1, b"hello")
        p2 = log.append(2, b"ab", memoryview(b"cd"), arr)  # parts are concatenated
        p3 = log.append(255)  # empty payload
        p4 = log.append(0, arr[::-1].copy())
        assert 0 < p1 < p2 < p3 < p4
        log.wait_durable(p4)
        assert log.stats()["durable_position"] >= p4
        assert log.segment_ids() == [0]
    data = seg_path(tmp_path, 0).read_bytes()
    golden = (  # the example in docs/format/commitlog.md
        "54 53 44 42 43 4c 4f 47 01 00 00 00 00 00 00 00 00 00 00 00 d4 fe 3e 37"
        " 29 58 d5 3b 05 00 00 00 01 68 65 6c 6c 6f"
    )
    assert data[: HDR + 14] == bytes.fromhex(golden)
    # golden header: magic, version 1, segment id 0, CRC32C of those 20 bytes
    assert data[:20] == b"TSDBCLOG" + struct.pack("<IQ", 1, 0)
    assert struct.unpack_from("<I", data, 20)[0] == commitlog._crc(data[:20])
    # first record by hand: crc, length, type, payload; crc covers length..payload
    crc, length, rtype = struct.unpack_from("<IIB", data, HDR)
    assert (length, rtype) == (5, 1)
    assert data[HDR + 9 : HDR + 14] == b"hello"
    assert crc == commitlog._crc(data[HDR + 4 : HDR + 14])
    assert p1 == HDR + 9 + 5  # positions count bytes written, headers included

    log, got = reopen(tmp_path)
    with log:
        assert got == [
            (0, 1, b"hello"),
            (0, 2, b"abcd" + arr.tobytes()),
            (0, 255, b""),
            (0, 0, arr[::-1].tobytes()),
        ]


def test_argument_validation(tmp_path):
    with CommitLog(tmp_path, fsync=False) as log:
        with pytest.raises(ValueError):
            log.append(256, b"x")
        with pytest.raises(ValueError):
            log.append(-1, b"x")
        with pytest.raises(TypeError):
            log.append(1, np.arange(10.0)[::2])  # not contiguous
        pos = log.append(1, b"x")
        with pytest.raises(ValueError):
            log.wait_durable(pos + 1)  # never written
    with pytest.raises(ValueError):
        CommitLog(tmp_path / "b", segment_bytes=0)


def test_directory_is_locked(tmp_path):
    with CommitLog(tmp_path, fsync=False):
        with pytest.raises(CommitLogError, match="in use"):
            CommitLog(tmp_path)
    CommitLog(tmp_path).close()  # released on close


def test_rotation(tmp_path):
    sizes = [random.Random(i).randrange(0, 300) for i in range(60)]
    with CommitLog(tmp_path, segment_bytes=1000, fsync=False) as log:
        for i, n in enumerate(sizes):
            log.append(i % 7, bytes([i]) * n)
        big = log.append(9, b"B" * 5000)  # larger than a segment: gets a segment of its own
        log.wait_durable(big)
        ids = log.segment_ids()
    expected = layout([*sizes, 5000], 1000)
    assert ids == list(range(expected[-1][0] + 1))
    for sid in ids[:-1]:
        assert seg_path(tmp_path, sid).stat().st_size <= 1000
    assert seg_path(tmp_path, ids[-1]).stat().st_size == HDR + 9 + 5000
    log, got = reopen(tmp_path)
    with log:
        want = [
            (seg, i % 7, bytes([i]) * n)
            for i, ((seg, _, _), n) in enumerate(zip(expected, sizes, strict=False))
        ]
        assert got == [*want, (ids[-1], 9, b"B" * 5000)]


def test_manual_rotate_and_current_segment(tmp_path):
    with CommitLog(tmp_path, fsync=False) as log:
        assert log.rotate() == 0  # opens the first segment
        log.append(1, b"a")
        assert log.current_segment_id == 0
        assert log.rotate() == 1
        assert log.current_segment_id == 1
        log.append(1, b"b")
        assert log.rotate() == 2
        assert log.segment_ids() == [0, 1, 2]
    log, got = reopen(tmp_path)
    with log:
        assert got == [(0, 1, b"a"), (1, 1, b"b")]
        assert log.current_segment_id == 3  # next append opens a new segment


def test_reopen_appends_to_a_new_segment(tmp_path):
    write_records(tmp_path, [(1, b"first")])
    log, got = reopen(tmp_path, fsync=False)
    with log:
        assert got == [(0, 1, b"first")]
        log.append(1, b"second")
        assert log.segment_ids() == [0, 1]
    log, got = reopen(tmp_path, fsync=False)
    with log:
        assert got == [(0, 1, b"first"), (1, 1, b"second")]


def test_replay_must_precede_append(tmp_path):
    write_records(tmp_path, [(1, b"a"), (1, b"b")])
    with CommitLog(tmp_path, fsync=False) as log:
        with pytest.raises(CommitLogError, match="replay"):
            log.append(1, b"x")
        it = log.replay()
        next(it)  # partially consumed: still not allowed
        with pytest.raises(CommitLogError, match="replay"):
            log.append(1, b"x")
        list(it)
        log.append(1, b"c")
        with pytest.raises(CommitLogError, match="replay"):
            log.replay()
    with CommitLog(tmp_path / "fresh", fsync=False) as log:  # nothing to replay: no need
        log.append(1, b"x")


def test_close_is_idempotent(tmp_path):
    log = CommitLog(tmp_path)
    pos = log.append(1, b"x")
    log.close()
    log.close()
    log.wait_durable(pos)  # close synced it
    assert log.stats()["durable_position"] == pos
    with pytest.raises(CommitLogClosed):
        log.append(1, b"y")
    with pytest.raises(CommitLogClosed):
        log.rotate()
    with pytest.raises(CommitLogClosed):
        log.replay()
    log.sync()  # nothing unsynced: no-op


def test_remove_segments_before(tmp_path):
    with CommitLog(tmp_path, fsync=False) as log:
        for i in range(5):
            log.rotate()
            log.append(1, bytes([i]))
        assert log.segment_ids() == [0, 1, 2, 3, 4]
        assert log.remove_segments_before(3) == [0, 1, 2]
        assert log.segment_ids() == [3, 4]
        assert log.remove_segments_before(3) == []
        assert log.remove_segments_before(100) == [3]  # never the segment being written
        assert log.segment_ids() == [4]
        log.append(1, b"after")
    log, got = reopen(tmp_path, fsync=False)
    with log:
        assert got == [(4, 1, bytes([4])), (4, 1, b"after")]


def test_empty_and_header_only_segments(tmp_path, caplog):
    seg_path(tmp_path, 0).touch()  # crashed right after creating the file
    with CommitLog(tmp_path, fsync=False) as log:
        assert replay_all(log) == []
        log.rotate()  # header only
        assert log.current_segment_id == 1
    log, got = reopen(tmp_path, fsync=False)
    with log:
        assert got == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unknown_version_is_refused_not_truncated(tmp_path):
    head = struct.pack("<8sIQ", b"TSDBCLOG", 99, 0)
    data = head + struct.pack("<I", commitlog._crc(head)) + b"future stuff"
    seg_path(tmp_path, 0).write_bytes(data)
    with CommitLog(tmp_path, fsync=False) as log:
        with pytest.raises(CommitLogError, match="version"):
            replay_all(log)
    assert seg_path(tmp_path, 0).read_bytes() == data


# ---------------------------------------------------------------------------- damage


def test_torn_tail_at_every_offset(tmp_path, caplog):
    records = [(1, b"a" * 10), (2, b"b" * 100), (3, bytes(range(40)))]
    base = tmp_path / "base"
    write_records(base, records)
    pristine = seg_path(base, 0).read_bytes()
    last_start = HDR + sum(RECORD_HEADER_SIZE + len(p) for _, p in records[:-1])
    assert len(pristine) == last_start + RECORD_HEADER_SIZE + 40
    for cut in range(last_start, len(pristine) + 1):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        seg_path(d, 0).write_bytes(pristine[:cut])
        caplog.clear()
        log, got = reopen(d, fsync=False)
        with log:
            survivors = records if cut == len(pristine) else records[:-1]
            assert got == [(0, t, p) for t, p in survivors]
            expected_size = len(pristine) if cut == len(pristine) else last_start
            assert seg_path(d, 0).stat().st_size == expected_size
            warned = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert bool(warned) == (last_start < cut < len(pristine))
            log.append(7, b"new")
        log, got = reopen(d, fsync=False)
        with log:
            assert got == [*[(0, t, p) for t, p in survivors], (1, 7, b"new")]
            assert log.stats()["replay_truncations"] == 0  # truncation already persisted


def test_torn_segment_header(tmp_path, caplog):
    write_records(tmp_path, [(1, b"x")])
    for cut in range(1, HDR):
        seg_path(tmp_path, 1).write_bytes(commitlog.encode_segment_header(1)[:cut])
        log, got = reopen(tmp_path, fsync=False)
        log.close()
        assert got == [(0, 1, b"x")]
        assert seg_path(tmp_path, 1).stat().st_size == 0
    assert "torn segment header" in caplog.text


def _three_segments(directory, per_segment=6):
    records = []
    with CommitLog(directory, fsync=False) as log:
        for sid in range(3):
            log.rotate()
            for i in range(per_segment):
                payload = f"s{sid}r{i}".encode() * (i + 1)
                log.append(i, payload)
                records.append((sid, i, payload))
    return records


def test_bit_flips_in_a_middle_segment(tmp_path, caplog):
    base = tmp_path / "base"
    records = _three_segments(base)
    middle = [r for r in records if r[0] == 1]
    pristine = {sid: seg_path(base, sid).read_bytes() for sid in range(3)}
    spans = layout([len(p) for _, _, p in middle], 1 << 30)
    rng = random.Random(1234)
    bits = [rng.randrange(len(pristine[1]) * 8) for _ in range(40)]
    bits += [0, HDR * 8 - 1, HDR * 8, (HDR + 4) * 8, (HDR + 8) * 8]  # headers and fields
    for trial, bit in enumerate(bits):
        d = tmp_path / f"t{trial}"
        d.mkdir()
        for sid, data in pristine.items():
            data = bytearray(data)
            if sid == 1:
                data[bit // 8] ^= 1 << (bit % 8)
            seg_path(d, sid).write_bytes(bytes(data))
        caplog.clear()
        log, got = reopen(d, fsync=False)
        log.close()
        byte = bit // 8
        if byte < HDR:
            kept, cut_at = 0, 0
        else:
            kept = next(i for i, (_, start, end) in enumerate(spans) if start <= byte < end)
            cut_at = spans[kept][1]
        expected = [r for r in records if r[0] != 1 or r in middle[:kept]]
        assert got == expected, f"bit {bit}"
        assert seg_path(d, 1).stat().st_size == cut_at
        assert seg_path(d, 2).stat().st_size == len(pristine[2])
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and "NON-FINAL" in errors[0].getMessage()


def test_huge_length_field_is_corruption_not_a_crash(tmp_path):
    write_records(tmp_path, [(1, b"ok"), (1, b"bad"), (1, b"never")])
    path = seg_path(tmp_path, 0)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, HDR + 9 + 2 + 4, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    log, got = reopen(tmp_path, fsync=False)
    log.close()
    assert got == [(0, 1, b"ok")]


record_lists = st.lists(
    st.tuples(st.integers(0, 255), st.binary(max_size=200)), min_size=1, max_size=25
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=record_lists,
    segment_bytes=st.sampled_from([64, 300, 1000, 1 << 20]),
    damage=st.one_of(
        st.tuples(st.just("cut"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.floats(0, 1), st.floats(0, 1), st.integers(0, 7)),
        st.tuples(st.just("none")),
    ),
)
def test_property_replay_after_damage(records, segment_bytes, damage):
    spans = layout([len(p) for _, p in records], segment_bytes)
    n_segments = spans[-1][0] + 1
    with tempfile.TemporaryDirectory() as d:
        write_records(d, records, segment_bytes=segment_bytes)
        sizes = [seg_path(d, s).stat().st_size for s in range(n_segments)]
        assert sizes == [max(end for seg, _, end in spans if seg == s) for s in range(n_segments)]
        survives = [True] * len(records)
        expected_sizes = list(sizes)
        if damage[0] == "cut":
            last = n_segments - 1
            cut = int(damage[1] * sizes[last])
            os.truncate(seg_path(d, last), cut)
            for i, (seg, _, end) in enumerate(spans):
                if seg == last and end > cut:
                    survives[i] = False
            kept_ends = [end for i, (s, _, end) in enumerate(spans) if s == last and survives[i]]
            expected_sizes[last] = max(kept_ends) if kept_ends else (HDR if cut >= HDR else 0)
        elif damage[0] == "flip":
            seg = min(int(damage[1] * n_segments), n_segments - 1)
            byte = min(int(damage[2] * sizes[seg]), sizes[seg] - 1)
            with open(seg_path(d, seg), "r+b") as f:
                f.seek(byte)
                b = f.read(1)[0]
                f.seek(byte)
                f.write(bytes([b ^ (1 << damage[3])]))
            bad = [i for i, (s, start, end) in enumerate(spans) if s == seg and end > byte]
            first_bad_start = spans[bad[0]][1] if bad and byte >= HDR else 0
            for i in bad:
                survives[i] = False
            if byte < HDR:
                survives = [ok and spans[i][0] != seg for i, ok in enumerate(survives)]
            expected_sizes[seg] = first_bad_start if (bad or byte < HDR) else sizes[seg]
        log, got = reopen(d, fsync=False)
        with log:
            want = [(spans[i][0], t, p) for i, (t, p) in enumerate(records) if survives[i]]
            assert got == want
            assert [seg_path(d, s).stat().st_size for s in range(n_segments)] == expected_sizes
            log.append(3, b"after")
        log, got = reopen(d, fsync=False)
        log.close()
        assert got == [*want, (n_segments, 3, b"after")]


# ---------------------------------------------------------------------------- durability


class FsyncSpy:
    """Wraps commitlog._fdatasync: records (file name, size) of every *completed* fsync."""

    def __init__(self, monkeypatch, delay: float = 0.0, fail: OSError | None = None):
        self.real = commitlog._fdatasync
        self.delay = delay
        self.fail = fail
        self.completed: list[tuple[str, int]] = []
        self.dir_syncs = 0
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        monkeypatch.setattr(commitlog, "_fdatasync", self)
        real_dir = commitlog._fsync_dir

        def dir_sync(fd):
            real_dir(fd)
            self.dir_syncs += 1

        monkeypatch.setattr(commitlog, "_fsync_dir", dir_sync)

    def __call__(self, fd: int) -> None:
        self.gate.wait()
        if self.fail is not None:
            raise self.fail
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        size = os.fstat(fd).st_size
        self.real(fd)
        time.sleep(self.delay)
        with self.lock:
            self.completed.append((name, size))

    def snapshot(self) -> int:
        with self.lock:
            return len(self.completed)


def test_group_commit_acks_only_after_covering_fsync(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch, delay=0.002)
    log = CommitLog(tmp_path, segment_bytes=4096)
    acks: list[tuple[bytes, int]] = []
    acks_lock = threading.Lock()

    def worker(t: int) -> None:
        rng = random.Random(t)
        for i in range(40):
            payload = f"{t}:{i}:".encode() + bytes(rng.randrange(300))
            pos = log.append(1, payload)
            log.wait_durable(pos)
            seen = spy.snapshot()
            with acks_lock:
                acks.append((payload, seen))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stats = log.stats()
    log.close()
    assert stats["fsyncs"] < len(acks) / 2  # fsyncs were shared
    assert stats["fsync_seconds_total"] > 0 and stats["fsync_seconds_last"] > 0

    # where every record ended up (segment file, end offset)
    where = {}
    log, _ = reopen(tmp_path)
    offsets: dict[int, int] = {}
    for sid, _, payload in log.replay():
        off = offsets.get(sid, HDR) + RECORD_HEADER_SIZE + len(payload)
        offsets[sid] = off
        where[bytes(payload)] = (f"{sid:016d}.log", off)
    log.close()
    assert len(where) == len(acks) == 320
    assert len(offsets) > 3  # rotated a few times under concurrency
    for payload, seen in acks:
        name, end = where[payload]
        assert any(n == name and size >= end for n, size in spy.completed[:seen]), payload
    assert spy.dir_syncs >= 1


def test_unwaited_writes_are_synced_soon(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch)
    with CommitLog(tmp_path) as log:
        pos = log.append(1, b"nobody waits")
        deadline = time.monotonic() + 5
        while log.stats()["durable_position"] < pos and time.monotonic() < deadline:
            time.sleep(0.005)
        assert log.stats()["durable_position"] >= pos
        assert spy.completed


def test_sync_interval_gathers_and_sync_skips_it(tmp_path, monkeypatch):
    FsyncSpy(monkeypatch)
    with CommitLog(tmp_path, sync_interval=0.1) as log:
        barrier = threading.Barrier(10)

        def worker():
            barrier.wait()
            log.wait_durable(log.append(1, b"x" * 100))

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert log.stats()["fsyncs"] <= 3
    with CommitLog(tmp_path / "b", sync_interval=30) as log:
        log.append(1, b"x")
        t0 = time.monotonic()
        log.sync()
        assert time.monotonic() - t0 < 5
        assert log.stats()["durable_position"] == log.stats()["written_position"]


def test_wait_timeout(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch)
    spy.gate.clear()
    with CommitLog(tmp_path) as log:
        pos = log.append(1, b"x")
        with pytest.raises(TimeoutError):
            log.wait_durable(pos, timeout=0.05)
        spy.gate.set()
        log.wait_durable(pos, timeout=10)


def test_asyncio_waiters(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch, delay=0.002)
    log = CommitLog(tmp_path)

    async def one(i: int) -> int:
        pos = log.append(2, i.to_bytes(4, "little") * 100)
        await log.wait_durable_async(pos)
        assert log.stats()["durable_position"] >= pos
        return spy.snapshot()

    async def main() -> list[int]:
        blocked = asyncio.create_task(asyncio.sleep(0))  # the loop keeps running meanwhile
        seen = await asyncio.gather(*(one(i) for i in range(200)))
        await blocked
        # a cancelled waiter does not disturb the others
        spy.gate.clear()
        pos = log.append(1, b"c")
        task = asyncio.create_task(log.wait_durable_async(pos))
        await asyncio.sleep(0.01)
        task.cancel()
        other = asyncio.create_task(log.wait_durable_async(pos))
        spy.gate.set()
        await other
        with pytest.raises(asyncio.CancelledError):
            await task
        return list(seen)

    seen = asyncio.run(main())
    assert min(seen) >= 1
    assert log.stats()["fsyncs"] < 100
    assert log.stats()["async_waiters"] == 0
    assert threading.active_count() < 10  # no thread per waiter
    log.close()


def test_fsync_failure_is_reported_and_sticky(tmp_path, monkeypatch, caplog):
    spy = FsyncSpy(monkeypatch)
    log = CommitLog(tmp_path)
    ok = log.append(1, b"ok")
    log.wait_durable(ok)
    spy.fail = OSError(errno.EIO, "disk on fire")
    bad = log.append(1, b"lost?")
    with pytest.raises(CommitLogError, match="fsync failed") as info:
        log.wait_durable(bad)
    assert isinstance(info.value.__cause__, OSError)
    log.wait_durable(ok)  # covered by the earlier fsync: still fine

    async def async_wait():
        await log.wait_durable_async(bad)

    with pytest.raises(CommitLogError):
        asyncio.run(async_wait())
    with pytest.raises(CommitLogError, match="fsync failed"):
        log.append(1, b"more")
    with pytest.raises(CommitLogError):
        log.sync()
    assert log.stats()["durable_position"] == ok
    with pytest.raises(CommitLogError, match="unsynced"):
        log.close()
    log.close()  # second close is quiet
    assert "fsync failed" in caplog.text


def test_async_waiter_gets_fsync_error(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch)
    spy.gate.clear()
    spy.fail = OSError(errno.ENOSPC, "full")
    log = CommitLog(tmp_path)

    async def main():
        pos = log.append(1, b"x")
        task = asyncio.create_task(log.wait_durable_async(pos))
        await asyncio.sleep(0.01)
        spy.gate.set()
        with pytest.raises(CommitLogError, match="full"):
            await task

    asyncio.run(main())
    with pytest.raises(CommitLogError):
        log.close()


def test_write_failure_cuts_partial_record_and_is_sticky(tmp_path, monkeypatch):
    log = CommitLog(tmp_path)
    ok = log.append(1, b"first")
    real_writev = os.writev
    calls = []

    def failing_writev(fd, bufs):
        calls.append(fd)
        if len(calls) == 1:  # short write: half of the record header
            return real_writev(fd, [bytes(bufs[0])[:4]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(commitlog.os, "writev", failing_writev)
    with pytest.raises(CommitLogError, match="write failed"):
        log.append(1, b"second")
    monkeypatch.setattr(commitlog.os, "writev", real_writev)
    with pytest.raises(CommitLogError, match="write failed earlier"):
        log.append(1, b"third")
    log.wait_durable(ok)  # what was written before the failure still becomes durable
    log.close()
    assert seg_path(tmp_path, 0).stat().st_size == ok  # partial record cut off
    log, got = reopen(tmp_path)
    log.close()
    assert got == [(0, 1, b"first")]


# ---------------------------------------------------------------------------- real crashes

CHILD = r"""
import itertools, struct, sys, threading
from tsdb.storage.commitlog import CommitLog

directory, run = sys.argv[1], int(sys.argv[2])
log = CommitLog(directory, segment_bytes=32 << 10)
for _ in log.replay():
    pass
out = threading.Lock()

def payload(t, i):
    return struct.pack("<III", run, t, i) + bytes([(run + t + i) & 0xFF]) * ((i * 7919 + t) % 2000)

def worker(t):
    for i in itertools.count():
        pos = log.append(1 + t, payload(t, i))
        log.wait_durable(pos)
        with out:
            sys.stdout.write(f"{t} {i}\n")
            sys.stdout.flush()

for t in range(4):
    threading.Thread(target=worker, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_never_loses_acknowledged_records(tmp_path):
    rng = random.Random(int(time.time()))
    acked: set[tuple[int, int, int]] = set()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for run in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(run)],
            stdout=subprocess.PIPE,
            env=env,
        )
        lines: list[bytes] = []
        reader = threading.Thread(target=lines.extend, args=(child.stdout,))
        reader.start()
        time.sleep(rng.uniform(0.15, 0.6))  # sometimes during start-up/replay
        child.send_signal(signal.SIGKILL)
        child.wait()
        reader.join()
        for line in lines:
            if line.endswith(b"\n"):
                t, i = map(int, line.split())
                acked.add((run, t, i))
        ids = sorted(tmp_path.glob("*.log"))
        if ids and rng.random() < 0.5:  # and sometimes an unsynced tail turned to junk
            with open(ids[-1], "ab") as f:
                f.write(rng.randbytes(rng.randrange(1, 300)))

        log, got = reopen(tmp_path)
        log.close()
        seen: dict[tuple[int, int], int] = {}
        for _, rtype, payload in got:
            r, t, i = struct.unpack_from("<III", payload)
            assert rtype == 1 + t
            assert payload[12:] == bytes([(r + t + i) & 0xFF]) * ((i * 7919 + t) % 2000)
            assert seen.get((r, t), -1) == i - 1, "records of one writer replay in order"
            seen[(r, t)] = i
        missing = [a for a in acked if seen.get(a[:2], -1) < a[2]]
        assert not missing, f"acknowledged but not replayed: {sorted(missing)[:5]}"
    assert len(acked) > 50
