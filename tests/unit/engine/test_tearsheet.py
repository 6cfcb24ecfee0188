"""Tearsheet figures on hand-computed cases, and cross-checked against QuantStats."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

import engine
from engine import synth, tearsheet

with warnings.catch_warnings():
    # QuantStats and its plotting stack warn at import about their own dependencies.
    warnings.simplefilter("ignore")
    import quantstats


def day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def days_of(*texts: str) -> np.ndarray:
    return np.array([day(t) for t in texts], dtype=np.int64)


def test_daily_equity_keeps_the_last_bar_of_each_utc_day() -> None:
    index = pd.date_range("2024-03-01 22:00", periods=4, freq="1h", tz="UTC")
    days, daily = tearsheet.daily_equity(np.array([1.0, 2.0, 3.0, 4.0]), index)
    assert days.tolist() == [day("2024-03-01"), day("2024-03-02")]
    assert daily.tolist() == [2.0, 4.0]


def test_monthly_returns_compound_from_the_month_before_and_the_initial_capital() -> None:
    days = days_of("2021-11-15", "2021-11-30", "2021-12-31", "2022-01-10", "2022-03-31")
    daily = np.array([105.0, 110.0, 99.0, 120.0, 108.0])
    rows = tearsheet.monthly_returns(days, daily, 100.0)
    assert [row["year"] for row in rows] == [2021, 2022]
    nov, dec = rows[0]["months"][10], rows[0]["months"][11]
    assert nov == pytest.approx(0.10) and dec == pytest.approx(-0.10)
    assert rows[0]["months"][:10] == [None] * 10
    assert rows[0]["total"] == pytest.approx(-0.01)  # 99 / 100 - 1
    jan, feb, mar = rows[1]["months"][:3]
    assert jan == pytest.approx(120 / 99 - 1) and feb is None and mar == pytest.approx(-0.10)
    assert rows[1]["total"] == pytest.approx(108 / 99 - 1)


def test_worst_drawdowns_start_trough_recovery_depth_and_days() -> None:
    days = days_of(
        "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04",
        "2024-01-05", "2024-01-06", "2024-01-07",
    )  # fmt: skip
    daily = np.array([100.0, 90.0, 95.0, 100.0, 80.0, 120.0, 110.0])
    periods = tearsheet.worst_drawdowns(days, daily, 100.0)
    assert periods == [
        {
            "start": "2024-01-05T00:00:00Z",
            "trough": "2024-01-05T00:00:00Z",
            "recovery": "2024-01-06T00:00:00Z",
            "depth": pytest.approx(-0.2),
            "days": 1,
        },
        {
            "start": "2024-01-02T00:00:00Z",
            "trough": "2024-01-02T00:00:00Z",
            "recovery": "2024-01-04T00:00:00Z",
            "depth": pytest.approx(-0.1),
            "days": 2,
        },
        {
            "start": "2024-01-07T00:00:00Z",
            "trough": "2024-01-07T00:00:00Z",
            "recovery": None,
            "depth": pytest.approx(110 / 120 - 1),
            "days": 1,
        },
    ]
    assert tearsheet.worst_drawdowns(days, daily, 100.0, count=1)[0]["depth"] == pytest.approx(-0.2)


def test_a_loss_on_the_first_day_is_a_drawdown_from_the_initial_capital() -> None:
    periods = tearsheet.worst_drawdowns(
        days_of("2024-01-01", "2024-01-02"), np.array([90.0, 95]), 100
    )
    assert periods[0]["start"] == "2024-01-01T00:00:00Z" and periods[0]["recovery"] is None
    assert periods[0]["depth"] == pytest.approx(-0.1) and periods[0]["days"] == 2


def test_rolling_sharpe_is_mean_over_sample_deviation_times_root_365() -> None:
    days = days_of("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
    daily = np.array([101.0, 103.02, 101.9898, 101.9898])  # returns 1 %, 2 %, -1 %, 0 %
    points = tearsheet.rolling_sharpe(days, daily, 100.0, window=3)
    assert [p["t"] for p in points] == ["2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z"]
    first = [0.01, 0.02, -0.01]
    mean = sum(first) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in first) / 2)
    assert points[0]["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    second = [0.02, -0.01, 0.0]
    mean = sum(second) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in second) / 2)
    assert points[1]["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))


def test_rolling_sharpe_of_a_long_run_is_thinned_keeping_the_last_day() -> None:
    days = np.arange(day("2020-01-01"), day("2020-01-01") + 1500, dtype=np.int64)
    daily = 100.0 * np.cumprod(1 + np.sin(np.arange(1500.0)) / 100)
    points = tearsheet.rolling_sharpe(days, daily, 100.0)
    assert len(points) <= tearsheet.MAX_ROLLING_POINTS
    assert points[-1]["t"] == tearsheet._day_iso(int(days[-1]))
    assert points[0]["t"] >= tearsheet._day_iso(int(days[29]))
    stamps = [p["t"] for p in points]
    assert stamps == sorted(set(stamps))


def test_rolling_sharpe_is_none_where_returns_do_not_vary() -> None:
    days = days_of("2024-01-01", "2024-01-02", "2024-01-03")
    points = tearsheet.rolling_sharpe(days, np.array([100.0, 100.0, 100.0]), 100.0, window=2)
    assert [p["sharpe"] for p in points] == [None, None]


def test_return_histogram_counts_equal_width_bins_with_the_top_edge_closed() -> None:
    hist = tearsheet.return_histogram(np.array([-0.02, 0.0, 0.01, 0.02]), bins=2)
    assert hist == {"edges": [-0.02, 0.0, 0.02], "counts": [1, 3]}
    assert tearsheet.return_histogram(np.array([0.01, 0.01])) == {
        "edges": [0.01, 0.01],
        "counts": [2],
    }
    assert tearsheet.return_histogram(np.array([])) == {"edges": [], "counts": []}


def test_longest_streak_counts_consecutive_trades() -> None:
    pnl = np.array([5.0, 1.0, -2.0, 3.0, 4.0, 1.0, 0.0, -1.0, -1.0])
    assert tearsheet.longest_streak(pnl > 0) == 3
    assert tearsheet.longest_streak(pnl < 0) == 2  # a zero trade ends both kinds of streak
    assert tearsheet.longest_streak(np.array([], dtype=bool)) == 0


def test_compute_gives_the_average_trade_duration_from_entry_and_exit_times() -> None:
    index = pd.date_range("2024-01-01", periods=10, freq="1h", tz="UTC")
    sheet = tearsheet.compute(
        np.linspace(100.0, 110.0, 10),
        index,
        initial_capital=100.0,
        pnl=np.array([1.0, -1.0]),
        return_pct=np.array([0.01, -0.01]),
        entry_bar=np.array([1, 5]),
        exit_bar=np.array([3, 9]),
    )
    assert sheet["average_trade_duration_s"] == pytest.approx((2 + 4) / 2 * 3600)
    assert sheet["longest_winning_streak"] == sheet["longest_losing_streak"] == 1
    no_trades = tearsheet.compute(
        np.full(10, 100.0),
        index,
        initial_capital=100.0,
        pnl=np.array([]),
        return_pct=np.array([]),
        entry_bar=np.array([], dtype=np.int64),
        exit_bar=np.array([], dtype=np.int64),
    )
    assert no_trades["average_trade_duration_s"] is None and no_trades["drawdowns"] == []


# --- the same equity curve through QuantStats ---------------------------------------------------

INITIAL = 10_000.0


@pytest.fixture(scope="module")
def curve() -> tuple[dict[str, object], np.ndarray, np.ndarray]:
    """400 days of hourly equity (a buy and hold of synthetic prices from 2021-01-01), its
    tearsheet, and the daily equity QuantStats is given."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    closes = synth.synth_bars(start, 400 * 24 * 60, seed=11)["close"].iloc[59::60]
    index = pd.DatetimeIndex(closes.index - pd.Timedelta(minutes=59))
    equity = INITIAL * closes.to_numpy() / closes.iloc[0] * 0.98  # a fee on the first day
    empty = np.array([], dtype=np.int64)
    sheet = tearsheet.compute(
        equity,
        index,
        initial_capital=INITIAL,
        pnl=np.array([]),
        return_pct=np.array([]),
        entry_bar=empty,
        exit_bar=empty,
    )
    days, daily = tearsheet.daily_equity(equity, index)
    return sheet, days, daily


