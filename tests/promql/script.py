"""A small data-driven format for pinning PromQL behaviour, in the spirit of Prometheus'
``promql/testdata/*.test`` scripts.

```
# comment
load 15s                                   # sample i of every series below at i * 15s
  http_requests{job="api", code="200"}  0+10x40      # 0 10 20 ... 400
  flaky{instance="a"}  1 2 _ _ 5 stale _x3 9          # _ = no sample, stale = stale marker

eval instant at 5m  sum by (job) (rate(http_requests[1m]))
  {job="api"}  0.6666666666666666

eval range from 0 to 10m step 1m  flaky
  flaky{instance="a"}  1 _ 5 _ 9 ...                  # one value (or _) per step

eval_ordered instant at 1m  sort_desc(http_requests)  # row order is checked too
eval_fail instant at 1m  foo + on() bar               # must fail (message not compared)
```

Expected values for instant queries are one number per series (``{labels} v``), a bare
number for a scalar result, a double-quoted string for a string result, and ``v@t`` tokens
(``t`` in seconds) for a range-vector result. Times in ``eval`` lines are seconds or
durations (``90s``, ``1h30m``). Several ``load`` blocks add up.

Values compare with a relative tolerance of 1e-9 (Prometheus and we may sum in different
orders); NaN equals NaN.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

STALE = "stale"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
          "w": 604_800_000, "y": 31_536_000_000}


def parse_time_ms(text: str) -> int:
    """``90`` (seconds, may be fractional or negative), ``90s``, ``1h30m``, ``500ms``."""
    text = text.strip()
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f"bad time {text!r}")
    return sign * round(total)


def _unquote(s: str, i: int) -> tuple[str, int]:
    """Parse a double-quoted Go-style string starting at ``s[i] == '"'``."""
    assert s[i] == '"'
    out = []
    i += 1
    while s[i] != '"':
        c = s[i]
        if c == "\\":
            nxt = s[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out), i + 1


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def parse_series(text: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """``name{a="b"} rest`` -> (sorted labels, rest of the line)."""
    i = 0
    labels: dict[str, str] = {}
    m = _NAME.match(text, i)
    if m:
        labels["__name__"] = m.group(0)
        i = m.end()
    if i < len(text) and text[i] == "{":
        i += 1
        while True:
            while text[i] in " ,":
                i += 1
            if text[i] == "}":
                i += 1
                break
            m = _NAME.match(text, i)
            if not m:
                raise ValueError(f"bad label name in {text!r}")
            name = m.group(0)
            i = m.end()
            while text[i] == " ":
                i += 1
            if text[i] != "=":
                raise ValueError(f"expected = in {text!r}")
            i += 1
            while text[i] == " ":
                i += 1
            value, i = _unquote(text, i)
            labels[name] = value
    elif not m:
        raise ValueError(f"bad series {text!r}")
    return tuple(sorted((k, v) for k, v in labels.items() if v)), text[i:].strip()


def parse_number(tok: str) -> float:
    low = tok.lower()
    if low in ("nan",):
        return math.nan
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    return float(tok)


def _sequence(head: str, times: int) -> list[float]:
    """``a+b`` / ``a-b`` / ``a`` repeated ``times + 1`` times (``a + k*b``)."""
    try:
        return [parse_number(head)] * (times + 1)
    except ValueError:
        pass
    for k in range(1, len(head)):
        if head[k] in "+-" and head[k - 1] not in "eE":
            a, b = parse_number(head[:k]), parse_number(head[k + 1:])
            b = b if head[k] == "+" else -b
            return [a + b * j for j in range(times + 1)]
    raise ValueError(f"bad value sequence {head!r}")


def expand_values(text: str) -> list[float | str | None]:
    """``0+1x3 _ 5 _x2 stale`` -> [0, 1, 2, 3, None, 5, None, None, 'stale']."""
    out: list[float | str | None] = []
    for tok in text.split():
        if tok == "_":
            out.append(None)
        elif tok.startswith("_x"):
            out.extend([None] * int(tok[2:]))
        elif tok == STALE:
            out.append(STALE)
        elif (m := re.fullmatch(r"(.+)x(\d+)", tok)) is not None:
            out.extend(_sequence(m.group(1), int(m.group(2))))
        else:
            out.append(parse_number(tok))
    return out


@dataclass
class Series:
    labels: tuple[tuple[str, str], ...]
    samples: list[tuple[int, float | str]]   # (t ms, value or STALE)


@dataclass
class Expected:
    labels: tuple[tuple[str, str], ...] | None   # None: scalar or string result
    values: list                                   # floats / None per step, or (t, v) pairs
    text: str                                      # the line as written


@dataclass
class Eval:
    line_no: int
    kind: str                  # "instant" | "range"
    query: str
    time_ms: int = 0
    start_ms: int = 0
    end_ms: int = 0
    step_ms: int = 0
    fail: bool = False
    ordered: bool = False
    expected: list[Expected] = field(default_factory=list)
    header: str = ""           # the eval line as written (for --update)


@dataclass
class Script:
    path: Path
    series: list[Series]
    evals: list[Eval]
    lines: list[str]


_EVAL = re.compile(r"^(eval|eval_fail|eval_ordered)\s+(instant|range)\s+(.*)$")
_INSTANT = re.compile(r"^at\s+(\S+)\s+(.+)$")
_RANGE = re.compile(r"^from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$")


def _strip_comment(line: str) -> str:
    # a '#' starts a comment only at the beginning of the (indented) line: queries and
    # label values may contain '#'
    return "" if line.lstrip().startswith("#") else line.rstrip()


def parse_expected(text: str, kind: str) -> Expected:
    text = text.strip()
    if text.startswith('"'):
        value, _ = _unquote(text, 0)
        return Expected(None, [value], text)
    if re.fullmatch(r"[-+]?(\d|\.|[eE]|inf|Inf|NaN|nan)[\w.+\-]*", text):
        return Expected(None, [parse_number(text)], text)
    labels, rest = parse_series(text)
    if "@" in rest:
        pairs = []
        for tok in rest.split():
            v, t = tok.split("@")
            pairs.append((parse_time_ms(t), parse_number(v)))
        return Expected(labels, pairs, text)
    return Expected(labels, expand_values(rest), text)


def parse_script(path: Path) -> Script:
    lines = path.read_text().splitlines()
    series: dict[tuple, Series] = {}
    evals: list[Eval] = []
    i = 0
    while i < len(lines):
        line = _strip_comment(lines[i])
        if not line.strip():
            i += 1
            continue
        if line.startswith("load "):
            interval = parse_time_ms(line.split()[1])
            i += 1
            while i < len(lines) and (lines[i].startswith((" ", "\t")) or
                                      not lines[i].strip()):
                body = _strip_comment(lines[i]).strip()
                i += 1
                if not body:
                    continue
                labels, rest = parse_series(body)
                s = series.setdefault(labels, Series(labels, []))
                for k, v in enumerate(expand_values(rest)):
                    if v is not None:
                        s.samples.append((k * interval, v))
            continue
        m = _EVAL.match(line)
        if not m:
            raise ValueError(f"{path}:{i + 1}: cannot parse {line!r}")
        verb, kind, rest = m.groups()
        ev = Eval(i + 1, kind, "", fail=verb == "eval_fail", ordered=verb == "eval_ordered",
                  header=line)
        if kind == "instant":
            mm = _INSTANT.match(rest)
            if not mm:
                raise ValueError(f"{path}:{i + 1}: expected 'at T QUERY'")
            ev.time_ms, ev.query = parse_time_ms(mm.group(1)), mm.group(2).strip()
        else:
            mm = _RANGE.match(rest)
            if not mm:
                raise ValueError(f"{path}:{i + 1}: expected 'from A to B step S QUERY'")
            ev.start_ms, ev.end_ms, ev.step_ms = (parse_time_ms(mm.group(k)) for k in (1, 2, 3))
            ev.query = mm.group(4).strip()
        i += 1
        while i < len(lines) and lines[i].startswith((" ", "\t")):
            body = _strip_comment(lines[i]).strip()
            i += 1
            if body:
                ev.expected.append(parse_expected(body, kind))
        evals.append(ev)
    for s in series.values():
        s.samples.sort(key=lambda p: p[0])
    return Script(path, list(series.values()), evals, lines)


# --- comparing --------------------------------------------------------------------------

REL_TOL = 1e-9
ABS_TOL = 1e-12


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@dataclass
class Outcome:
    """A query's answer in the script's terms: ``kind`` is scalar/string/vector/matrix;
    ``rows`` holds (labels, [(t ms, v)...]) in answer order."""

    kind: str
    rows: list = field(default_factory=list)
    error: str | None = None


def check(ev: Eval, got: Outcome) -> list[str]:
    """Differences between the expectation and an answer (empty: it matches)."""
    if ev.fail:
        return [] if got.error is not None else [f"expected an error, got {got.kind}"]
    if got.error is not None:
        return [f"unexpected error: {got.error}"]
    problems: list[str] = []
    if got.kind in ("scalar", "string"):
        if len(ev.expected) != 1 or ev.expected[0].labels is not None:
            return [f"got a {got.kind} {got.rows[0][1]!r}, expected series"]
        want = ev.expected[0].values[0]
        have = got.rows[0][1][0][1]
        same = want == have if got.kind == "string" else close(want, have)
        return [] if same else [f"{got.kind}: expected {want!r}, got {have!r}"]
    steps = (list(range(ev.start_ms, ev.end_ms + 1, ev.step_ms)) if ev.kind == "range"
             else [ev.time_ms])
    want_rows = {}
    for e in ev.expected:
        if e.labels is None:
            return [f"expected a scalar, got {got.kind}"]
        if e.labels in want_rows:
            problems.append(f"series listed twice: {e.text}")
        if e.values and isinstance(e.values[0], tuple):
            pts = list(e.values)
        else:
            if len(e.values) != len(steps):
                problems.append(f"{e.text}: {len(e.values)} values for {len(steps)} steps")
            pts = [(t, v) for t, v in zip(steps, e.values, strict=False) if v is not None]
        want_rows[e.labels] = pts
    have_rows = {}
    for labels, pts in got.rows:
        if labels in have_rows:
            problems.append(f"answer holds {fmt_labels(labels)} twice")
        have_rows[labels] = pts
    for labels in want_rows.keys() - have_rows.keys():
        problems.append(f"missing {fmt_labels(labels)}")
    for labels in have_rows.keys() - want_rows.keys():
        problems.append(f"unexpected {fmt_labels(labels)} {have_rows[labels]}")
    for labels in want_rows.keys() & have_rows.keys():
        w, h = want_rows[labels], have_rows[labels]
        if len(w) != len(h) or any(tw != th or not close(vw, vh)
                                   for (tw, vw), (th, vh) in zip(w, h, strict=False)):
            problems.append(f"{fmt_labels(labels)}: expected {w}, got {h}")
    if ev.ordered and not problems:
        want_order = [e.labels for e in ev.expected]
        have_order = [labels for labels, _ in got.rows]
        if want_order != have_order:
            problems.append(f"order: expected {want_order}, got {have_order}")
    return problems


def fmt_labels(labels) -> str:
    d = dict(labels)
    name = d.pop("__name__", "")
    inner = ", ".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                   .replace("\n", "\\n")) for k, v in sorted(d.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


def fmt_number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    r = repr(v)
    return r[:-2] if r.endswith(".0") else r


def render(ev: Eval, got: Outcome) -> list[str]:
    """Expected-output lines describing ``got`` (used by ``reference.py --update``)."""
    if got.error is not None:
        return []
    if got.kind == "scalar":
        return [fmt_number(got.rows[0][1][0][1])]
    if got.kind == "string":
        text = got.rows[0][1][0][1]
        return ['"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"']
    rows = got.rows if ev.ordered else sorted(got.rows, key=lambda r: r[0])
    out = []
    for labels, pts in rows:
        if got.kind == "matrix" and ev.kind == "instant":
            vals = " ".join(f"{fmt_number(v)}@{fmt_number(t / 1000)}" for t, v in pts)
        elif ev.kind == "range":
            by_t = dict(pts)
            steps = range(ev.start_ms, ev.end_ms + 1, ev.step_ms)
            vals = " ".join(fmt_number(by_t[t]) if t in by_t else "_" for t in steps)
        else:
            vals = fmt_number(pts[0][1])
        out.append(f"{fmt_labels(labels)} {vals}")
    return out
