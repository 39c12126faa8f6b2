"""SeriesIndex: Prometheus matcher semantics, restrictions, incremental adds."""

from __future__ import annotations

import numpy as np
import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsdb.storage import index as index_mod
from tsdb.storage import labels as labels_mod
from tsdb.storage.index import SeriesIndex
from tsdb.storage.labels import Labels, Matcher, labels_key, validate_labels

SERIES: list[dict[str, str]] = [
    {"__name__": "up", "job": "node", "instance": "a:9100"},  # 0
    {"__name__": "up", "job": "prom", "instance": "b:9090"},  # 1
    {"__name__": "cpu", "job": "node", "instance": "a:9100", "mode": "idle"},  # 2
    {"__name__": "cpu", "job": "node", "instance": "a:9100", "mode": "user"},  # 3
    {"__name__": "cpu", "job": "node", "instance": "ab:9100", "mode": "x"},  # 4
    {"__name__": "cpu", "job": "node", "instance": "b:9100"},  # 5 (no mode)
    {"__name__": "temp", "zone": "zürich", "site": "日本"},  # 6
    {"__name__": "b"},  # 7
    {"__name__": "ab"},  # 8
]


@pytest.fixture(scope="module")
def index() -> SeriesIndex:
    ix = SeriesIndex()
    ix.add(np.arange(len(SERIES)), [validate_labels(s) for s in SERIES])
    return ix


ALL = list(range(len(SERIES)))

# (matchers as (name, op, value), expected sids)
SEMANTICS = [
    ([("__name__", "=", "up")], [0, 1]),
    ([("__name__", "!=", "up")], [2, 3, 4, 5, 6, 7, 8]),
    ([("__name__", "=", "nope")], []),
    # absent label == empty string
    ([("mode", "=", "")], [0, 1, 5, 6, 7, 8]),
    ([("mode", "!=", "")], [2, 3, 4]),
    ([("mode", "!=", "idle")], [0, 1, 3, 4, 5, 6, 7, 8]),
    ([("mode", "=~", ".*")], ALL),
    ([("mode", "=~", ".+")], [2, 3, 4]),
    ([("mode", "!~", ".*")], []),
    ([("mode", "!~", ".+")], [0, 1, 5, 6, 7, 8]),
    ([("mode", "=~", "idle|")], [0, 1, 2, 5, 6, 7, 8]),
    ([("mode", "!~", "idle|")], [3, 4]),
    ([("mode", "=~", "idle|user")], [2, 3]),
    ([("mode", "!~", "idle|user")], [0, 1, 4, 5, 6, 7, 8]),
    ([("mode", "=~", "")], [0, 1, 5, 6, 7, 8]),
    ([("mode", "!~", "")], [2, 3, 4]),
    # a label no series has
    ([("nope", "=", "")], ALL),
    ([("nope", "!=", "")], []),
    ([("nope", "=", "x")], []),
    ([("nope", "!=", "x")], ALL),
    ([("nope", "=~", ".*")], ALL),
    ([("nope", "=~", "x|")], ALL),
    ([("nope", "=~", ".+")], []),
    ([("nope", "!~", "x")], ALL),
    ([("nope", "!~", ".*")], []),
    # anchoring
    ([("__name__", "=~", "b")], [7]),
    ([("__name__", "=~", "a")], []),
    ([("__name__", "=~", "a.")], [8]),
    ([("__name__", "=~", ".*b")], [7, 8]),
    ([("instance", "=~", "a:.*")], [0, 2, 3]),
    ([("instance", "!~", "a:.*")], [1, 4, 5, 6, 7, 8]),
    # RE2 syntax and unicode
    ([("instance", "=~", r"\w+:\d{4}")], [0, 1, 2, 3, 4, 5]),
    ([("instance", "=~", r"(?i)A:9100")], [0, 2, 3]),
    ([("zone", "=~", r"z\pLrich")], [6]),
    ([("site", "=", "日本")], [6]),
    ([("site", "=~", "日.")], [6]),
    ([("__name__", "=~", "(up|temp)")], [0, 1, 6]),
    ([("instance", "=~", r"a:9100|b:9090|zz")], [0, 1, 2, 3]),
    # combinations
    ([("__name__", "=", "cpu"), ("mode", "=", "")], [5]),
    ([("__name__", "=", "cpu"), ("mode", "!~", "idle|user")], [4, 5]),
    ([("job", "=", "node"), ("instance", "=~", "a.*"), ("mode", "!=", "user")], [0, 2, 4]),
    ([("job", "=", "node"), ("job", "!=", "node")], []),
    ([("__name__", "=~", ".+"), ("job", "=", "")], [6, 7, 8]),
    ([("mode", "=", ""), ("zone", "=", "")], [0, 1, 5, 7, 8]),
    ([], ALL),
]


