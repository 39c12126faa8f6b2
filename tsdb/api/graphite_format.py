"""graphite-web's render output formats: ``json`` (with ``jsonp``, ``pretty``,
``noNullPoints``), ``csv`` and ``raw``, written from whole value matrices.

JSON is graphite-web's: a list of ``{"target", "tags", "datapoints": [[value, ts], ...]}``,
nulls for missing points, ``1e9999``/``-1e9999`` for infinities (strict JSON parsers and
Grafana reject ``Infinity``), tag values as strings.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, tzinfo

import numpy as np

from tsdb.query.graphite.consolidate import Rendered


def _cells(values: np.ndarray) -> list[list[object]]:
    """Rows of Python floats with None for NaN (one vectorised conversion)."""
    cells = values.astype(object)
    cells[np.isnan(values)] = None
    return cells.tolist()


def _points(values: list[float], stamps: list[str]) -> str:
    """``[[v,t],...]`` from Python floats (their shortest repr, as json writes them) and
    timestamp strings; NaN becomes null, infinities +-1e9999."""
    if not values:
        return "[]"
    text = "[[" + "],[".join(map(",".join, zip(map(repr, values), stamps, strict=True))) + "]]"
    # the text holds only numbers, so these words can only be reprs of nan and inf
    return text.replace("nan", "null").replace("inf", "1e9999")


def encode_json(rendered: list[Rendered], no_null_points: bool = False,
                pretty: bool = False) -> str:
    """The render JSON; ``pretty`` puts one series per line."""
    parts: list[str] = []
    for r in rendered:
        present = ~np.isnan(r.values)
        all_stamps = list(map(str, r.timestamps.tolist()))
        for i, name in enumerate(r.names):
            if no_null_points:
                keep = present[i]
                if not keep.any():
                    continue
                points = _points(r.values[i][keep].tolist(),
                                 list(map(str, r.timestamps[keep].tolist())))
            else:
                points = _points(r.values[i].tolist(), all_stamps)
            tags = {k: str(v) for k, v in r.tags[i].items()}
            parts.append('{"target": %s, "tags": %s, "datapoints": %s}'
                         % (json.dumps(name), json.dumps(tags), points))
    if pretty:
        return "[\n  " + ",\n  ".join(parts) + "\n]\n" if parts else "[]\n"
    return "[" + ", ".join(parts) + "]"


def encode_csv(rendered: list[Rendered], tz: tzinfo) -> str:
    """``name,YYYY-mm-dd HH:MM:SS,value`` per point (local time in ``tz``), empty value for
    null, as graphite-web's ``csv.writer(dialect='excel')``."""
    out = io.StringIO()
    writer = csv.writer(out, dialect="excel")
    for r in rendered:
        stamps = [datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")
                  for t in r.timestamps.tolist()]
        for name, row in zip(r.names, _cells(r.values), strict=True):
            writer.writerows(zip([name] * len(stamps), stamps, row, strict=True))
    return out.getvalue()


def encode_raw(rendered: list[Rendered]) -> str:
    """``name,start,end,step|v1,v2,...`` per series (``None`` for null, Python reprs)."""
    lines: list[str] = []
    for r in rendered:
        for name, row in zip(r.names, _cells(r.values), strict=True):
            lines.append("%s,%d,%d,%d|%s\n" % (name, r.start, r.end, r.step,
                                              ",".join(map(repr, row))))
    return "".join(lines)
