"""Graphite series names <-> label sets (M3's ``__g<i>__`` scheme plus Graphite tags).

A dotted path ``a.b.c`` is stored as ``__g0__="a", __g1__="b", __g2__="c"``, so path
patterns and PromQL (``{__g0__="a", __g2__=~"c.*"}``) read the same index. A tagged series
``a.b;dc=eu;rack=1`` adds one label per tag (``dc="eu"``, ``rack="1"``); Graphite's ``name``
tag is the path itself and is not stored. Tag names beginning with ``__`` are refused:
they would collide with the node labels and ``__name__``.

The other way round, every label set has a Graphite identity: a series with node labels
is named by its path (``a.b.c``, or ``a.b.c;dc=eu;rack=1`` with its tags in carbon's
canonical order); a series without them (written by Prometheus remote write) is named by
its ``__name__`` and tags, so ``seriesByTag('name=node_load1')`` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

NAME_TAG = "name"
METRIC_NAME = "__name__"
_NODE = re.compile(r"__g(\d+)__\Z")


def node_label(i: int) -> str:
    """The label holding path node ``i``."""
    return f"__g{i}__"


def node_index(label: str) -> int | None:
    """``i`` for ``__g<i>__``, else None."""
    m = _NODE.match(label)
    return int(m.group(1)) if m else None


class InvalidName(ValueError):
    """A path or tag breaks carbon's rules; the message names the problem."""


def parse_series_name(text: str) -> tuple[str, dict[str, str]]:
    """``path;tag=value;...`` -> (path, tags) with carbon's validation (``TaggedSeries``).

    A leading ``~`` run is removed from the name as carbon does; tags keep their last value
    when repeated.
    """
    path, *parts = text.split(";")
    tags: dict[str, str] = {}
    for part in parts:
        tag, eq, value = part.partition("=")
        if not eq or not tag:
            raise InvalidName(f"tag {part!r} of {text!r} is not tag=value")
        if any(c in tag for c in "!^= "):
            raise InvalidName(f"tag name {tag!r} of {text!r} contains one of '!^= '")
        if not value or value.startswith("~"):
            raise InvalidName(f"tag {tag!r} of {text!r} has an empty value or one "
                              "starting with '~'")
        if tag.startswith("__"):
            raise InvalidName(f"tag name {tag!r} of {text!r} is reserved (starts with '__')")
        if tag == NAME_TAG:
            continue  # carbon overrides it with the path
        tags[tag] = value
    if parts:
        path = path.lstrip("~")
    if not path:
        raise InvalidName(f"series name {text!r} has an empty path")
    return path, tags


def path_labels(path: str, tags: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Label pairs of a Graphite series (unsorted); InvalidName for an empty node."""
    nodes = path.split(".")
    if path.endswith("."):
        nodes.pop()  # a trailing dot adds no node (carbon and M3 agree)
    if not nodes or any(not n for n in nodes):
        raise InvalidName(f"path {path!r} has an empty node")
    pairs = [(node_label(i), node) for i, node in enumerate(nodes)]
    if tags:
        pairs.extend(tags.items())
    return pairs


def graphite_identity(labels: Iterable[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """(series name, tags including ``name``) of a label set, as Graphite shows it."""
    nodes: dict[int, str] = {}
    tags: dict[str, str] = {}
    for name, value in labels:
        i = node_index(name)
        if i is None:
            tags[name] = value
        else:
            nodes[i] = value
    if nodes:
        path = ".".join(nodes[i] for i in range(len(nodes)) if i in nodes)
    else:
        path = tags.pop(METRIC_NAME, "")
    out = dict(sorted(tags.items()))
    # carbon's TaggedSeries.format sorts the ";tag=value" strings, not the tag names:
    # ";a-b=1" comes before ";a=2"
    name = path + "".join(sorted(f";{k}={v}" for k, v in out.items()))
    out[NAME_TAG] = path
    return name, out


# carbon's TaggedSeries.parse_openmetrics segment pattern, verbatim (``(:?,|$)`` included)
_OPENMETRICS_TAG = re.compile(r'([^=]+)="((?:[\\]["\\]|[^"\\])+)"(:?,|$)')


def parse_sent_name(text: str) -> tuple[str, dict[str, str]]:
    """A series name as a carbon sender writes it -> (path, tags), as carbon's
    ``TaggedSeries.parse`` reads it: ``path;tag=value;...`` or the OpenMetrics-like
    ``path{tag="value",...}`` (backslash escapes for ``"`` and ``\\``). A leading ``~`` run is
    removed from every path, tagged or not, as carbon does.

    Carbon stores a name it cannot parse under its raw spelling; we refuse it (InvalidName).
    """
    if text.endswith('"}') and "{" in text:
        metric, _, rawtags = text[:-1].partition("{")
        if "{" in rawtags or not metric:
            raise InvalidName(f"series name {text!r} is not name{{tag=\"value\",...}}")
        parts = [metric]
        while rawtags:
            m = _OPENMETRICS_TAG.match(rawtags)
            if not m:
                raise InvalidName(f"series name {text!r}: cannot parse {rawtags!r}")
            value = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
            if ";" in value:
                raise InvalidName(f"tag value {value!r} of {text!r} contains ';'")
            parts.append(f"{m.group(1)}={value}")
            rawtags = rawtags[m.end():]
        text = ";".join(parts)
    path, tags = parse_series_name(text)
    path = path.lstrip("~")
    if not path:
        raise InvalidName(f"series name {text!r} has an empty path")
    return path, tags
