"""``label_replace`` and ``label_join``: rewrite label sets, keep values and ``__name__``.

``label_replace`` follows Prometheus 2.42 (built with Go 1.19): the regular expression is
RE2 syntax, fully anchored (``^(?:regex)$``), ``.`` does not match a newline, and the
replacement expands ``$1``, ``${1}``, ``$name`` and ``${name}`` exactly like Go's
``regexp.Expand`` (``$$`` is a dollar, ``$1x`` names the group ``1x``, an unknown group
expands to nothing). An empty result removes the destination label.
"""

from __future__ import annotations

import re
import unicodedata

import re2

from tsdb.query.promql.errors import QueryError
from tsdb.query.promql.functions_base import (
    Function,
    FunctionCall,
    string_arg,
    vector_arg,
)
from tsdb.query.promql.values import InstantVector
from tsdb.storage.labels import Labels

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def valid_label_name(name: str) -> bool:
    """Prometheus 2.x label names: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    return _LABEL_NAME.fullmatch(name) is not None


_GO_GROUP_NAME = re.compile(r"[A-Za-z0-9_]+")


def _go_rejects(pattern: str) -> bool:
    """Group syntax RE2 accepts but Go 1.19 (Prometheus 2.42's) does not: ``(?<name>...)``
    and group names other than ASCII letters, digits and underscores."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] == "[":  # skip a character class; a leading ']' is literal
            j = i + 1
            j += pattern.startswith("^", j)
            j += pattern.startswith("]", j)
            while j < len(pattern) and pattern[j] != "]":
                if pattern[j] == "\\":
                    j += 1
                elif pattern.startswith("[:", j) and pattern.find(":]", j + 2) != -1:
                    j = pattern.find(":]", j + 2) + 1
                j += 1
            i = j + 1
        elif pattern.startswith("(?<", i):
            return True
        elif pattern.startswith("(?P<", i):
            end = pattern.find(">", i + 4)
            if end == -1 or not _GO_GROUP_NAME.fullmatch(pattern[i + 4 : end]):
                return True
            i = end + 1
        else:
            i += 1
    return False


def compile_replace_regex(regex: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    try:
        if _go_rejects(regex):
            raise ValueError("invalid named capture")
        return re2.compile("^(?:" + regex + ")$", options)
    except Exception as e:  # re2 raises its own error type
        raise QueryError(f"invalid regular expression in label_replace(): {regex}") from e


def _is_name_char(c: str) -> bool:
    # Go: unicode.IsLetter || unicode.IsDigit || '_'
    return c == "_" or c.isalpha() or unicodedata.category(c) == "Nd"


def _extract(template: str) -> tuple[str, int, str] | None:
    """Go's ``regexp.extract``: the group reference at the start of ``template`` (after a
    ``$``) as (name, number or -1, rest), or None if malformed."""
    brace = template.startswith("{")
    body = template[1:] if brace else template
    i = 0
    while i < len(body) and _is_name_char(body[i]):
        i += 1
    if i == 0:
        return None
    name = body[:i]
    if brace:
        if i >= len(body) or body[i] != "}":
            return None
        i += 1
    num = 0
    for c in name:
        if not ("0" <= c <= "9") or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(c) - ord("0")
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, body[i:]


def go_expand(template: str, source: str, match: re2._Match, groupindex: dict[str, int]) -> str:
    """Go's ``Regexp.ExpandString`` of ``template`` for ``match`` on ``source``."""
    out: list[str] = []
    n_groups = len(match.groups()) + 1
    while template:
        before, dollar, after = template.partition("$")
        if not dollar:
            break
        out.append(before)
        template = after
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        ref = _extract(template)
        if ref is None:
            out.append("$")  # malformed: the dollar is literal text
            continue
        name, num, template = ref
        group = num if num >= 0 else groupindex.get(name, -1)
        if 0 <= group < n_groups:
            start, end = match.span(group)
            if start >= 0:
                out.append(source[start:end])
    out.append(template)
    return "".join(out)


def _with_label(labels: Labels, name: str, value: str) -> Labels:
    """``labels`` with ``name`` set to ``value``, or removed if ``value`` is empty."""
    kept = [pair for pair in labels if pair[0] != name]
    if value:
        kept.append((name, value))
        kept.sort()
    return tuple(kept)


def func_label_replace(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    dst, replacement, src, regex = (string_arg(call, i) for i in range(1, 5))
    rx = compile_replace_regex(regex)
    if not valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    groupindex = dict(rx.groupindex)
    expansions: dict[str, str | None] = {}  # source value -> new value (None: no match)
    out: list[Labels] = []
    for labels in vec.labels:
        value = next((v for n, v in labels if n == src), "")
        if value not in expansions:
            match = rx.search(value)
            expansions[value] = (
                None if match is None else go_expand(replacement, value, match, groupindex)
            )
        expanded = expansions[value]
        out.append(labels if expanded is None else _with_label(labels, dst, expanded))
    return InstantVector(out, vec.values.copy(), vec.present.copy())


def func_label_join(call: FunctionCall) -> InstantVector:
    vec = vector_arg(call, 0)
    dst = string_arg(call, 1)
    separator = string_arg(call, 2)
    sources = [string_arg(call, i) for i in range(3, len(call.args))]
    for src in sources:
        if not valid_label_name(src):
            raise QueryError(f"invalid source label name in label_join(): {src}")
    if not valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    out: list[Labels] = []
    for labels in vec.labels:
        as_dict = dict(labels)
        joined = separator.join(as_dict.get(src, "") for src in sources)
        out.append(_with_label(labels, dst, joined))
    return InstantVector(out, vec.values.copy(), vec.present.copy())


FUNCTIONS: dict[str, Function] = {
    "label_replace": func_label_replace,
    "label_join": func_label_join,
}
