"""Graphite series selection -> label matchers over the ``__g<i>__`` index.

Path patterns (``servers.web0[1-3].cpu.{user,system}``)
-------------------------------------------------------
graphite-web matches a pattern node by node against the whisper tree: backslashes are
removed, the pattern is split on ``.``, braces are expanded (``{a,b}`` and nested), and each
variant is matched with :func:`fnmatch.fnmatchcase` (``*`` any run, ``?`` one character,
``[abc]``, ``[a-z]``, ``[!a]``). Node *i* of a pattern with *N* nodes becomes:

==============================  ==============================================
node                            matcher
==============================  ==============================================
literal ``web01``               ``__g<i>__="web01"``
braces of literals ``{a,b}``    ``__g<i>__=~"a|b"`` (the index's literal-set path)
any other glob                  ``__g<i>__=~<RE2 translation of fnmatch>``
``*`` before the last node      nothing: a deeper node exists, so this one does
the last node, if it could      ``__g<N-1>__!=""`` as well (it must exist)
match an empty value
(terminator)                    ``__g<N>__=""``: the path has exactly N nodes
==============================  ==============================================

Node labels are contiguous (carbon paths have no empty node), so "node *k* exists" implies
every node before it exists. Tagged series (``a.b;dc=eu``) carry the same node labels
but graphite-web keeps them out of the path tree (they live under ``_tagged``): callers
drop series with labels other than node labels from path matches (:func:`is_plain_path`).

Tag expressions (``seriesByTag('name=disk.used', 'dc=~eu|us')``)
----------------------------------------------------------------
Parsed by graphite's ``^([^;!=]+)(!?=~?)([^;]*)$``. A tag is a label of the same name;
graphite's semantics equal Prometheus' label matchers (an absent tag has the value ``""``):

=================  ===============================================================
expression         matcher
=================  ===============================================================
``tag=v``          ``tag="v"``
``tag!=v``         ``tag!="v"``
``tag=~re``        ``tag=~"(?s:.*)(?:^(re))(?s:.*)"`` - graphite anchors ``re`` at the
                   start only (it adds ``^(...)`` unless ``re`` starts with ``^``, then
                   searches); the RE2 form is that search made a full match
``tag!=~re``       ``tag!~`` the same
=================  ===============================================================

A regex RE2 cannot compile (look-arounds, back-references) is evaluated with Python's
``re`` on the candidates instead. The special tag ``name`` is the series name without tags:

* for carbon series, the dotted path, spread over the node labels: ``name=a.b.c`` is
  ``__g0__="a", __g1__="b", __g2__="c", __g3__=""``; ``name=~re`` selects by the literal
  prefix of ``re`` (``disk\\.u.*`` -> ``__g0__="disk", __g1__=~"u.*"``) and checks the
  whole name afterwards; ``name!=``/``name!=~`` are checked on the candidates;
* for series written by Prometheus remote write (no node labels), the metric name:
  ``name=node_load1`` is ``__name__="node_load1", __g0__=""``; their other labels are
  tags, so ``seriesByTag('name=node_load1', 'instance=~web.*')`` works.

Every series is visible to ``seriesByTag`` (carbon registers untagged paths in
graphite-web's tag database too). As in graphite-web, at least one expression must
require a non-empty value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tsdb.storage.labels import Matcher, compile_regex
from wire.graphite_names import METRIC_NAME, NAME_TAG, node_index, node_label

#: at most this many brace variants per node (``{a,b}{c,d}...`` multiplies)
MAX_VARIANTS = 4096
_BRACES = re.compile(r"(\{([^{}]*)\})")
_TAG_EXPRESSION = re.compile(r"^([^;!=]+)(!?=~?)([^;]*)$")
_ANY = "(?s:.*)"
_NEVER = r"[^\x00-\x{10FFFF}]"
_GLOB_CHARS = frozenset("*?[")
_PUNCTUATION = frozenset(string.punctuation)


class PatternError(ValueError):
    """A pattern or tag expression graphite-web would refuse."""


# -- path patterns ---------------------------------------------------------------------


def expand_braces(text: str) -> list[str]:
    """graphite's ``expand_braces``: every variant of the innermost ``{a,b}`` groups,
    recursively (deduplicated, in first-seen order)."""
    out: list[str] = []
    seen: set[str] = set()
    stack = [text]
    while stack:
        s = stack.pop()
        m = _BRACES.search(s)
        if m is None:
            if s not in seen:
                seen.add(s)
                out.append(s)
                if len(out) > MAX_VARIANTS:
                    raise PatternError(f"pattern {text!r} expands to more than "
                                       f"{MAX_VARIANTS} variants")
            continue
        open_at, close_at = m.span(1)
        stack.extend(reversed([s[:open_at] + alt + s[close_at:]
                               for alt in m.group(2).split(",")]))
    return out


def is_glob(text: str) -> bool:
    """graphite's ``has_wildcard`` test (braces are expanded before it)."""
    return any(c in _GLOB_CHARS for c in text)


