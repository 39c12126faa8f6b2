"""The target evaluator with a stub function registry (independent of the real library):
argument evaluation, pipes, keyword arguments, ``ctx.notes``, re-evaluation over another
range, templates, ``seriesByTag``, built-ins and errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tsdb.query.graphite.fetch import GraphiteStore
from tsdb.query.graphite.render import Renderer, RenderError
from tsdb.query.graphite.series import SeriesList
from tsdb.storage.database import Database
from tsdb.storage.labels import validate_labels
from tsdb.storage.options import DatabaseOptions, NamespaceOptions
from wire.graphite_names import path_labels

NOW = 100_000


@dataclass
class Stub:
    impl: Any


class Bad(Exception):
    status = 400


def twice(ctx, series_list, factor=2):
    return [SeriesList([f"twice({n})" for n in sl.names], sl.tags, sl.start, sl.step,
                       sl.values * factor) for sl in series_list]


SEEN: list = []


def record(ctx, *args, **kwargs):
    SEEN.append((list(ctx.notes["args"]), args, kwargs, ctx.notes.get("xFilesFactor")))
    return [sl for a in args if isinstance(a, list) for sl in a]


def shifted(ctx, series_list, seconds):
    return ctx.evaluate(ctx.notes["args"][0], ctx.start - seconds, ctx.end - seconds)


def bad(ctx, *args):
    raise Bad("bad argument")


def boom(ctx, *args):
    raise ValueError("crashed")


FUNCTIONS = {name: Stub(fn) for name, fn in
             {"twice": twice, "record": record, "shifted": shifted, "bad": bad,
              "boom": boom}.items()}


@pytest.fixture
def renderer(tmp_path):
    db = Database(tmp_path / "db", DatabaseOptions(
        fsync=False, namespaces=(NamespaceOptions(retention_ms=0),)))
    for name, tags, base in (("a.b", {}, 1.0), ("a.c", {}, 10.0),
                             ("m", {"dc": "eu"}, 100.0)):
        sid = db.series_ids([validate_labels(path_labels(name, tags))])[0]
        t = np.arange(1000, 2000, 10, dtype=np.int64)
        db.write(np.full(len(t), sid, np.int64), t * 1000, base + (t - 1000) / 10)
    yield Renderer(GraphiteStore(db), FUNCTIONS)
    db.close()


def names(lists: list[SeriesList]) -> list[str]:
    return [n for sl in lists for n in sl.names]


def test_arguments_are_evaluated(renderer):
    SEEN.clear()
    out = renderer.render(["record(a.*, 3, 'x', true, none, inf, k=a.b)"], 1000, 1050, NOW,
                          xfiles_factor=0.5)
    texts, args, kwargs, xff = SEEN[0]
    assert texts == ["a.*", "3", "'x'", "true", "none", "inf"]
    assert isinstance(args[0], list) and names(args[0]) == ["a.b", "a.c"]
    assert args[1:] == (3, "x", True, None, float("inf"))
    assert names(kwargs["k"]) == ["a.b"] and xff == 0.5
    assert names(out) == ["a.b", "a.c"]


def test_pipes_and_nesting(renderer):
    out = renderer.render(["a.b | twice() | twice(3)"], 1000, 1050, NOW)
    assert names(out) == ["twice(twice(a.b))"]
    assert out[0].values[0].tolist() == [6.0 * v for v in (2, 3, 4, 5, 6)]
    assert names(renderer.render(["twice(twice(a.c))", "a.b"], 1000, 1050, NOW)) == [
        "twice(twice(a.c))", "a.b"]
    # graphite's grammar wants a positional argument before keywords: the last pipe stage
    # does not parse, and what follows the valid prefix is ignored
    assert names(renderer.render(["a.b | twice() | twice(factor=3)"], 1000, 1050, NOW)) == [
        "twice(a.b)"]
    assert renderer.render(["twice(a.b, factor=3)"], 1000, 1020, NOW)[0].values[0, 0] == 6.0


def test_reevaluation_over_another_range(renderer):
    out = renderer.render(["shifted(a.b | twice(), 20)"], 1040, 1060, NOW)
    assert out[0].start == 1030 and out[0].values[0].tolist() == [8.0, 10.0]


def test_series_by_tag_and_templates(renderer):
    out = renderer.render(["seriesByTag('dc=eu')"], 1000, 1020, NOW)
    assert names(out) == ["m;dc=eu"] and out[0].path_expressions == ["seriesByTag('dc=eu')"]
    assert names(renderer.render(["template(a.$1, 'c')"], 1000, 1020, NOW)) == ["a.c"]
    assert names(renderer.render(["template(a.$x, x='b')"], 1000, 1020, NOW)) == ["a.b"]
    out = renderer.render(["template(twice(a.b, $1), 5)"], 1000, 1020, NOW)
    assert out[0].values[0].tolist() == [10.0, 15.0]
    out = renderer.render(["template(a.$n)"], 1000, 1020, NOW, template={"n": "c"})
    assert names(out) == ["a.c"]


def test_builtin_constant_line(renderer):
    out = renderer.render(["constantLine(7)"], 1000, 1100, NOW)
    assert names(out) == ["7.0"]
    assert out[0].timestamps().tolist() == [1000, 1050, 1100]


def test_errors(renderer):
    with pytest.raises(RenderError) as err:
        renderer.render(["nosuch(a.b)"], 1000, 1020, NOW)
    assert err.value.status == 400
    with pytest.raises(Bad):
        renderer.render(["twice(bad(a.b))"], 1000, 1020, NOW)
    with pytest.raises(ValueError):
        renderer.render(["boom(a.b)"], 1000, 1020, NOW)
    with pytest.raises(RenderError) as err:
        renderer.render([")"], 1000, 1020, NOW)
    assert err.value.status == 500
    with pytest.raises(RenderError) as err:
        renderer.render(["template(a.b, twice(1))"], 1000, 1020, NOW)
    assert err.value.status == 400
    assert renderer.render(["twice(a.b", "", "  "], 1000, 1020, NOW) == []
