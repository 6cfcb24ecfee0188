"""The backtest engine: rules, bars and orders in; trades, equity and metrics out."""

from __future__ import annotations

from engine import grid, overfitting, rules, sweep, walkforward
from engine.errors import Cancelled, DataError, EngineError, RuleError
from engine.grid import SweepRequest
from engine.request import TIMEFRAMES, BacktestRequest
from engine.result import BacktestResult, Trade
from engine.run import backtest, check, estimate_bars, run
from engine.store import BarStore, DatasetInfo, DatasetSource
from engine.sweep import ChunkResult, SweepResult, SweepRow
from engine.walkforward import FoldResult, WalkForwardRequest, WalkForwardResult

__all__ = [
    "TIMEFRAMES",
    "BacktestRequest",
    "BacktestResult",
    "BarStore",
    "Cancelled",
    "ChunkResult",
    "DataError",
    "DatasetInfo",
    "DatasetSource",
    "EngineError",
    "FoldResult",
    "RuleError",
    "SweepRequest",
    "SweepResult",
    "SweepRow",
    "Trade",
    "WalkForwardRequest",
    "WalkForwardResult",
    "backtest",
    "check",
    "estimate_bars",
    "grid",
    "overfitting",
    "rules",
    "run",
    "sweep",
    "walkforward",
]
