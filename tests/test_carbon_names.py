"""Series names as carbon senders write them: carbon's TaggedSeries.parse rules."""

from __future__ import annotations

import pytest

from tsdb.api.carbon_resolver import labels_of_name
from wire.graphite_names import InvalidName, parse_sent_name


@pytest.mark.parametrize("sent, path, tags", [
    ("a.b.c", "a.b.c", {}),
    ("~a.b", "a.b", {}),  # carbon strips leading '~' from every name
    ("disk.used;rack=a1;dc=eu", "disk.used", {"rack": "a1", "dc": "eu"}),
    ("a;t=x=y", "a", {"t": "x=y"}),  # a value may hold '='
    ("a;name=other;t=1", "a", {"t": "1"}),  # the name tag is the path
    ("a;t=1;t=2", "a", {"t": "2"}),  # the last value wins
    ('a.b{dc="eu",rack="a1"}', "a.b", {"dc": "eu", "rack": "a1"}),
    ('a{q="say \\"hi\\"",b="back\\\\slash"}', "a", {"q": 'say "hi"', "b": "back\\slash"}),
    ('a{x="1":,y="2"}', "a", {"x": "1", "y": "2"}),  # carbon's regex accepts ':,' too
    ('a{name="z"}', "a", {}),
    ('a{x="1"', 'a{x="1"', {}),  # not the OpenMetrics form: a plain path
])
def test_names_carbon_accepts(sent, path, tags):
    assert parse_sent_name(sent) == (path, tags)


@pytest.mark.parametrize("sent", [
    "~", "~;t=1", ";t=1", "a;t", "a;=v", "a;t=", "a;t=~v", "a;t!=v", "a;t^x=v",
    'a{{x="1"}', '{x="1"}', 'a{x="1;2"}', 'a{x="1" y="2"}', 'a{x=""}',
])
def test_names_carbon_refuses(sent):
    with pytest.raises(InvalidName):
        parse_sent_name(sent)


def test_a_name_becomes_node_labels_and_tags():
    assert labels_of_name(b"disk.used;rack=a1;dc=eu") == (
        ("__g0__", "disk"), ("__g1__", "used"), ("dc", "eu"), ("rack", "a1"))
    assert labels_of_name(b"disk.used;dc=eu;rack=a1") == labels_of_name(
        b'disk.used{rack="a1",dc="eu"}')
    for bad in (b"a..b", b".a", b"\xff.a", b"a;__g0__=x"):
        with pytest.raises(InvalidName):
            labels_of_name(bad)
