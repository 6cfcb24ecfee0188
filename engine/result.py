"""Trade, BacktestResult, and the equity curve down-sampled to at most 2,000 points."""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from engine.simulate import REASONS, Floats, Ints, Simulation

MAX_CURVE_POINTS = 2000


@dataclass(frozen=True, init=False)
class Trade:
    """One round trip. Times are the labels (open times) of the bars on which the fills
    happened; prices are fill prices, slippage included; pnl includes both fees; return_pct is
    pnl / (quantity * entry_price)."""

    side: str  # long short
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    quantity: float
    pnl: float
    return_pct: float
    exit_reason: str  # signal stop_loss take_profit trailing_stop reverse end

    def __init__(
        self,
        side: str,
        entry_time: datetime,
        entry_price: float,
        exit_time: datetime,
        exit_price: float,
        quantity: float,
        pnl: float,
        return_pct: float,
        exit_reason: str,
    ) -> None:
        # The generated frozen __init__ calls object.__setattr__ once per field; filling the
        # instance dict directly builds 100k trades 2.5 times faster and stays immutable.
        fields = self.__dict__
        fields["side"] = side
        fields["entry_time"] = entry_time
        fields["entry_price"] = entry_price
        fields["exit_time"] = exit_time
        fields["exit_price"] = exit_price
        fields["quantity"] = quantity
        fields["pnl"] = pnl
        fields["return_pct"] = return_pct
        fields["exit_reason"] = exit_reason


@dataclass(frozen=True)
class BacktestResult:
    metrics: dict[str, float | int | None]
    trades: list[Trade]
    equity_curve: list[tuple[datetime, float]]
    bars: int
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: snake_case keys, ISO 8601 'Z' times, None instead of NaN or infinity."""
        return {
            "metrics": {key: _number(value) for key, value in self.metrics.items()},
            "trades": [
                {
                    "side": trade.side,
                    "entry_time": _iso(trade.entry_time),
                    "entry_price": _number(trade.entry_price),
                    "exit_time": _iso(trade.exit_time),
                    "exit_price": _number(trade.exit_price),
                    "quantity": _number(trade.quantity),
                    "pnl": _number(trade.pnl),
                    "return_pct": _number(trade.return_pct),
                    "exit_reason": trade.exit_reason,
                }
                for trade in self.trades
            ],
            "equity_curve": [
                {"t": _iso(time), "equity": _number(equity)} for time, equity in self.equity_curve
            ],
            "bars": self.bars,
            "elapsed_ms": _number(self.elapsed_ms),
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float | int | None) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def trades(simulation: Simulation, index: pd.DatetimeIndex) -> list[Trade]:
    """Trade objects for the simulation's rows."""
    if simulation.count == 0:
        return []
    sides = ["long" if side > 0 else "short" for side in simulation.side.tolist()]
    reasons = [REASONS[reason] for reason in simulation.reason.tolist()]
    columns = (
        sides,
        datetimes(index, simulation.entry_bar),
        simulation.entry_price.tolist(),
        datetimes(index, simulation.exit_bar),
        simulation.exit_price.tolist(),
        simulation.quantity.tolist(),
        simulation.pnl.tolist(),
        simulation.return_pct.tolist(),
        reasons,
    )
    # 100k new objects set off dozens of garbage collections that can free nothing; pausing
    # the collector makes this ~25 % faster.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(map(Trade, *columns))
    finally:
        if collecting:
            gc.enable()


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def datetimes(index: pd.DatetimeIndex, bars: Ints) -> list[datetime]:
    """UTC datetimes of the bars' labels (twice as fast as DatetimeIndex.to_pydatetime)."""
    seconds = (index.asi8[bars] / _PER_SECOND[index.unit]).tolist()
    stamp = datetime.fromtimestamp
    return [stamp(second, UTC) for second in seconds]


def curve_indices(equity: Floats, limit: int = MAX_CURVE_POINTS) -> Ints:
    """Indices of at most `limit` points that keep the first, the last, and the lowest and
    highest point of each of (limit - 2) / 2 equal stretches (so the global extremes too)."""
    size = len(equity)
    if size <= limit:
        return np.arange(size, dtype=np.int64)
    inner = equity[1:-1]
    count = size - 2
    width = -(-count // ((limit - 2) // 2))
    rows = -(-count // width)
    lows = np.full(rows * width, np.inf)
    lows[:count] = inner
    highs = np.full(rows * width, -np.inf)
    highs[:count] = inner
    offsets = np.arange(rows) * width
    lowest = offsets + lows.reshape(rows, width).argmin(axis=1)
    highest = offsets + highs.reshape(rows, width).argmax(axis=1)
    picked = np.unique(np.concatenate(([-1, count], lowest, highest))) + 1
    return picked.astype(np.int64)


def equity_curve(equity: Floats, index: pd.DatetimeIndex) -> list[tuple[datetime, float]]:
    picked = curve_indices(equity)
    return list(zip(datetimes(index, picked), equity[picked].tolist(), strict=True))
