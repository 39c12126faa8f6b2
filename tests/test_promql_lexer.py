"""PromQL lexer: token kinds, numbers, durations, strings and escapes, errors and positions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.query.promql import lexer as T
from tsdb.query.promql.lexer import Token, describe, go_quote, lex


def kinds(text: str) -> list[str]:
    return [t.kind for t in lex(text)]


def texts(text: str) -> list[str]:
    return [t.text for t in lex(text)][:-1]


def lex_error(text: str) -> Token:
    tokens = lex(text)
    assert tokens[-1].kind == T.ERROR, tokens
    return tokens[-1]


def string_value(text: str) -> str | None:
    tokens = lex(text)
    assert [t.kind for t in tokens] == [T.STRING, T.EOF], tokens
    return tokens[0].value


# --- identifiers and keywords --------------------------------------------------------------


def test_identifiers_and_metric_names() -> None:
    assert kinds("foo _bar baz9 a:b :x y:") == [
        T.IDENTIFIER, T.IDENTIFIER, T.IDENTIFIER, T.METRIC_IDENTIFIER, T.METRIC_IDENTIFIER,
        T.METRIC_IDENTIFIER, T.EOF,
    ]
    assert texts("node_cpu:rate5m") == ["node_cpu:rate5m"]


@pytest.mark.parametrize("word,kind", [
    ("and", T.LAND), ("OR", T.LOR), ("Unless", T.LUNLESS), ("atan2", T.ATAN2),
    ("sum", T.SUM), ("avg", T.AVG), ("count", T.COUNT), ("min", T.MIN), ("max", T.MAX),
    ("group", T.GROUP), ("stddev", T.STDDEV), ("stdvar", T.STDVAR), ("topk", T.TOPK),
    ("bottomk", T.BOTTOMK), ("count_values", T.COUNT_VALUES), ("quantile", T.QUANTILE),
    ("offset", T.OFFSET), ("by", T.BY), ("WITHOUT", T.WITHOUT), ("on", T.ON),
    ("ignoring", T.IGNORING), ("group_left", T.GROUP_LEFT), ("group_right", T.GROUP_RIGHT),
    ("bool", T.BOOL), ("start", T.START), ("End", T.END),
    ("inf", T.NUMBER), ("NaN", T.NUMBER), ("iNf", T.NUMBER),
])
def test_keywords_are_case_insensitive_and_keep_their_text(word: str, kind: str) -> None:
    tokens = lex(word)
    assert (tokens[0].kind, tokens[0].text) == (kind, word)


def test_keyword_lookalikes_are_identifiers() -> None:
    assert kinds("Infinity sums byx on_ sum:x") == [
        T.IDENTIFIER, T.IDENTIFIER, T.IDENTIFIER, T.IDENTIFIER, T.METRIC_IDENTIFIER, T.EOF]


def test_keywords_inside_braces_are_label_names() -> None:
    assert kinds('{by="a", sum!="b", on=~"c", inf!~"d"}') == [
        T.LEFT_BRACE,
        T.IDENTIFIER, T.EQL, T.STRING, T.COMMA,
        T.IDENTIFIER, T.NEQ, T.STRING, T.COMMA,
        T.IDENTIFIER, T.EQL_REGEX, T.STRING, T.COMMA,
        T.IDENTIFIER, T.NEQ_REGEX, T.STRING,
        T.RIGHT_BRACE, T.EOF,
    ]


# --- operators and punctuation -------------------------------------------------------------


def test_operators() -> None:
    assert kinds("+ - * / % ^ == != <= < >= > = @ , ( ) ") == [
        T.ADD, T.SUB, T.MUL, T.DIV, T.MOD, T.POW, T.EQLC, T.NEQ, T.LTE, T.LSS, T.GTE, T.GTR,
        T.EQL, T.AT, T.COMMA, T.LEFT_PAREN, T.RIGHT_PAREN, T.EOF,
    ]


def test_no_whitespace_needed() -> None:
    assert texts("a+b*-1/c") == ["a", "+", "b", "*", "-", "1", "/", "c"]


def test_whitespace_and_comments_are_dropped() -> None:
    assert texts("foo # a comment\n\t+\r\n# another\nbar") == ["foo", "+", "bar"]
    assert texts('{a="b" # inside braces\n}') == ["{", "a", "=", '"b"', "}"]
    assert kinds("# only a comment") == [T.EOF]


def test_positions_are_character_offsets() -> None:
    tokens = lex('é + foo{a="x"}'[2:])   # start after "é "
    assert [(t.text, t.pos) for t in tokens] == [
        ("+", 0), ("foo", 2), ("{", 5), ("a", 6), ("=", 7), ('"x"', 8), ("}", 11), ("", 12)]


# --- numbers and durations -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "1.5", ".5", "5.", "0x1F", "0Xff", "1e3", "1E-3", "2.5e+10",
                                  "010", "0x", "1e", "1.e5", "Inf", "nan"])
def test_numbers(text: str) -> None:
    tokens = lex(text)
    assert [(t.kind, t.text) for t in tokens[:-1]] == [(T.NUMBER, text)]


def test_second_dot_starts_a_new_number() -> None:
    assert texts("1.2.3") == ["1.2", ".3"]


@pytest.mark.parametrize("text", ["5m", "1h30m", "1y", "2w", "3d", "10s", "500ms",
                                  "1y2w3d4h5m6s7ms", "1ms1s", "1e3m"])
def test_durations_outside_brackets(text: str) -> None:
    tokens = lex(text)
    assert [(t.kind, t.text) for t in tokens[:-1]] == [(T.DURATION, text)]


def test_range_and_subquery_brackets() -> None:
    assert kinds("foo[5m]") == [T.IDENTIFIER, T.LEFT_BRACKET, T.DURATION, T.RIGHT_BRACKET, T.EOF]
    assert kinds("foo[ 1h : 5m ]") == [
        T.IDENTIFIER, T.LEFT_BRACKET, T.DURATION, T.COLON, T.DURATION, T.RIGHT_BRACKET, T.EOF]
    assert kinds("foo[1h:]") == [
        T.IDENTIFIER, T.LEFT_BRACKET, T.DURATION, T.COLON, T.RIGHT_BRACKET, T.EOF]


def test_a_letter_inside_brackets_is_the_subquery_colon() -> None:
    """Prometheus 2.42 reads any letter inside brackets as ':' (``foo[5m x]`` = ``foo[5m:]``)."""
    tokens = lex("foo[5m x]")
    assert [(t.kind, t.text) for t in tokens[2:5]] == [
        (T.DURATION, "5m"), (T.COLON, "x"), (T.RIGHT_BRACKET, "]")]


@pytest.mark.parametrize("text,message,pos", [
    ("foo[5]", "missing unit character in duration", 4),
    ("foo[]", "missing unit character in duration", 4),
    ("foo[", "missing unit character in duration", 4),
    ("foo[x]", 'bad duration syntax: ""', 4),
    ("foo[1M]", 'bad duration syntax: "1"', 4),
    ("foo[1y2y]", 'bad duration syntax: "1y2"', 4),
    ("foo[5mm]", 'bad duration syntax: "5mm"', 4),
    ("foo[ 5", "missing unit character in duration", 5),
    ("foo[5m:1m:]", "unexpected colon ':'", 9),
    ("foo[5m:x]", "unexpected colon 'x'", 7),
    ("5x", 'bad number or duration syntax: "5"', 0),
    ("5mx", 'bad number or duration syntax: "5mx"', 0),
    ("1_000", 'bad number or duration syntax: "1"', 0),
])
def test_number_and_duration_errors(text: str, message: str, pos: int) -> None:
    err = lex_error(text)
    assert (err.text, err.pos) == (message, pos)


# --- strings -------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ('"abc"', "abc"),
    ("'abc'", "abc"),
    ("`abc`", "abc"),
    ('""', ""),
    ('"a\\"b"', 'a"b'),
    ("'a\\'b'", "a'b"),
    ("'a\"b'", 'a"b'),
    ('"a\'b"', "a'b"),
    ('"\\a\\b\\f\\n\\r\\t\\v\\\\"', "\a\b\f\n\r\t\v\\"),
    ('"\\x41\\u00e9\\U0001F600\\101"', "A\u00e9\U0001f600A"),
    ('"\\xc3\\xa9"', "é"),       # \x escapes are bytes, decoded as UTF-8 afterwards
    ('"\\303\\251"', "é"),
    ('"é"', "é"),
    ("`a\\nb`", "a\\nb"),        # raw strings have no escapes
    ("`a\nb\"'`", "a\nb\"'"),     # and may span lines
])
def test_string_values(text: str, value: str) -> None:
    assert string_value(text) == value


def test_invalid_utf8_bytes_survive_as_surrogate_escapes() -> None:
    assert string_value('"\\xff"') == "\udcff"


@pytest.mark.parametrize("text,message", [
    ('"abc', "unterminated quoted string"),
    ('"a\nb"', "unterminated quoted string"),
    ("`abc", "unterminated raw string"),
    ('"\\', "escape sequence not terminated"),
    ('"\\q"', "unknown escape sequence U+0071 'q'"),
    ('"\\\'"', "unknown escape sequence U+0027 '''"),
    ("'\\\"'", "unknown escape sequence U+0022 '\"'"),
    ('"\\8"', "unknown escape sequence U+0038 '8'"),
    ('"\\\n"', "unknown escape sequence U+000A"),
    ('"\\400"', "escape sequence is an invalid Unicode code point"),
    ('"\\ud800"', "escape sequence is an invalid Unicode code point"),
    ('"\\U00110000"', "escape sequence is an invalid Unicode code point"),
    ('"\\x4"', "illegal character U+0022 '\"' in escape sequence"),
    ('"\\xg1"', "illegal character U+0067 'g' in escape sequence"),
    ('"\\u12', "escape sequence not terminated"),
    ('"\ufffd"', "invalid UTF-8 rune"),
    ('`\udcff`', "invalid UTF-8 rune"),
])
def test_string_errors_point_at_the_opening_quote(text: str, message: str) -> None:
    err = lex_error("x + " + text)
    assert (err.text, err.pos) == (message, 4)


# --- structural errors ---------------------------------------------------------------------


@pytest.mark.parametrize("text,message,pos", [
    ("sum(foo", "unclosed left parenthesis", 7),
    ("((  ", "unclosed left parenthesis", 4),
    ("foo[5m", "unclosed left bracket", 6),
    ("foo)", "unexpected right parenthesis ')'", 4),     # reported after the parenthesis
    ("foo]", "unexpected right bracket ']'", 3),
    ("foo[5m[5m]]", "unexpected left bracket '['", 6),
    ("foo}", "unexpected character: '}'", 3),
    ("foo{", "unexpected end of input inside braces", 4),
    ("foo{a=1}", "unexpected character inside braces: '1'", 6),
    ("foo{a:b}", "unexpected character inside braces: ':'", 5),
    ("foo{a!b}", "unexpected character after '!' inside braces: 'b'", 5),
    ("{{", "unexpected left brace '{'", 1),
    ("a =~ b", "unexpected character after '=': '~'", 2),
    ("a ! b", "unexpected character after '!': ' '", 2),
    ("$", "unexpected character: '$'", 0),
    ("é", "unexpected character: 'é'", 0),
    ("a\x00", "unexpected character: '\\x00'", 1),
])
def test_structural_errors(text: str, message: str, pos: int) -> None:
    err = lex_error(text)
    assert (err.text, err.pos) == (message, pos)


def test_nothing_is_lexed_after_an_error() -> None:
    tokens = lex("foo $ bar")
    assert [t.kind for t in tokens] == [T.IDENTIFIER, T.ERROR]


# --- descriptions and quoting --------------------------------------------------------------


@pytest.mark.parametrize("text,shown", [
    ("foo", 'identifier "foo"'),
    ("a:b", 'metric identifier "a:b"'),
    ("12", 'number "12"'),
    ("5m", 'duration "5m"'),
    ('"s"', 'string "\\"s\\""'),
    ('"a long string"', 'string "\\"a long st"...'),
    ("by", "<by>"),
    ("+", "<op:+>"),
    ("AND", "<op:AND>"),
    ("sum", "<aggr:sum>"),
    ("(", '"("'),
    ("start", '"start"'),
    ("@", '"<Item 57385>" <op:@>'),
    ("", "end of input"),
])
def test_describe(text: str, shown: str) -> None:
    assert describe(lex(text)[0]) == shown


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\n\t\x07\x00\x7f") == '"\\n\\t\\a\\x00\\x7f"'
    assert go_quote("é😀") == '"é😀"'
    assert go_quote("\u200b\U000e0001") == '"\\u200b\\U000e0001"'
    assert go_quote("\udcff") == '"\\xff"'
    assert go_quote("'", "'") == "'\\''"


# --- properties ----------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from([
    "foo", "sum", "by", "(", ")", "[", "]", "{", "}", ",", ":", "=", "!", "~", "5m", "1", ".5",
    "0x", "e", '"', "'", "`", "\\", "#", "\n", " ", "@", "offset", "-", "+", "é", "x", "ms",
])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_FRAGMENTS, max_size=20).map("".join)))
def test_lexer_never_crashes(text: str) -> None:
    tokens = lex(text)
    assert tokens and tokens[-1].kind in (T.EOF, T.ERROR)
    assert all(t.kind not in (T.EOF, T.ERROR) for t in tokens[:-1])
    for tok in tokens:
        assert 0 <= tok.pos <= len(text)
        if tok.kind not in (T.EOF, T.ERROR):
            assert text[tok.pos:tok.end] == tok.text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_quoted_strings_round_trip(value: str) -> None:
    assert string_value(go_quote(value)) == value
