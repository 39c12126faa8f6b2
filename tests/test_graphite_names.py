"""Graphite names <-> label sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.graphite_names import (
    InvalidName,
    graphite_identity,
    parse_series_name,
    path_labels,
)


def test_path_becomes_node_labels_and_back():
    pairs = path_labels("stats.gauges.donkey")
    assert pairs == [("__g0__", "stats"), ("__g1__", "gauges"), ("__g2__", "donkey")]
    assert graphite_identity(sorted(pairs)) == ("stats.gauges.donkey",
                                                {"name": "stats.gauges.donkey"})


def test_node_labels_are_ordered_numerically_not_lexically():
    path = ".".join(f"n{i}" for i in range(12))
    name, tags = graphite_identity(sorted(path_labels(path)))  # __g10__ sorts before __g2__
    assert name == path and tags == {"name": path}


def test_tagged_series_canonical_order_and_carbon_rules():
    path, tags = parse_series_name("disk.used;server=web01;datacenter=dc1;rack=a1")
    assert (path, tags) == ("disk.used", {"server": "web01", "datacenter": "dc1", "rack": "a1"})
    name, shown = graphite_identity(sorted(path_labels(path, tags)))
    assert name == "disk.used;datacenter=dc1;rack=a1;server=web01"
    assert shown["name"] == "disk.used" and shown["rack"] == "a1"
    assert parse_series_name("~~x;a=b") == ("x", {"a": "b"})
    for bad in ["a;b", "a;=v", "a;t=", "a;t=~v", "a;t!x=v", ";t=v", "a;__g0__=x"]:
        with pytest.raises(InvalidName):
            parse_series_name(bad)
    for bad in ["a..b", ".a", ""]:
        with pytest.raises(InvalidName):
            path_labels(bad)
    assert path_labels("a.b.") == [("__g0__", "a"), ("__g1__", "b")]


def test_remote_write_series_are_named_by_metric_name():
    labels = (("__name__", "node_load1"), ("instance", "a:9100"), ("job", "node"))
    assert graphite_identity(labels) == ("node_load1;instance=a:9100;job=node",
                                         {"instance": "a:9100", "job": "node",
                                          "name": "node_load1"})


@given(st.lists(st.text(st.characters(blacklist_characters=".;", min_codepoint=33),
                        min_size=1, max_size=5), min_size=1, max_size=12))
def test_any_path_round_trips(nodes):
    path = ".".join(nodes)
    assert graphite_identity(sorted(path_labels(path)))[0] == path
