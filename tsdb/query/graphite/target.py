"""Render target expressions: ``sumSeries(servers.*.cpu.user)``, ``a.b|scale(2)``,
``aliasSub(x, '(^.*$)', '\\1 A')``, ``seriesByTag('name=x')``, ``template(...)``.

A hand-written parser with exactly the semantics of graphite-web 1.1.8's pyparsing grammar
(``render/grammar_unsafe.py``), which is a PEG: ordered choice, no backtracking into a
choice once it matched, and ``parseString`` without ``parseAll`` (text after the longest
valid expression is ignored). Consequences worth knowing, all graphite's own:

* ``f(key=1)`` is the path ``f``: keyword arguments are only accepted after a positional
  one, so the call fails and the longest valid prefix is the bare name;
* a syntax error after a valid prefix is not an error: ``sumSeries(a.b`` evaluates the
  path ``sumSeries`` (no series, so ``[]``); only text without any valid prefix (``)``) is
  a :class:`TargetSyntaxError`. ``strict=True`` asks for the whole text instead;
* numbers must be followed by ``,``, ``)`` or the end of the line, else the token is a
  path (``2x`` is a path); ``true``/``false``/``none``/``inf`` are case-insensitive
  keywords; strings keep their backslashes (``'\\1'`` is backslash-one, as ``re.sub``
  wants) and allow a doubled quote inside;
* path characters are printable ASCII except ``(){},.'"\\|`` (``\\(`` escapes one and the
  backslash is dropped); ``{a,b}`` alternatives; no whitespace inside a path. As an
  extension (graphite's ``UTF8_METRICS``), non-ASCII letters are path characters too.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 100

_SYMBOLS = "(){},.'\"\\|"
_PATH_CHARS = frozenset(set(string.printable[:94]) - set(_SYMBOLS))
_IDENT_START = frozenset(string.ascii_letters + "_")
_IDENT = frozenset(string.ascii_letters + string.digits + "_")
_KEYWORD_CHARS = frozenset(string.ascii_letters + string.digits + "_$")
_WS = " \t\n\r"
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")
_SCI = re.compile(r"(?:-?\d+\.\d+|-?\d+)[eE]-?\d+")
_STRINGS = {'"': re.compile(r'"(?:[^"\n\r\\]|(?:"")|(?:\\(?:[^x]|x[0-9a-fA-F]+)))*'),
            "'": re.compile(r"'(?:[^'\n\r\\]|(?:'')|(?:\\(?:[^x]|x[0-9a-fA-F]+)))*")}


class TargetSyntaxError(ValueError):
    """A target with no valid expression (or, with ``strict``, trailing garbage)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at char {position})")
        self.position = position


# -- syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class PathExpr:
    """A metric path or pattern (graphite's ``pathExpression``); ``text`` has escapes
    resolved (``a\\(b`` is ``a(b``)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Literal:
    """A scalar argument: ``value`` is an int, float, str, bool, None or inf."""

    value: Any
    kind: str        # "integer", "float", "scientific", "string", "boolean", "none", "infinity"
    start: int
    end: int


@dataclass(frozen=True)
class Call:
    """``name(args..., key=value...)``. ``raw`` is the call's own source text (graphite's
    ``call.raw``; the path expression of ``seriesByTag`` results). A piped call
    ``x|f(y)`` is ``f(x, y)`` with ``piped`` set and ``start`` at ``x``."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    raw: str
    start: int
    end: int
    piped: bool = False


@dataclass(frozen=True)
class Template:
    """``template(body, 1, 'x', key='v')``: ``$1``/``$key`` in the body's paths replaced."""

    body: Call | PathExpr
    args: tuple[Literal, ...]
    kwargs: tuple[tuple[str, Literal], ...]
    start: int
    end: int


Expr = PathExpr | Literal | Call | Template


def source(node: Expr, text: str) -> str:
    """The source text of a node (for a path: the pattern as written)."""
    return text[node.start:node.end]


# -- parser -----------------------------------------------------------------------------


