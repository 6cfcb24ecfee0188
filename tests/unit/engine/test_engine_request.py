"""BacktestRequest range checks and the error types they raise."""

from __future__ import annotations

import dataclasses
import math
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engine import TIMEFRAMES, BacktestRequest, Cancelled, DataError, EngineError, RuleError
from tests.unit.engine.bartables import START, request


def test_a_valid_request_is_normalised() -> None:
    tokyo = timezone(timedelta(hours=9))
    made = request(
        start=datetime(2024, 1, 1, 9, tzinfo=tokyo),
        initial_capital=10_000,
        fee_rate=0,
        position_size=1,
        stop_loss=0.02,
    )
    assert made.start == START and made.start.tzinfo == UTC
    assert isinstance(made.initial_capital, float) and isinstance(made.fee_rate, float)
    assert made.bar_minutes == 1 and made.bar_duration == timedelta(minutes=1)
    assert set(made.parsed_rules()) == {"long_entry"}


def test_only_the_data_and_an_entry_rule_must_be_given() -> None:
    """Defaults as backtesting.py's Backtest: the rest of a request is optional."""
    made = BacktestRequest(
        symbol="TEST", start=START, end=START + timedelta(days=1), long_entry="close > open"
    )
    assert (made.strategy_name, made.timeframe, made.initial_capital) == ("backtest", "1m", 1e4)
    assert (made.fee_rate, made.slippage, made.position_size) == (0.0, 0.0, 1.0)
    assert (made.long_exit, made.short_entry, made.short_exit) == (None, None, None)
    assert (made.stop_loss, made.take_profit, made.trailing_stop) == (None, None, None)
    with pytest.raises(TypeError):
        BacktestRequest("name", "TEST", "1m", START, START + timedelta(days=1))  # type: ignore[misc]
    with pytest.raises(DataError, match="give long_entry or short_entry"):
        BacktestRequest(symbol="TEST", start=START, end=START + timedelta(days=1))


def test_timeframes_are_the_documented_ones() -> None:
    assert TIMEFRAMES == {
        "1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"strategy_name": ""}, "strategy_name", "1 to 100 characters"),
        ({"strategy_name": "   "}, "strategy_name", "1 to 100 characters"),
        ({"strategy_name": "x" * 101}, "strategy_name", "1 to 100 characters"),
        ({"strategy_name": None}, "strategy_name", "1 to 100 characters"),
        ({"symbol": "btcusdt"}, "symbol", "symbol 'btcusdt' is not valid"),
        ({"symbol": "../etc"}, "symbol", "is not valid"),
        ({"symbol": "A" * 31}, "symbol", "is not valid"),
        ({"timeframe": "7m"}, "timeframe", "use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d"),
        ({"timeframe": "1M"}, "timeframe", "not supported"),
        ({"start": START.replace(tzinfo=None)}, "start", "must carry a time zone"),
        ({"end": "2024-02-01"}, "end", "must be a date and time"),
        ({"end": START}, "start", "start must be before end"),
        ({"end": START - timedelta(days=1)}, "start", "start must be before end"),
        ({"initial_capital": 0}, "initial_capital", "greater than 0"),
        ({"initial_capital": -1.0}, "initial_capital", "greater than 0"),
        ({"initial_capital": math.nan}, "initial_capital", "finite"),
        ({"initial_capital": math.inf}, "initial_capital", "finite"),
        ({"initial_capital": True}, "initial_capital", "must be a number"),
        ({"initial_capital": "1000"}, "initial_capital", "must be a number"),
        ({"fee_rate": 0.051}, "fee_rate", "between 0 and 0.05"),
        ({"fee_rate": -0.001}, "fee_rate", "between 0 and 0.05"),
        ({"slippage": math.nan}, "slippage", "finite"),
        ({"slippage": 1.5}, "slippage", "between 0 and 0.05"),
        ({"position_size": 0}, "position_size", "above 0 and at most 1"),
        ({"position_size": 1.01}, "position_size", "above 0 and at most 1"),
        ({"stop_loss": 0}, "stop_loss", "null or between 0 and 1"),
        ({"take_profit": 1}, "take_profit", "null or between 0 and 1"),
        ({"trailing_stop": -0.1}, "trailing_stop", "null or between 0 and 1"),
        ({"trailing_stop": math.inf}, "trailing_stop", "finite"),
        ({"long_entry": None}, "long_entry", "give long_entry or short_entry"),
    ],
)
def test_out_of_range_values_name_their_field(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(DataError) as caught:
        request(**overrides)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize("field", ["long_entry", "long_exit", "short_entry", "short_exit"])
def test_a_bad_rule_names_its_field_and_column(field: str) -> None:
    with pytest.raises(RuleError) as caught:
        request(**{field: "close > clsoe"})
    assert caught.value.field == field
    assert (caught.value.column, caught.value.token) == (9, "clsoe")
    assert str(caught.value) == "unknown name 'clsoe' at column 9"


def test_a_short_only_strategy_is_valid() -> None:
    made = request(long_entry=None, short_entry="close < open", short_exit="close > open")
    assert set(made.parsed_rules()) == {"short_entry", "short_exit"}


def test_requests_are_frozen_and_replace_rechecks() -> None:
    made = request()
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.fee_rate = 0.1  # type: ignore[misc]
    with pytest.raises(DataError):
        dataclasses.replace(made, fee_rate=0.5)


def test_errors_carry_field_and_message_and_survive_pickling() -> None:
    rule_error = RuleError("long_entry", "unknown name 'x' at column 1", 1, "x")
    data_error = DataError("symbol", "unknown symbol 'X'")
    for error in (rule_error, data_error):
        assert isinstance(error, EngineError)
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), copy.field, copy.message, str(copy)) == (
            type(error),
            error.field,
            error.message,
            error.message,
        )
    copy = pickle.loads(pickle.dumps(rule_error))
    assert (copy.column, copy.token) == (1, "x")
    assert repr(data_error) == "DataError(field='symbol', message=\"unknown symbol 'X'\")"
    assert rule_error.with_field("short_exit").field == "short_exit"
    assert not issubclass(Cancelled, EngineError)
