"""Parameter parsing and JSON encoding of the Prometheus API (tsdb/api/params.py,
tsdb/api/prom_json.py), against what Prometheus 2.42 prints and accepts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tsdb.api.metadata_api import unescape_label_name
from tsdb.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ParamError,
    parse_duration,
    parse_limit,
    parse_time,
    parse_time_param,
)
from tsdb.api.prom_json import (
    encode_labels,
    encode_query_data,
    error_body,
    format_fixed,
    format_seconds,
    format_timestamp,
    format_value,
    success_body,
)
from tsdb.query.promql.result import QueryResult

# --- values: Go's strconv.FormatFloat(v, 'f' or 'e', -1, 64) ------------------------------
# Points of vectors and matrices switch to the exponent form below 1e-6 and from 1e21 on;
# scalars never do (both checked against the Prometheus 2.42 binary).


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (2.0, "2"), (-1.5, "-1.5"), (0.1, "0.1"),
    (123456789012.0, "123456789012"), (1e15, "1000000000000000"),
    (1e16, "10000000000000000"), (1.2345e20, "123450000000000000000"),
    (1e21, "1e+21"), (1.5e300, "1.5e+300"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (1e-6, "0.000001"), (1.5e-5, "0.000015"), (1e-4, "0.0001"), (9.99e-7, "9.99e-07"),
    (1e-7, "1e-07"), (5e-324, "5e-324"), (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
    (2.0**53 + 2, "9007199254740994"), (1/3, "0.3333333333333333"),
    (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
])
def test_value_format_matches_go(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("value, text", [
    (1e-7, "0.0000001"), (1e21, "1000000000000000000000"), (2.0, "2"), (-0.0, "-0"),
    (5e-324, "0." + "0" * 323 + "5"), (math.nan, "NaN"), (-math.inf, "-Inf"), (0.1, "0.1"),
])
def test_scalar_value_format_never_uses_an_exponent(value, text):
    assert format_fixed(value) == text


def test_value_format_matches_numpy_reference_on_random_bits():
    """numpy's shortest-digit formatters reproduce Go's output (spec §4)."""
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.integers(0, 2**64, 20_000, dtype=np.uint64).view(np.float64),
        rng.normal(0, 1e3, 5000), np.round(rng.normal(0, 1e6, 5000), 2),
        10.0 ** rng.uniform(-8, 23, 5000)])
    for v in values.tolist():
        if not math.isfinite(v):
            continue
        if v == 0 or 1e-6 <= abs(v) < 1e21:
            want = np.format_float_positional(v, unique=True, trim="-")
        else:
            want = np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
        assert format_value(v) == want, v
        assert format_fixed(v) == np.format_float_positional(v, unique=True, trim="-"), v


# --- timestamps: seconds, three decimals only when the ms part is not zero ----------------


@pytest.mark.parametrize("ms, text", [
    (1704583800000, "1704583800"), (1704586633500, "1704586633.500"),
    (1435781451781, "1435781451.781"), (1435781451050, "1435781451.050"),
    (4000, "4"), (0, "0"), (7, "0.007"), (-1500, "-1.500"), (-1000, "-1"),
])
def test_timestamp_format(ms, text):
    assert format_timestamp(ms) == text
    assert json.loads(text) == ms / 1000


@pytest.mark.parametrize("ms, text", [
    (4000, "4"), (1704586633500, "1704586633.5"), (1704586633050, "1704586633.05"),
    (-1500, "-1.5"), (0, "0"), (7, "0.007"),
])
def test_scalar_timestamp_format(ms, text):
    """Scalars and strings print float64(t)/1000 with Go's encoding/json."""
    assert format_seconds(ms) == text


# --- envelope and results -----------------------------------------------------------------


def test_scalar_result_is_the_grafana_health_check_answer():
    data = encode_query_data(QueryResult("scalar", scalar=(4000, 2.0)))
    assert success_body(data) == '{"status":"success","data":{"resultType":"scalar",' \
                                 '"result":[4,"2"]}}'


def test_vector_matrix_and_string_results():
    labels = (("__name__", "up"), ("job", 'a"b'), ("zone", "Zürich"))
    t = np.array([1000, 16500], np.int64)
    v = np.array([1.0, np.nan])
    matrix = json.loads(encode_query_data(QueryResult("matrix", series=[
        (labels, t, v), ((("x", "1"),), t[:0], v[:0])])))
    assert matrix == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "job": 'a"b', "zone": "Zürich"},
         "values": [[1, "1"], [16.5, "NaN"]]}]}  # the series without points is left out
    early = json.loads(encode_query_data(QueryResult("matrix", series=[
        ((), np.array([-1500, 0, 7]), np.array([1.0, 2.0, 3.0]))])))
    assert early["result"][0]["values"] == [[-1.5, "1"], [0, "2"], [0.007, "3"]]
    vector = encode_query_data(QueryResult("vector", series=[(labels, t[1:], v[:1])]))
    assert vector == ('{"resultType":"vector","result":[{"metric":{"__name__":"up",'
                      '"job":"a\\"b","zone":"Zürich"},"value":[16.500,"1"]}]}')
    assert json.loads(encode_query_data(QueryResult("vector"))) == \
        {"resultType": "vector", "result": []}
    assert encode_query_data(QueryResult("string", string=(1704586633050, 'a\n"b'))) == \
        '{"resultType":"string","result":[1704586633.05,"a\\n\\"b"]}'
    assert encode_query_data(QueryResult("scalar", scalar=(1704586633500, 1e-7))) == \
        '{"resultType":"scalar","result":[1704586633.5,"0.0000001"]}'