@pytest.mark.parametrize(("spec", "expected"), SEMANTICS)
def test_semantics(
    index: SeriesIndex, spec: list[tuple[str, str, str]], expected: list[int]
) -> None:
    got = index.select([Matcher(*m) for m in spec])
    assert got.dtype == np.int64
    assert got.tolist() == expected


def test_newline_values_follow_prometheus_2() -> None:
    ix = SeriesIndex()
    ix.add([0, 1], [(("a", "x\ny"),), (("a", "xy"),)])
    assert not labels_mod.DOT_MATCHES_NEWLINE
    assert ix.select([Matcher("a", "=~", ".*")]).tolist() == [1]
    assert ix.select([Matcher("a", "=~", ".+")]).tolist() == [1]
    assert ix.select([Matcher("a", "!~", ".*")]).tolist() == [0]
    assert ix.select([Matcher("a", "=~", "(?s).*")]).tolist() == [0, 1]
    assert ix.select([Matcher("a", "=~", r"x\ny")]).tolist() == [0]


def test_labels_of_lookup_and_len(index: SeriesIndex) -> None:
    sets = [validate_labels(s) for s in SERIES]
    assert len(index) == len(SERIES)
    assert index.labels_of([6, 0]) == [sets[6], sets[0]]
    assert index.labels_of(np.array([], dtype=np.int64)) == []
    keys = [labels_key(s) for s in sets]
    assert index.lookup(keys + [b"x\xffy\xff"]).tolist() == ALL + [-1]
    assert index.lookup([]).tolist() == []
    with pytest.raises(KeyError):
        index.labels_of([len(SERIES)])
    with pytest.raises(KeyError):
        index.labels_of([-1])


def test_label_names_and_values(index: SeriesIndex) -> None:
    assert index.label_names() == ["__name__", "instance", "job", "mode", "site", "zone"]
    assert index.label_names(np.array([0, 7])) == ["__name__", "instance", "job"]
    assert index.label_names(np.array([], dtype=np.int64)) == []
    assert index.label_values("mode") == ["idle", "user", "x"]
    assert index.label_values("mode", np.array([0, 3, 4])) == ["user", "x"]
    assert index.label_values("mode", np.array([0, 1])) == []
    assert index.label_values("nope") == []
    assert index.label_values("instance", np.array([1, 2, 3])) == ["a:9100", "b:9090"]


def test_add_rejects_duplicates_and_changes_nothing() -> None:
    ix = SeriesIndex()
    ix.add([0, 1], [(("a", "1"),), (("a", "2"),)])
    bad_batches = [
        ([1, 2], [(("a", "3"),), (("a", "4"),)]),  # sid 1 exists
        ([2, 3], [(("a", "3"),), (("a", "1"),)]),  # label set exists
        ([2, 2], [(("a", "3"),), (("a", "4"),)]),  # repeated sid
        ([2, 3], [(("a", "3"),), (("a", "3"),)]),  # repeated label set
        ([2], [(("a", ""),)]),  # empty value slipped through
        ([2, 3], [(("a", "3"),)]),  # length mismatch
        ([-1], [(("a", "3"),)]),
    ]
    for sids, sets in bad_batches:
        with pytest.raises(ValueError):
            ix.add(sids, sets)
    assert len(ix) == 2
    assert ix.label_values("a") == ["1", "2"]
    assert ix.lookup([labels_key((("a", "3"),))]).tolist() == [-1]
    ix.add([2], [(("a", "3"),)])
    assert ix.select([Matcher("a", "=~", ".+")]).tolist() == [0, 1, 2]


