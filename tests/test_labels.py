"""Label sets, canonical keys, validation and matcher semantics."""

from __future__ import annotations

import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from tsdb.storage import labels as labels_mod
from tsdb.storage.labels import (
    InvalidLabels,
    Matcher,
    compile_regex,
    labels_from_key,
    labels_key,
    validate_labels,
)

# Any valid UTF-8 text: no lone surrogates.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
label_sets = st.dictionaries(text.filter(bool), text.filter(bool), max_size=6).map(
    lambda d: tuple(sorted(d.items()))
)


# --- canonical keys ------------------------------------------------------------------------


def test_key_layout() -> None:
    assert labels_key((("__name__", "up"), ("job", "node"))) == b"__name__\xffup\xffjob\xffnode\xff"
    assert labels_key(()) == b""
    assert labels_from_key(b"") == ()


def test_key_round_trip_unicode_and_nul() -> None:
    ls = (("a", "x\x00y"), ("b", "é€😀"), ("ключ", "значение"))
    key = labels_key(ls)
    expected = b"".join(n.encode() + b"\xff" + v.encode() + b"\xff" for n, v in ls)
    assert key == expected
    assert labels_from_key(key) == ls


@given(label_sets)
def test_key_round_trip_property(ls: tuple[tuple[str, str], ...]) -> None:
    key = labels_key(ls)
    assert key.count(b"\xff") == 2 * len(ls)
    assert labels_from_key(key) == ls


@given(label_sets, label_sets)
def test_key_is_injective(a: tuple, b: tuple) -> None:
    assert (labels_key(a) == labels_key(b)) == (a == b)


@pytest.mark.parametrize(
    "key",
    [b"a\xffb", b"a\xff", b"a\xffb\xffc\xff", b"\xc3\xffx\xff", b"a\x00\xff\xfe\xff"],
)
def test_malformed_keys_raise(key: bytes) -> None:
    with pytest.raises(ValueError):
        labels_from_key(key)


def test_key_of_invalid_utf8_raises() -> None:
    with pytest.raises(InvalidLabels):
        labels_key((("a", "\ud800"),))


# --- validation ----------------------------------------------------------------------------


def test_validate_sorts_and_drops_empty_values() -> None:
    got = validate_labels([("job", "node"), ("__name__", "up"), ("zone", ""), ("a", "1")])
    assert got == (("__name__", "up"), ("a", "1"), ("job", "node"))


