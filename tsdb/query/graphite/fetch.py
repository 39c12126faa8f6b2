"""Fetching series for render: path patterns and ``seriesByTag`` over ``(from, until]``,
laid on each series' step grid the way whisper lays out points.

Grid (whisper's ``fetch``, graphite-web 1.1.8)
----------------------------------------------
With ``from``/``until`` in whole seconds and the series' step ``s``:

* a window starting after ``now`` returns nothing (whisper answers None and the series
  is left out); ``until`` after ``now`` is clamped to ``now``;
* the first point is at ``from - from % s + s`` and the last at ``until - until % s``: so
  ``from`` is exclusive and ``until`` inclusive on an aligned grid (``from=T`` gives a
  first point at ``T + s``); if both fall in one slot the next slot is returned;
* a sample at ``t`` belongs to slot ``t - t % s`` (``t`` truncated to whole seconds);
  several samples in one slot keep the last one (whisper overwrites the slot; the store
  keeps samples in time order, so "last" is the latest timestamp);
* every matching series is returned, with nulls where it has no data (a window before
  the data gives an all-null series, not nothing).

Series are named and tagged by :func:`wire.graphite_names.graphite_identity` and sorted
by name (graphite's ``_merge_results``). Each carries the path expression it was fetched
with (the pattern, or the ``seriesByTag(...)`` call text) for aggregate names.

Resolutions
-----------
The store keeps raw samples, so a series' step is a read-time setting, chosen like
carbon's ``storage-schemas.conf``: the first rule whose regex *searches* successfully in
the series name (tags included, ``a.b;dc=eu``) gives the step; the default is 10 s, the
flush interval of statsd and most carbon senders. A step finer than the data only shows
nulls between points; a coarser one keeps one sample per slot, so the default errs fine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsdb.query.graphite.pattern import (
    PathQuery,
    TagQuery,
    glob_matches,
    is_plain_path,
    path_query,
    tag_query,
)
from tsdb.query.graphite.series import SeriesList
from tsdb.storage.database import Database
from tsdb.storage.labels import Labels, Matcher
from wire.graphite_names import (
    NAME_TAG,
    InvalidName,
    graphite_identity,
    node_index,
    node_label,
    parse_series_name,
)

#: graphite-web's tree shows carbon's tagged whisper files under this top-level branch
TAGGED_ROOT = "_tagged"

DEFAULT_STEP = 10


class Resolutions:
    """Step (seconds) per series name: first matching rule wins, else ``default``."""

    def __init__(self, rules: Sequence[tuple[str, int]] = (), default: int = DEFAULT_STEP
                 ) -> None:
        if default <= 0 or any(step <= 0 for _, step in rules):
            raise ValueError("graphite resolutions must be positive")
        self.rules = [(re.compile(rx), int(step)) for rx, step in rules]
        self.default = int(default)
        self._cache: dict[str, int] = {}

    def step(self, name: str) -> int:
        hit = self._cache.get(name)
        if hit is None:
            hit = next((step for rx, step in self.rules if rx.search(name)), self.default)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[name] = hit
        return hit

    def steps(self, names: Sequence[str]) -> np.ndarray:
        if not self.rules:
            return np.full(len(names), self.default, np.int64)
        return np.array([self.step(n) for n in names], np.int64)


@dataclass(frozen=True)
class Window:
    """Whisper's view of ``(start, end]`` for one step."""

    first: int       # timestamp of the first point
    points: int
    step: int

    @property
    def stop(self) -> int:
        """One step past the last point (whisper's ``untilInterval``)."""
        return self.first + self.points * self.step