def test_add_from_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sets = [validate_labels(x) for x in SERIES]
    ix = SeriesIndex()
    ix.add(np.arange(4), None, keys=[labels_key(x) for x in sets[:4]])
    ix.add(np.arange(4, len(sets)), sets[4:])  # mixing both paths
    assert ix.labels_of(ALL) == sets
    assert ix.select([Matcher("instance", "=~", "a.*")]).tolist() == [0, 2, 3, 4]
    ix.add([100], None, keys=[labels_key((("site", "日本"), ("zone", "x\x00y")))])
    assert ix.select([Matcher("site", "=", "日本")]).tolist() == [6, 100]
    assert ix.label_values("zone") == ["x\x00y", "zürich"]

    # malformed keys are refused and leave no trace, even when an earlier chunk was fine
    monkeypatch.setattr(index_mod, "_CHUNK", 2)
    before = (ix.label_names(), ix.label_values("zone"), len(ix))
    bad = [
        [b"a\xff1\xff", b"b\xff2\xff", b"c\xff\xc3\xff"],  # invalid UTF-8 in chunk 2
        [b"new\xff1\xff", b"x\xff2\xff", b"\xff\xff"],  # empty name and value
        [b"new\xff1\xff", b"x\xff2"],  # no trailing separator
        [b"new\xff1\xffx\xff"],  # odd number of strings
    ]
    for keys in bad:
        with pytest.raises(ValueError):
            ix.add(np.arange(200, 200 + len(keys)), None, keys=keys)
        assert (ix.label_names(), ix.label_values("zone"), len(ix)) == before
        assert ix.lookup(keys).tolist() == [-1] * len(keys)
    ix.add([200, 201], None, keys=[b"new\xff1\xff", b"zone\xffq\xff"])
    assert ix.select([Matcher("new", "=", "1")]).tolist() == [200]
    assert ix.label_values("zone") == ["q", "x\x00y", "zürich"]
    assert ix.label_values("new", np.array([200])) == ["1"]


def test_incremental_adds_and_regex_cache() -> None:
    ix = SeriesIndex()
    m = [Matcher("host", "=~", "h1.*")]
    expected: list[int] = []
    for batch in range(40):
        sids = np.arange(batch * 5, batch * 5 + 5)
        ix.add(sids, [(("host", f"h{sid}"), ("i", str(batch))) for sid in sids.tolist()])
        expected += [s for s in sids.tolist() if str(s).startswith("1")]
        assert ix.select(m).tolist() == expected
        assert ix.select([Matcher("i", "=", str(batch))]).tolist() == sids.tolist()
    # binary-counter merging keeps the number of postings segments logarithmic
    assert len(ix._segments) <= int(np.log2(len(ix))) + 1
    assert ix.select([]).tolist() == list(range(200))


def test_sids_out_of_creation_order() -> None:
    ix = SeriesIndex()
    ix.add([7, 3], [(("a", "x"), ("b", "1")), (("a", "x"),)])
    ix.select([Matcher("a", "=", "x")])
    ix.add([5, 0], [(("a", "x"), ("b", "2")), (("a", "y"),)])
    assert ix.select([Matcher("a", "=", "x")]).tolist() == [3, 5, 7]
    assert ix.select([Matcher("a", "=~", "x|y")]).tolist() == [0, 3, 5, 7]
    assert ix.select([Matcher("a", "!=", "")]).tolist() == [0, 3, 5, 7]
    assert ix.select([Matcher("b", "!=", "")]).tolist() == [5, 7]
    assert ix.select([Matcher("b", "=", "")]).tolist() == [0, 3]
    assert ix.select([]).tolist() == [0, 3, 5, 7]
    assert ix.labels_of([0, 7]) == [(("a", "y"),), (("a", "x"), ("b", "1"))]
    with pytest.raises(KeyError):
        ix.labels_of([1])


def test_series_without_labels() -> None:
    ix = SeriesIndex()
    ix.add([0, 1], [(), (("a", "1"),)])
    assert ix.labels_of([0]) == [()]
    assert ix.select([Matcher("a", "=", "")]).tolist() == [0]
    assert ix.lookup([b""]).tolist() == [0]


