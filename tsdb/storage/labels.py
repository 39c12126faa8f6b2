"""Label sets, their canonical byte key, validation, and label matchers.

A label set is a tuple of ``(name, value)`` pairs sorted by name, with no empty value and no
repeated name. Its canonical key is every name and value encoded as UTF-8 and each followed
by the byte 0xff, which never occurs in UTF-8, so the key is unambiguous and decodable.

Matchers follow Prometheus: a label that is absent has the value ``""``; regular expressions
use RE2 syntax and are fully anchored. ``.`` does not match a newline, as in Prometheus 2.x
(Prometheus 3.0 changed that); flip :data:`DOT_MATCHES_NEWLINE` to follow 3.x instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import re2
from re2 import _re2

Labels = tuple[tuple[str, str], ...]

#: Prometheus 2.x compiles ``^(?:re)$``; Prometheus 3.x compiles ``^(?s:re)$``.
DOT_MATCHES_NEWLINE = False

SEP = b"\xff"

EQ, NEQ, RE, NRE = "=", "!=", "=~", "!~"
OPS = (EQ, NEQ, RE, NRE)


class InvalidLabels(ValueError):
    """A label set breaks the naming rules; the message names the offending label."""


def labels_key(labels: Labels) -> bytes:
    """Canonical key: ``name 0xff value 0xff`` for every pair, in the given (sorted) order."""
    # One join and one encode for the whole set: strings are joined with NUL, which becomes
    # 0xff afterwards. A NUL inside a name or value (legal, if rare) takes the slow path.
    try:
        key = ("\x00".join(chain.from_iterable(labels)) + "\x00").encode("utf-8")
        if key.count(0) == 2 * len(labels):
            return key.replace(b"\x00", SEP)
        return b"".join([n.encode("utf-8") + SEP + v.encode("utf-8") + SEP for n, v in labels])
    except UnicodeEncodeError as e:
        raise InvalidLabels(f"label set is not valid UTF-8: {labels!r}") from e


def labels_from_key(key: bytes) -> Labels:
    """Inverse of :func:`labels_key`; raises ``ValueError`` for a malformed key."""
    if not key:
        return ()
    if key[-1] != 0xFF:
        raise ValueError(f"malformed label key (no trailing 0xff): {key[:64]!r}")
    try:
        if 0 in key:
            parts = [p.decode("utf-8") for p in key[:-1].split(SEP)]
        else:
            parts = key[:-1].replace(SEP, b"\x00").decode("utf-8").split("\x00")
    except UnicodeDecodeError as e:
        raise ValueError(f"malformed label key (invalid UTF-8): {key[:64]!r}") from e
    if len(parts) % 2:
        raise ValueError(f"malformed label key (odd number of strings): {key[:64]!r}")
    return tuple(zip(parts[0::2], parts[1::2], strict=True))


def validate_labels(pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> Labels:
    """Sort and check a label set the way Prometheus does on ingestion.

    Names must be non-empty valid UTF-8 (any UTF-8, as Prometheus 3 accepts); names may not
    repeat (even when one of the values is empty); values must be valid UTF-8; pairs with an
    empty value are dropped, since an empty value means "label absent".
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pair in items:
        try:
            name, value = pair
        except (TypeError, ValueError) as e:
            raise InvalidLabels(f"label must be a (name, value) pair, got {pair!r}") from e
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidLabels(f"label name and value must be str, got {pair!r}")
        if not name:
            raise InvalidLabels(f"empty label name (value {value!r})")
        if name in seen:
            raise InvalidLabels(f"duplicate label name {name!r}")
        seen.add(name)
        _check_utf8(name, "name")
        if value:
            _check_utf8(value, f"value of label {name!r}")
            out.append((name, value))
    out.sort()
    return tuple(out)


def validate_sent_labels(pairs: Sequence[tuple[str, str]]) -> Labels:
    """:func:`validate_labels` plus the rules of the remote-write spec for a label set as a
    sender transmits it: names already sorted, and a ``__name__`` label."""
    for (a, _), (b, _) in zip(pairs, pairs[1:], strict=False):
        if a == b:
            raise InvalidLabels(f"duplicate label name {a!r}")
        if a > b:
            raise InvalidLabels(f"label names are not sorted: {[n for n, _ in pairs]}")
    labels = validate_labels(pairs)
    if not labels:
        raise InvalidLabels("series has no labels")
    if not any(name == "__name__" for name, _ in labels):
        shown = ", ".join(f'{n}="{v}"' for n, v in labels)
        raise InvalidLabels(f"series {{{shown}}} has no __name__ label")
    return labels


def _check_utf8(s: str, what: str) -> None:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidLabels(f"label {what} {s!r} is not valid UTF-8") from e


# --- regular expressions -------------------------------------------------------------------

_META = frozenset("\\.+*?()|[]{}^$")