def daily_returns(days: np.ndarray, daily: np.ndarray) -> pd.Series:
    """Daily returns, the first one from the initial capital."""
    equity = np.concatenate(([INITIAL], daily))
    return pd.Series(
        equity[1:] / equity[:-1] - 1, index=pd.DatetimeIndex(days.astype("datetime64[D]"))
    )


def test_monthly_returns_match_quantstats(
    curve: tuple[dict[str, object], np.ndarray, np.ndarray],
) -> None:
    sheet, days, daily = curve
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = quantstats.stats.monthly_returns(
            daily_returns(days, daily), eoy=True, compounded=True
        )
    months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    rows = sheet["monthly_returns"]
    assert isinstance(rows, list) and [row["year"] for row in rows] == [2021, 2022]
    checked = 0
    for row in rows:
        theirs = expected.loc[str(row["year"])]
        assert row["total"] == pytest.approx(theirs["EOY"], abs=1e-12)
        for number, value in enumerate(row["months"]):
            if value is not None:
                assert value == pytest.approx(theirs[months[number]], abs=1e-12)
                checked += 1
    assert checked == 14  # January 2021 to February 2022


def test_drawdown_periods_match_quantstats(
    curve: tuple[dict[str, object], np.ndarray, np.ndarray],
) -> None:
    sheet, days, daily = curve
    returns = daily_returns(days, daily)
    # QuantStats takes its first price as the first peak: a day at the initial capital first.
    before = pd.Series([0.0], index=[returns.index[0] - pd.Timedelta(days=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawdown = quantstats.stats.to_drawdown_series(pd.concat([before, returns]))
        details = quantstats.stats.drawdown_details(drawdown)
    details = details.sort_values("max drawdown", kind="stable").head(5)
    ours = sheet["drawdowns"]
    assert isinstance(ours, list) and len(ours) == 5
    for period, (_, theirs) in zip(ours, details.iterrows(), strict=True):
        assert period["start"][:10] == str(theirs["start"])[:10]
        assert period["trough"][:10] == str(theirs["valley"])[:10]
        assert period["depth"] == pytest.approx(theirs["max drawdown"] / 100, abs=1e-9)
        # QuantStats' end is the last day under water, ours the first day back at the peak.
        last_day = pd.Timestamp(theirs["end"])
        if period["recovery"] is None:
            assert last_day == returns.index[-1]
        else:
            assert pd.Timestamp(period["recovery"][:10]) == last_day + pd.Timedelta(days=1)
        assert period["days"] == int(theirs["days"])


def test_a_run_carries_its_tearsheet_in_the_result_json() -> None:
    start = datetime(2022, 1, 1, tzinfo=UTC)
    bars = synth.synth_bars(start, 45 * 24 * 60, seed=3)
    request = engine.BacktestRequest(
        strategy_name="sheet",
        symbol="SYNTH",
        timeframe="1m",
        start=start,
        end=bars.index[-1].to_pydatetime(),
        initial_capital=1000.0,
        fee_rate=0.001,
        slippage=0.0,
        position_size=1.0,
        long_entry="crossover(sma(close, 30), sma(close, 120))",
        long_exit="crossunder(sma(close, 30), sma(close, 120))",
        short_entry=None,
        short_exit=None,
        stop_loss=None,
        take_profit=None,
        trailing_stop=None,
    )
    result = engine.run(request, bars)
    sheet = result.as_dict()["tearsheet"]
    assert set(sheet) == {
        "monthly_returns", "drawdowns", "rolling_sharpe", "trade_returns",
        "longest_winning_streak", "longest_losing_streak", "average_trade_duration_s",
    }  # fmt: skip
    assert sum(sheet["trade_returns"]["counts"]) == result.metrics["trades"]
    assert len(sheet["rolling_sharpe"]) == 45 - 30 + 1
    final = result.metrics["final_equity"]
    assert sheet["monthly_returns"][0]["total"] == pytest.approx(final / 1000.0 - 1)
