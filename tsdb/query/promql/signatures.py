"""Argument and return types of every PromQL function of Prometheus 2.42 (``functions.go``).

``variadic`` follows Prometheus: ``0`` means exactly ``len(arg_types)`` arguments; ``n > 0``
means the last argument type may be given 0 to ``n`` times, so between
``len(arg_types) - 1`` and ``len(arg_types) - 1 + n`` arguments; ``-1`` means the last
argument type may repeat without limit (at least ``len(arg_types) - 1`` arguments).

2.42 gates no function behind a feature flag. The ``histogram_*`` functions other than
``histogram_quantile`` only do something useful on native histograms (experimental in
2.42); they are marked ``experimental`` for information only.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdb.query.promql.ast import ValueType

S, V, M, STR = ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX, ValueType.STRING


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False

    @property
    def min_args(self) -> int:
        return len(self.arg_types) if self.variadic == 0 else len(self.arg_types) - 1

    @property
    def max_args(self) -> int | None:
        """None when unbounded."""
        if self.variadic == 0:
            return len(self.arg_types)
        if self.variadic < 0:
            return None
        return len(self.arg_types) - 1 + self.variadic

    def arg_type(self, index: int) -> ValueType | None:
        """Expected type of argument ``index``; None for surplus arguments of a fixed-arity
        function (Prometheus does not type-check those, the count error covers them)."""
        if index < len(self.arg_types):
            return self.arg_types[index]
        return None if self.variadic == 0 else self.arg_types[-1]


def _sig(name: str, args: tuple[ValueType, ...], ret: ValueType = V, variadic: int = 0,
         experimental: bool = False) -> Signature:
    return Signature(name, args, ret, variadic, experimental)


_ALL = [
    _sig("abs", (V,)),
    _sig("absent", (V,)),
    _sig("absent_over_time", (M,)),
    _sig("acos", (V,)),
    _sig("acosh", (V,)),
    _sig("asin", (V,)),
    _sig("asinh", (V,)),
    _sig("atan", (V,)),
    _sig("atanh", (V,)),
    _sig("avg_over_time", (M,)),
    _sig("ceil", (V,)),
    _sig("changes", (M,)),
    _sig("clamp", (V, S, S)),
    _sig("clamp_max", (V, S)),
    _sig("clamp_min", (V, S)),
    _sig("cos", (V,)),
    _sig("cosh", (V,)),
    _sig("count_over_time", (M,)),
    _sig("days_in_month", (V,), variadic=1),
    _sig("day_of_month", (V,), variadic=1),
    _sig("day_of_week", (V,), variadic=1),
    _sig("day_of_year", (V,), variadic=1),
    _sig("deg", (V,)),
    _sig("delta", (M,)),
    _sig("deriv", (M,)),
    _sig("exp", (V,)),
    _sig("floor", (V,)),
    _sig("histogram_count", (V,), experimental=True),
    _sig("histogram_sum", (V,), experimental=True),
    _sig("histogram_fraction", (S, S, V), experimental=True),
    _sig("histogram_quantile", (S, V)),
    _sig("holt_winters", (M, S, S)),
    _sig("hour", (V,), variadic=1),
    _sig("idelta", (M,)),
    _sig("increase", (M,)),
    _sig("irate", (M,)),
    _sig("label_replace", (V, STR, STR, STR, STR)),
    _sig("label_join", (V, STR, STR, STR), variadic=-1),
    _sig("last_over_time", (M,)),
    _sig("ln", (V,)),
    _sig("log10", (V,)),
    _sig("log2", (V,)),
    _sig("max_over_time", (M,)),
    _sig("min_over_time", (M,)),
    _sig("minute", (V,), variadic=1),
    _sig("month", (V,), variadic=1),
    _sig("pi", (), S),
    _sig("predict_linear", (M, S)),
    _sig("present_over_time", (M,)),
    _sig("quantile_over_time", (S, M)),
    _sig("rad", (V,)),
    _sig("rate", (M,)),
    _sig("resets", (M,)),
    _sig("round", (V, S), variadic=1),
    _sig("scalar", (V,), S),
    _sig("sgn", (V,)),
    _sig("sin", (V,)),
    _sig("sinh", (V,)),
    _sig("sort", (V,)),
    _sig("sort_desc", (V,)),
    _sig("sqrt", (V,)),
    _sig("stddev_over_time", (M,)),
    _sig("stdvar_over_time", (M,)),
    _sig("sum_over_time", (M,)),
    _sig("tan", (V,)),
    _sig("tanh", (V,)),
    _sig("time", (), S),
    _sig("timestamp", (V,)),
    _sig("vector", (S,)),
    _sig("year", (V,), variadic=1),
]

FUNCTIONS: dict[str, Signature] = {sig.name: sig for sig in _ALL}


def get_function(name: str) -> Signature | None:
    """The signature of function ``name`` (case-sensitive, as in Prometheus), or None."""
    return FUNCTIONS.get(name)
