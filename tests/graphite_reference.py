"""Regenerate the expectations that real graphite-web produced for the target parser and
the time-spec parser (``tests/data/graphite_targets.json``, ``graphite_attime.json``).

    python -m tests.graphite_reference

needs Debian's graphite-web (``apt-get install graphite-web``): graphite's grammar and
``parseATTime`` run under the system ``/usr/bin/python3``. The target corpus is a fixed
list of hand-written cases plus random concatenations of tricky pieces (seeded).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

DATA = Path(__file__).parent / "data"
SYSTEM_PYTHON = "/usr/bin/python3"

#: reads a JSON list of targets on stdin, writes graphite's parse of each, in a
#: canonical form: ["path", text] | ["call", name, args, kwargs, raw] | scalars |
#: ["template", body, args, kwargs] | ["error"]
_PARSE = r'''
import os, sys, json, warnings
warnings.filterwarnings("ignore")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
from graphite.render.grammar_unsafe import grammar

def scalar(t):
    if t.number:
        if t.number.integer: return ["int", int(t.number.integer)]
        if t.number.float: return ["float", float(t.number.float)]
        if t.number.scientific: return ["float", float(t.number.scientific[0])]
    if t.string: return ["str", t.string[1:-1]]
    if t.boolean: return ["bool", t.boolean[0] == "true"]
    if t.none: return ["none"]
    if t.infinity: return ["inf"]
    return ["?"]

def conv(t, piped=None):
    if t.template:
        tt = t.template
        return ["template", conv(tt), [scalar(a) for a in tt.args] if tt.args else [],
                [[k.argname, scalar(k.args[0])] for k in tt.kwargs] if tt.kwargs else []]
    if t.expression:
        if t.expression.pipedCalls.asList():
            return conv(t.expression.pipedCalls.pop(), t)
        return conv(t.expression)
    if t.pathExpression:
        return ["path", t.pathExpression]
    if t.call:
        args = [conv(a) for a in (t.call.args or [])]
        if piped is not None:
            args.insert(0, conv(piped))
        return ["call", t.call.funcname, args,
                [[k.argname, conv(k.args[0])] for k in t.call.kwargs], t.call.raw]
    return scalar(t)

out = []
for target in json.load(sys.stdin):
    try:
        out.append(conv(grammar.parseString(target)))
    except Exception:
        out.append(["error"])
print(json.dumps(out))
'''

#: reads [[spec, now, tz], ...]; writes graphite's epoch second for each, or "error"
_ATTIME = r'''
import os, sys, json, warnings
warnings.filterwarnings("ignore")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
import pytz
from datetime import datetime
from graphite.render.attime import parseATTime
from graphite.util import epoch
out = []
for spec, now, tz in json.load(sys.stdin):
    zone = pytz.timezone(tz)
    try:
        out.append(int(epoch(parseATTime(spec, zone, datetime.fromtimestamp(now, zone)))))
    except Exception:
        out.append("error")
print(json.dumps(out))
'''

TARGETS = [
    "servers.web01.cpu.user", "sumSeries(servers.*.cpu.user)", "a.b|scale(2)",
    "a.b | scale(2) | offset(1)", "aliasSub(a.b, '(^.*$)', '\\1 A')",
    'aliasSub(a.b, "web(\\d+)", "host-\\1")', "seriesByTag('name=disk.used', 'dc=eu')",
    "f(key=1)", "f(a, key=1)", "f(a, key=1, b)", "f(a, k=g(b, x=1))", "sumSeries(a.b",
    "a.b)junk", ")", "", "   ", "f(1e3, -2, 3.5, 'x''y', \"a\\\"b\")", "f(2x)", "f(1.x)",
    "f(true, False, none, inf, -inf)", "f(true.x)", "f(inf.x)", "f(trueish)",
    "a.{b,c}.d", "a.{b, c}", "a..b", "a.b.", "a\\(b.c", "a.b[1-3]?*", "a;tag=v",
    "a=b", "f(a=b)", "template(a.$1, 'x')", "template(a.$x, x='y')",
    "template(scale(a.b, $1), 2)", "template(a.b, f(1))", "f(1 , 2 )", "f(1\n)",
    "f( a , b )", "  f ( a ) ", "f()", "f(,)", "f(a,)", "f(1e+3)", "f(-1.5e-3)",
    "#A", "a.#A", "f('unterminated)", "f('a\\'b')", "f(a|g(1))", "a|", "a|g", "a|g()x",
    "x.y{a,b}z{c,d}", "a.{b,{c,d}}", "a.{}", "a.{b,}",
]

PIECES = ["sumSeries(", "scale(", "f(", "a.b", "a.*", "{x,y}", "[1-2]", ")", ")", ",", ", ",
          "'s'", '"d"', "'a''b'", "1", "-2", "3.5", "1e3", "2E-1", "true", "False", "none",
          "inf", "key=", "x=1", "|", " | ", "\\(", "\\.", "template(", "$1", ".", "..", " ",
          "seriesByTag('n=v')", "=", "'\\1 A'", "-inf", "2x", "\n", "#A", ";t=v"]

ATTIME = ["now", "-1h", "-5min", "-1d", "-1w", "-1mon", "-1y", "+15min", "-1h30min", "1748737800",
          "20250601", "19000101", "noon", "midnight", "teatime", "noon+yesterday",
          "6pm+today", "04:00_20110501", "04:00pm_20110501", "8am", "11pm", "yesterday",
          "tomorrow", "today", "monday", "sunday", "saturday-1w", "jan1", "december25",
          "12/31/99", "1/1/2024", "now-2h", "-5m", "-1", "bogus", "-", "+", "1h",
          "noon_tomorrow", "3:15_20240310", "2:30_20240310", "1:30_20241103",
          "now+1d", "monday+12h", "feb29", "0", "12345678", "20251301", "-1seconds",
          "-2hours", "-3days", "-1weeks", "-2months", "-1years", "-10s", " -1h ", "-1,h"]
NOWS = [1748743200, 1710054000, 1730613600]  # plain, DST start (US), DST end (US) days
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney"]


def _system(script: str, payload: object) -> list:
    proc = subprocess.run([SYSTEM_PYTHON, "-c", script], input=json.dumps(payload),
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def target_corpus(seed: int = 20251126, n: int = 600) -> list[str]:
    rng = random.Random(seed)
    randoms = ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 9))) for _ in range(n)]
    return TARGETS + randoms


def main() -> None:
    DATA.mkdir(exist_ok=True)
    targets = target_corpus()
    parsed = _system(_PARSE, targets)
    (DATA / "graphite_targets.json").write_text(json.dumps(
        [{"target": t, "graphite": p} for t, p in zip(targets, parsed, strict=True)],
        indent=0) + "\n")
    cases = [[s, now, tz] for s in ATTIME for now in NOWS for tz in ZONES]
    times = _system(_ATTIME, cases)
    (DATA / "graphite_attime.json").write_text(json.dumps(
        [{"spec": s, "now": now, "tz": tz, "graphite": t}
         for (s, now, tz), t in zip(cases, times, strict=True)], indent=0) + "\n")
    print(f"{len(targets)} targets, {len(cases)} time specs")


if __name__ == "__main__":
    main()