def re2_escape(text: str) -> str:
    """Escape every character RE2 could read as syntax (ASCII punctuation)."""
    return "".join("\\" + c if c in _PUNCTUATION else c for c in text)


def glob_to_re2(pattern: str) -> str:
    """RE2 syntax matching exactly what ``fnmatch.fnmatchcase(s, pattern)`` matches
    (a port of CPython 3.11's ``fnmatch.translate``, without its atomic groups)."""
    res: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not res or res[-1] != _ANY:
                res.append(_ANY)
        elif c == "?":
            res.append("(?s:.)")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                res.append(r"\[")
                continue
            res.append(_bracket(pattern, i, j))
            i = j + 1
        else:
            res.append(re2_escape(c))
    return "".join(res)


def _bracket(pattern: str, i: int, j: int) -> str:
    """The set ``pattern[i:j]`` (between ``[`` and ``]``) as an RE2 class."""
    negate = pattern[i] == "!"
    body = pattern[i + 1 if negate else i:j]
    # ranges as fnmatch sees them: a '-' between two characters, except at the start
    items: list[tuple[str, str]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            items.append((body[k], body[k + 2]))
            k += 3
        else:
            items.append((body[k], body[k]))
            k += 1
    parts = [_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}"
             for lo, hi in items if lo <= hi]  # fnmatch drops reversed ranges
    if not parts:
        return "(?s:.)" if negate else _NEVER
    return ("[^" if negate else "[") + "".join(parts) + "]"


def _class_char(c: str) -> str:
    return "\\" + c if c in _PUNCTUATION else c


def glob_matches(pattern: str) -> Callable[[str], bool]:
    """A predicate with fnmatch's meaning of ``pattern`` (braces included)."""
    import fnmatch

    variants = expand_braces(pattern)
    return lambda value: any(fnmatch.fnmatchcase(value, v) for v in variants)


@dataclass(frozen=True)
class PathQuery:
    """A path pattern as label matchers; ``matchers`` (for leaves) is None when it cannot
    match a leaf."""

    pattern: str
    nodes: list[str]                       # the pattern's non-empty nodes, no backslashes
    matchers: list[Matcher] | None
    #: the node matchers alone (no terminator, no existence of the last node)
    node_matchers: list[Matcher] = field(default_factory=list)
    #: the pattern ends with an empty node (``servers.``): graphite-web's finder then names
    #: the directory reached so far, a branch called ``""``, and never a leaf
    self_branch: bool = False


