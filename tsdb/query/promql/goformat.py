"""Go's float formatting, where Prometheus' output or messages depend on it."""

from __future__ import annotations

import math
from decimal import Decimal


def special_name(v: float) -> str | None:
    """Prometheus' spelling of NaN and the infinities; None for finite values."""
    if v != v:
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    return None


def format_float_f(v: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, never an exponent
    (scalar values in the API, ``count_values`` labels)."""
    special = special_name(v)
    if special is not None:
        return special
    text = repr(v)
    if "e" in text:
        return format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def format_percent_f(v: float) -> str:
    """``fmt.Sprintf("%f", v)`` (six decimals), as in some of Prometheus' error messages."""
    special = special_name(v)
    return special if special is not None else "%f" % v
