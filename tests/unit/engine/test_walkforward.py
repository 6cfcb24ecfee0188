"""Walk-forward: each fold is the sweep alone on its in-sample window and the single backtest of
the winner on the window after it; the stitched segment is the segments chained."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import engine
from engine import grid, sweep, walkforward
from engine.synth import synth_bars
from tests.unit.engine import bartables

START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 90


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synth_bars(START, DAYS * 24 * 60, seed=11).iloc[::15]  # bars 15 minutes apart


def sweep_request(**changes: Any) -> engine.SweepRequest:
    """Long and short sides with a swept stop-loss: the compiled loop with stops."""
    fields: dict[str, Any] = {
        "base": bartables.request(
            timeframe="15m",
            start=START,
            end=START + timedelta(days=DAYS),
            initial_capital=10_000.0,
            fee_rate=0.001,
            slippage=0.0005,
            position_size=0.9,
        ),
        "rules": {
            "long_entry": "crossover(ema(close, fast), sma(close, slow))",
            "short_entry": "crossunder(ema(close, fast), sma(close, slow))",
        },
        "parameters": {
            "fast": (3.0, 6.0, 9.0),
            "slow": (20.0, 40.0),
            "stopLoss": (0.01, 0.03),
        },
        "constraint": "fast < slow",
        "min_trades": 3,
    }
    return engine.SweepRequest(**(fields | changes))


def request(**changes: Any) -> walkforward.WalkForwardRequest:
    fields: dict[str, Any] = {"sweep": sweep_request(), "folds": 4, "in_sample": 0.7}
    return walkforward.WalkForwardRequest(**(fields | changes))


@pytest.fixture(scope="module")
def rolling(bars: pd.DataFrame) -> walkforward.WalkForwardResult:
    return walkforward.run(request(), bars)


def test_rolling_windows_follow_one_another_up_to_the_last_bar() -> None:
    folds = walkforward.windows(request(folds=5, in_sample=0.75), 1000)
    oos = [fold.out_of_sample for fold in folds]
    assert [stop - start for start, stop in oos] == [125] * 5
    assert oos[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(oos))
    for fold in folds:
        assert fold.in_sample[1] == fold.out_of_sample[0]
        assert (
            fold.in_sample[1] - fold.in_sample[0] == 375
        )  # 1000 - 5 * 125: 0.75 of each 500-bar window


def test_anchored_windows_all_start_at_the_first_bar() -> None:
    folds = walkforward.windows(request(anchored=True, folds=3, in_sample=0.5), 900)
    assert [fold.in_sample for fold in folds] == [(0, 225), (0, 450), (0, 675)]
    assert [fold.out_of_sample for fold in folds] == [(225, 450), (450, 675), (675, 900)]


def test_each_fold_chooses_the_best_of_a_sweep_run_alone_on_its_in_sample_window(
    bars: pd.DataFrame, rolling: walkforward.WalkForwardResult
) -> None:
    for fold, result in zip(walkforward.windows(request(), len(bars)), rolling.folds, strict=True):
        alone = dataclasses.replace(sweep_request(), out_of_sample=0.0)
        best = sweep.run(alone, bars.iloc[slice(*fold.in_sample)]).top[0]
        assert result.parameters == best.parameters
        assert result.in_sample == best.in_sample
        assert result.in_sample_objective == best.score


def test_each_out_of_sample_segment_is_the_single_backtest_of_the_choice(
    bars: pd.DataFrame, rolling: walkforward.WalkForwardResult
) -> None:
    folds = walkforward.windows(request(), len(bars))
    for fold, result in zip(folds, rolling.folds, strict=True):
        assert result.parameters is not None
        single = sweep_request().backtest(result.parameters)
        alone = engine.run(single, bars.iloc[slice(*fold.out_of_sample)])
        segment = engine.result.TradeList(
            result.segment.simulation, pd.to_datetime(result.segment.times, utc=True)
        )
        assert list(segment) == list(alone.trades)  # same trades, bit for bit
        assert {k: alone.metrics[k] for k in sweep.SUMMARY_KEYS} == result.out_of_sample
        np.testing.assert_array_equal(
            result.segment.simulation.equity, alone.trades.simulation.equity
        )


def test_the_stitched_curve_is_the_segments_chained_with_capital_carried(
    rolling: walkforward.WalkForwardResult,
) -> None:
    capital = 10_000.0
    chained = []
    for fold in rolling.folds:
        equity = fold.segment.simulation.equity
        chained.append(equity * (capital / 10_000.0))
        capital = chained[-1][-1]
    stitched = rolling.stitched.trades.simulation.equity
    np.testing.assert_allclose(stitched, np.concatenate(chained), rtol=1e-12)
    assert rolling.stitched.metrics["final_equity"] == pytest.approx(capital, rel=1e-12)
    growth = math.prod(1 + (fold.out_of_sample["total_return"] or 0) for fold in rolling.folds)
    assert rolling.stitched.metrics["total_return"] == pytest.approx(growth - 1, rel=1e-9)
    trades = sum(int(fold.out_of_sample["trades"] or 0) for fold in rolling.folds)
    assert rolling.stitched.metrics["trades"] == len(rolling.stitched.trades) == trades
    first, last = rolling.stitched.trades[0], rolling.stitched.trades[-1]
    assert first.entry_time >= pd.Timestamp(rolling.folds[0].out_of_sample_window[0], tz="UTC")
    assert last.exit_time < pd.Timestamp(rolling.folds[-1].out_of_sample_window[1], tz="UTC")


def test_fold_results_merge_in_any_order_and_through_json_to_the_same_result(
    bars: pd.DataFrame, rolling: walkforward.WalkForwardResult
) -> None:
    shuffled = list(rolling.folds)
    random.Random(3).shuffle(shuffled)
    revived = [
        walkforward.FoldResult.from_dict(json.loads(json.dumps(fold.as_dict())))
        for fold in shuffled
    ]
    merged = walkforward.merge_folds(request(), revived)
    expected, got = rolling.as_dict(), merged.as_dict()
    for document in (expected, got):
        document.pop("elapsed_ms")  # engine time: the only figure that may differ
    assert got == expected


def test_packed_fold_results_are_exact_and_smaller_than_their_json(
    rolling: walkforward.WalkForwardResult,
) -> None:
    """What the queue stores of a fold (its JSON less the segment, and Segment.to_bytes)."""
    revived = []
    for fold in rolling.folds:
        packed = fold.as_dict(packed=True)
        segment = packed.pop("segment")
        assert isinstance(segment, bytes)
        assert len(segment) < len(json.dumps(fold.as_dict()["segment"])) / 2
        stored = json.loads(json.dumps(packed))
        revived.append(walkforward.FoldResult.from_dict({**stored, "segment": segment}))
        again = revived[-1].segment
        assert np.array_equal(again.times, fold.segment.times)
        for name in ("equity", "entry_bar", "exit_bar", "pnl", "quantity", "side", "reason"):
            mine, theirs = getattr(again.simulation, name), getattr(fold.segment.simulation, name)
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), name
    merged = walkforward.merge_folds(request(), revived).as_dict()
    expected = rolling.as_dict()
    for document in (expected, merged):
        document.pop("elapsed_ms")
    assert merged == expected


def test_merging_refuses_a_missing_or_repeated_fold(
    rolling: walkforward.WalkForwardResult,
) -> None:
    with pytest.raises(ValueError, match="not each of the 4 folds once"):
        walkforward.merge_folds(request(), [*rolling.folds[:3], rolling.folds[0]])


def test_figures_follow_their_definitions(rolling: walkforward.WalkForwardResult) -> None:
    chosen = [fold.parameters or {} for fold in rolling.folds]
    moves = [
        abs(b[name] - a[name]) / spread
        for name, spread in (("fast", 6.0), ("slow", 20.0), ("stopLoss", 0.02))
        for a, b in itertools.pairwise(chosen)
    ]
    assert rolling.parameter_stability == pytest.approx(1 - sum(moves) / len(moves))
    profitable = [(fold.out_of_sample["total_return"] or 0) > 0 for fold in rolling.folds]
    assert rolling.profitable_folds == sum(profitable) / 4
    annual = [fold.in_sample_annual_return or 0.0 for fold in rolling.folds]
    mean = sum(annual) / len(annual)
    cagr = rolling.stitched.metrics["cagr"]
    assert cagr is not None
    assert rolling.efficiency == (pytest.approx(cagr / mean) if mean > 0 else None)
    assert rolling.reading.endswith(".") and "of 4 folds profitable" in rolling.reading


def test_parameter_stability_is_one_for_the_same_choice_and_zero_for_end_to_end_jumps() -> None:
    grid_request = sweep_request()
    same = [{"fast": 3.0, "slow": 20.0, "stopLoss": 0.01}] * 3
    assert walkforward.parameter_stability(grid_request, same) == 1.0
    jumps = [
        {"fast": 3.0, "slow": 20.0, "stopLoss": 0.01},
        {"fast": 9.0, "slow": 40.0, "stopLoss": 0.03},
    ]
    assert walkforward.parameter_stability(grid_request, jumps) == 0.0
    assert walkforward.parameter_stability(grid_request, same[:1]) is None


@pytest.mark.parametrize(
    ("efficiency", "profitable", "stability", "label"),
    [
        (0.8, 0.8, 0.9, "Looks robust"),
        (0.5, 0.6, 0.7, "Looks robust"),
        (0.4, 0.8, 0.9, "Mixed"),
        (0.8, 0.8, 0.5, "Mixed"),
        (0.2, 0.8, 0.9, "Likely overfit"),
        (0.8, 0.2, 0.9, "Likely overfit"),
        (None, 0.8, 0.9, "Likely overfit"),
    ],
)
def test_the_verdict_applies_the_documented_thresholds(
    efficiency: float | None, profitable: float, stability: float, label: str
) -> None:
    assert walkforward.judge(efficiency, profitable, stability, 5, 5).startswith(label + ":")


def test_the_verdict_has_nothing_to_judge_when_no_fold_chose() -> None:
    assert walkforward.judge(None, 0.0, None, 4, 0).startswith("Nothing to judge:")


def test_a_fold_with_no_combination_reaching_min_trades_stays_in_cash(
    bars: pd.DataFrame,
) -> None:
    # anchored windows grow: the first (at most 250 trades a combination) falls short of 300,
    # the later ones (up to 347, 458, 551) do not
    strict = request(sweep=sweep_request(min_trades=300), anchored=True)
    result = walkforward.run(strict, bars)
    short = [fold for fold in result.folds if fold.parameters is None]
    assert [fold.index for fold in short] == [0], [fold.ranked for fold in result.folds]
    for fold in short:
        assert fold.status == walkforward.NO_VALID_COMBINATION
        assert fold.ranked == 0 and fold.out_of_sample["trades"] == 0
        assert np.all(fold.segment.simulation.equity == 10_000.0)
    assert "1 fold(s) had no valid combination" in result.reading
    assert result.stitched.trades.simulation.entry_bar.min() >= len(short[0].segment.times)
    document = json.loads(json.dumps(result.as_dict()))
    assert document["folds"][short[0].index]["status"] == "no valid combination"


def test_folds_leaving_too_short_an_out_of_sample_window_are_refused_before_running(
    bars: pd.DataFrame,
) -> None:
    slow = sweep_request(parameters={"fast": (3.0,), "slow": (20.0, 400.0), "stopLoss": (0.01,)})
    with pytest.raises(engine.DataError) as caught:
        walkforward.plan_folds(request(sweep=slow, folds=20, in_sample=0.9), bars)
    assert caught.value.field == "walk_forward.folds"
    assert "at least 402" in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"folds": 1}, "walk_forward.folds"),
        ({"folds": 21}, "walk_forward.folds"),
        ({"folds": 2.5}, "walk_forward.folds"),
        ({"in_sample": 0.95}, "walk_forward.in_sample"),
        ({"in_sample": 0.4}, "walk_forward.in_sample"),
        ({"anchored": "yes"}, "walk_forward.anchored"),
    ],
)
def test_bad_walk_forward_settings_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(engine.DataError) as caught:
        request(**changes)
    assert caught.value.field == field


def test_run_reports_progress_in_fold_units_and_cancels(bars: pd.DataFrame) -> None:
    seen: list[int] = []
    short = bars.iloc[: len(bars) // 2]
    walkforward.run(request(folds=2), short, on_progress=seen.append)
    units = walkforward.fold_units(grid.plan(sweep_request()))
    assert seen[-1] == 2 * units and seen == sorted(seen)
    with pytest.raises(engine.Cancelled):
        walkforward.run(request(folds=2), short, should_cancel=lambda: True)


def test_the_api_document_states_the_verdict_thresholds() -> None:
    text = (Path(__file__).parents[3] / "docs" / "api.md").read_text()
    section = text.split("### What a walk-forward computes")[1].split("\n## ")[0]
    assert f"efficiency ≥ {walkforward.ROBUST_EFFICIENCY}" in section
    assert f"profitableFolds ≥ {walkforward.ROBUST_PROFITABLE}" in section
    assert f"parameterStability ≥ {walkforward.ROBUST_STABILITY}" in section
    assert f"< {walkforward.OVERFIT_EFFICIENCY}, or profitableFolds" in section
    assert f"profitableFolds < {walkforward.OVERFIT_PROFITABLE}" in section


def fold_in_a_child(index: int) -> dict[str, Any]:
    """One fold run in another process from the same request and bars, as a queue worker would."""
    bars = synth_bars(START, DAYS * 24 * 60, seed=11).iloc[::15]
    fold = walkforward.plan_folds(request(), bars)[index]
    return walkforward.run_fold(request(), bars, fold).as_dict()


def test_folds_run_in_other_processes_merge_to_the_in_process_result(
    rolling: walkforward.WalkForwardResult,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        documents = list(pool.map(fold_in_a_child, [3, 1, 0, 2]))
    folds = [walkforward.FoldResult.from_dict(json.loads(json.dumps(d))) for d in documents]
    merged = walkforward.merge_folds(request(), folds).as_dict()
    expected = rolling.as_dict()
    for document in (merged, expected):
        document.pop("elapsed_ms")
    assert merged == expected