def window(start: int, end: int, now: int, step: int) -> Window | None:
    """The points whisper returns for ``(start, end]`` (None: nothing, ``start > now``)."""
    if start > now:
        return None
    end = min(end, now)
    first = start - start % step + step
    stop = end - end % step + step
    if first == stop:
        stop += step
    return Window(first, max(0, (stop - first) // step), step)


@dataclass
class Matched:
    """Series selected for a fetch, sorted by graphite name."""

    labels: list[Labels]
    names: list[str]
    tags: list[dict[str, str]]


class GraphiteStore:
    """The graphite view of a :class:`Database`: path patterns and tag queries in,
    series lists out."""

    def __init__(self, db: Database, resolutions: Resolutions | None = None) -> None:
        self.db = db
        self.resolutions = resolutions or Resolutions()

    # -- selection ---------------------------------------------------------------------

    def _labels(self, branches: Sequence[Sequence[Matcher]]) -> list[Labels]:
        seen: dict[Labels, None] = {}
        for matchers in branches:
            for labels in self.db.series_labels(list(matchers)):
                seen[labels] = None
        return list(seen)

    def match_path(self, pattern: str) -> tuple[Matched, list[list[Matcher]]]:
        """Plain (untagged) series whose path matches ``pattern``; a pattern containing
        ``;`` names one tagged series exactly, in carbon's canonical spelling (tags sorted:
        ``disk.used;dc=eu;host=a``), as graphite-web's finder does."""
        if ";" in pattern:
            return self._match_exact_tagged(pattern)
        query: PathQuery = path_query(pattern)
        if query.matchers is None:
            return Matched([], [], []), []
        labels = [ls for ls in self._labels([query.matchers]) if is_plain_path(ls)]
        found, branches = _identify(labels), [query.matchers]
        if len(query.nodes) == 4 and glob_matches(query.nodes[0])(TAGGED_ROOT):
            virtual = self._tagged_leaves(query.nodes)
            if virtual:
                found = _merge(found, virtual)
                branches.append([Matcher(node_label(0), "!=", "")])
        return found, branches

    # -- graphite-web's _tagged tree ---------------------------------------------------

    def has_tagged(self) -> bool:
        """Are there tagged carbon series (graphite-web shows a ``_tagged`` branch)?"""
        names = self.db.label_names([Matcher(node_label(0), "!=", "")])
        return any(node_index(n) is None for n in names)

    def tagged_tree(self) -> list[tuple[str, Labels]]:
        """(whisper-style path, labels) of every tagged carbon series: carbon stores
        ``a.b;t=v`` as ``_tagged/<h[:3]>/<h[3:6]>/<h>.wsp`` with ``h`` the sha256 of the
        canonical name, and graphite-web's tree shows those paths."""
        if not self.has_tagged():
            return []
        out = []
        for labels in self.db.series_labels([Matcher(node_label(0), "!=", "")]):
            if is_plain_path(labels):
                continue
            h = hashlib.sha256(graphite_identity(labels)[0].encode()).hexdigest()
            out.append((f"{TAGGED_ROOT}.{h[:3]}.{h[3:6]}.{h}", labels))
        return out

    def _tagged_leaves(self, nodes: list[str]) -> Matched | None:
        tests = [glob_matches(n) for n in nodes]
        hits = [(path, labels) for path, labels in self.tagged_tree()
                if all(t(part) for t, part in zip(tests, path.split("."), strict=True))]
        if not hits:
            return None
        return Matched([ls for _, ls in hits], [p for p, _ in hits],
                       [{NAME_TAG: p} for p, _ in hits])

    def _match_exact_tagged(self, pattern: str) -> tuple[Matched, list[list[Matcher]]]:
        try:
            path, tags = parse_series_name(pattern)
        except InvalidName:
            return Matched([], [], []), []
        nodes = path.split(".")
        if not all(nodes):
            return Matched([], [], []), []
        matchers = [Matcher(node_label(i), "=", v) for i, v in enumerate(nodes)]
        matchers.append(Matcher(node_label(len(nodes)), "=", ""))
        matchers.extend(Matcher(k, "=", v) for k, v in tags.items())
        canonical = graphite_identity([(node_label(i), v) for i, v in enumerate(nodes)]
                                      + list(tags.items()))[0]
        if pattern != canonical:  # graphite-web looks the name up as written (its hash)
            return Matched([], [], []), []
        found = _identify(self._labels([matchers]))
        keep = [i for i, name in enumerate(found.names) if name == canonical]
        return _take(found, keep), [matchers]

    def match_tags(self, expressions: list[str]) -> tuple[Matched, list[list[Matcher]]]:
        """Series selected by graphite tag expressions (``seriesByTag``)."""
        query: TagQuery = tag_query(expressions)
        found = _identify(self._labels(query.branches))
        if query.filters:
            keep = [i for i, (name, tags) in enumerate(zip(found.names, found.tags,
                                                           strict=True))
                    if query.accepts(name, tags)]
            found = _take(found, keep)
        return found, query.branches

    # -- fetching ----------------------------------------------------------------------

    def fetch_path(self, pattern: str, start: int, end: int, now: int) -> list[SeriesList]:
        """Series of a path pattern over ``(start, end]`` (whole seconds)."""
        matched, branches = self.match_path(pattern)
        return self._fetch(matched, branches, pattern, start, end, now)

    def fetch_tagged(self, expressions: list[str], path_expression: str, start: int,
                     end: int, now: int) -> list[SeriesList]:
        """``seriesByTag`` over ``(start, end]``; ``path_expression`` is the call's text."""
        matched, branches = self.match_tags(expressions)
        return self._fetch(matched, branches, path_expression, start, end, now)

    def _fetch(self, matched: Matched, branches: list[list[Matcher]], path_expression: str,
               start: int, end: int, now: int) -> list[SeriesList]:
        n = len(matched.names)
        if not n:
            return []
        steps = self.resolutions.steps(matched.names)
        windows = {int(s): window(start, end, now, int(s)) for s in np.unique(steps)}
        if any(w is None for w in windows.values()):
            return []  # the window starts after now
        lo_ms = min(w.first for w in windows.values()) * 1000
        hi_ms = max(w.stop for w in windows.values()) * 1000 - 1
        values = {s: np.full((int(np.count_nonzero(steps == s)), w.points), np.nan)
                  for s, w in windows.items()}
        row_in_group = np.zeros(n, np.int64)
        for s in windows:
            members = np.flatnonzero(steps == s)
            row_in_group[members] = np.arange(len(members))
        row_of = {labels: i for i, labels in enumerate(matched.labels)}
        for matchers in branches:
            selected = self.db.select(list(matchers), lo_ms, hi_ms)
            if not len(selected):
                continue
            rows = np.array([row_of.get(ls, -1) for ls in selected.labels], np.int64)
            _place(selected.offsets, selected.t, selected.v, rows, steps, row_in_group,
                   windows, values)
        return _series_lists(matched, steps, row_in_group, windows, values, path_expression)


def _identify(labels: list[Labels]) -> Matched:
    named = sorted(((graphite_identity(ls), ls) for ls in labels), key=lambda x: x[0][0])
    return Matched([ls for _, ls in named], [ident[0] for ident, _ in named],
                   [ident[1] for ident, _ in named])


def _merge(a: Matched, b: Matched) -> Matched:
    order = sorted(range(len(a.names) + len(b.names)),
                   key=lambda i: (a.names + b.names)[i])
    labels, names, tags = a.labels + b.labels, a.names + b.names, a.tags + b.tags
    return Matched([labels[i] for i in order], [names[i] for i in order],
                   [tags[i] for i in order])


def _take(m: Matched, keep: list[int]) -> Matched:
    return Matched([m.labels[i] for i in keep], [m.names[i] for i in keep],
                   [m.tags[i] for i in keep])


def _place(offsets: np.ndarray, t_ms: np.ndarray, v: np.ndarray, rows: np.ndarray,
           steps: np.ndarray, row_in_group: np.ndarray, windows: dict[int, Window],
           values: dict[int, np.ndarray]) -> None:
    """Put selected samples (CSR per selected series, time-sorted) into the grids."""
    counts = np.diff(offsets)
    sample_row = np.repeat(rows, counts)
    known = sample_row >= 0
    sample_row, t_s, v = sample_row[known], t_ms[known] // 1000, v[known]
    sample_step = steps[sample_row]
    for s, w in windows.items():
        in_group = sample_step == s
        if not in_group.any():
            continue
        slot = (t_s[in_group] - w.first) // s
        row = row_in_group[sample_row[in_group]]
        val = v[in_group]
        inside = (slot >= 0) & (slot < w.points)
        slot, row, val = slot[inside], row[inside], val[inside]
        # samples of one series are contiguous and time-sorted: the last of each run of
        # equal (row, slot) is the newest sample of the slot
        key = row * max(w.points, 1) + slot
        last = np.ones(len(key), bool)
        last[:-1] = key[1:] != key[:-1]
        values[s][row[last], slot[last]] = val[last]


def _series_lists(matched: Matched, steps: np.ndarray, row_in_group: np.ndarray,
                  windows: dict[int, Window], values: dict[int, np.ndarray],
                  path_expression: str) -> list[SeriesList]:
    """One SeriesList per run of consecutive (name-sorted) series with the same step."""
    out: list[SeriesList] = []
    n = len(steps)
    i = 0
    while i < n:
        s = int(steps[i])
        j = i
        while j < n and steps[j] == s:
            j += 1
        w = windows[s]
        rows = row_in_group[i:j]
        out.append(SeriesList(matched.names[i:j], [dict(t) for t in matched.tags[i:j]],
                              w.first, s, values[s][rows], ["average"] * (j - i),
                              [path_expression] * (j - i)))
        i = j
    return out