def test_envelopes():
    assert json.loads(success_body("[]", ["w1"])) == \
        {"status": "success", "data": [], "warnings": ["w1"]}
    assert json.loads(error_body("bad_data", "x")) == \
        {"status": "error", "errorType": "bad_data", "error": "x"}
    assert encode_labels(()) == "{}"


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ms", [
    ("1704586633.5", 1704586633500), ("1435781451.781", 1435781451781), ("4", 4000),
    ("-1", -1000), ("-1.5", -1500), ("0.0005", 1), ("1700000000.123456789", 1700000000123),
    ("1e3", 1_000_000), ("+5", 5000), (".5", 500), ("5.", 5000),
    ("2015-07-01T20:10:51.781Z", 1435781451781), ("2015-07-01T20:10:51Z", 1435781451000),
    ("2015-07-01T20:10:51.7819999Z", 1435781451781),
    ("2015-07-01T20:10:51+02:00", 1435774251000),
    ("2015-07-01T20:10:51.5-01:30", 1435786851500),
    ("1969-12-31T23:59:59.5Z", -500),
    ("-292273086-05-16T16:47:06Z", MIN_TIME_MS),
    ("292277025-08-18T07:12:54.999999999Z", MAX_TIME_MS),
])
def test_parse_time(text, ms):
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", [
    "", "x", " 1", "1 ", "1_000", "0x10", "1e400", "2015-07-01 20:10:51Z", "2015-07-01",
    "2015-13-01T00:00:00Z", "2015-07-01T20:10:51", "inf", "NaN", "now",
])
def test_parse_time_errors(text):
    with pytest.raises(ParamError) as exc:
        parse_time(text)
    assert str(exc.value) == f'cannot parse "{text}" to a valid timestamp'


def test_parse_time_param_default_and_message():
    assert parse_time_param("", "start", 7) == 7
    assert parse_time_param(None, "start", 7) == 7
    with pytest.raises(ParamError) as exc:
        parse_time_param("x", "time", 0)
    assert str(exc.value) == "Invalid time value for 'time': cannot parse \"x\" to a " \
                             "valid timestamp"


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, ns", [
    ("15", 15 * 10**9), ("0.5", 5 * 10**8), ("0.25", 25 * 10**7), ("1e-3", 10**6),
    ("0", 0), ("-1", -(10**9)),
    ("1h30m", 5400 * 10**9), ("90s", 90 * 10**9), ("5m", 300 * 10**9),
    ("500ms", 5 * 10**8), ("1d", 86400 * 10**9), ("1w", 7 * 86400 * 10**9),
    ("1y", 365 * 86400 * 10**9), ("2h15s", 7215 * 10**9),
])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "x", "1.5h", "30m1h", "1h1h", "5 m", "m", "-5m"])
def test_parse_duration_errors(text):
    with pytest.raises(ParamError) as exc:
        parse_duration(text)
    assert str(exc.value) == f'cannot parse "{text}" to a valid duration'


def test_parse_duration_overflow():
    with pytest.raises(ParamError) as exc:
        parse_duration("1e10")
    assert str(exc.value) == 'cannot parse "1e10" to a valid duration. It overflows int64'
    assert parse_duration("NaN") < 0  # a non-positive step, as in Prometheus on amd64


def test_parse_limit():
    assert parse_limit("") == 0 and parse_limit(None) == 0 and parse_limit("0") == 0
    assert parse_limit("40000") == 40000
    with pytest.raises(ParamError, match="limit must be non-negative"):
        parse_limit("-1")
    with pytest.raises(ParamError, match="invalid syntax"):
        parse_limit("ten")


# --- Grafana's U__ escaping of label names in URL paths -------------------------------------


@pytest.mark.parametrize("escaped, name", [
    ("job", "job"), ("U__http_2e_status", "http.status"), ("U__a__b", "a_b"),
    ("U__Z_fc_rich_20_", "Zürich "), ("U__emoji_1f600_", "emoji😀"), ("U__a:b1", "a:b1"),
    # malformed escapes are taken literally, as Prometheus does
    ("U__bad_zz_", "U__bad_zz_"), ("U__open_2e", "U__open_2e"), ("U__x_", "U__x_"),
    ("U__big_110000_", "U__big_110000_"), ("U__surrogate_d800_", "U__surrogate_d800_"),
])
def test_unescape_label_name(escaped, name):
    assert unescape_label_name(escaped) == name