@dataclass(frozen=True, slots=True)
class Regex:
    """A fully anchored RE2 pattern plus what is known about it without running it.

    ``literals``: the exact finite set of strings it matches when the pattern is a plain
    alternation of literals (``a|b|c``, ``(a|b)``, escaped punctuation allowed), else None.
    ``matches_all`` / ``matches_all_nonempty``: it matches every string / every non-empty one.
    """

    pattern: str
    literals: frozenset[str] | None
    matches_all: bool
    matches_all_nonempty: bool
    fullmatch: Callable[[str], bool]
    _set_match: Callable[[bytes], list[int]] | None = field(repr=False, compare=False)

    def match_many(self, values: Iterable[str], count: int) -> np.ndarray:
        """Boolean array: does each of ``values`` (``count`` of them) match?"""
        if self._set_match is not None:
            # Pure C iteration apart from the RE2 call itself: [] -> 0, [0] -> 1.
            hits = map(len, map(self._set_match, map(str.encode, values)))
            return np.fromiter(hits, dtype=np.bool_, count=count)
        return np.fromiter(map(self.fullmatch, values), dtype=np.bool_, count=count)


def _literal_alternatives(pattern: str) -> frozenset[str] | None:
    """The strings matched by ``lit|lit|...`` (optionally in one group), else None."""
    inner = pattern
    for opening in ("(?:", "("):
        if inner.startswith(opening) and inner.endswith(")"):
            candidate = inner[len(opening) : -1]
            if "(" not in candidate and ")" not in candidate:
                inner = candidate
            break
    out: set[str] = set()
    chars: list[str] = []
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\":
            nxt = inner[i + 1] if i + 1 < len(inner) else ""
            # Only escaped ASCII punctuation is a literal; \d, \pL, \x41, \Q... are not.
            if not (nxt and nxt.isascii() and not nxt.isalnum() and nxt.isprintable()
                    and nxt != " "):
                return None
            chars.append(nxt)
            i += 2
            continue
        if c == "|":  # an unescaped bar ends one alternative
            out.add("".join(chars))
            chars = []
        elif c in _META:
            return None
        else:
            chars.append(c)
        i += 1
    out.add("".join(chars))
    return frozenset(out)


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False
    opts.never_capture = True
    opts.dot_nl = DOT_MATCHES_NEWLINE
    return opts


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Regex:
    """Compile ``pattern`` with Prometheus semantics; ``ValueError`` if it is not valid RE2."""
    if not isinstance(pattern, str):
        raise ValueError(f"regular expression must be a str, got {pattern!r}")
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"invalid regular expression {pattern!r}: not valid UTF-8") from e
    opts = _options()
    checked = _re2.RE2(encoded, opts)
    if not checked.ok():
        reason = checked.error().decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression {pattern!r}: {reason}")

    literals = _literal_alternatives(pattern)
    if literals is not None:
        return Regex(pattern, literals, False, False, literals.__contains__, None)
    if pattern in (".*", ".+"):
        nonempty = pattern == ".+"
        if DOT_MATCHES_NEWLINE:
            always: Callable[[str], bool] = bool if nonempty else (lambda s: True)
            return Regex(pattern, None, not nonempty, nonempty, always, None)
        if nonempty:
            return Regex(pattern, None, False, False, lambda s: s != "" and "\n" not in s, None)
        return Regex(pattern, None, False, False, lambda s: "\n" not in s, None)

    matcher = _re2.Set(_re2.RE2.Anchor.ANCHOR_BOTH, opts)
    if matcher.Add(encoded) != 0 or not matcher.Compile():
        raise ValueError(f"invalid regular expression {pattern!r}")
    set_match = matcher.Match

    def fullmatch(s: str) -> bool:
        return bool(set_match(s.encode("utf-8")))

    return Regex(pattern, None, False, False, fullmatch, set_match)


# --- matchers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value`` with op one of ``=``, ``!=``, ``=~``, ``!~`` (Prometheus semantics).

    Construction compiles a regex value and raises ``ValueError`` if it is invalid.
    """

    name: str
    op: str
    value: str
    regex: Regex | None = field(init=False, repr=False, compare=False)
    matches_empty: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown matcher operator {self.op!r}; expected one of {OPS}")
        if not isinstance(self.name, str) or not isinstance(self.value, str):
            raise ValueError(f"matcher name and value must be str: {self.name!r} {self.value!r}")
        rx = compile_regex(self.value) if self.op in (RE, NRE) else None
        object.__setattr__(self, "regex", rx)
        object.__setattr__(self, "matches_empty", self.matches(""))

    def matches(self, value: str) -> bool:
        """Does a label value (``""`` when the label is absent) satisfy the matcher?"""
        op = self.op
        if op == EQ:
            return value == self.value
        if op == NEQ:
            return value != self.value
        assert self.regex is not None
        hit = self.regex.fullmatch(value)
        return hit if op == RE else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'
