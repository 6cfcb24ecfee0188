"""Sweeps: each row is the single backtest of its combination; chunks merge in any order."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

import engine
from engine import grid, metrics, sweep
from engine.synth import synth_bars
from tests.unit.engine import bartables

START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 60


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synth_bars(START, DAYS * 24 * 60, seed=7).iloc[::5]  # bars 5 minutes apart


def base(**changes: Any) -> engine.BacktestRequest:
    fields: dict[str, Any] = {
        "timeframe": "5m",
        "start": START,
        "end": START + timedelta(days=DAYS),
        "initial_capital": 10_000.0,
        "fee_rate": 0.001,
        "slippage": 0.0005,
        "position_size": 0.9,
    }
    return bartables.request(**(fields | changes))


def sweep_request(**changes: Any) -> engine.SweepRequest:
    """Long and short sides, a fixed take-profit, a swept stop-loss and a swept RSI level."""
    texts = {
        "long_entry": "crossover(ema(close, fast), sma(close, slow))",
        "long_exit": "rsi(close, 14) > level",
        "short_entry": "crossunder(ema(close, fast), sma(close, slow))",
    }
    fields: dict[str, Any] = {
        "base": base(take_profit=0.03),
        "rules": texts,
        "parameters": {
            "fast": grid.expand("fast", 3, 12, 3),
            "slow": (20.0, 30.0, 50.0),
            "level": (60.0, 75.0),
            "stopLoss": (0.004, 0.01, 0.02),
        },
        "constraint": "fast < slow",
        "min_trades": 3,
    }
    fields.update(changes)
    return engine.SweepRequest(**fields)


def relative(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def signal_only_request() -> engine.SweepRequest:
    """Long/short reversals with no stops: the compiled path; a swept fee and position size."""
    texts = {
        "long_entry": "crossover(sma(close, fast), ema(close, slow))",
        "long_exit": "close < lowest(close, exit_n)",
        "short_entry": "crossunder(sma(close, fast), ema(close, slow))",
    }
    parameters = {
        "fast": (3.0, 5.0, 8.0),
        "slow": (20.0, 40.0),
        "exit_n": (10.0, 30.0),
        "feeRate": (0.0, 0.001, 0.002),
    }
    return engine.SweepRequest(base(position_size=0.5), texts, parameters, "fast < slow")


@pytest.mark.parametrize("make", [sweep_request, signal_only_request])
def test_rows_equal_single_backtests_of_their_combination(bars: pd.DataFrame, make: Any) -> None:
    request = make()
    result = sweep.run(request, bars)
    split = len(bars) - math.floor(len(bars) * request.out_of_sample)
    picks = random.Random(12).sample(range(result.combinations), 20)
    for index in picks:
        row = result.rows[index]
        single = request.backtest(row.parameters)
        inside = engine.run(single, bars.iloc[:split]).metrics
        outside = engine.run(single, bars.iloc[split:]).metrics
        assert row.in_sample["trades"] == inside["trades"], row.parameters
        assert row.out_of_sample is not None
        assert row.out_of_sample["trades"] == outside["trades"], row.parameters
        for key in sweep.SUMMARY_KEYS:
            assert relative(row.in_sample[key], inside[key]), (key, row.parameters)
            assert relative(row.out_of_sample[key], outside[key]), (key, row.parameters)
        assert relative(row.score, inside["sharpe"])
    # the grid really exercises stops, both sides and the swept stop
    assert len({row.in_sample["trades"] for row in result.rows}) > 5


def test_rows_are_the_constrained_grid_in_plan_order(bars: pd.DataFrame) -> None:
    request = sweep_request()
    plan = sweep.plan(request)
    assert plan.grid == 4 * 3 * 2 * 3
    assert all(values[0] < values[1] for values in plan.combinations)
    assert plan.skipped == 0  # fast tops out at 12, below every slow
    narrow = sweep_request(constraint="slow - fast > 20")
    # slow 20 keeps no fast value, slow 30 all but 12, slow 50 all: 5 pairs x 2 levels x 3 stops
    assert sweep.plan(narrow).skipped == 5 * 2 * 3
    # the parameter with the most values (after the rule ones) varies slowest
    assert plan.values(0)["fast"] == plan.values(1)["fast"]


def test_chunks_merged_in_any_order_equal_one_run(bars: pd.DataFrame) -> None:
    request = sweep_request(out_of_sample=0.25)
    whole = sweep.run(request, bars)
    chunks = [sweep.run_chunk(request, bars, indices) for indices in sweep.plan(request).chunks(7)]
    # a chunk crosses a process boundary as JSON
    travelled = [
        engine.ChunkResult.from_dict(json.loads(json.dumps(chunk.as_dict(), allow_nan=False)))
        for chunk in chunks
    ]
    for order in (travelled, travelled[::-1], random.Random(3).sample(travelled, len(chunks))):
        merged = sweep.merge(request, order)
        assert merged.rows == whole.rows
        assert {**merged.as_dict(), "elapsed_ms": 0} == {**whole.as_dict(), "elapsed_ms": 0}


def test_merge_refuses_missing_or_repeated_chunks(bars: pd.DataFrame) -> None:
    request = sweep_request()
    ranges = sweep.plan(request).chunks(30)
    chunks = [sweep.run_chunk(request, bars, indices) for indices in ranges]
    with pytest.raises(ValueError, match="not each of"):
        sweep.merge(request, chunks[1:])
    with pytest.raises(ValueError, match="not each of"):
        sweep.merge(request, [*chunks, chunks[0]])


def test_ranking_uses_the_objective_and_min_trades(bars: pd.DataFrame) -> None:
    request = sweep_request(objective="total_return", min_trades=15)
    result = sweep.run(request, bars)
    ranked = [row for row in result.rows if (row.in_sample["trades"] or 0) >= 15]
    assert result.evaluated == len(ranked)
    assert result.skipped == result.combinations - len(ranked)
    returns = [row.in_sample["total_return"] for row in result.top]
    assert returns == sorted(returns, reverse=True)
    assert len(result.top) == min(sweep.TOP, len(ranked))
    assert result.top[0].in_sample["total_return"] == max(
        row.in_sample["total_return"] for row in ranked
    )
    verdict = result.overfitting
    assert verdict.trials == len(ranked)
    assert verdict.deflated_sharpe is not None and 0 <= verdict.deflated_sharpe <= 1
    assert verdict.pbo is not None and 0 <= verdict.pbo <= 1
    assert verdict.reading.endswith(".")


def test_every_objective_has_a_better_side_for_the_ranking() -> None:
    assert all(metrics.BETTER[name] in ("higher", "lower") for name in grid.OBJECTIVES)


def test_without_out_of_sample_rows_cover_every_bar(bars: pd.DataFrame) -> None:
    request = sweep_request(out_of_sample=0.0)
    row = sweep.run_chunk(request, bars, [5]).rows[0]
    assert row.out_of_sample is None
    single = engine.run(request.backtest(row.parameters), bars).metrics
    assert row.in_sample["trades"] == single["trades"]
    assert relative(row.in_sample["sharpe"], single["sharpe"])


def test_progress_counts_combinations_and_cancel_stops(bars: pd.DataFrame) -> None:
    request = sweep_request()
    seen: list[int] = []
    sweep.run_chunk(request, bars, range(6), on_progress=seen.append)
    assert seen == [1, 2, 3, 4, 5, 6]
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) == 2

    with pytest.raises(engine.Cancelled):
        sweep.run_chunk(request, bars, range(6), should_cancel=cancel)
    assert len(asked) == 2


def test_a_window_too_short_for_the_rules_is_a_data_error(bars: pd.DataFrame) -> None:
    request = sweep_request(parameters={"fast": (5.0,), "slow": (9000.0,), "level": (70.0,)})
    with pytest.raises(engine.DataError, match="a window of the sweep holds"):
        sweep.run(request, bars)


def test_chunks_sharing_one_workspace_equal_chunks_run_apart(bars: pd.DataFrame) -> None:
    request = sweep_request()
    ranges = sweep.plan(request).chunks(5)
    workspace = sweep.Workspace(request, bars)
    shared = [sweep.run_chunk(request, bars, r, workspace=workspace) for r in ranges]
    apart = [sweep.run_chunk(request, bars, r) for r in ranges]
    assert [c.as_dict()["rows"] for c in shared] == [c.as_dict()["rows"] for c in apart]
    # out of order too: a worker may be handed any chunk after its first
    again = sweep.run_chunk(request, bars, ranges[0], workspace=workspace)
    assert again.as_dict()["rows"] == apart[0].as_dict()["rows"]
