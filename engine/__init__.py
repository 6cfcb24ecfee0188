"""The backtest engine: rules, bars and orders in; trades, equity and metrics out."""

from __future__ import annotations

from engine import rules
from engine.errors import Cancelled, DataError, EngineError, RuleError
from engine.request import TIMEFRAMES, BacktestRequest
from engine.result import BacktestResult, Trade
from engine.run import check, run
from engine.store import BarStore, DatasetInfo

__all__ = [
    "TIMEFRAMES",
    "BacktestRequest",
    "BacktestResult",
    "BarStore",
    "Cancelled",
    "DataError",
    "DatasetInfo",
    "EngineError",
    "RuleError",
    "Trade",
    "check",
    "rules",
    "run",
]
