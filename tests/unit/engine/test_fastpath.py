"""The compiled signal-only walk equals simulate() + metrics.compute() on random signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import fastpath, metrics
from engine.simulate import Params, Signals, simulate

KEYS = (
    "total_return", "cagr", "max_drawdown", "sharpe", "sortino", "calmar", "win_rate",
    "profit_factor", "expectancy", "trades", "exposure", "final_equity",
)  # fmt: skip


def prices(rng: np.random.Generator, size: int, jumpy: bool) -> tuple[np.ndarray, np.ndarray]:
    steps = rng.normal(0, 0.3 if jumpy else 0.01, size)
    close = 100 * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.002, size))
    return open_, close


def same(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_walk_equals_simulate_and_compute(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(3, 4000))
    jumpy = seed % 5 == 4  # big moves: a short side can go broke
    open_, close = prices(rng, size, jumpy)
    density = rng.uniform(0.001, 0.3, 4)
    flags = [rng.random(size) < d for d in density]
    if seed % 3 == 0:
        flags[2] = flags[3] = np.zeros(size, dtype=bool)  # long only
    if seed % 7 == 1:
        flags[1] = np.zeros(size, dtype=bool)  # reversal only
    fee = float(rng.choice([0.0, 0.001, 0.01]))
    slip = float(rng.choice([0.0, 0.0005]))
    share = float(rng.choice([1.0, 0.5]))
    params = Params(10_000.0, fee, slip, share)
    simulation = simulate(open_, close * 1.01, close * 0.99, close, Signals(*flags), params)
    span = size * 60.0
    expected = metrics.compute(
        simulation, close, initial_capital=10_000.0, bar_minutes=60, span_minutes=span
    )
    day_ends = np.flatnonzero((np.arange(size) % 24 == 23) | (np.arange(size) == size - 1))
    setup = fastpath.Setup(open_, close, 10_000.0, fee, slip, share, 60, span, day_ends)
    measured, daily = fastpath.signal_metrics(setup, *flags)
    for key in KEYS:
        assert same(measured[key], expected[key]), (key, measured[key], expected[key])
    assert np.array_equal(daily, simulation.equity[day_ends])


def test_a_broke_short_ends_trading_as_simulate_does() -> None:
    size = 50
    close = np.full(size, 100.0)
    close[10:] = 400.0  # a short opened at 100 loses three times its stake
    open_ = close.copy()
    never = np.zeros(size, dtype=bool)
    short = never.copy()
    short[[2, 20, 30]] = True
    cover = never.copy()
    cover[15] = True
    params = Params(1000.0, 0.001, 0.0, 1.0)
    simulation = simulate(open_, close, close, close, Signals(None, None, short, cover), params)
    assert simulation.count == 1 and simulation.equity[-1] < 0
    expected = metrics.compute(
        simulation, close, initial_capital=1000.0, bar_minutes=1, span_minutes=size
    )
    setup = fastpath.Setup(open_, close, 1000.0, 0.001, 0.0, 1.0, 1, size, np.array([size - 1]))
    measured, _ = fastpath.signal_metrics(setup, never, never, short, cover)
    for key in KEYS:
        assert same(measured[key], expected[key]), key
