"""SIGKILL the writer at random moments many times; every acknowledged sample survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from tests import crash_writer
from tsdb.storage.database import Database
from tsdb.storage.labels import Matcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_and_kill(path: str, first: int, seconds: float) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_writer", path, str(first)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return [int(line) for line in out.split()]


def test_every_acknowledged_batch_survives_sigkill(tmp_path):
    rng = random.Random(1234)
    acked: set[int] = set()
    first = 0
    for _ in range(12):
        got = run_and_kill(str(tmp_path), first, rng.uniform(0.3, 1.5))
        acked.update(got)
        if got:
            first = max(got) + 1
    assert len(acked) > 100, "the writer made too little progress to prove anything"
    db = Database(tmp_path, crash_writer.options())
    res = db.select([Matcher("__name__", "=", "m")], crash_writer.T0, crash_writer.T0 + 10**9)
    assert len(res) == crash_writer.SERIES
    stored = {}
    for k in range(len(res)):
        _, t, v = res.series(k)
        stored[int(res.sids[k])] = dict(zip(t.tolist(), v.tolist(), strict=True))
    missing = []
    for i in sorted(acked):
        sids, t, v = crash_writer.batch(i)
        for s, ts, val in zip(sids.tolist(), t.tolist(), v.tolist(), strict=True):
            if stored[s].get(ts) != val:
                missing.append((i, s))
    assert not missing, f"{len(missing)} acknowledged samples lost, e.g. {missing[:5]}"
    assert np.all(np.diff(res.t[res.offsets[0]:res.offsets[1]]) > 0)
    db.close()
