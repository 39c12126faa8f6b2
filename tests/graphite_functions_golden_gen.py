"""Record graphite-web's answers for the function-library golden test.

    python tests/graphite_functions_golden_gen.py --ref http://127.0.0.1:18080 \
        TARGETS_FILE [TARGETS_FILE ...]

Needs a reference graphite-web loaded with the compat dataset (../shared/graphite-compat:
``reference.sh start --port 18080``). For each render entry (compare.py's file format;
``@find``, ``&&``, ``maxDataPoints`` and ``noNullPoints`` entries are skipped) it stores
the reference's status and series, and every raw fetch our evaluation of the target makes
(path patterns and ``seriesByTag`` calls over a time range), answered by the reference,
(an entry option ``xFilesFactor=X`` is sent as the request's ``xFilesFactor``)
into ``tests/data/graphite_functions_golden.json.gz``. The test then replays the fetches.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.graphite_eval import evaluate, series_from_json  # noqa: E402
from tsdb.query.graphite.functions import GraphiteError  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                   "graphite_functions_golden.json.gz")
DEFAULT_WINDOW = (1748739600, 1748740500)       # 01:00 .. 01:15 UTC of the dataset
ENTRY = re.compile(r"^(.*?)\s+#\s*tier:\s*([\w-]+)\s*(?:;\s*(.*))?$")


def render(ref: str, target: str, start: int, end: int,
           xfiles_factor: float | None = None) -> tuple[int, object]:
    form: dict[str, object] = {"target": target, "from": start, "until": end, "format": "json"}
    if xfiles_factor is not None:
        form["xFilesFactor"] = xfiles_factor
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(ref + "/render", data, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def compact(items: list[dict]) -> list[list]:
    out = []
    for s in items:
        ts = [p[1] for p in s["datapoints"]]
        step = ts[1] - ts[0] if len(ts) > 1 else 0
        out.append([s["target"], s["tags"], ts[0] if ts else 0, step,
                    [p[0] for p in s["datapoints"]]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    fetches: dict[str, list] = {}
    cases = []

    def fetch(expr: str, start: int, end: int):  # noqa: ANN202
        status, items = render(args.ref, expr, start, end)
        if status != 200:
            fetches["%s|%d|%d" % (expr, start, end)] = status  # type: ignore[assignment]
            raise GraphiteError("reference fetch of %s failed: %s" % (expr, status), status)
        fetches["%s|%d|%d" % (expr, start, end)] = compact(items)  # type: ignore[arg-type]
        return series_from_json(items, expr)  # type: ignore[arg-type]

    for path in args.targets:
        for line in open(path):
            m = ENTRY.match(line.strip())
            if not m or line.startswith(("#", "@")):
                continue
            target = m.group(1).strip()
            opts = dict(re.findall(r"(\w+)=([\w.]+)", m.group(3) or ""))
            if "&&" in target or "maxDataPoints" in opts or "noNullPoints" in opts:
                continue
            start = int(opts.get("from", DEFAULT_WINDOW[0]))
            end = int(opts.get("until", DEFAULT_WINDOW[1]))
            xff = float(opts["xFilesFactor"]) if "xFilesFactor" in opts else None
            status, items = render(args.ref, target, start, end, xff)
            try:
                evaluate(target, start, end, fetch, {"xFilesFactor": xff})
            except GraphiteError:
                pass
            cases.append({"target": target, "from": start, "until": end, "status": status,
                          "xFilesFactor": xff,
                          "ordered": "ordered" in (m.group(3) or ""),
                          "series": compact(items) if status == 200 else None})
    payload = json.dumps({"fetches": fetches, "cases": cases}, separators=(",", ":"))
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(payload.encode())                  # mtime 0: the same answers, the same bytes
    print("%d cases, %d fetches -> %s" % (len(cases), len(fetches), args.out))


if __name__ == "__main__":
    main()
