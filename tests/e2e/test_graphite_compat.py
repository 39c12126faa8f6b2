"""Graphite render compatibility against real graphite-web (the harness in
../shared/graphite-compat): Debian's carbon-cache writes the dataset into whisper files read
by Debian's graphite-web 1.1.8, the very same carbon lines go to an empty `tsdb serve`
through its carbon listener, then every entry of ``public.txt`` (render targets covering
every required function, and ``/metrics/find`` queries) is compared: series names and
tags, timestamps exactly, values within 1e-9 relative.

Every entry must pass (issue 5: every function in the list); :data:`PASS_FLOOR` also guards
against the harness silently running fewer entries. graphite-web and carbon missing is a
failure, not a skip (``scripts/test.sh`` installs them). The report, with the pass count
per function, is printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, Store, require_binary
from tests.support import free_port

pytestmark = pytest.mark.e2e

#: entries of public.txt that must pass (all 111)
PASS_FLOOR = 111

#: the harness lives beside the repository (../shared/graphite-compat); GRAPHITE_COMPAT_DIR
#: overrides that
COMPAT_DIR = Path(os.environ.get("GRAPHITE_COMPAT_DIR",
                                 REPO.parent / "shared" / "graphite-compat"))

_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def _run(argv: list[str], timeout: float, what: str, ok: tuple[int, ...] = (0,)
         ) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          cwd=COMPAT_DIR)
    if proc.returncode not in ok:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    return proc


def _by_function(results: list[dict]) -> str:
    """``function  passed/used`` for every function (and /metrics/find) of the run."""
    counts: dict[str, list[int]] = {}
    for r in results:
        for fn in r["functions"]:
            counts.setdefault(fn, [0, 0])[0 if r["ok"] else 1] += 1
    width = max(map(len, counts), default=10)
    return "\n".join(f"  {fn:<{width}} {p}/{p + f}" for fn, (p, f) in sorted(counts.items()))


def test_graphite_compatibility(tmp_path):
    if not (COMPAT_DIR / "compare.py").is_file():
        pytest.fail(f"Graphite compatibility harness not found at {COMPAT_DIR}: it is "
                    "expected beside the repository in ../shared/graphite-compat (or set "
                    "GRAPHITE_COMPAT_DIR)", pytrace=False)
    require_binary("graphite-manage", "graphite-web")
    require_binary("carbon-cache", "graphite-carbon")
    dataset = tmp_path / "dataset"
    ref_port, ref_carbon = free_port(), free_port()
    reference = ["bash", str(COMPAT_DIR / "reference.sh")]
    where = ["--port", str(ref_port), "--dir", str(tmp_path / "reference")]
    report_path = tmp_path / "compare.json"
    _run([*reference, "start", *where, "--carbon-port", str(ref_carbon), "--data",
          str(dataset)], 400, "reference.sh start")
    try:
        store = Store(tmp_path / "tsdb-data", tmp_path, name="graphite-compat-tsdb")
        try:
            target = f"http://127.0.0.1:{store.port}"
            _run([sys.executable, "load.py", f"127.0.0.1:{store.carbon_port}", "--data",
                  str(dataset), "--wait", target, "--timeout", "120"], 200, "load.py")
            compare = _run([sys.executable, "compare.py", "--ref",
                            f"http://127.0.0.1:{ref_port}", "--target", target, "--targets",
                            "public.txt", "--by-function", "--quiet", "--json",
                            str(report_path)], 300, "compare.py", ok=(0, 1))
        finally:
            store.proc.stop(timeout=30)
    finally:
        subprocess.run([*reference, "stop", *where, "--purge"], capture_output=True,
                       timeout=90, cwd=COMPAT_DIR)
    report = compare.stdout
    summary = _SUMMARY.findall(report)
    assert summary, f"no 'N passed, M failed' line in compare.py's output:\n{report[-4000:]}"
    passed, failed = map(int, summary[-1])
    total = passed + failed
    results = json.loads(report_path.read_text())["results"]
    score = f"Graphite compatibility {passed}/{total} ({100 * passed / max(total, 1):.1f}%)"
    print(f"\n{score}\nby function (passed/used):\n{_by_function(results)}\n{report}")
    assert passed >= PASS_FLOOR and failed == 0, (
        f"{score}: every entry must pass (at least {PASS_FLOOR}).\n{report[-6000:]}")
