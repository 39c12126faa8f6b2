"""The metric tree and the tag database, as graphite-web's ``/metrics/*`` and ``/tags/*``
views see them, over the ``__g<i>__`` index.

Tree: a pattern with N nodes finds, at depth N, *leaves* (paths of exactly N nodes:
``__g<N>__`` absent) and *branches* (longer paths: ``__g<N>__`` present). Tagged series
are not in the tree (graphite-web keeps them under ``_tagged``), except that a pattern
containing ``;`` names one tagged series exactly. A name that is both a leaf and a branch
is reported once, as a branch (graphite-web yields the branch node of a path first).

Tags: every series is in the tag database (carbon registers untagged paths too): its tags
are its labels other than the node labels, plus ``name`` (the path, or ``__name__`` for a
series written by remote write).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from tsdb.query.graphite.fetch import TAGGED_ROOT, GraphiteStore
from tsdb.query.graphite.pattern import (
    glob_matches,
    is_plain_path,
    parse_tag_expression,
    path_query,
)
from tsdb.storage.labels import Labels, Matcher
from wire.graphite_names import METRIC_NAME, NAME_TAG, graphite_identity, node_index, node_label

#: graphite-web's TAGDB_AUTOCOMPLETE_LIMIT
AUTOCOMPLETE_LIMIT = 100


@dataclass(frozen=True)
class Node:
    path: str
    is_leaf: bool

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def _node_prefix(labels: Labels, depth: int) -> str:
    values = dict(labels)
    return ".".join(values[node_label(i)] for i in range(depth))


def find_nodes(store: GraphiteStore, pattern: str, leaves_only: bool = False) -> list[Node]:
    """Every distinct node matching ``pattern`` (branches, then leaves, each by path)."""
    if ";" in pattern:
        matched, _ = store.match_path(pattern)
        return [Node(pattern, True)] if matched.names else []
    query = path_query(pattern)
    depth = len(query.nodes)
    db = store.db
    branch_matchers = [*query.node_matchers, Matcher(node_label(depth), "!=", "")]
    if query.self_branch:
        if leaves_only:
            return []
        return [Node(p + ".", False) if p else Node("", False)
                for p in sorted({_node_prefix(ls, depth) for ls in
                                 db.series_labels(branch_matchers) if is_plain_path(ls)})]
    leaves = {graphite_identity(ls)[0] for ls in db.series_labels(query.matchers)
              if is_plain_path(ls)}
    branches: set[str] = set()
    if not leaves_only:
        branches = {_node_prefix(ls, depth) for ls in db.series_labels(branch_matchers)
                    if is_plain_path(ls)}
    virtual_branches, virtual_leaves = _tagged_nodes(store, query.nodes)
    branches |= virtual_branches
    leaves |= virtual_leaves
    return ([Node(p, False) for p in sorted(branches)] +
            [Node(p, True) for p in sorted(leaves - branches)])


def _tagged_nodes(store: GraphiteStore, nodes: list[str]) -> tuple[set[str], set[str]]:
    """(branch paths, leaf paths) of graphite-web's ``_tagged`` tree matching ``nodes``."""
    depth = len(nodes)
    if depth > 4 or not glob_matches(nodes[0])(TAGGED_ROOT):
        return set(), set()
    if depth == 1:
        return ({TAGGED_ROOT} if store.has_tagged() else set()), set()
    tests = [glob_matches(n) for n in nodes]
    found = set()
    for path, _ in store.tagged_tree():
        parts = path.split(".")[:depth]
        if all(t(p) for t, p in zip(tests, parts, strict=True)):
            found.add(".".join(parts))
    return (found, set()) if depth < 4 else (set(), found)


