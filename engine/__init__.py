"""The backtest engine: rules, bars and orders in; trades, equity and metrics out."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine import rules
from engine.errors import Cancelled, DataError, EngineError, RuleError
from engine.request import TIMEFRAMES, BacktestRequest
from engine.result import BacktestResult, Trade
from engine.run import backtest, check, estimate_bars, run
from engine.store import BarStore, DatasetInfo, DatasetSource

if TYPE_CHECKING:
    from engine import grid, overfitting, sweep, walkforward
    from engine.grid import SweepRequest
    from engine.sweep import ChunkResult, SweepResult, SweepRow
    from engine.walkforward import FoldResult, WalkForwardRequest, WalkForwardResult

# Sweeps import numba and compile their loops at import (about a second in a fresh process):
# a single backtest, which needs none of it, must not pay that, so these load on first use.
_LAZY = {
    "grid": "engine.grid",
    "overfitting": "engine.overfitting",
    "sweep": "engine.sweep",
    "walkforward": "engine.walkforward",
    "SweepRequest": "engine.grid",
    "ChunkResult": "engine.sweep",
    "SweepResult": "engine.sweep",
    "SweepRow": "engine.sweep",
    "FoldResult": "engine.walkforward",
    "WalkForwardRequest": "engine.walkforward",
    "WalkForwardResult": "engine.walkforward",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"engine.{name}" else getattr(module, name)
    globals()[name] = value
    return value


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
