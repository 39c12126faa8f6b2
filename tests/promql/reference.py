"""Check ``tests/promql/*.test`` scripts against a real Prometheus (2.42 is the reference).

    python3 -m tests.promql.reference tests/promql/*.test          # report differences
    python3 -m tests.promql.reference --update tests/promql/x.test # rewrite expectations

For every script a fresh Prometheus is started on a free 127.0.0.1 port with an empty
data directory and the remote-write receiver; the script's samples are sent through remote
write (time-ordered, stale markers as Prometheus' StaleNaN), then every ``eval`` runs
through the HTTP API. ``--update`` replaces each eval's expected lines by Prometheus'
answer (review the diff!). Not collected by pytest: it needs the ``prometheus`` binary.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import snappy

from tests.promql.script import STALE, Eval, Outcome, Script, check, parse_script, render
from tests.support import free_port
from wire.proto import remote_pb2

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]



class Prometheus:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="promql-ref-"))
        self.port = free_port()
        (self.dir / "prometheus.yml").write_text("global: {}\n")
        self.log = open(self.dir / "log.txt", "wb")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus") or "/usr/bin/prometheus",
             f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--web.enable-remote-write-receiver",
             "--storage.tsdb.retention.time=100y"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus did not start; see {self.dir}/log.txt")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, script: Script) -> None:
        samples = []   # (t, series index, value): one TimeSeries per sample, in time order
        for k, s in enumerate(script.series):
            for t, v in s.samples:
                samples.append((t, k, STALE_NAN if v == STALE else v))
        samples.sort(key=lambda x: (x[0], x[1]))
        for first in range(0, len(samples), 5000):
            req = remote_pb2.WriteRequest()
            for t, k, v in samples[first:first + 5000]:
                ts = req.timeseries.add()
                for name, value in script.series[k].labels:
                    ts.labels.add(name=name, value=value)
                ts.samples.add(value=v, timestamp=t)
            body = snappy.compress(req.SerializeToString())
            r = urllib.request.Request(self.url + "/api/v1/write", data=body, method="POST",
                                       headers={"Content-Encoding": "snappy",
                                                "Content-Type": "application/x-protobuf",
                                                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            with urllib.request.urlopen(r, timeout=30) as resp:
                assert resp.status in (200, 204), resp.status

    def run(self, ev: Eval) -> Outcome:
        if ev.kind == "instant":
            path = "/api/v1/query"
            params = {"query": ev.query, "time": _secs(ev.time_ms)}
        else:
            path = "/api/v1/query_range"
            params = {"query": ev.query, "start": _secs(ev.start_ms),
                      "end": _secs(ev.end_ms), "step": _secs(ev.step_ms)}
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(self.url + path, data=data, timeout=60) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        return outcome_from_json(body)


def _secs(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _num(s: str) -> float:
    return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}.get(s) or float(s)


def outcome_from_json(body: dict) -> Outcome:
    if body.get("status") != "success":
        return Outcome("error", error=f"{body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return Outcome(kind, [((), [(round(result[0] * 1000), _num(result[1]))])])
    if kind == "string":
        return Outcome(kind, [((), [(round(result[0] * 1000), result[1])])])
    rows = []
    for item in result or []:
        labels = tuple(sorted(item["metric"].items()))
        if kind == "vector":
            pts = [(round(item["value"][0] * 1000), _num(item["value"][1]))]
        else:
            pts = [(round(t * 1000), _num(v)) for t, v in item["values"]]
        rows.append((labels, pts))
    return Outcome(kind, rows)


def update_lines(script: Script, answers: dict[int, Outcome]) -> str:
    out: list[str] = []
    lines = script.lines
    by_line = {ev.line_no: ev for ev in script.evals}
    i = 0
    while i < len(lines):
        out.append(lines[i])
        ev = by_line.get(i + 1)
        i += 1
        if ev is None:
            continue
        # skip the old expectation lines (indented), keep indented comments
        while i < len(lines) and lines[i].startswith((" ", "\t")):
            if lines[i].strip().startswith("#"):
                out.append(lines[i])
            i += 1
        if ev.fail:
            continue
        out.extend("  " + line for line in render(ev, answers[ev.line_no]))
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scripts", nargs="+", type=Path)
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    failed = 0
    for path in args.scripts:
        script = parse_script(path)
        prom = Prometheus()
        try:
            prom.write(script)
            answers = {}
            for ev in script.evals:
                got = prom.run(ev)
                answers[ev.line_no] = got
                if ev.fail and got.error is None:
                    print(f"{path}:{ev.line_no}: Prometheus does not fail: {ev.query}")
                    failed += 1
                elif not ev.fail and got.error is not None:
                    print(f"{path}:{ev.line_no}: Prometheus fails: {got.error}: {ev.query}")
                    failed += 1
                elif not args.update:
                    problems = check(ev, got)
                    if problems:
                        failed += 1
                        print(f"{path}:{ev.line_no}: {ev.query}")
                        for p in problems:
                            print("    " + p)
            if args.update:
                path.write_text(update_lines(script, answers))
        finally:
            prom.stop()
        print(f"{path}: {len(script.evals)} evals checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