# --- property test against a brute-force evaluation ----------------------------------------

NAMES = ["a", "b", "c", "ü"]
VALUES = ["x", "y", "xy", "yx", "é", "1", "x\ny", "X"]
PATTERNS = [
    ".*",
    ".+",
    "x",
    "x|",
    "x|y",
    "(x|é)",
    "x.*",
    ".*y",
    "[xy]+",
    "",
    "(?i)x",
    r"\d",
    "é|1",
    ".",
    "x?y?",
    "[^x]*",
    "(?s).*",
]


@st.composite
def label_set(draw: st.DrawFn) -> Labels:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    return tuple(sorted((n, draw(st.sampled_from(VALUES))) for n in names))


@st.composite
def matcher(draw: st.DrawFn) -> Matcher:
    name = draw(st.sampled_from([*NAMES, "missing"]))
    op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    if op in ("=", "!="):
        value = draw(st.sampled_from(["", *VALUES, "zz"]))
    else:
        value = draw(st.sampled_from(PATTERNS))
    return Matcher(name, op, value)


def brute_force(sets: dict[int, Labels], matchers: list[Matcher]) -> list[int]:
    opts = re2.Options()
    opts.dot_nl = labels_mod.DOT_MATCHES_NEWLINE
    out = []
    for sid in sorted(sets):
        d = dict(sets[sid])
        ok = True
        for m in matchers:
            v = d.get(m.name, "")
            if m.op == "=":
                hit = v == m.value
            elif m.op == "!=":
                hit = v != m.value
            else:
                full = re2.compile(m.value, opts).fullmatch(v) is not None
                hit = full if m.op == "=~" else not full
            ok = ok and hit
        if ok:
            out.append(sid)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sets=st.lists(label_set(), min_size=1, max_size=40, unique=True),
    batches=st.integers(1, 4),
    shuffle_sids=st.booleans(),
    filter_cost=st.sampled_from([0.0, 2.0, 1e12]),
    queries=st.lists(st.lists(matcher(), max_size=4), min_size=1, max_size=5),
    data=st.data(),
)
def test_select_matches_brute_force(
    sets: list[Labels],
    batches: int,
    shuffle_sids: bool,
    filter_cost: float,
    queries: list[list[Matcher]],
    data: st.DataObject,
) -> None:
    n = len(sets)
    sids = list(range(n))
    if shuffle_sids:
        sids = data.draw(st.permutations(sids))
    ix = SeriesIndex()
    ix.FILTER_COST = filter_cost  # 0: always filter per series; 1e12: always use postings
    added: dict[int, Labels] = {}
    cuts = sorted(
        data.draw(st.lists(st.integers(0, n), min_size=batches - 1, max_size=batches - 1))
    )
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        if lo == hi:
            continue
        how = data.draw(st.sampled_from(["label_sets", "keys", "both"]))
        keys = [labels_key(ls) for ls in sets[lo:hi]]
        if how == "label_sets":
            ix.add(sids[lo:hi], sets[lo:hi])
        elif how == "keys":
            ix.add(sids[lo:hi], None, keys=keys)
        else:
            ix.add(sids[lo:hi], sets[lo:hi], keys=keys)
        added.update(zip(sids[lo:hi], sets[lo:hi], strict=True))
        for q in queries:
            assert ix.select(q).tolist() == brute_force(added, q), q

    # restrictions to a subset of series
    subset = sorted(data.draw(st.sets(st.sampled_from(sids))))
    sub = np.array(subset, dtype=np.int64)
    assert ix.label_names(sub) == sorted({n for s in subset for n, _ in added[s]})
    assert ix.label_names() == sorted({n for s in added.values() for n, _ in s})
    for name in [*NAMES, "missing"]:
        want = sorted({v for s in subset for n, v in added[s] if n == name})
        assert ix.label_values(name, sub) == want
        want_all = sorted({v for s in added.values() for n, v in s if n == name})
        assert ix.label_values(name) == want_all
    assert ix.labels_of(sub) == [added[s] for s in subset]
    keys = [labels_key(added[s]) for s in subset]
    assert ix.lookup(keys).tolist() == subset
