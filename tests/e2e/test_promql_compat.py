"""PromQL compatibility against a real Prometheus 2.42 (the harness in
../shared/promql-compat): the same dataset backfilled into Prometheus and remote-written into
an empty `tsdb serve`, then every query of ``public.txt`` compared (range, instant and the
series/labels API checks).

Every check must pass (issue 4's bar: 100 %); :data:`PASS_FLOOR` also guards against the
harness silently running fewer checks. The failure message gives the score and the failing
queries.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, Store, free_port, require_binary

pytestmark = pytest.mark.e2e

#: checks that must pass (of 223 in public.txt with --range --instant --metadata)
PASS_FLOOR = 223

#: the harness lives beside the repository (../shared/promql-compat); PROMQL_COMPAT_DIR
#: overrides that
COMPAT_DIR = Path(os.environ.get("PROMQL_COMPAT_DIR", REPO.parent / "shared" / "promql-compat"))

_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def _run(argv: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          cwd=COMPAT_DIR)
    if proc.returncode not in (0, 1):  # compare.py: 1 = some checks failed
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    return proc


def _failures(report: str) -> str:
    """The FAIL blocks of compare.py's report (each failing check and its diff lines)."""
    lines = report.splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("FAIL "):
            inside = True
        elif not line.startswith(" "):
            inside = False
        if inside:
            out.append(line)
    return "\n".join(out)


def test_promql_compatibility(tmp_path):
    if not (COMPAT_DIR / "compare.py").is_file():
        pytest.fail(f"PromQL compatibility harness not found at {COMPAT_DIR}: it is expected "
                    "beside the repository in ../shared/promql-compat (or set "
                    "PROMQL_COMPAT_DIR)", pytrace=False)
    require_binary("prometheus", "prometheus")
    require_binary("promtool", "prometheus")
    dataset = tmp_path / "dataset"
    ref_dir = tmp_path / "reference"
    ref_port = free_port()
    reference = ["bash", str(COMPAT_DIR / "reference.sh")]
    where = ["--port", str(ref_port), "--dir", str(ref_dir)]
    _run([*reference, "start", *where, "--data", str(dataset)], 120, "reference.sh start")
    try:
        store = Store(tmp_path / "tsdb-data", tmp_path, name="compat-tsdb")
        try:
            target = f"http://127.0.0.1:{store.port}"
            load = _run([sys.executable, "load.py", f"{target}/api/v1/write",
                         "--data", str(dataset)], 120, "load.py")
            if load.returncode:
                pytest.fail(f"load.py could not write the dataset:\n{load.stderr}",
                            pytrace=False)
            compare = _run([sys.executable, "compare.py", "--ref", f"http://127.0.0.1:{ref_port}",
                            "--target", target, "--queries", "public.txt", "--range",
                            "--instant", "--metadata", "--list-unsupported", "-q"],
                           300, "compare.py")
        finally:
            store.proc.stop(timeout=30)
    finally:
        subprocess.run([*reference, "stop", *where, "--purge"], capture_output=True,
                       timeout=60, cwd=COMPAT_DIR)
    report = compare.stdout
    summary = _SUMMARY.findall(report)
    assert summary, f"no 'N passed, M failed' line in compare.py's output:\n{report[-4000:]}"
    passed, failed = map(int, summary[-1])
    total = passed + failed
    score = f"PromQL compatibility {passed}/{total} ({100 * passed / max(total, 1):.1f}%)"
    print(f"\n{score}\n{report}")
    assert passed >= PASS_FLOOR and failed == 0, (
        f"{score}: every check must pass (at least {PASS_FLOOR}).\n"
        f"Failing checks:\n{_failures(report)}\n\n{report[report.rfind('Per tier:'):]}")