def node_matcher(i: int, node: str) -> Matcher | None:
    """Matcher for node ``i`` (None: matches any existing value, i.e. ``*``)."""
    variants = expand_braces(node)
    label = node_label(i)
    if not any(is_glob(v) for v in variants):
        if len(variants) == 1:
            return Matcher(label, "=", variants[0])
        return Matcher(label, "=~", "|".join(re2_escape(v) for v in variants))
    regexes = [glob_to_re2(v) for v in variants]
    if all(r == _ANY for r in regexes):
        return None
    return Matcher(label, "=~", "|".join(regexes) if len(regexes) > 1 else regexes[0])


def path_query(pattern: str) -> PathQuery:
    """Matchers selecting the paths with exactly as many nodes as ``pattern`` whose nodes
    match it (see the module docstring)."""
    clean = pattern.replace("\\", "")
    # an empty node is graphite's join(dir, ""): the directory itself, so "a..b" is "a.b"
    nodes = [n for n in clean.split(".") if n]
    per_node: list[Matcher] = []
    last = len(nodes) - 1
    for i, node in enumerate(nodes):
        m = node_matcher(i, node)
        if m is not None:
            per_node.append(m)
    if clean.endswith(".") or not nodes:
        return PathQuery(pattern, nodes, None, per_node, self_branch=True)
    matchers = list(per_node)
    last_m = next((m for m in per_node if m.name == node_label(last)), None)
    if last_m is None or last_m.matches_empty:
        matchers.append(Matcher(node_label(last), "!=", ""))
    matchers.append(Matcher(node_label(len(nodes)), "=", ""))
    return PathQuery(pattern, nodes, matchers, per_node)


