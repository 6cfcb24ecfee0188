"""BacktestRequest: one backtest's parameters, range-checked on construction."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine import rules
from engine.errors import DataError

TIMEFRAMES: dict[str, int] = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "4h": 240,
    "1d": 1440,
}
SYMBOL_PATTERN = re.compile(r"[A-Z0-9_-]{1,30}")
RULE_FIELDS = ("long_entry", "long_exit", "short_entry", "short_exit")
MAX_RATE = 0.05


def check_symbol(symbol: object) -> str:
    """The symbol if it is 1-30 of A-Z 0-9 _ - (it names a file), else DataError."""
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        raise DataError(
            "symbol",
            f"symbol {symbol!r} is not valid: use 1-30 upper-case letters, digits, '_' or '-', "
            "e.g. BTCUSDT",
        )
    return symbol


def check_timeframe(timeframe: object) -> int:
    """The timeframe's length in minutes, or DataError listing the supported ones."""
    if not isinstance(timeframe, str) or timeframe not in TIMEFRAMES:
        raise DataError(
            "timeframe",
            f"timeframe {timeframe!r} is not supported: use one of " + ", ".join(TIMEFRAMES),
        )
    return TIMEFRAMES[timeframe]


@dataclass(frozen=True, kw_only=True)
class BacktestRequest:
    """A validated backtest payload (docs/api.md "Backtest payload"); times are tz-aware UTC.

    Only the data (symbol, start, end) and an entry rule must be given; the rest defaults as
    in backtesting.py's Backtest: 10,000 of capital, no fees or slippage, all equity in each
    trade, no stops, 1-minute bars. Construction raises DataError (or RuleError for a rule)
    with `.field` set to the offending field. Numbers must be finite; ints are stored as floats.
    """

    strategy_name: str = "backtest"
    symbol: str
    timeframe: str = "1m"
    start: datetime
    end: datetime
    initial_capital: float = 10_000.0
    fee_rate: float = 0.0
    slippage: float = 0.0
    position_size: float = 1.0
    long_entry: str | None = None
    long_exit: str | None = None
    short_entry: str | None = None
    short_exit: str | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None

    def __post_init__(self) -> None:
        name = self.strategy_name
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise DataError("strategy_name", "strategy_name must be 1 to 100 characters")
        check_symbol(self.symbol)
        check_timeframe(self.timeframe)
        self._set("start", _utc("start", self.start))
        self._set("end", _utc("end", self.end))
        if self.start >= self.end:
            raise DataError("start", "start must be before end")
        capital = self._number("initial_capital")
        if capital <= 0:
            raise DataError("initial_capital", "initial_capital must be greater than 0")
        for field in ("fee_rate", "slippage"):
            value = self._number(field)
            if not 0 <= value <= MAX_RATE:
                raise DataError(field, f"{field} must be between 0 and {MAX_RATE} (5 %) per side")
        size = self._number("position_size")
        if not 0 < size <= 1:
            raise DataError(
                "position_size", "position_size must be above 0 and at most 1 (all equity)"
            )
        for field in ("stop_loss", "take_profit", "trailing_stop"):
            if getattr(self, field) is not None:
                value = self._number(field)
                if not 0 < value < 1:
                    raise DataError(field, f"{field} must be null or between 0 and 1, e.g. 0.02")
        if self.long_entry is None and self.short_entry is None:
            raise DataError(
                "long_entry", "give long_entry or short_entry (or both): a rule that opens trades"
            )
        for field in RULE_FIELDS:
            text = getattr(self, field)
            if text is not None:
                rules.parse(text, field=field)

    def _set(self, field: str, value: object) -> None:
        # Normalising a frozen dataclass's own fields in __post_init__ is the documented way.
        object.__setattr__(self, field, value)

    def _number(self, field: str) -> float:
        value = _number(field, getattr(self, field))
        self._set(field, value)
        return value

    def parsed_rules(self) -> dict[str, rules.Rule]:
        """The parsed rules by field name (parsing is cached, so this is cheap)."""
        return {
            field: rules.parse(text, field=field)
            for field in RULE_FIELDS
            if (text := getattr(self, field)) is not None
        }

    @property
    def bar_minutes(self) -> int:
        return TIMEFRAMES[self.timeframe]

    @property
    def bar_duration(self) -> timedelta:
        return timedelta(minutes=TIMEFRAMES[self.timeframe])


def _utc(field: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise DataError(field, f"{field} must be a date and time, e.g. 2024-01-01T00:00:00Z")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DataError(field, f"{field} must carry a time zone, e.g. 2024-01-01T00:00:00Z")
    return value.astimezone(UTC)


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(field, f"{field} must be a number")
    if not math.isfinite(value):
        raise DataError(field, f"{field} must be a finite number")
    return float(value)