def child_names(store: GraphiteStore, pattern: str) -> tuple[list[str], list[str]]:
    """(branch names, leaf names) at the last position of ``pattern``, each sorted, a name
    in only one of them: what ``treejson`` shows. Uses the index's value lists when no
    tagged series is among the candidates."""
    if ";" in pattern:
        nodes = find_nodes(store, pattern)
        return [], [n.name for n in nodes]
    query = path_query(pattern)
    depth = len(query.nodes)
    db = store.db
    branch_matchers = [*query.node_matchers, Matcher(node_label(depth), "!=", "")]
    if query.self_branch:  # the directory itself, a branch named ""
        exists = any(is_plain_path(ls) for ls in db.series_labels(branch_matchers))
        return ([""] if exists else []), []
    last = node_label(depth - 1)
    out: list[set[str]] = []
    for matchers in (branch_matchers, query.matchers):
        names = db.label_names(matchers)
        if all(node_index(n) is not None for n in names):
            out.append(set(db.label_values(last, matchers)))
        else:  # tagged series share the prefix: look at each series
            out.append({dict(ls)[last] for ls in db.series_labels(matchers)
                        if is_plain_path(ls)})
    branches, leaves = out
    virtual_branches, virtual_leaves = _tagged_nodes(store, query.nodes)
    branches |= {p.rsplit(".", 1)[-1] for p in virtual_branches}
    leaves |= {p.rsplit(".", 1)[-1] for p in virtual_leaves}
    return sorted(branches), sorted(leaves - branches)


def expand(store: GraphiteStore, pattern: str, leaves_only: bool = False) -> list[str]:
    return sorted(n.path for n in find_nodes(store, pattern, leaves_only))


def index(store: GraphiteStore) -> list[str]:
    """Every leaf path (``/metrics/index.json``)."""
    return sorted(graphite_identity(ls)[0]
                  for ls in store.db.series_labels([Matcher(node_label(0), "!=", "")])
                  if is_plain_path(ls))


# -- tags -------------------------------------------------------------------------------


def _anchored_filter(text: str | None):
    """graphite's tag/value filter: a regex anchored at the start (``^(...)``), searched."""
    if not text:
        return None
    rx = re.compile(text if text.startswith("^") else f"^({text})")
    return lambda value: rx.search(value) is not None


def _tag_name(label: str) -> str:
    return NAME_TAG if label == METRIC_NAME or node_index(label) is not None else label


def list_tags(store: GraphiteStore, tag_filter: str | None = None,
              limit: int | None = None) -> list[str]:
    keep = _anchored_filter(tag_filter)
    tags = sorted({_tag_name(n) for n in store.db.label_names()})
    tags = [t for t in tags if keep is None or keep(t)]
    return tags[:limit] if limit else tags


def _all_tags(store: GraphiteStore, tag: str) -> list[dict[str, str]]:
    """Tags of every series carrying ``tag``."""
    if tag == NAME_TAG:
        branches = [[Matcher(node_label(0), "!=", "")],
                    [Matcher(node_label(0), "=", ""), Matcher(METRIC_NAME, "!=", "")]]
    else:
        branches = [[Matcher(tag, "!=", "")]]
    return [graphite_identity(ls)[1] for m in branches for ls in store.db.series_labels(m)]


def list_values(store: GraphiteStore, tag: str, value_filter: str | None = None,
                limit: int | None = None) -> list[tuple[str, int]]:
    """(value, number of series) of ``tag``, sorted by value."""
    keep = _anchored_filter(value_filter)
    counts = Counter(t[tag] for t in _all_tags(store, tag) if tag in t)
    values = [(v, counts[v]) for v in sorted(counts) if keep is None or keep(v)]
    return values[:limit] if limit else values


def find_series(store: GraphiteStore, expressions: list[str]) -> list[str]:
    matched, _ = store.match_tags(expressions)
    return list(matched.names)


def auto_complete_tags(store: GraphiteStore, expressions: list[str],
                       prefix: str | None = None, limit: int | None = None) -> list[str]:
    limit = limit or AUTOCOMPLETE_LIMIT
    if not expressions:
        return list_tags(store, "^(" + re.escape(prefix) + ")" if prefix else None, limit)
    searched = {parse_tag_expression(e).tag for e in expressions}
    matched, _ = store.match_tags(expressions)
    found = {t for tags in matched.tags for t in tags
             if t not in searched and (not prefix or t.startswith(prefix))}
    return sorted(found)[:limit]


def auto_complete_values(store: GraphiteStore, expressions: list[str], tag: str,
                         prefix: str | None = None, limit: int | None = None) -> list[str]:
    limit = limit or AUTOCOMPLETE_LIMIT
    if not expressions:
        values = list_values(store, tag, "^(" + re.escape(prefix) + ")" if prefix else None,
                             limit)
        return [v for v, _ in values]
    matched, _ = store.match_tags([*expressions, tag + "!="])
    found = {tags[tag] for tags in matched.tags
             if tag in tags and (not prefix or tags[tag].startswith(prefix))}
    return sorted(found)[:limit]
