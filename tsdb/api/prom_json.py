"""The Prometheus API's JSON: the response envelope and the encoding of query results.

Bodies are assembled as text rather than through ``json.dumps`` of nested lists, because
Prometheus prints timestamps and sample values in its own way and because a range query may
return millions of points. Prometheus 2.42 prints (checked against its binary):

* points of vectors and matrices (``marshalPointJSON``): the timestamp as a JSON number of
  seconds, the integer part then ``.`` and exactly three digits only when the milliseconds
  are not zero (``1435781451``, ``1435781451.050``); the value as a JSON string in Go's
  shortest round-trip digits, fixed notation (``strconv.FormatFloat(v, 'f', -1, 64)``) but
  exponent notation when ``|v| < 1e-6`` or ``|v| >= 1e21`` (``"1e-07"``, ``"1e+21"``);
* scalars and strings (their own ``MarshalJSON``): the timestamp as Go's ``encoding/json``
  prints ``float64(t) / 1000`` (``1435781451.05``), a scalar's value always in fixed
  notation (``"0.0000001"``);
* special values as ``"NaN"``, ``"+Inf"`` and ``"-Inf"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

import numpy as np

from tsdb.query.promql.goformat import format_float_f as format_fixed
from tsdb.query.promql.goformat import special_name
from tsdb.query.promql.result import QueryResult
from tsdb.storage.labels import Labels

#: HTTP status of each Prometheus ``errorType`` (``respondError``); others answer 500
ERROR_STATUS = {"bad_data": 400, "execution": 422, "canceled": 503, "timeout": 503,
                "internal": 500, "not_found": 404, "unavailable": 500}

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def format_value(v: float) -> str:
    """The value of a vector or matrix point as Prometheus prints it (without quotes)."""
    text = repr(v)
    if "e" not in text:
        # repr uses fixed notation for 1e-4 <= |v| < 1e16, with the same shortest digits
        # as Go, but writes integers as "12.0" (and specials as "nan", "inf")
        if text[-1] == "0" and text.endswith(".0"):
            return text[:-2]
        return text if text[-1].isdigit() else special_name(v)
    if 1e-6 <= abs(v) < 1e21:
        return format(Decimal(text), "f")  # Go stays in fixed notation, repr does not
    return text  # both exponent form: Python's "1e-07", "1.5e+300" are Go's too


def format_timestamp(ms: int) -> str:
    """Milliseconds as Prometheus' JSON number of seconds."""
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    seconds, frac = divmod(ms, 1000)
    return f"{sign}{seconds}.{frac:03d}" if frac else f"{sign}{seconds}"


def format_seconds(ms: int) -> str:
    """Milliseconds as Go's ``encoding/json`` prints ``float64(ms) / 1000`` (the timestamp
    of a scalar or string result). Below 1e21 and with millisecond resolution that is
    always the fixed notation."""
    return format_fixed(ms / 1000)


def encode_string(s: str) -> str:
    return _encode_str(s)


def encode_labels(labels: Labels) -> str:
    """A label set as a JSON object (``labels`` are sorted by name, like Go's map output)."""
    return "{" + ",".join(f"{_encode_str(n)}:{_encode_str(v)}" for n, v in labels) + "}"


def encode_json(data: object) -> str:
    """Any other ``data`` (lists of names, label maps, status objects)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


#: ".mmm" for each millisecond part (none for 0), to build many timestamps in one numpy pass
_FRACTIONS = np.array([""] + [f".{ms:03d}" for ms in range(1, 1000)], dtype=object)


def _timestamps(t_ms: np.ndarray) -> list[str]:
    """:func:`format_timestamp` of every element, vectorised for the usual t >= 0."""
    if len(t_ms) == 0:
        return []
    if t_ms.min() < 0:
        return list(map(format_timestamp, t_ms.tolist()))
    seconds, millis = np.divmod(t_ms.astype(np.int64, copy=False), 1000)
    return (seconds.astype(str).astype(object) + _FRACTIONS[millis]).tolist()


def _points(t_ms: np.ndarray, values: np.ndarray) -> str:
    return ",".join(f'[{t},"{v}"]' for t, v in zip(_timestamps(t_ms),
                                                   map(format_value, values.tolist()),
                                                   strict=True))


def encode_query_data(result: QueryResult) -> str:
    """``{"resultType": ..., "result": ...}`` of a query."""
    rtype = result.result_type
    if rtype == "scalar":
        assert result.scalar is not None
        t, v = result.scalar
        body = f'[{format_seconds(t)},"{format_fixed(v)}"]'
    elif rtype == "string":
        assert result.string is not None
        t, s = result.string
        body = f"[{format_seconds(t)},{_encode_str(s)}]"
    elif rtype == "vector":
        body = "[" + ",".join(
            f'{{"metric":{encode_labels(labels)},'
            f'"value":[{format_timestamp(int(t[0]))},"{format_value(float(v[0]))}"]}}'
            for labels, t, v in result.series) + "]"
    elif rtype == "matrix":
        body = "[" + ",".join(
            f'{{"metric":{encode_labels(labels)},"values":[{_points(t, v)}]}}'
            for labels, t, v in result.series if len(t)) + "]"
    else:
        raise ValueError(f"unknown result type {rtype!r}")
    return f'{{"resultType":"{rtype}","result":{body}}}'


def success_body(data_json: str, warnings: Sequence[str] = ()) -> str:
    """The success envelope around already encoded ``data``."""
    if warnings:
        return (f'{{"status":"success","data":{data_json},'
                f'"warnings":{encode_json(list(warnings))}}}')
    return f'{{"status":"success","data":{data_json}}}'


def error_body(error_type: str, message: str, warnings: Iterable[str] = ()) -> str:
    doc: dict[str, object] = {"status": "error", "errorType": error_type, "error": message}
    warnings = list(warnings)
    if warnings:
        doc["warnings"] = warnings
    return encode_json(doc)