def test_validate_accepts_mapping_and_utf8_names() -> None:
    got = validate_labels({"température": "20°", "http.status": "200", "__name__": "m"})
    assert got == (("__name__", "m"), ("http.status", "200"), ("température", "20°"))


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("", "x")], "empty label name"),
        ([("a", "1"), ("a", "2")], "duplicate label name 'a'"),
        ([("a", ""), ("a", "2")], "duplicate label name 'a'"),
        ([("a\ud800", "1")], "not valid UTF-8"),
        ([("a", "\udcff")], "not valid UTF-8"),
        ([("a", 1)], "must be str"),
        ([("a",)], "(name, value) pair"),
    ],
)
def test_validate_rejects(pairs: list, message: str) -> None:
    with pytest.raises(InvalidLabels, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_labels(pairs)


def test_invalid_labels_is_value_error() -> None:
    assert issubclass(InvalidLabels, ValueError)


# --- regexes and matchers ------------------------------------------------------------------


def test_matcher_rejects_unknown_op_and_bad_regex() -> None:
    with pytest.raises(ValueError, match="operator"):
        Matcher("a", "==", "x")
    with pytest.raises(ValueError, match=r"invalid regular expression 'a\(b'"):
        Matcher("a", "=~", "a(b")
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("a", "!~", "x)|(y")  # would be accepted if merely wrapped in ^(?:...)$
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("a", "=~", r"(a)\1")  # RE2: no backreferences
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("a", "=~", "(?=a)a")  # RE2: no lookahead


def test_matcher_equality_and_str() -> None:
    assert Matcher("a", "=~", "x.*") == Matcher("a", "=~", "x.*")
    assert hash(Matcher("a", "=", "x")) == hash(Matcher("a", "=", "x"))
    assert Matcher("a", "=", "x") != Matcher("a", "!=", "x")
    assert str(Matcher("job", "=~", 'a"b')) == 'job=~"a\\"b"'


# (op, pattern, value, expected)
MATCH_TABLE = [
    ("=", "x", "x", True),
    ("=", "x", "", False),
    ("=", "", "", True),
    ("!=", "x", "", True),
    ("!=", "", "", False),
    ("=~", "b", "ab", False),  # fully anchored
    ("=~", "b", "bc", False),
    ("=~", "a.", "ab", True),
    ("=~", ".*", "", True),
    ("=~", ".+", "", False),
    ("=~", "x|", "", True),
    ("=~", "x|", "x", True),
    ("=~", "x|", "xx", False),
    ("!~", "x|", "", False),
    ("!~", "x|", "y", True),
    ("=~", "(?i)abc", "ABC", True),
    ("=~", r"\d+", "123", True),
    ("=~", r"\pL+", "héllo", True),
    ("=~", "[[:alpha:]]+", "abc", True),
    ("=~", "é.", "éa", True),
    ("=~", "a|ab", "ab", True),  # full match, not leftmost-first prefix
    ("=~", r"10\.0\.0\.1", "10.0.0.1", True),
    ("=~", r"10\.0\.0\.1", "10x0x0x1", False),
    ("=~", "(a|b)", "b", True),
    ("=~", "(?:a|b)c", "bc", True),
    ("=~", "(a)|(b)", "a", True),
    ("=~", "^a$", "a", True),
    ("=~", "", "", True),
    ("=~", "", "a", False),
    ("!~", "", "a", True),
]


@pytest.mark.parametrize(("op", "pattern", "value", "expected"), MATCH_TABLE)
def test_matches_table(op: str, pattern: str, value: str, expected: bool) -> None:
    assert Matcher("l", op, pattern).matches(value) is expected


def test_dot_and_newline_follow_prometheus_2() -> None:
    assert not labels_mod.DOT_MATCHES_NEWLINE
    assert not Matcher("a", "=~", ".*").matches("a\nb")
    assert Matcher("a", "!~", ".*").matches("a\nb")
    assert not Matcher("a", "=~", "a.b").matches("a\nb")
    assert Matcher("a", "=~", "(?s)a.b").matches("a\nb")
    assert Matcher("a", "=~", r"a\nb").matches("a\nb")
    assert Matcher("a", "=~", "[^x]+").matches("a\nb")


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("a|b|c", {"a", "b", "c"}),
        ("(a|b)", {"a", "b"}),
        ("(?:a|b)", {"a", "b"}),
        ("x|", {"x", ""}),
        ("", {""}),
        (r"10\.0\.0\.1:9100|h\-2", {"10.0.0.1:9100", "h-2"}),
        ("é|ü", {"é", "ü"}),
        (r"a/b|a\|b", {"a/b", "a|b"}),  # an escaped bar is a literal, not an alternative
        ("a.b", None),
        ("(a)|(b)", None),
        ("a|b*", None),
        (r"\d", None),
        ("(?i)a|b", None),
        ("a{2}", None),
    ],
)
def test_literal_alternation_fast_path(pattern: str, literals: set[str] | None) -> None:
    rx = compile_regex(pattern)
    assert rx.literals == (None if literals is None else frozenset(literals))


regex_atoms = st.sampled_from(
    [
        "a",
        "b",
        "é",
        ".",
        ".*",
        ".+",
        "a?",
        "[ab]",
        "[^a]",
        r"\.",
        r"\|",
        "|",
        "/",
        r"\d",
        "(a|b)",
        "x|",
        "",
        "^",
        "$",
        "(?i)A",
        r"\n",
        "b+",
    ]
)
regexes = st.lists(regex_atoms, max_size=4).map("".join)
values = st.text(st.sampled_from(["a", "b", "A", "é", ".", "1", "\n", "x", "|", "/"]),
                 max_size=5)


@given(regexes, values)
def test_regex_agrees_with_re2_fullmatch(pattern: str, value: str) -> None:
    opts = re2.Options()
    opts.dot_nl = labels_mod.DOT_MATCHES_NEWLINE
    expected = re2.compile(pattern, opts).fullmatch(value) is not None
    rx = compile_regex(pattern)
    assert rx.fullmatch(value) is expected
    assert bool(rx.match_many([value], 1)[0]) is expected
    assert Matcher("l", "=~", pattern).matches(value) is expected
    assert Matcher("l", "!~", pattern).matches(value) is (not expected)


@pytest.mark.parametrize("pairs, problem", [
    ((("__name__", "x"), ("b", "1"), ("a", "2")), "not sorted"),
    ((("__name__", "x"), ("a", "1"), ("a", "2")), "duplicate label name 'a'"),
    ((("job", "x"),), "has no __name__"),
    ((("__name__", ""),), "no labels"),
])
def test_sent_label_sets_follow_the_remote_write_rules(pairs, problem):
    from tsdb.storage.labels import validate_sent_labels

    with pytest.raises(InvalidLabels, match=problem):
        validate_sent_labels(pairs)


def test_sent_label_sets_drop_empty_values():
    from tsdb.storage.labels import validate_sent_labels

    assert validate_sent_labels((("__name__", "up"), ("a", ""), ("job", "n"))) == (
        ("__name__", "up"), ("job", "n"))
