"""The benchmarks build the requests the issues name; `make bench` is not in `make test`, so a
change of the engine's request types would otherwise break it unseen (it did once)."""

from __future__ import annotations

import engine
from algotcha import engine_requests
from tests.benchmarks import bench_engine, bench_queue_sweep, bench_sweep, bench_walkforward

BARS = 2_628_000


def test_the_reference_grid_is_the_issues_1000_combinations() -> None:
    request = bench_sweep.sweep_request("sma_grid", BARS)
    laid_out = engine.grid.plan(request)
    assert len(laid_out.combinations) == 1000
    assert request.parameters["fast"] == tuple(float(v) for v in range(5, 51, 5))
    assert request.parameters["slow"] == tuple(float(v) for v in range(60, 259, 2))
    assert request.base.fee_rate == 0.001
    assert request.base.stop_loss is None and request.base.short_entry is None


def test_the_rsi_grid_has_100_combinations_with_stops() -> None:
    request = bench_sweep.sweep_request("rsi_grid", BARS)
    assert len(engine.grid.plan(request).combinations) == 100
    assert set(request.parameters) == {"lower", "stopLoss", "takeProfit"}


def test_the_queued_sweep_is_the_same_grid_as_the_engine_sweep() -> None:
    parsed = engine_requests.parse_sweep(
        bench_queue_sweep.sweep_body(BARS), max_combinations=10_000
    )
    alone = bench_sweep.sweep_request("sma_grid", BARS)
    assert parsed.parameters == alone.parameters
    assert parsed.rules == alone.rules
    assert (parsed.base.start, parsed.base.end) == (alone.base.start, alone.base.end)


def test_the_walk_forward_runs_the_reference_grid() -> None:
    assert bench_walkforward.GRID == "sma_grid"
    assert bench_walkforward.FOLDS == 5


def test_the_single_backtests_are_the_three_strategies_of_the_issue() -> None:
    requests = {
        name: bench_engine.make_request("BENCH", "1m", name) for name in bench_engine.STRATEGIES
    }
    assert requests["rsi_stops"].stop_loss == 0.02 and requests["rsi_stops"].take_profit == 0.04
    assert requests["ema_reversal"].short_entry is not None
    assert requests["sma_cross"].long_exit is not None