class _Fail(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.furthest = 0
        self.expected = "an expression"
        self.depth = 0
        self.memo: dict[tuple[str, int], tuple[Any, int] | None] = {}

    # tokens: each returns (value, end) or raises _Fail
    def fail(self, pos: int, what: str):
        if pos >= self.furthest:
            self.furthest, self.expected = pos, what
        raise _Fail

    def skip(self, pos: int) -> int:
        while pos < self.n and self.s[pos] in _WS:
            pos += 1
        return pos

    def lit(self, pos: int, char: str) -> int:
        pos = self.skip(pos)
        if pos < self.n and self.s[pos] == char:
            return pos + 1
        self.fail(pos, repr(char))

    def ident(self, pos: int) -> tuple[str, int]:
        pos = self.skip(pos)
        if pos < self.n and self.s[pos] in _IDENT_START:
            end = pos + 1
            while end < self.n and self.s[end] in _IDENT:
                end += 1
            return self.s[pos:end], end
        self.fail(pos, "a name")

    def keyword(self, pos: int, word: str) -> int:
        pos = self.skip(pos)
        end = pos + len(word)
        if self.s[pos:end].lower() == word and (end >= self.n or self.s[end] not in
                                                 _KEYWORD_CHARS):
            return end
        self.fail(pos, word)

    def followed_by_end_of_arg(self, pos: int) -> bool:
        """pyparsing's ``FollowedBy(",") ^ FollowedBy(")") ^ FollowedBy(LineEnd())``."""
        p = self.skip(pos)
        if p < self.n and self.s[p] in ",)":
            return True
        p = pos
        while p < self.n and self.s[p] in " \t\r":
            p += 1
        return p >= self.n or self.s[p] == "\n"

    def number(self, pos: int) -> tuple[Literal, int]:
        p = self.skip(pos)
        for rx, kind in ((_SCI, "scientific"), (_FLOAT, "float"), (_INT, "integer")):
            m = rx.match(self.s, p)
            if m and self.followed_by_end_of_arg(m.end()):
                text = m.group()
                value: Any = int(text) if kind == "integer" else float(text)
                return Literal(value, kind, p, m.end()), m.end()
        self.fail(p, "a number")

    def quoted(self, pos: int) -> tuple[Literal, int]:
        p = self.skip(pos)
        if p < self.n and self.s[p] in _STRINGS:
            q = self.s[p]
            m = _STRINGS[q].match(self.s, p)
            if m and m.end() < self.n and self.s[m.end()] == q:
                end = m.end() + 1
                return Literal(self.s[p + 1:end - 1], "string", p, end), end
        self.fail(p, "a string")

    # path expressions
    def _path_chars(self, pos: int) -> tuple[str, int]:
        """``partialPathElem``: metric characters and backslash escapes, at least one."""
        out: list[str] = []
        p = pos
        while p < self.n:
            c = self.s[p]
            if c in _PATH_CHARS or (not c.isascii() and c.isprintable()):
                out.append(c)
                p += 1
            elif c == "\\" and p + 1 < self.n and self.s[p + 1] in _SYMBOLS + "=":
                out.append(self.s[p + 1])
                p += 2
            else:
                break
        if not out:
            self.fail(p, "a metric path")
        return "".join(out), p

    def _match_enum(self, pos: int) -> tuple[str, int]:
        if pos < self.n and self.s[pos] == "{":
            first, p = self._path_chars(pos + 1)
            parts = [first]
            while p < self.n and self.s[p] == ",":
                try:
                    part, q = self._path_chars(p + 1)
                except _Fail:
                    break
                parts.append(part)
                p = q
            if p < self.n and self.s[p] == "}":
                return "{" + ",".join(parts) + "}", p + 1
            self.fail(p, "'}'")
        self.fail(pos, "'{'")

    def _path_element(self, pos: int) -> tuple[str, int]:
        """``pathElement``: metric characters and ``{a,b}`` groups, at least one."""
        pieces: list[str] = []
        p = pos
        while True:
            try:
                piece, p = self._path_chars(p)
            except _Fail:
                try:
                    piece, p = self._match_enum(p)
                except _Fail:
                    break
            pieces.append(piece)
        if not pieces:
            self.fail(p, "a metric path")
        return "".join(pieces), p

    def path(self, pos: int) -> tuple[PathExpr, int]:
        start = self.skip(pos)
        first, p = self._path_element(start)
        parts = [first]
        while p < self.n and self.s[p] == ".":
            try:
                part, q = self._path_element(p + 1)
            except _Fail:
                break
            parts.append(part)
            p = q
        return PathExpr(".".join(parts), start, p), p

    # calls and expressions
    def call(self, pos: int) -> tuple[Call, int]:
        start = self.skip(pos)
        name, p = self.ident(start)
        p = self.lit(p, "(")
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        try:
            arg, q = self.positional(p)
        except _Fail:
            pass
        else:
            args.append(arg)
            p = q
            while True:
                try:
                    arg, q = self.positional(self.lit(p, ","))
                except _Fail:
                    break
                args.append(arg)
                p = q
            try:
                first, q = self.kwarg(self.lit(p, ","))
            except _Fail:
                pass
            else:
                kwargs.append(first)
                p = q
                while True:
                    try:
                        kw, q = self.kwarg(self.lit(p, ","))
                    except _Fail:
                        break
                    kwargs.append(kw)
                    p = q
        end = self.lit(p, ")")
        return Call(name, tuple(args), tuple(kwargs), self.s[start:end], start, end), end

    def kwarg(self, pos: int) -> tuple[tuple[str, Expr], int]:
        key = ("kwarg", pos)
        if key not in self.memo:
            try:
                name, p = self.ident(pos)
                value, p = self.arg(self.lit(p, "="))
                self.memo[key] = ((name, value), p)
            except _Fail:
                self.memo[key] = None
        hit = self.memo[key]
        if hit is None:
            raise _Fail
        return hit

    def positional(self, pos: int) -> tuple[Expr, int]:
        try:
            self.kwarg(pos)
        except _Fail:
            return self.arg(pos)
        self.fail(self.skip(pos), "a positional argument")

    def arg(self, pos: int) -> tuple[Expr, int]:
        key = ("arg", pos)
        if key in self.memo:
            hit = self.memo[key]
            if hit is None:
                raise _Fail
            return hit
        try:
            result = self._arg(pos)
        except _Fail:
            self.memo[key] = None
            raise
        self.memo[key] = result
        return result

    def _arg(self, pos: int) -> tuple[Expr, int]:
        p = self.skip(pos)
        for word, value in (("true", True), ("false", False)):
            try:
                end = self.keyword(p, word)
                return Literal(value, "boolean", p, end), end
            except _Fail:
                pass
        for alternative in (self.number, self._none, self.quoted, self._inf, self.expression):
            try:
                return alternative(p)
            except _Fail:
                continue
        self.fail(p, "an argument")

    def _none(self, pos: int) -> tuple[Literal, int]:
        end = self.keyword(pos, "none")
        return Literal(None, "none", self.skip(pos), end), end

    def _inf(self, pos: int) -> tuple[Literal, int]:
        end = self.keyword(pos, "inf")
        return Literal(float("inf"), "infinity", self.skip(pos), end), end

    def template(self, pos: int) -> tuple[Template, int]:
        start = self.skip(pos)
        if not self.s.startswith("template", start):
            self.fail(start, "template")
        p = self.lit(start + len("template"), "(")
        try:
            body, p = self.call(p)
        except _Fail:
            body, p = self.path(p)
        args: list[Literal] = []
        kwargs: list[tuple[str, Literal]] = []
        try:
            q = self.lit(p, ",")
            try:  # litargs
                first, q2 = self._template_positional(q)
                args.append(first)
                while True:
                    try:
                        more, q3 = self._template_positional(self.lit(q2, ","))
                    except _Fail:
                        break
                    args.append(more)
                    q2 = q3
                p = q2
            except _Fail:  # litkwargs
                first_kw, q2 = self._template_kwarg(q)
                kwargs.append(first_kw)
                while True:
                    try:
                        more_kw, q3 = self._template_kwarg(self.lit(q2, ","))
                    except _Fail:
                        break
                    kwargs.append(more_kw)
                    q2 = q3
                p = q2
        except _Fail:
            pass
        end = self.lit(p, ")")
        return Template(body, tuple(args), tuple(kwargs), start, end), end

    def _template_literal(self, pos: int) -> tuple[Literal, int]:
        try:
            return self.number(pos)
        except _Fail:
            return self.quoted(pos)

    def _template_kwarg(self, pos: int) -> tuple[tuple[str, Literal], int]:
        name, p = self.ident(pos)
        value, p = self._template_literal(self.lit(p, "="))
        return (name, value), p

    def _template_positional(self, pos: int) -> tuple[Literal, int]:
        try:
            self._template_kwarg(pos)
        except _Fail:
            return self._template_literal(pos)
        self.fail(self.skip(pos), "a positional argument")

    def expression(self, pos: int) -> tuple[Expr, int]:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise TargetSyntaxError(f"expression nested deeper than {MAX_DEPTH}", pos)
            base: Expr
            for alternative in (self.template, self.call, self.path):
                try:
                    base, p = alternative(pos)
                    break
                except _Fail:
                    continue
            else:
                self.fail(self.skip(pos), "a metric path or function call")
            while True:
                try:
                    q = self.lit(p, "|")
                    piped, q = self.call(q)
                except _Fail:
                    break
                base = Call(piped.name, (base, *piped.args), piped.kwargs, piped.raw,
                            base.start, piped.end, piped=True)
                p = q
            return base, p
        finally:
            self.depth -= 1


def parse_target(text: str, strict: bool = False) -> Expr:
    """The expression of a render target. Like graphite-web, text after the longest valid
    expression is ignored unless ``strict``. Raises :class:`TargetSyntaxError`."""
    parser = _Parser(text)
    try:
        expr, end = parser.expression(0)
    except _Fail:
        raise TargetSyntaxError(f"expected {parser.expected}", parser.furthest) from None
    except RecursionError:
        raise TargetSyntaxError("expression nested too deeply", 0) from None
    if strict:
        rest = parser.skip(end)
        if rest < len(text):
            where = max(rest, parser.furthest)
            raise TargetSyntaxError(f"expected {parser.expected}" if where > rest else
                                    f"unexpected {text[rest]!r}", where)
    return expr
