"""Metrics by hand, the result's JSON shape, and the equity curve's down-sampling."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import pickle
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from engine import BacktestResult, Trade, metrics, result
from engine.simulate import Params, Signals, Simulation, simulate
from tests.unit.engine.bartables import flags


def simulation(equity: list[float], pnl: list[float], returns: list[float]) -> Simulation:
    count = len(pnl)
    ints = np.arange(count, dtype=np.int64)
    return Simulation(
        np.ones(count, dtype=np.int8),
        ints,
        ints,
        np.ones(count),
        np.ones(count),
        np.zeros(count, dtype=np.int8),
        np.ones(count),
        np.array(pnl, dtype=np.float64),
        np.array(returns, dtype=np.float64),
        np.full(count, 0.5),
        np.array(equity, dtype=np.float64),
    )


def test_metrics_by_hand() -> None:
    equity = [100.0, 110.0, 99.0, 121.0]
    sim = simulation(equity, [10.0, -11.0, 22.0], [0.1, -0.1, 0.2])
    got = metrics.compute(
        sim,
        np.array([10.0, 11.0, 12.0, 15.0]),
        initial_capital=100.0,
        bar_minutes=1440,
        span_minutes=365 * 1440 / 2,
    )
    returns = np.array([0.1, -0.1, 121 / 99 - 1])
    scale = math.sqrt(365)
    assert got["total_return"] == pytest.approx(0.21)
    assert got["cagr"] == pytest.approx(1.21**2 - 1)
    assert got["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert got["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * scale)
    downside = math.sqrt(0.01 / 3)
    assert got["sortino"] == pytest.approx(returns.mean() / downside * scale)
    assert got["calmar"] == pytest.approx((1.21**2 - 1) / (1 - 99 / 110))
    assert got["win_rate"] == pytest.approx(2 / 3)
    assert got["profit_factor"] == pytest.approx(32 / 11)
    assert got["expectancy"] == pytest.approx(0.2 / 3)
    assert got["trades"] == 3
    assert got["exposure"] == pytest.approx(0.75)  # one-bar trades on bars 0, 1 and 2
    assert got["final_equity"] == 121.0
    assert got["buy_and_hold_return"] == pytest.approx(0.5)
    assert got["fees_paid"] == pytest.approx(1.5)
    assert tuple(got) == metrics.KEYS


def test_metrics_without_trades_or_variation_are_none() -> None:
    got = metrics.compute(
        simulation([100.0, 100.0, 100.0], [], []),
        np.array([1.0, 1.0, 1.0]),
        initial_capital=100.0,
        bar_minutes=60,
        span_minutes=180,
    )
    assert got["total_return"] == 0 and got["cagr"] == 0 and got["max_drawdown"] == 0
    for key in ("sharpe", "sortino", "calmar", "win_rate", "profit_factor", "expectancy"):
        assert got[key] is None
    assert got["exposure"] == 0 and got["trades"] == 0


def test_metrics_after_a_wipe_out() -> None:
    got = metrics.compute(
        simulation([100.0, 50.0, 0.0, -10.0], [-110.0], [-1.1]),
        np.array([1.0, 2.0, 3.0, 4.0]),
        initial_capital=100.0,
        bar_minutes=1,
        span_minutes=4,
    )
    assert got["cagr"] == -1.0 and got["total_return"] == pytest.approx(-1.1)
    assert got["max_drawdown"] == pytest.approx(-1.1)
    assert got["profit_factor"] is None or got["profit_factor"] == 0


def test_short_spans_that_overflow_cagr_give_none() -> None:
    got = metrics.compute(
        simulation([100.0, 1e6, 1e7], [1e7], [1e5]),
        np.array([1.0, 2.0, 3.0]),
        initial_capital=100.0,
        bar_minutes=1,
        span_minutes=3,
    )
    assert got["cagr"] is None and got["calmar"] is None
    assert metrics._cagr(2.0, 0.0) is None


def test_exposure_counts_a_reversal_bar_once() -> None:
    close = np.full(6, 10.0)
    sim = simulate(
        close,
        close,
        close,
        close,
        Signals(flags("x....."), None, flags("..x..."), flags("...x..")),
        Params(100.0, 0.0, 0.0, 1.0),
    )
    assert (sim.entry_bar.tolist(), sim.exit_bar.tolist()) == ([1, 3], [3, 4])
    got = metrics.compute(sim, close, initial_capital=100.0, bar_minutes=1, span_minutes=6)
    assert got["exposure"] == pytest.approx(4 / 6)


def test_trades_are_immutable_values() -> None:
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    trade = Trade("long", moment, 1.0, moment, 2.0, 3.0, 4.0, 5.0, "signal")
    same = Trade(
        side="long", entry_time=moment, entry_price=1.0, exit_time=moment, exit_price=2.0,
        quantity=3.0, pnl=4.0, return_pct=5.0, exit_reason="signal",
    )  # fmt: skip
    assert trade == same and hash(trade) == hash(same)
    assert dataclasses.astuple(trade)[0] == "long"
    assert repr(trade).startswith("Trade(side='long', entry_time=datetime.datetime(2024, 5, 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        trade.pnl = 0.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(trade)) == trade


def test_as_dict_is_json_with_z_times_and_no_nan() -> None:
    moment = datetime(2024, 5, 1, 12, tzinfo=UTC)
    trade = Trade("long", moment, 1.0, moment, 2.0, 3.0, math.inf, math.nan, "end")
    made = BacktestResult(
        {"sharpe": math.nan, "trades": 1, "total_return": 0.5},
        [trade],
        [(moment, 1.0), (moment, math.inf)],
        2,
        1.5,
    )
    data = made.as_dict()
    json.dumps(data, allow_nan=False)
    assert data["metrics"] == {"sharpe": None, "trades": 1, "total_return": 0.5}
    assert data["trades"][0]["entry_time"] == "2024-05-01T12:00:00Z"
    assert data["trades"][0]["pnl"] is None and data["trades"][0]["return_pct"] is None
    assert set(data["trades"][0]) == {
        "side", "entry_time", "entry_price", "exit_time", "exit_price", "quantity", "pnl",
        "return_pct", "exit_reason",
    }  # fmt: skip
    assert data["equity_curve"] == [
        {"t": "2024-05-01T12:00:00Z", "equity": 1.0},
        {"t": "2024-05-01T12:00:00Z", "equity": None},
    ]
    assert (data["bars"], data["elapsed_ms"]) == (2, 1.5)


@pytest.mark.parametrize("size", [1, 2, 1999, 2000, 2001, 4001, 100_003])
def test_the_curve_keeps_at_most_2000_points_with_first_last_and_extremes(size: int) -> None:
    rng = np.random.default_rng(size)
    equity = np.cumsum(rng.normal(0, 1, size)) + 1000
    picked = result.curve_indices(equity)
    assert len(picked) <= 2000 and picked[0] == 0 and picked[-1] == size - 1
    assert np.all(np.diff(picked) > 0)
    assert int(np.argmin(equity)) in picked and int(np.argmax(equity)) in picked
    if size <= 2000:
        assert len(picked) == size


def test_trades_leave_a_disabled_garbage_collector_disabled() -> None:
    close = np.full(4, 10.0)
    sim = simulate(close, close, close, close, Signals(flags("x...")), Params(1.0, 0.0, 0.0, 1.0))
    index = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
    gc.disable()
    try:
        assert len(result.trades(sim, index)) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert len(result.trades(sim, index)) == 1 and gc.isenabled()


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetimes_work_for_any_index_unit(unit: str) -> None:
    index = pd.date_range("2024-01-01 00:01", periods=3, freq="1min", tz="UTC").as_unit(unit)
    assert result.datetimes(index, np.array([0, 2])) == [
        datetime(2024, 1, 1, 0, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 3, tzinfo=UTC),
    ]


def test_equity_curve_pairs_times_with_values() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    curve = result.equity_curve(np.array([1.0, 2.0, 3.0]), index)
    assert curve == [(t.to_pydatetime(), v) for t, v in zip(index, [1.0, 2.0, 3.0], strict=True)]


def _reversals(index: pd.DatetimeIndex) -> tuple[Simulation, result.TradeList]:
    rng = np.random.default_rng(11)
    size = len(index)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    longs = rng.random(size) < 0.1
    shorts = ~longs & (rng.random(size) < 0.1)
    sim = simulate(close, close, close, close, Signals(longs, None, shorts), Params(1e3, 0, 0, 1))
    return sim, result.TradeList(sim, index)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_trade_list_serialises_like_the_trade_objects(unit: str) -> None:
    index = pd.date_range("2024-01-01", periods=500, freq="1min", tz="UTC").as_unit(unit)
    sim, listed = _reversals(index)
    assert sim.count > 40 and (sim.reason == 4).sum() > 10  # reversals share exit/entry bars
    made = BacktestResult({"trades": sim.count}, listed, [], 500, 1.0)
    objects = BacktestResult({"trades": sim.count}, result.trades(sim, index), [], 500, 1.0)
    assert made.as_dict() == objects.as_dict()
    assert made.as_dict()["trades"][0]["entry_time"].endswith(":00Z")


def test_trade_list_with_sub_second_times_formats_them_like_isoformat() -> None:
    index = pd.date_range("2024-01-01 00:00:00.250", periods=300, freq="1s", tz="UTC")
    _, listed = _reversals(index)
    dicts = BacktestResult({}, listed, [], 300, 1.0).as_dict()["trades"]
    assert dicts[0]["entry_time"].endswith(".250000Z")
    assert dicts == BacktestResult({}, list(listed), [], 300, 1.0).as_dict()["trades"]


def test_trade_list_is_a_sequence_of_trades() -> None:
    index = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
    sim, listed = _reversals(index)
    objects = result.trades(sim, index)
    assert len(listed) == sim.count and listed == objects and objects == list(listed)
    assert listed[-1] == objects[-1] and listed[1:3] == objects[1:3]
    assert [trade.side for trade in listed] == [trade.side for trade in objects]
    assert listed != objects[:-1] and listed != "long"


def test_as_dict_names_every_key_with_the_given_function() -> None:
    index = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
    _, listed = _reversals(index)
    sheet = {"monthly_returns": [{"year": 2024, "months": [0.1] + [None] * 11}]}
    made = BacktestResult({"total_return": 0.5}, listed, [(index[0], 1.0)], 200, 1.0, sheet)
    upper = made.as_dict(keys=str.upper)
    assert set(upper) == {"METRICS", "TRADES", "EQUITY_CURVE", "BARS", "ELAPSED_MS", "TEARSHEET"}
    months = [0.1] + [None] * 11
    assert upper["TEARSHEET"] == {"MONTHLY_RETURNS": [{"YEAR": 2024, "MONTHS": months}]}
    assert set(upper["TRADES"][0]) == {name.upper() for name in made.as_dict()["trades"][0]}
    assert upper["METRICS"] == {"TOTAL_RETURN": 0.5}
    assert upper["EQUITY_CURVE"] == [{"T": "2024-01-01T00:00:00Z", "EQUITY": 1.0}]


@pytest.mark.parametrize("seed", range(6))
def test_max_drawdown_by_blocks_equals_the_running_peak_over_every_bar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(4 * 4096, 12 * 4096))
    equity = 1e4 * np.exp(np.cumsum(rng.normal(0, rng.uniform(1e-4, 1e-2), size)))
    if seed % 2:
        equity[int(rng.integers(0, size))] *= 0.2  # one deep dip in some block or the tail
    for capital in (1e4, float(equity.max()) * 1.1):
        peaks = np.maximum(np.maximum.accumulate(equity), capital)
        expected = min(float(np.min(equity / peaks)) - 1, 0.0)
        assert metrics._max_drawdown(equity, capital) == expected
