"""Path patterns and tag expressions -> label matchers: globs mean exactly what graphite-web's
fnmatch means, node matchers follow the table in pattern.py, tag expressions keep
graphite's start-anchored regex semantics, and the ``name`` prefix narrowing is sound."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tsdb.query.graphite.pattern import (
    PatternError,
    expand_braces,
    glob_to_re2,
    is_plain_path,
    literal_prefix,
    parse_tag_expression,
    path_query,
    tag_query,
)
from tsdb.storage.labels import Matcher, compile_regex
from wire.graphite_names import graphite_identity, path_labels

_GLOB_ALPHABET = "ab-]![*?\\^.z{},"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_GLOB_ALPHABET, max_size=8),
       st.lists(st.text(alphabet="ab-]![*?\\^.z\n", max_size=6), min_size=1, max_size=8))
def test_glob_translation_is_fnmatch(pattern, values):
    rx = compile_regex(glob_to_re2(pattern))
    for value in values:
        assert rx.fullmatch(value) == fnmatch.fnmatchcase(value, pattern), (pattern, value)


@given(st.text(alphabet="abcé*?[]!-", max_size=6), st.text(alphabet="abcé-!", max_size=5))
def test_glob_translation_unicode(pattern, value):
    assert compile_regex(glob_to_re2(pattern)).fullmatch(value) == \
        fnmatch.fnmatchcase(value, pattern)


def test_expand_braces_like_graphite():
    assert expand_braces("a{b,c}d") == ["abd", "acd"]
    assert sorted(expand_braces("{a,{b,c}}x{1,2}")) == ["ax1", "ax2", "bx1", "bx2", "cx1", "cx2"]
    assert expand_braces("no-braces") == ["no-braces"]
    assert expand_braces("{a}") == ["a"]
    assert expand_braces("a{}b") == ["ab"]
    with pytest.raises(PatternError):
        expand_braces("{a,b}" * 13)


def _matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def _path(p: str) -> dict[str, str]:
    return dict(path_labels(p))


def test_path_matchers_table():
    q = path_query("servers.web0[1-3].cpu.{user,system}")
    assert [str(m) for m in q.matchers] == [
        '__g0__="servers"', '__g1__=~"web0[1-3]"', '__g2__="cpu"',
        '__g3__=~"user|system"', '__g4__=""']
    # a '*' before the last node adds nothing; the last node must exist
    assert [str(m) for m in path_query("a.*.c.*").matchers] == [
        '__g0__="a"', '__g2__="c"', '__g3__!=""', '__g4__=""']
    assert [str(m) for m in path_query("*").matchers] == ['__g0__!=""', '__g1__=""']
    # an empty node is the directory itself (graphite's join(dir, "")); a trailing one names
    # that directory, never a leaf
    assert path_query("a..b").matchers == path_query("a.b").matchers
    assert path_query("a.b.").matchers is None and path_query("a.b.").self_branch
    assert [str(m) for m in path_query("a\\*b.c").matchers] == [
        '__g0__=~"a(?s:.*)b"', '__g1__="c"', '__g2__=""']  # backslashes are dropped


@pytest.mark.parametrize("pattern,path,hit", [
    ("servers.*", "servers.web01", True),
    ("servers.*", "servers.web01.cpu", False),
    ("servers.*.cpu", "servers.web01.cpu", True),
    ("*.*", "a", False),
    ("a.b?", "a.bc", True),
    ("a.b?", "a.b", False),
    ("a.[!x]y", "a.zy", True),
    ("a.[!x]y", "a.xy", False),
    ("a.{b,c}*", "a.cde", True),
    ("a.{b,c}*", "a.d", False),
    ("a.*", "a.b", True),
])
def test_path_semantics(pattern, path, hit):
    assert _matches(path_query(pattern).matchers, _path(path)) is hit


def test_plain_paths():
    assert is_plain_path(tuple(sorted(path_labels("a.b"))))
    assert not is_plain_path(tuple(sorted(path_labels("a.b", {"dc": "eu"}))))
    assert not is_plain_path((("__name__", "up"),))


def test_tag_expressions_parse():
    e = parse_tag_expression("dc!=~eu.*")
    assert (e.tag, e.op, e.spec) == ("dc", "!=~", "eu.*")
    assert parse_tag_expression("name=a=b").spec == "a=b"
    for bad in ("dc", "=x", "d;c=x", "!=x"):
        with pytest.raises(PatternError):
            parse_tag_expression(bad)


def _series(path: str, **tags: str) -> dict[str, str]:
    return dict(path_labels(path, tags))


def _selects(expressions: list[str], labels: dict[str, str]) -> bool:
    """What a TagQuery selects, evaluated on one label set."""
    q = tag_query(expressions)
    if not any(_matches(b, labels) for b in q.branches):
        return False
    name, tags = graphite_identity(labels.items())
    return q.accepts(name, tags)


SERIES = {
    "web01": _series("disk.used", dc="eu", host="web01"),
    "db01": _series("disk.used", dc="us", host="db01"),
    "http": _series("http.requests", dc="eu", host="web01", status="500"),
    "plain": _series("servers.web01.cpu.user"),
    "prom": {"__name__": "node_load1", "instance": "web01:9100", "job": "node"},
}


@pytest.mark.parametrize("exprs,expected", [
    (["name=disk.used"], {"web01", "db01"}),
    (["name=disk.used", "dc=eu"], {"web01"}),
    (["dc=eu"], {"web01", "http"}),
    (["dc!=eu", "name=disk.used"], {"db01"}),
    (["host=~web"], {"web01", "http"}),            # anchored at the start only
    (["host=~eb"], set()),
    (["host=~^w.*1$"], {"web01", "http"}),
    (["host!=~web", "name=~disk"], {"db01"}),
    (["name=~disk.*"], {"web01", "db01"}),
    (["name=~.*requests"], {"http"}),
    (["name=~servers\\.web01"], {"plain"}),
    (["name=servers.web01.cpu.user"], {"plain"}),   # untagged paths are tagged too
    (["name=node_load1"], {"prom"}),               # remote-write series by __name__
    (["name=~node_", "instance=~web01"], {"prom"}),
    (["status=500"], {"http"}),
    (["status="], ValueError),                      # nothing requires a value
    (["name!=x"], ValueError),
    (["host=~(?=w)web"], {"web01", "http"}),        # RE2 cannot: checked with Python's re
])
def test_tag_query_semantics(exprs, expected):
    if expected is ValueError:
        with pytest.raises(PatternError):
            tag_query(exprs)
        return
    assert {k for k, labels in SERIES.items() if _selects(exprs, labels)} == expected


def test_name_regex_narrows_by_its_literal_prefix():
    q = tag_query(["name=~servers\\.web0.*"])
    graphite_branch = q.branches[0]
    assert [str(m) for m in graphite_branch][1:] == ['__g0__="servers"',
                                                     '__g1__=~"web0(?s:.*)"']


_REGEX_PIECES = st.sampled_from(["a", "b", ".", "\\.", "*", "+", "?", "(", ")", "|", "[ab]",
                                 "{2}", "^", "x", "ab", "\\d"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_REGEX_PIECES, max_size=7).map("".join),
       st.text(alphabet="ab.x1", max_size=8))
def test_literal_prefix_is_sound(spec, value):
    anchored = spec if spec.startswith("^") else f"^({spec})"
    try:
        rx = re.compile(anchored)
    except re.error:
        assume(False)
    if rx.search(value):
        assert value.startswith(literal_prefix(spec)), (spec, value)
