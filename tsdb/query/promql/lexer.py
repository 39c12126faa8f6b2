"""PromQL tokenizer, following the state machine of Prometheus 2.42's ``promql/parser/lex.go``.

The quirks of that lexer decide which queries are valid, so they are kept on purpose:

* Keywords are matched case-insensitively (``SUM``, ``By``, ``Inf``) but keep their text.
* Right after ``[`` a duration is required (``foo[5]``: "missing unit character in
  duration"). Inside brackets any letter is read as the subquery colon, so
  ``foo[5m x]`` is the subquery ``foo[5m:]`` and ``foo[5m:x]`` is "unexpected colon 'x'".
* Parentheses and brackets are balanced by the lexer itself: "unclosed left parenthesis"
  is reported at the end of the input, a stray ``)`` just after it.
* Inside braces only label names, matching operators, strings and commas exist; digits,
  colons and keywords are not special there.

:func:`lex` returns the whole token list at once. It ends with an ``EOF`` token, or with an
``ERROR`` token (text = message, position = where Prometheus reports it) after which
nothing is lexed; the parser reports the error only if it gets that far, which matches the
lazily driven Go lexer. Positions are character offsets into the input.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- token kinds ---------------------------------------------------------------------------

EOF = "EOF"
ERROR = "ERROR"
IDENTIFIER = "IDENTIFIER"
METRIC_IDENTIFIER = "METRIC_IDENTIFIER"
NUMBER = "NUMBER"
DURATION = "DURATION"
STRING = "STRING"

LEFT_PAREN = "LEFT_PAREN"
RIGHT_PAREN = "RIGHT_PAREN"
LEFT_BRACE = "LEFT_BRACE"
RIGHT_BRACE = "RIGHT_BRACE"
LEFT_BRACKET = "LEFT_BRACKET"
RIGHT_BRACKET = "RIGHT_BRACKET"
COMMA = "COMMA"
EQL = "EQL"
COLON = "COLON"

# operators
ADD, SUB, MUL, DIV, MOD, POW = "ADD", "SUB", "MUL", "DIV", "MOD", "POW"
EQLC, NEQ, LTE, LSS, GTE, GTR = "EQLC", "NEQ", "LTE", "LSS", "GTE", "GTR"
EQL_REGEX, NEQ_REGEX = "EQL_REGEX", "NEQ_REGEX"
LAND, LOR, LUNLESS, ATAN2, AT = "LAND", "LOR", "LUNLESS", "ATAN2", "AT"

# aggregators
SUM, AVG, COUNT, MIN, MAX, GROUP = "SUM", "AVG", "COUNT", "MIN", "MAX", "GROUP"
STDDEV, STDVAR, TOPK, BOTTOMK = "STDDEV", "STDVAR", "TOPK", "BOTTOMK"
COUNT_VALUES, QUANTILE = "COUNT_VALUES", "QUANTILE"

# keywords
OFFSET, BY, WITHOUT, ON, IGNORING = "OFFSET", "BY", "WITHOUT", "ON", "IGNORING"
GROUP_LEFT, GROUP_RIGHT, BOOL = "GROUP_LEFT", "GROUP_RIGHT", "BOOL"

# preprocessors of the @ modifier
START, END = "START", "END"

OPERATORS = frozenset({
    ADD, SUB, MUL, DIV, MOD, POW, EQLC, NEQ, LTE, LSS, GTE, GTR, EQL_REGEX, NEQ_REGEX,
    LAND, LOR, LUNLESS, ATAN2, AT,
})
AGGREGATORS = frozenset({
    SUM, AVG, COUNT, MIN, MAX, GROUP, STDDEV, STDVAR, TOPK, BOTTOMK, COUNT_VALUES, QUANTILE,
})
KEYWORDS = frozenset({OFFSET, BY, WITHOUT, ON, IGNORING, GROUP_LEFT, GROUP_RIGHT, BOOL})
COMPARISONS = frozenset({EQLC, NEQ, LTE, LSS, GTE, GTR})
SET_OPERATORS = frozenset({LAND, LOR, LUNLESS})

#: Words read as keywords (lower-cased before lookup); ``inf`` and ``nan`` are numbers.
KEYWORD_KINDS: dict[str, str] = {
    "and": LAND, "or": LOR, "unless": LUNLESS, "atan2": ATAN2,
    "sum": SUM, "avg": AVG, "count": COUNT, "min": MIN, "max": MAX, "group": GROUP,
    "stddev": STDDEV, "stdvar": STDVAR, "topk": TOPK, "bottomk": BOTTOMK,
    "count_values": COUNT_VALUES, "quantile": QUANTILE,
    "offset": OFFSET, "by": BY, "without": WITHOUT, "on": ON, "ignoring": IGNORING,
    "group_left": GROUP_LEFT, "group_right": GROUP_RIGHT, "bool": BOOL,
    "start": START, "end": END,
    "inf": NUMBER, "nan": NUMBER,
}

#: Canonical text of operator tokens, as ``BinaryExpr.op`` / ``UnaryExpr.op`` hold it.
OPERATOR_TEXT: dict[str, str] = {
    ADD: "+", SUB: "-", MUL: "*", DIV: "/", MOD: "%", POW: "^",
    EQLC: "==", NEQ: "!=", LTE: "<=", LSS: "<", GTE: ">=", GTR: ">",
    EQL_REGEX: "=~", NEQ_REGEX: "!~", EQL: "=",
    LAND: "and", LOR: "or", LUNLESS: "unless", ATAN2: "atan2", AT: "@",
}

# Kinds Prometheus has a fixed display string for (its ItemTypeStr table); others are shown
# as "<kind description> <text>", e.g. `identifier "foo"`.
_FIXED_TEXT_KINDS = frozenset(
    {LEFT_PAREN, RIGHT_PAREN, LEFT_BRACE, RIGHT_BRACE, LEFT_BRACKET, RIGHT_BRACKET,
     COMMA, EQL, COLON, START, END}
    | (OPERATORS - {AT}) | AGGREGATORS | KEYWORDS
)
_KIND_DESC = {
    ERROR: "error", IDENTIFIER: "identifier", METRIC_IDENTIFIER: "metric identifier",
    STRING: "string", NUMBER: "number", DURATION: "duration",
}


@dataclass(slots=True)
class Token:
    """One token; ``text`` is the source text (the message for ``ERROR``), ``value`` the
    unquoted content of a ``STRING``."""

    kind: str
    text: str
    pos: int
    value: str | None = None

    @property
    def end(self) -> int:
        return self.pos + len(self.text)


def describe(tok: Token) -> str:
    """How Prometheus names a token in "unexpected ..." messages."""
    if tok.kind == EOF:
        return "end of input"
    shown = _token_string(tok)
    if tok.kind in _FIXED_TEXT_KINDS:
        return shown
    if tok.kind == AT:
        # 2.42 has no display string for '@' and falls back to the item type number.
        return f'"<Item 57385>" {shown}'
    return f"{_KIND_DESC.get(tok.kind, tok.kind.lower())} {shown}"


def _token_string(tok: Token) -> str:
    if tok.kind in (IDENTIFIER, METRIC_IDENTIFIER):
        return go_quote(tok.text)
    if tok.kind in KEYWORDS:
        return f"<{tok.text}>"
    if tok.kind in OPERATORS:
        return f"<op:{tok.text}>"
    if tok.kind in AGGREGATORS:
        return f"<aggr:{tok.text}>"
    if len(tok.text) > 10:
        return go_quote(tok.text[:10]) + "..."
    return go_quote(tok.text)


# --- Go-style quoting for messages ---------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def go_quote(s: str, quote: str = '"') -> str:
    """``strconv.Quote`` (or ``QuoteRune`` with ``quote="'"``): printable characters as they
    are, the rest as Go escapes, so the result is valid PromQL string syntax."""
    out = [quote]
    for ch in s:
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        else:
            cp = ord(ch)
            if 0xDC80 <= cp <= 0xDCFF:       # a byte that was not UTF-8 (surrogateescape)
                out.append("\\x%02x" % (cp - 0xDC00))
            elif cp < 0x20 or cp == 0x7F:
                out.append("\\x%02x" % cp)
            elif 0xD800 <= cp < 0xE000:
                out.append("\\ufffd")
            elif cp < 0x10000:
                out.append("\\u%04x" % cp)
            else:
                out.append("\\U%08x" % cp)
    out.append(quote)
    return "".join(out)


def _quote_rune(ch: str) -> str:
    return go_quote(ch or "\ufffd", "'")


def _unicode_repr(ch: str) -> str:
    """Go's ``%#U``: ``U+0071 'q'``."""
    cp = ord(ch)
    return f"U+{cp:04X} '{ch}'" if ch.isprintable() else f"U+{cp:04X}"


