"""The functions of the rule language, one table entry each: signature, warm-up, computation.

Adding an indicator is one entry here plus its array function in engine/indicators.py (with
its formula in the docstring) and its unit test; the parser, the planner and the evaluator
read everything else from the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from engine import indicators

# An argument's kind, from its name in the signature: a series (any numeric expression), a
# period (a whole number 1..10000), or k (a number in (0, 100]).
ArgumentKind = Literal["x", "n", "k"]
_KINDS: dict[str, ArgumentKind] = {
    "a": "x", "b": "x", "x": "x", "n": "n", "fast": "n", "slow": "n", "signal": "n", "k": "k",
}  # fmt: skip

Warmup = Callable[[tuple[float, ...]], int]


@dataclass(frozen=True)
class Function:
    """One function of the rule language.

    `compute` is called with the bar columns named in `columns` (in that order), then the
    series arguments, then the periods (as int) and k values (as float). `warmup` gives, from
    the periods and k values, the leading bars on which the result is undefined (NaN or False).
    """

    signature: str  # e.g. "sma(x, n)": the argument names give their kinds
    compute: Callable[..., NDArray[Any]]
    warmup: Warmup
    columns: tuple[str, ...] = ()
    example: str = ""  # shown in error messages; default: name(close, 14)
    boolean: bool = False  # a condition rather than a number
    inline: bool = False  # written into the numexpr text instead of computed as an array

    @property
    def name(self) -> str:
        return self.signature.split("(", 1)[0]

    @property
    def kinds(self) -> tuple[ArgumentKind, ...]:
        inner = self.signature[len(self.name) + 1 : -1]
        return tuple(_KINDS[argument] for argument in inner.split(", ")) if inner else ()

    @property
    def hint(self) -> str:
        return self.example or f"{self.name}(close, 14)"

    def __call__(
        self,
        columns: tuple[NDArray[np.float64], ...],
        series: tuple[NDArray[Any], ...],
        params: tuple[float, ...],
    ) -> NDArray[Any]:
        values = [
            int(value) if kind == "n" else float(value)
            for value, kind in zip(params, [k for k in self.kinds if k != "x"], strict=True)
        ]
        return self.compute(*columns, *series, *values)


def _period_minus_one(params: tuple[float, ...]) -> int:
    return int(params[0]) - 1


def _period(params: tuple[float, ...]) -> int:
    return int(params[0])


def _none(params: tuple[float, ...]) -> int:
    return 0


def _one(params: tuple[float, ...]) -> int:
    return 1


def _slow_minus_one(params: tuple[float, ...]) -> int:
    return int(params[1]) - 1


def _macd_signal(params: tuple[float, ...]) -> int:
    return int(params[1]) + int(params[2]) - 2


FUNCTIONS: dict[str, Function] = {
    function.name: function
    for function in (
        Function("sma(x, n)", indicators.sma, _period_minus_one),
        Function("ema(x, n)", indicators.ema, _period_minus_one),
        Function("wma(x, n)", indicators.wma, _period_minus_one),
        Function("rsi(x, n)", indicators.rsi, _period),
        Function(
            "atr(n)", indicators.atr, _period, columns=("high", "low", "close"), example="atr(14)"
        ),
        Function("stdev(x, n)", indicators.stdev, _period_minus_one),
        Function("highest(x, n)", indicators.highest, _period_minus_one),
        Function("lowest(x, n)", indicators.lowest, _period_minus_one),
        Function(
            "stoch(n)",
            indicators.stoch,
            _period_minus_one,
            columns=("high", "low", "close"),
            example="stoch(14)",
        ),
        Function("roc(x, n)", indicators.roc, _period),
        Function("prev(x, n)", indicators.prev, _period),
        Function(
            "macd(x, fast, slow)", indicators.macd, _slow_minus_one, example="macd(close, 12, 26)"
        ),
        Function(
            "macd_signal(x, fast, slow, signal)",
            indicators.macd_signal,
            _macd_signal,
            example="macd_signal(close, 12, 26, 9)",
        ),
        Function(
            "bb_upper(x, n, k)",
            indicators.bb_upper,
            _period_minus_one,
            example="bb_upper(close, 20, 2)",
        ),
        Function(
            "bb_lower(x, n, k)",
            indicators.bb_lower,
            _period_minus_one,
            example="bb_lower(close, 20, 2)",
        ),
        Function("crossover(a, b)", indicators.crossover, _one, boolean=True),
        Function("crossunder(a, b)", indicators.crossunder, _one, boolean=True),
        Function("abs(x)", np.abs, _none, inline=True),
    )
}
# Functions whose periods must hold together (fast below slow).
ORDERED_PERIODS = frozenset({"macd", "macd_signal"})
