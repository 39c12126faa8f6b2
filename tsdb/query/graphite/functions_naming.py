"""Names and tags the way graphite-web builds them: ``%g`` numbers, aggregate names from
path expressions, tags parsed from tagged names, and ``aliasByNode``'s node/tag lookup
through function-wrapped names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# --- names and tags ---------------------------------------------------------------------

_FUNCTION_NAME = re.compile(r"^[a-z]+[(].+[)]$", re.IGNORECASE)


def parse_tagged(path: str) -> dict[str, str]:
    """Tags of a carbon path ``name;tag=value;...`` (carbon's ``TaggedSeries.parse``
    rules); ValueError when it is not a valid tagged path."""
    segments = path.split(";")
    if not segments[0]:
        raise ValueError("Cannot parse path %s, no metric found" % path)
    tags: dict[str, str] = {}
    for segment in segments[1:]:
        tag, sep, value = segment.partition("=")
        if not sep or not tag or any(c in tag for c in ";!^=") or not value \
                or value.startswith("~"):
            raise ValueError("Cannot parse path %s, invalid segment %s" % (path, segment))
        tags[tag] = value
    name = segments[0].lstrip("~")
    if not name:
        raise ValueError("Cannot use metric name %s as tag value" % segments[0])
    tags["name"] = name
    return tags


def default_tags(name: str) -> dict[str, str]:
    """Tags graphite gives a new series that got none: parsed from a tagged name
    (``a.b;k=v``) unless the name looks like a function call."""
    if _FUNCTION_NAME.match(name):
        return {"name": name}
    try:
        return parse_tagged(name)
    except ValueError:
        return {"name": name}


def format_path_expressions(path_expressions: Iterable[str]) -> str:
    """Distinct path expressions in order, comma-joined (aggregate names)."""
    return ",".join(dict.fromkeys(path_expressions))


def split_call_args(text: str, pos: int) -> tuple[list[str], int]:
    """Top-level comma-separated arguments from ``pos`` (just after ``(``) to the
    matching ``)``; returns them and the position after the ``)``."""
    args: list[str] = []
    depth = 0
    quote = ""
    begin = pos
    while pos < len(text):
        c = text[pos]
        if quote:
            if c == "\\":
                pos += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append(text[begin:pos].strip())
                return args, pos + 1
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[begin:pos].strip())
            begin = pos + 1
        pos += 1
    raise ValueError("unbalanced parentheses")


_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_SCALAR = re.compile(r"""^(?:['"].*|[-+]?(?:\d|\.\d).*|true|false|none|inf)$""",
                     re.IGNORECASE | re.DOTALL)


def first_path_expression(name: str) -> str | None:
    """graphite's ``_getFirstPathExpression``: descend into first arguments until a path
    expression; None when the innermost first argument is a string or number."""
    text = name.strip()
    for _ in range(100):
        m = _CALL.match(text)
        if not m:
            break
        try:
            args, _end = split_call_args(text, m.end())
        except ValueError:
            return None
        if not args or not args[0]:
            return None
        text = args[0].split("|", 1)[0].strip()
    if not text or _SCALAR.match(text):
        return None
    return text


def node_or_tag(name: str, tags: dict[str, str], n: object,
                path_expression: str | None = None) -> str:
    """graphite's ``getNodeOrTag``: an integer picks a node of the (untagged) name, else
    or when out of range it names a tag ('' when absent)."""
    try:
        if isinstance(n, (int, float)) and not isinstance(n, bool) and n == int(n):
            return (path_expression or name).split(";", 2)[0].split(".")[int(n)]
    except (ValueError, IndexError, OverflowError):
        pass
    return tags.get(str(n), "")


def agg_key(name: str, tags: dict[str, str], nodes: Sequence[object]) -> str:
    """graphite's ``aggKey``: the nodes/tags joined by ``.``; a function-wrapped name is
    read through its first path expression."""
    path = first_path_expression(name) if name.endswith(")") else None
    return ".".join(node_or_tag(name, tags, n, path) for n in nodes)


def fmt_g(value: float) -> str:
    """Python's ``%g`` (graphite's number format in names)."""
    return "%g" % float(value)
