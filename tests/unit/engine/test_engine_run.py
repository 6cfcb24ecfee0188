"""run(), check() and backtest(): end to end on bar tables, progress, cancel, bad input."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import BacktestRequest, BarStore, Cancelled, DataError, backtest, check, run
from engine.synth import synth_bars
from tests.unit.engine.bartables import START, bars, flat_bars, request


def test_run_produces_trades_metrics_and_curve() -> None:
    frame = flat_bars([10, 11, 12, 11, 13, 14, 12, 15])
    result = run(request(long_entry="close > prev(close, 1)", long_exit="close < open"), frame)
    assert result.bars == 8
    # entries signalled on bars 1 and 4, exits on 3 and 6; bar 7's entry has no next open
    assert [trade.exit_reason for trade in result.trades] == ["signal", "signal"]
    first = result.trades[0]
    assert (first.side, first.entry_price) == ("long", 11)
    assert first.entry_time == START + timedelta(minutes=2)
    assert first.entry_time.tzinfo is not None
    assert result.metrics["trades"] == 2
    assert len(result.equity_curve) == 8
    assert result.equity_curve[0] == (START, 1000.0)
    assert result.metrics["final_equity"] == pytest.approx(result.equity_curve[-1][1])
    assert result.elapsed_ms > 0
    json.dumps(result.as_dict(), allow_nan=False)


def test_times_are_the_labels_of_the_fill_bars() -> None:
    frame = flat_bars([10, 11, 12, 13], minutes=60)
    result = run(request(timeframe="1h", long_entry="close > 10.5"), frame)
    trade = result.trades[0]
    assert trade.entry_time == START + timedelta(hours=2)
    assert trade.exit_time == START + timedelta(hours=3)
    assert trade.exit_reason == "end"


def test_a_never_true_rule_is_a_valid_empty_result() -> None:
    result = run(request(long_entry="close < 0"), flat_bars([10, 11, 12]))
    assert result.trades == [] and result.metrics["trades"] == 0
    assert result.metrics["total_return"] == 0
    assert result.metrics["win_rate"] is None and result.metrics["profit_factor"] is None
    assert result.metrics["exposure"] == 0


def test_an_always_true_rule_holds_from_the_second_bar_to_the_end() -> None:
    result = run(request(long_entry="1 < 2"), flat_bars([10, 11, 12, 13]))
    assert [(t.entry_price, t.exit_price, t.exit_reason) for t in result.trades] == [
        (10, 13, "end")
    ]


def test_zero_volume_bars_are_fine() -> None:
    frame = bars("10 11 9 10 0\n10 12 9 11 0\n11 12 10 12 0")
    assert run(request(long_entry="volume == 0"), frame).metrics["trades"] == 1


def test_later_bars_never_change_earlier_decisions() -> None:
    frame = synth_bars(START, 3000, seed=5)
    rules = {
        "long_entry": "crossover(ema(close, 12), ema(close, 26)) and rsi(close, 14) < 70",
        "short_entry": "crossunder(ema(close, 12), ema(close, 26))",
        "stop_loss": 0.01,
        "trailing_stop": 0.02,
    }
    full = run(request(**rules), frame)
    cut = 2000
    altered = frame.copy()
    altered.iloc[cut:] = altered.iloc[cut:] * 1.5  # a different future
    changed = run(request(**rules), altered)
    cutoff = frame.index[cut - 1]

    def closed_before(result: object) -> list[tuple[object, ...]]:
        return [
            (t.side, t.entry_time, t.entry_price, t.exit_time, t.exit_price, t.exit_reason)
            for t in result.trades  # type: ignore[attr-defined]
            if t.exit_time <= cutoff and t.exit_reason != "end"
        ]

    assert closed_before(full) == closed_before(changed)
    assert len(closed_before(full)) > 5


def test_progress_is_monotone_from_0_to_100_in_steps_of_at_most_5() -> None:
    seen: list[int] = []
    frame = synth_bars(START, 5000, seed=1)
    run(
        request(long_entry="crossover(sma(close, 5), sma(close, 20))", stop_loss=0.001),
        frame,
        on_progress=seen.append,
    )
    assert seen[0] == 0 and seen[-1] == 100
    assert all(0 < b - a <= 5 for a, b in itertools.pairwise(seen))


@pytest.mark.parametrize("after", [1, 3, 10, 19])
def test_cancel_is_checked_at_each_progress_report(after: int) -> None:
    calls: list[int] = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= after

    with pytest.raises(Cancelled):
        run(
            request(long_entry="close > sma(close, 3)"),
            flat_bars([10, 11, 12, 13, 14]),
            should_cancel=should_cancel,
        )
    assert len(calls) == after


def test_cancel_reaches_the_trade_loop() -> None:
    size = 10_000
    closes = list(100 + np.sin(np.arange(size)))
    reports: list[int] = []

    def should_cancel() -> bool:
        return bool(reports) and reports[-1] > 50

    with pytest.raises(Cancelled):
        run(
            request(long_entry="close > open", long_exit="close < open", stop_loss=0.5),
            flat_bars(closes),
            on_progress=reports.append,
            should_cancel=should_cancel,
        )
    assert 50 < reports[-1] < 85


def test_too_few_bars_for_the_longest_look_back_is_a_data_error() -> None:
    with pytest.raises(DataError) as caught:
        run(request(long_entry="close > sma(close, 10)"), flat_bars([10.0] * 10))
    assert caught.value.field == "start"
    assert "at least 11 bars of 1m" in caught.value.message
    run(request(long_entry="close > sma(close, 10)"), flat_bars([10.0] * 11))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (bars("10 11 9 10")[0:0], "there are no bars"),
        (bars("10 11 9 10\n10 11 9 10").iloc[::-1], "increase strictly"),
        (pd.concat([bars("10 11 9 10")] * 2), "increase strictly"),
        (bars("10 11 9 10\n10 11 9 10").tz_localize(None), "timezone-aware"),
        (bars("10 11 9 10\n10 11 9 10").drop(columns="volume"), "lack the column(s) volume"),
        (bars("10 11 9 10\nnan 11 9 10"), "open of the bar at 2024-01-01T00:01:00Z is missing"),
        (bars("10 11 9 10\n10 inf 9 10"), "high of the bar at 2024-01-01T00:01:00Z is missing"),
        (bars("10 11 9 10\n10 11 9 0"), "close of the bar at 2024-01-01T00:01:00Z is not above"),
        (pd.DataFrame({"close": [1.0]}), "indexed by UTC times"),
        (bars("10 11 9 10").astype({"open": object}).assign(open="x"), "must be numbers"),
    ],
)
def test_unusable_bars_are_a_data_error(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError) as caught:
        run(request(), frame)
    assert message in caught.value.message


def test_bars_in_another_time_zone_are_converted() -> None:
    frame = flat_bars([10, 11, 12])
    frame.index = frame.index.tz_convert("America/New_York")
    result = run(request(long_entry="close > 10"), frame)
    assert result.trades[0].entry_time == START + timedelta(minutes=2)


def test_metrics_are_none_rather_than_nan_or_inf() -> None:
    result = run(request(long_entry="1 < 2"), flat_bars([10.0] * 5))
    assert result.metrics["sharpe"] is None and result.metrics["sortino"] is None
    assert result.metrics["calmar"] is None
    for value in result.metrics.values():
        assert value is None or math.isfinite(value)


# --- check() -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> BarStore:
    bar_store = BarStore(tmp_path)
    bar_store.write("TEST", synth_bars(START, 3 * 24 * 60))
    return bar_store


def test_check_clips_the_range_to_the_stored_data(store: BarStore) -> None:
    asked = request(start=START - timedelta(days=10), end=START + timedelta(days=1))
    clipped = check(asked, store)
    assert (clipped.start, clipped.end) == (START, START + timedelta(days=1))
    inside = request(start=START, end=START + timedelta(days=1))
    assert check(inside, store) is inside


def test_check_refuses_an_unknown_symbol_and_lists_the_known(store: BarStore) -> None:
    with pytest.raises(DataError) as caught:
        check(request(symbol="ETHUSDT"), store)
    assert caught.value.field == "symbol"
    assert caught.value.message == "unknown symbol 'ETHUSDT': available: TEST"
    with pytest.raises(DataError, match="none"):
        check(request(), BarStore(store.data_dir / "empty"))


def test_check_refuses_a_range_outside_the_data(store: BarStore) -> None:
    later = START + timedelta(days=30)
    with pytest.raises(DataError) as caught:
        check(request(start=later, end=later + timedelta(days=1)), store)
    assert caught.value.field == "start"
    assert "stored data covers 2024-01-01T00:00:00Z to 2024-01-04T00:00:00Z" in str(caught.value)


def test_check_refuses_too_few_bars_for_the_rules(store: BarStore) -> None:
    daily = request(timeframe="1d", long_entry="close > sma(close, 5)", end=START + timedelta(9))
    with pytest.raises(DataError) as caught:
        check(daily, store)
    assert caught.value.field == "start"
    assert "need at least 6 bars of 1d" in str(caught.value) and "about 3" in str(caught.value)
    hourly = request(timeframe="1h", long_entry="close > sma(close, 5)")
    assert check(hourly, store).timeframe == "1h"


def test_check_then_load_then_run(store: BarStore) -> None:
    checked = check(request(timeframe="15m", long_entry="crossover(close, sma(close, 8))"), store)
    frame = store.load(checked.symbol, checked.timeframe, checked.start, checked.end)
    assert len(frame) == 3 * 24 * 4
    assert run(checked, frame).bars == len(frame)


def test_backtest_is_check_then_load_then_run(store: BarStore) -> None:
    """One call for the worker's backtest process and `algotcha backtest run`."""
    asked = BacktestRequest(
        symbol="TEST",
        timeframe="15m",
        start=START - timedelta(days=1),
        end=START + timedelta(days=10),
        long_entry="crossover(close, sma(close, 8))",
    )
    seen: list[int] = []
    result = backtest(asked, store, on_progress=seen.append)
    checked = check(asked, store)
    expected = run(checked, store.load("TEST", "15m", checked.start, checked.end))
    assert result.bars == expected.bars == 3 * 24 * 4
    assert result.trades == expected.trades and result.metrics == expected.metrics
    assert seen[0] == 0 and seen[-1] == 100
    with pytest.raises(DataError, match="unknown symbol"):
        backtest(dataclasses.replace(asked, symbol="ETHUSDT"), store)
    with pytest.raises(Cancelled):
        backtest(asked, store, should_cancel=lambda: True)
