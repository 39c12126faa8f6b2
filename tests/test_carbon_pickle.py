"""Carbon pickle messages: the data-only opcode reader and carbon's item rules."""

from __future__ import annotations

import os
import pickle
import pickletools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.carbon_pickle import PickleRefused, load, points

# graphite.md §2.1: [("a.b.c", (1700000000, 1.5))] pickled with protocol 2, without length
WORKED_EXAMPLE = bytes.fromhex("80025d7100580500000061 2e622e63 71014a00f15365"
                               "473ff80000000000008671028671036 12e".replace(" ", ""))


def test_the_worked_example_of_the_spec():
    assert load(WORKED_EXAMPLE) == [("a.b.c", (1700000000, 1.5))]


@pytest.mark.parametrize("protocol", range(6))
def test_every_protocol_python_writes(protocol):
    message = [("a.b.c", (1700000000, 1.5)), ("disk.used;rack=a1;dc=eu", (1700000000.25, -3)),
               ("big", (1700000001, 2**70)), ("a.b.c", (-1, 0.0))]
    assert load(pickle.dumps(message, protocol=protocol)) == message


def test_python2_senders_strings_are_bytes():
    # what carbon-relay / a python 2 client sends: STRING, BINSTRING, SHORT_BINSTRING, INT,
    # LONG, FLOAT, LIST + APPEND, TUPLE, PUT/GET
    proto0 = (b"(lp0\n(S'a.b.c'\np1\n(I1700000000\nF1.5\ntp2\ntp3\na"
              b"(g1\n(L1700000001L\nI01\ntp4\ntp5\na.")
    assert load(proto0) == [(b"a.b.c", (1700000000, 1.5)), (b"a.b.c", (1700000001, True))]
    proto2 = (b"\x80\x02]q\x00(U\x05a.b.cq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86"
              b"q\x02\x86q\x03T\x03\x00\x00\x00x.yq\x04K\x07K\x08\x86\x86q\x05e.")
    assert load(proto2) == [(b"a.b.c", (1700000000, 1.5)), (b"x.y", (7, 8))]


def test_memo_shares_objects_as_pickle_does():
    shared = ("a.b", (1, 2.0))
    data = pickle.dumps([shared, shared, [shared]], protocol=2)
    assert b"h" in data  # BINGET
    assert load(data) == [shared, shared, [shared]]


def test_items_follow_carbons_rules():
    message = load(pickle.dumps([
        ("a.b", (1700000000, 1.5)),
        ("a.now", (-1, 2)),
        ("a.str", ("1700000000.5", "3.25")),
        (b"a.bytes", (1700000000, 4)),
        ("a.nan", (1700000000, float("nan"))),
        ("a.inf_ts", (float("inf"), 1)),
        ("a.none", (1700000000, None)),
        ("a.huge", (1700000000, 2**300)),
        ("short",),
        (7, (1, 2)),
        "xy",
    ], protocol=3))
    out = points(message, now_ms=42)
    assert out.keys == [b"a.b", b"a.now", b"a.str", b"a.bytes", b"a.huge"]
    assert out.timestamps.tolist() == [1_700_000_000_000, 42, 1_700_000_000_500,
                                       1_700_000_000_000, 1_700_000_000_000]
    assert out.values.tolist() == [1.5, 2.0, 3.25, 4.0, float(2**300)]
    assert out.rejected == {"nan_value": 1, "invalid_timestamp": 1, "invalid_value": 1,
                            "invalid_pickle_item": 3}


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(6))
def test_a_pickle_that_would_run_code_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps([("a.b", (1, _RunsCode(str(marker))))], protocol=protocol)
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert ops & {"GLOBAL", "STACK_GLOBAL"} and "REDUCE" in ops
    with pytest.raises(PickleRefused, match="GLOBAL"):
        load(data)
    assert not marker.exists()


@pytest.mark.parametrize("data", [
    pickle.dumps({"a": 1}, 2),  # EMPTY_DICT
    pickle.dumps({1, 2}, 4),  # EMPTY_SET
    pickle.dumps(frozenset([1]), 4),
    pickle.dumps(bytearray(b"x"), 5),
    b"\x80\x02cos\nsystem\nq\x00.",  # GLOBAL alone
    b"(i__builtin__\nobject\n.",  # INST
    b"\x80\x02K\x01\x82\x01.",  # EXT1
    b"\x80\x02(K\x01o.",  # OBJ
    b"P123\n.",  # PERSID
    b"\x80\x02]K\x01b.",  # BUILD
])
def test_other_objects_are_refused(data):
    with pytest.raises(PickleRefused):
        load(data)


@pytest.mark.parametrize("data", [
    b"",  # no STOP
    b"\x80\x02].\x00",  # fine up to STOP; trailing bytes ignored like pickle does
    b"K\x01.",  # not a list
    b"]]",  # no STOP
    b"]K\x01K\x02.",  # unbalanced stack at STOP
    b"(].",  # MARK left open
    b"\x86.",  # TUPLE2 on an empty stack
    b"](0.",  # POP of a MARK
    b"]h\x05.",  # GET of nothing
    b"X\xff\xff\xff\xffab.",  # length beyond the data
    b"X\x02\x00\x00\x00\xff\xfe.",  # not UTF-8
    b"\x8b\xff\x00\x00\x00" + b"\x01" * 255 + b".",  # LONG4 beyond the size limit
    b"(" * 100 + b".",  # MARKs nested too deep
    b"\x80\x09].",  # protocol 9
    b"K\x01a.",  # APPEND to a number
    b"I12x\n.",  # bad INT
    b"S'abc\n.",  # unterminated STRING
])
def test_malformed_pickles_are_refused_not_crashing(data):
    if data == b"\x80\x02].\x00":
        assert load(data) == []
        return
    with pytest.raises(PickleRefused):
        load(data)


def test_every_truncation_of_a_message_is_refused():
    data = pickle.dumps([("a.b", (1700000000, 1.5)), ("c.d", (1, 2))], protocol=2)
    for end in range(len(data) - 1):
        with pytest.raises(PickleRefused):
            load(data[:end])


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(allow_nan=False),
              st.text(max_size=10), st.binary(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner),
                            st.tuples(inner, inner), st.tuples(inner, inner, inner),
                            st.lists(inner, max_size=4).map(tuple)),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, max_size=6), st.integers(0, 5))
def test_data_only_pickles_load_as_pickle_loads_them(message, protocol):
    data = pickle.dumps(message, protocol=protocol)
    if any(op.name == "GLOBAL" for op, _, _ in pickletools.genops(data)):
        # bytes before protocol 3 are pickled as a call: refused (carbon refuses them too)
        with pytest.raises(PickleRefused):
            load(data)
        return
    assert load(data) == pickle.loads(data)  # noqa: S301 - we made these bytes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_pickle_refused(data):
    try:
        result = load(data)
    except PickleRefused:
        return
    assert isinstance(result, list | tuple)


def test_a_path_without_utf8_form_is_skipped():
    data = pickle.dumps([("\ud800.bad", (1, 2)), ("good", (1, 2))], protocol=0)
    out = points(load(data), now_ms=0)
    assert out.keys == [b"good"] and out.rejected == {"invalid_pickle_item": 1}