def is_plain_path(labels: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> bool:
    """Does a label set belong in graphite's path tree: node labels and nothing else?"""
    return bool(labels) and all(node_index(name) is not None for name, _ in labels)


# -- tag expressions -------------------------------------------------------------------


@dataclass(frozen=True)
class TagExpression:
    tag: str
    op: str          # "=", "!=", "=~", "!=~"
    spec: str

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!=~")

    @property
    def negated(self) -> bool:
        return self.op.startswith("!")

    def anchored(self) -> str:
        """graphite's anchoring of a regex spec: ``^(spec)`` unless it starts with ``^``."""
        return self.spec if self.spec.startswith("^") else f"^({self.spec})"

    def python_test(self) -> Callable[[str], bool]:
        """The expression on a tag value (``""`` when absent), with Python's ``re``."""
        if not self.is_regex:
            spec = self.spec
            return (lambda v: v != spec) if self.negated else (lambda v: v == spec)
        try:
            rx = re.compile(self.anchored())
        except re.error as exc:
            raise PatternError(f"invalid regular expression in tag expression "
                               f"{self}: {exc}") from None
        if self.negated:
            return lambda v: rx.search(v) is None
        return lambda v: rx.search(v) is not None

    def matches_empty(self) -> bool:
        return self.python_test()("")

    def __str__(self) -> str:
        return f"{self.tag}{self.op}{self.spec}"


def parse_tag_expression(text: str) -> TagExpression:
    m = _TAG_EXPRESSION.match(text)
    if m is None:
        raise PatternError(f"Invalid tagspec {text}")
    return TagExpression(m.group(1), m.group(2), m.group(3))


@dataclass
class TagQuery:
    """A seriesByTag selection: the union of ``branches`` (each a matcher list, ANDed),
    then every ``filters`` predicate on (name, tags) of the candidates."""

    expressions: list[TagExpression]
    branches: list[list[Matcher]]
    filters: list[Callable[[str, Mapping[str, str]], bool]]

    def accepts(self, name: str, tags: Mapping[str, str]) -> bool:
        return all(f(name, tags) for f in self.filters)


def tag_query(texts: list[str]) -> TagQuery:
    """Matchers and residual checks for graphite tag expressions (module docstring)."""
    exprs = [parse_tag_expression(t) for t in texts]
    if not exprs or all(e.matches_empty() for e in exprs):
        raise PatternError("At least one tagspec must not match the empty string")
    common: list[Matcher] = []
    filters: list[Callable[[str, Mapping[str, str]], bool]] = []
    graphite_branch: list[Matcher] = [Matcher(node_label(0), "!=", "")]
    prom_branch: list[Matcher] = [Matcher(node_label(0), "=", ""),
                                  Matcher(METRIC_NAME, "!=", "")]
    for e in exprs:
        if e.tag == NAME_TAG:
            _name_expression(e, graphite_branch, prom_branch, filters)
            continue
        matcher = _tag_matcher(e)
        if matcher is None:  # RE2 cannot compile it: check on the candidates
            test = e.python_test()
            tag = e.tag
            filters.append(lambda name, tags, test=test, tag=tag: test(tags.get(tag, "")))
        else:
            common.append(matcher)
    branches = [b + common for b in (graphite_branch, prom_branch) if b is not None]
    branches = [b for b in branches if not any(_never(m) for m in b)]
    return TagQuery(exprs, branches, filters)


def _never(m: Matcher) -> bool:
    return m.op == "=~" and m.value == _NEVER


def _tag_matcher(e: TagExpression) -> Matcher | None:
    if not e.is_regex:
        return Matcher(e.tag, "!=" if e.negated else "=", e.spec)
    try:
        return Matcher(e.tag, "!~" if e.negated else "=~", f"{_ANY}(?:{e.anchored()}){_ANY}")
    except ValueError:
        return None


def _name_expression(e: TagExpression, graphite_branch: list[Matcher],
                     prom_branch: list[Matcher], filters: list) -> None:
    """Narrow both branches for an expression on ``name``; add its exact check."""
    if e.op == "=":
        nodes = e.spec.split(".")
        if e.spec and all(nodes):
            graphite_branch.extend(Matcher(node_label(i), "=", v) for i, v in enumerate(nodes))
            graphite_branch.append(Matcher(node_label(len(nodes)), "=", ""))
        else:
            graphite_branch.append(Matcher(node_label(0), "=~", _NEVER))
        prom_branch.append(Matcher(METRIC_NAME, "=", e.spec))
        return
    test = e.python_test()
    filters.append(lambda name, tags: test(tags.get(NAME_TAG, "")))
    if e.op == "=~":
        graphite_branch.extend(_prefix_matchers(e.spec))
        rx = _tag_matcher(e)
        if rx is not None:
            prom_branch.append(Matcher(METRIC_NAME, rx.op, rx.value))


_QUANTIFIERS = frozenset("*+?{")
_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def literal_prefix(spec: str) -> str:
    """A string every value matching the graphite regex ``spec`` (anchored at the start)
    begins with; conservative (``""`` when unsure)."""
    if "|" in spec:
        return ""
    s = spec[1:] if spec.startswith("^") else spec
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 < len(s) and s[i + 1].isascii() and not s[i + 1].isalnum():
                out.append(s[i + 1])
                i += 2
                continue
            break
        if c in _SPECIAL:
            break
        out.append(c)
        i += 1
    if out and i < len(s) and s[i] in _QUANTIFIERS:
        out.pop()  # the last character is optional or repeated
    return "".join(out)


def _prefix_matchers(spec: str) -> list[Matcher]:
    """Node matchers implied by the literal prefix of a name regex."""
    parts = literal_prefix(spec).split(".")
    full, partial = parts[:-1], parts[-1]
    if any(not p for p in full):
        return []
    out = [Matcher(node_label(i), "=", v) for i, v in enumerate(full)]
    if partial:
        out.append(Matcher(node_label(len(full)), "=~", re2_escape(partial) + _ANY))
    elif full:
        out.append(Matcher(node_label(len(full)), "!=", ""))
    return out


def check_regex(pattern: str) -> None:
    """Raise PatternError if RE2 cannot compile ``pattern`` (used by callers that build
    matchers from user text)."""
    try:
        compile_regex(pattern)
    except ValueError as exc:
        raise PatternError(str(exc)) from None
