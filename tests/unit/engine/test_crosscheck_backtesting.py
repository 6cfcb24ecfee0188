"""Cross-check against backtesting.py: same bars, same strategy, same trades and final equity.

How backtesting.py 0.6 is set up to follow API.md's semantics:

- trade_on_close=False: market orders fill at the next bar's open, like ours.
- commission=fee_rate, spread=0: backtesting.py charges `rate * |size| * price` on entry and on
  exit, as we do; its spread applies to entries only, so slippage stays 0 here (slippage has
  its own hand-computed tests).
- Fractional sizing: backtesting.py sizes `int(cash * size // (price * (1 + fee)))` whole units.
  With cash of 1e15 the floor changes equity by ~1e-11, so both engines hold the same position
  (the "large scale" trick; FractionalBacktest would rescale prices and perturb the SMAs).
  size must be < 1 to mean "share of equity", so both run with position_size 0.9999.
- Stops: backtesting.py takes absolute sl/tp prices when the order is placed, but ours are
  relative to the fill. The strategy gets the next bar's open as a precomputed column (not a
  look-ahead in the engine under test: only backtesting.py's order prices use it) and sets
  sl/tp from it. backtesting.py arms SL/TP on the entry bar, checks SL before TP, fills a
  gap-through at the open, and processes a pending close order (inserted first) before them,
  matching our order.
- exclusive_orders=True: one position at a time; an opposite order closes the position at the
  same open and sizes the new one from the cash after it, as our reversal does.
- End of data: backtesting.py leaves the last trade open (finalize_trades=False) and values it
  at the last close without the exit fee; we close it at that close with the fee, so the
  comparison adds that fee.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy
from pandas.errors import Pandas4Warning

from engine import BacktestResult, run
from engine.resample import resample
from engine.synth import synth_bars
from tests.unit.engine.bartables import START, request

CASH = 1e15
SIZE = 0.9999
FEE = 0.001
HOURS = 20_000


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return resample(synth_bars(START, HOURS * 60, seed=11), "1h")


def sma(values: Any, n: int) -> np.ndarray:
    averaged: np.ndarray = pd.Series(values).rolling(n).mean().to_numpy(np.float64)
    return averaged


def ema(values: Any, n: int) -> np.ndarray:
    series = pd.Series(values)
    seeded = series.copy()
    seeded.iloc[: n - 1] = np.nan
    seeded.iloc[n - 1] = series.iloc[:n].mean()
    averaged: np.ndarray = seeded.ewm(alpha=2 / (n + 1), adjust=False).mean().to_numpy(np.float64)
    return averaged


class Cross(Strategy):  # type: ignore[misc]
    """Long on a fast/slow cross up, flat (or short, when `reverse`) on a cross down."""

    average = "sma"
    fast_n, slow_n = 20, 50
    stop_loss: float | None = None
    take_profit: float | None = None
    reverse = False

    def init(self) -> None:
        smooth = sma if self.average == "sma" else ema
        self.fast = self.I(smooth, self.data.Close, self.fast_n)
        self.slow = self.I(smooth, self.data.Close, self.slow_n)
        self.next_open = self.I(lambda close: close, self.data.df["NextOpen"].to_numpy())

    def next(self) -> None:
        fast, slow = self.fast, self.slow
        up = fast[-1] > slow[-1] and fast[-2] <= slow[-2]
        down = fast[-1] < slow[-1] and fast[-2] >= slow[-2]
        fill = self.next_open[-1]
        if up and not self.position.is_long:
            sl = fill * (1 - self.stop_loss) if self.stop_loss else None
            tp = fill * (1 + self.take_profit) if self.take_profit else None
            self.buy(size=SIZE, sl=sl, tp=tp)
        elif down and self.reverse and not self.position.is_short:
            self.sell(size=SIZE)
        elif down and self.position.is_long:
            self.position.close()


def reference(bars: pd.DataFrame, **parameters: Any) -> tuple[pd.DataFrame, float, Any]:
    data = bars.rename(columns=str.title).tz_localize(None)
    data["NextOpen"] = np.r_[data["Open"].to_numpy()[1:], data["Close"].iloc[-1]]
    backtest = Backtest(
        data,
        Cross,
        cash=CASH,
        commission=FEE,
        spread=0.0,
        trade_on_close=False,
        exclusive_orders=True,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        # backtesting.py warns that the last trade is still open; we account for it below
        warnings.filterwarnings("ignore", message="Some trades remain open", category=UserWarning)
        # backtesting.py 0.6.6 computes its statistics with a pandas API deprecated in pandas 3
        warnings.filterwarnings(
            "ignore", message="DatetimeIndex.dayofweek is deprecated", category=Pandas4Warning
        )
        stats = backtest.run(**parameters)
    return stats["_trades"], float(stats["Equity Final [$]"]), stats["_strategy"].trades


def compare(ours: BacktestResult, bars: pd.DataFrame, **parameters: Any) -> int:
    theirs, their_equity, still_open = reference(bars, **parameters)
    closed = [trade for trade in ours.trades if trade.exit_reason != "end"]
    assert len(closed) == len(theirs)
    assert [t.entry_time.replace(tzinfo=None) for t in closed] == list(theirs["EntryTime"])
    assert [t.exit_time.replace(tzinfo=None) for t in closed] == list(theirs["ExitTime"])
    np.testing.assert_allclose([t.entry_price for t in closed], theirs["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose([t.exit_price for t in closed], theirs["ExitPrice"], rtol=1e-12)
    sides = ["long" if size > 0 else "short" for size in theirs["Size"]]
    assert [t.side for t in closed] == sides
    exit_fee = 0.0
    if ours.trades and ours.trades[-1].exit_reason == "end":
        (last,) = still_open
        assert last.entry_time == ours.trades[-1].entry_time.replace(tzinfo=None)
        assert last.entry_price == pytest.approx(ours.trades[-1].entry_price, rel=1e-12)
        exit_fee = abs(last.size) * float(bars["close"].iloc[-1]) * FEE
    else:
        assert not still_open
    assert ours.metrics["final_equity"] == pytest.approx(their_equity - exit_fee, rel=1e-6)
    return len(closed)


def test_sma_cross_long_only_matches_backtesting_py(hourly: pd.DataFrame) -> None:
    ours = run(
        request(
            timeframe="1h",
            end=START + timedelta(hours=HOURS),
            initial_capital=CASH,
            fee_rate=FEE,
            position_size=SIZE,
            long_entry="crossover(sma(close, 20), sma(close, 50))",
            long_exit="crossunder(sma(close, 20), sma(close, 50))",
        ),
        hourly,
    )
    assert compare(ours, hourly) > 100


def test_sma_cross_with_stop_loss_and_take_profit_matches_backtesting_py(
    hourly: pd.DataFrame,
) -> None:
    ours = run(
        request(
            timeframe="1h",
            end=START + timedelta(hours=HOURS),
            initial_capital=CASH,
            fee_rate=FEE,
            position_size=SIZE,
            long_entry="crossover(sma(close, 20), sma(close, 50))",
            long_exit="crossunder(sma(close, 20), sma(close, 50))",
            stop_loss=0.02,
            take_profit=0.04,
        ),
        hourly,
    )
    reasons = {trade.exit_reason for trade in ours.trades}
    assert {"signal", "stop_loss", "take_profit"} <= reasons
    assert compare(ours, hourly, stop_loss=0.02, take_profit=0.04) > 100


def test_ema_cross_long_short_reversal_matches_backtesting_py(hourly: pd.DataFrame) -> None:
    ours = run(
        request(
            timeframe="1h",
            end=START + timedelta(hours=HOURS),
            initial_capital=CASH,
            fee_rate=FEE,
            position_size=SIZE,
            long_entry="crossover(ema(close, 12), ema(close, 26))",
            short_entry="crossunder(ema(close, 12), ema(close, 26))",
        ),
        hourly,
    )
    assert {trade.exit_reason for trade in ours.trades} == {"reverse", "end"}
    assert compare(ours, hourly, average="ema", fast_n=12, slow_n=26, reverse=True) > 100