# --- character classes ---------------------------------------------------------------------

_SPACE = " \t\n\r"
_DIGITS = "0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _is_alpha(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_alnum(ch: str) -> bool:
    return _is_alpha(ch) or _is_digit(ch)


def _is_bad_rune(ch: str) -> bool:
    """What Go decodes as ``utf8.RuneError``: U+FFFD itself or bytes that were not UTF-8."""
    return ch == "\ufffd" or "\ud800" <= ch <= "\udfff"


class _LexError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.width = 0
        self.tokens: list[Token] = []
        self.paren_depth = 0
        self.brace_open = False
        self.bracket_open = False
        self.got_colon = False

    # -- cursor, as in lex.go: next/backup/peek/accept

    def next(self) -> str:
        if self.pos >= len(self.text):
            self.width = 0
            return ""
        self.width = 1
        self.pos += 1
        return self.text[self.pos - 1]

    def backup(self) -> None:
        self.pos -= self.width

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def accept(self, valid: str) -> bool:
        ch = self.next()
        if ch and ch in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def emit(self, kind: str, value: str | None = None) -> None:
        self.tokens.append(Token(kind, self.text[self.start:self.pos], self.start, value))
        self.start = self.pos

    def error(self, message: str) -> _LexError:
        return _LexError(message, self.start)

    # -- states

    def run(self) -> list[Token]:
        try:
            while True:
                if self.brace_open:
                    self.lex_inside_braces()
                elif self.text.startswith("#", self.pos):
                    self.skip_comment()
                elif not self.lex_statement():
                    break
        except _LexError as e:
            self.tokens.append(Token(ERROR, e.message, e.pos))
        return self.tokens

    def skip_comment(self) -> None:
        newline = min((i for i in (self.text.find("\n", self.pos), self.text.find("\r", self.pos))
                       if i >= 0), default=len(self.text))
        self.pos = newline
        self.start = self.pos

    def skip_spaces(self) -> None:
        while self.peek() and self.peek() in _SPACE:
            self.pos += 1
        self.start = self.pos

    def lex_statement(self) -> bool:
        """One step of ``lexStatements``; False once EOF is emitted."""
        ch = self.next()
        if ch == "":
            if self.paren_depth != 0:
                raise self.error("unclosed left parenthesis")
            if self.bracket_open:
                raise self.error("unclosed left bracket")
            self.emit(EOF)
            return False
        simple = _SIMPLE_OPERATORS.get(ch)
        if simple is not None:
            self.emit(simple)
        elif ch in _SPACE:
            self.skip_spaces()
        elif ch == "=":
            nxt = self.peek()
            if nxt == "=":
                self.next()
                self.emit(EQLC)
            elif nxt == "~":
                raise self.error(f"unexpected character after '=': {_quote_rune(nxt)}")
            else:
                self.emit(EQL)
        elif ch == "!":
            nxt = self.next()
            if nxt != "=":
                raise self.error(f"unexpected character after '!': {_quote_rune(nxt)}")
            self.emit(NEQ)
        elif ch in "<>":
            if self.peek() == "=":
                self.next()
                self.emit(LTE if ch == "<" else GTE)
            else:
                self.emit(LSS if ch == "<" else GTR)
        elif _is_digit(ch) or (ch == "." and _is_digit(self.peek())):
            self.backup()
            self.lex_number_or_duration()
        elif ch in "\"'":
            self.lex_string(ch)
        elif ch == "`":
            self.lex_raw_string()
        elif _is_alpha(ch) or ch == ":":
            if not self.bracket_open:
                self.backup()
                self.lex_keyword_or_identifier()
            elif self.got_colon:
                raise self.error(f"unexpected colon {_quote_rune(ch)}")
            else:
                self.emit(COLON)
                self.got_colon = True
        elif ch == "(":
            self.emit(LEFT_PAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                # Reported after the parenthesis, replacing it (the Go lexer overwrites
                # the item it has just emitted).
                self.tokens.pop()
                raise self.error(f"unexpected right parenthesis {_quote_rune(ch)}")
        elif ch == "{":
            self.emit(LEFT_BRACE)
            self.brace_open = True
        elif ch == "[":
            if self.bracket_open:
                raise self.error(f"unexpected left bracket {_quote_rune(ch)}")
            self.got_colon = False
            self.emit(LEFT_BRACKET)
            self.skip_spaces()
            self.bracket_open = True
            self.lex_duration()
        elif ch == "]":
            if not self.bracket_open:
                raise self.error(f"unexpected right bracket {_quote_rune(ch)}")
            self.emit(RIGHT_BRACKET)
            self.bracket_open = False
        elif ch == "@":
            self.emit(AT)
        else:
            raise self.error(f"unexpected character: {_quote_rune(ch)}")
        return True

    def lex_inside_braces(self) -> None:
        if self.text.startswith("#", self.pos):
            self.skip_comment()
            return
        ch = self.next()
        if ch == "":
            raise self.error("unexpected end of input inside braces")
        if ch in _SPACE:
            self.skip_spaces()
        elif _is_alpha(ch):
            while _is_alnum(self.next()):
                pass
            self.backup()
            self.emit(IDENTIFIER)
        elif ch == ",":
            self.emit(COMMA)
        elif ch in "\"'":
            self.lex_string(ch)
        elif ch == "`":
            self.lex_raw_string()
        elif ch == "=":
            if self.next() == "~":
                self.emit(EQL_REGEX)
            else:
                self.backup()
                self.emit(EQL)
        elif ch == "!":
            nxt = self.next()
            if nxt == "~":
                self.emit(NEQ_REGEX)
            elif nxt == "=":
                self.emit(NEQ)
            else:
                raise self.error(
                    f"unexpected character after '!' inside braces: {_quote_rune(nxt)}")
        elif ch == "{":
            raise self.error(f"unexpected left brace {_quote_rune(ch)}")
        elif ch == "}":
            self.emit(RIGHT_BRACE)
            self.brace_open = False
        else:
            raise self.error(f"unexpected character inside braces: {_quote_rune(ch)}")

    def lex_keyword_or_identifier(self) -> None:
        while True:
            ch = self.next()
            if not (_is_alnum(ch) or ch == ":"):
                break
        self.backup()
        word = self.text[self.start:self.pos]
        kind = KEYWORD_KINDS.get(word.lower())
        if kind is None:
            kind = METRIC_IDENTIFIER if ":" in word else IDENTIFIER
        self.emit(kind)

    # -- numbers and durations

    def scan_number(self) -> bool:
        """Consume a number-like prefix; True if what follows is not alphanumeric. The text
        is not necessarily a valid number: the parser checks that."""
        digits = _DIGITS
        if self.accept("0") and self.accept("xX"):
            digits = _HEX_DIGITS
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if self.accept("eE"):
            self.accept("+-")
            self.accept_run(_DIGITS)
        return not _is_alnum(self.peek())

    def accept_remaining_duration(self) -> bool:
        if not self.accept("smhdwy"):
            return False
        self.accept("s")                     # "ms"; bad units are caught when parsed
        while self.accept(_DIGITS):
            self.accept_run(_DIGITS)
            if not self.accept("smhdw"):     # "y" may only come first
                return False
            self.accept("s")
        return not _is_alnum(self.next())

    def lex_number_or_duration(self) -> None:
        if self.scan_number():
            self.emit(NUMBER)
            return
        if self.accept_remaining_duration():
            self.backup()
            self.emit(DURATION)
            return
        raise self.error(
            f"bad number or duration syntax: {go_quote(self.text[self.start:self.pos])}")

    def lex_duration(self) -> None:
        """What directly follows ``[`` must be a duration."""
        if self.scan_number():
            raise self.error("missing unit character in duration")
        if not self.accept_remaining_duration():
            raise self.error(f"bad duration syntax: {go_quote(self.text[self.start:self.pos])}")
        self.backup()
        self.emit(DURATION)

    # -- strings

    def lex_string(self, quote: str) -> None:
        """A ``"`` or ``'`` string with Go escapes; ``\\x`` and octal escapes are bytes."""
        buf = bytearray()
        while True:
            ch = self.next()
            if ch == "\\":
                self.lex_escape(quote, buf)
            elif _is_bad_rune(ch):
                raise self.error("invalid UTF-8 rune")
            elif ch == "" or ch == "\n":
                raise self.error("unterminated quoted string")
            elif ch == quote:
                break
            else:
                buf += ch.encode("utf-8")
        self.emit(STRING, buf.decode("utf-8", "surrogateescape"))

    def lex_escape(self, quote: str, buf: bytearray) -> None:
        ch = self.next()
        simple = _SIMPLE_ESCAPES.get(ch)
        if simple is not None or ch == quote:
            buf += (simple or ch).encode("utf-8")
            return
        if ch and ch in "01234567":
            n, base, max_value, is_byte = 3, 8, 255, True
        elif ch == "x":
            ch = self.next()
            n, base, max_value, is_byte = 2, 16, 255, True
        elif ch == "u":
            ch = self.next()
            n, base, max_value, is_byte = 4, 16, 0x10FFFF, False
        elif ch == "U":
            ch = self.next()
            n, base, max_value, is_byte = 8, 16, 0x10FFFF, False
        elif ch == "":
            raise self.error("escape sequence not terminated")
        else:
            raise self.error(f"unknown escape sequence {_unicode_repr(ch)}")
        value = 0
        while n > 0:
            digit = int(ch, 16) if ch and ch in _HEX_DIGITS else 16
            if digit >= base:
                if ch == "":
                    raise self.error("escape sequence not terminated")
                raise self.error(f"illegal character {_unicode_repr(ch)} in escape sequence")
            value = value * base + digit
            n -= 1
            if n > 0:
                ch = self.next()
        if value > max_value or 0xD800 <= value < 0xE000:
            raise self.error("escape sequence is an invalid Unicode code point")
        if is_byte:
            buf.append(value)
        else:
            buf += chr(value).encode("utf-8")

    def lex_raw_string(self) -> None:
        while True:
            ch = self.next()
            if _is_bad_rune(ch):
                raise self.error("invalid UTF-8 rune")
            if ch == "":
                raise self.error("unterminated raw string")
            if ch == "`":
                break
        self.emit(STRING, self.text[self.start + 1:self.pos - 1])


_SIMPLE_OPERATORS = {",": COMMA, "*": MUL, "/": DIV, "%": MOD, "+": ADD, "-": SUB, "^": POW}
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\"}


def lex(text: str) -> list[Token]:
    """Tokenize ``text``; comments and whitespace are dropped. The list ends with ``EOF`` or
    with a single ``ERROR`` token."""
    return _Lexer(text).run()
