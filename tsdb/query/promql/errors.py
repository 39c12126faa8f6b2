"""Errors of parsing and evaluation, with Prometheus' API error types."""

from __future__ import annotations


class QueryError(Exception):
    """A query failed; ``error_type`` is the Prometheus API ``errorType``
    (``bad_data``, ``execution``, ``timeout``, ``canceled``, ``internal``)."""

    error_type = "execution"

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type


class ParseError(QueryError):
    """Syntax or static type error. ``str()`` reads like Prometheus' messages, e.g.
    ``1:5: parse error: unexpected end of input``; positions are 1-based line:column."""

    error_type = "bad_data"

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{line}:{column}: parse error: {message}")
        self.line = line
        self.column = column
        self.detail = message


class QueryTimeout(QueryError):
    error_type = "timeout"


class TooManySamples(QueryError):
    """More samples loaded than ``max_samples`` allows (Prometheus: execution error
    ``query processing would load too many samples into memory in <stage>``)."""

    error_type = "execution"
