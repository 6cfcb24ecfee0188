"""The compiled signal-only walk equals simulate() + metrics.compute() on random signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import fastpath, metrics, rules
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


def tied_columns(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """Series that wander around one level on a coarse grid, so they cross often and are
    often equal (ties), with a NaN warm-up and NaN holes, as indicators and gappy data give."""
    level = 100 + np.cumsum(rng.normal(0, 0.3, size))
    columns = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = np.round(level + rng.normal(0, 1.0, size))
        values[: int(rng.integers(0, 6))] = np.nan
        values[rng.random(size) < 0.01] = np.nan
        columns[name] = values
    return columns


# Entries read close and open, exits high, low and volume, so they do not cancel by design.
ENTRY_RULES = (
    "crossover(close, open)",
    "crossunder(close, open)",
    "crossover(prev(close, 3), open)",
    "crossunder(close - open, prev(open, 1) - close)",
    "close > open",
    "close < prev(open, 2)",
    "close >= open",
    "close == open",
    "prev(close, 1) != open",
    "open <= close",
)
EXIT_RULES = (
    "crossover(high, low)",
    "crossunder(volume, prev(high, 2))",
    "high > low",
    "volume < low",
    "high >= prev(low, 1)",
    "low <= volume",
    "high == low",
    "volume != high",
)


@pytest.mark.parametrize("seed", range(12))
def test_pairwise_rules_tested_in_the_walk_equal_their_numexpr_evaluation(seed: int) -> None:
    # Given four pairwise rules (crossovers and comparisons) on tied, NaN-holed prices
    rng = np.random.default_rng(seed)
    size = int(rng.integers(200, 3000))
    columns = tied_columns(rng, size)
    texts = [
        ENTRY_RULES[seed % len(ENTRY_RULES)],
        EXIT_RULES[seed % len(EXIT_RULES)],
        ENTRY_RULES[(seed + 3) % len(ENTRY_RULES)],
        EXIT_RULES[(seed + 5) % len(EXIT_RULES)],
    ]
    if seed % 3 == 0:
        texts[2:] = []  # long only
    parsed = [rules.parse(text) for text in texts]
    open_ = np.abs(np.nan_to_num(columns["open"], nan=100.0)) + 1
    close = np.abs(np.nan_to_num(columns["close"], nan=100.0)) + 1
    day_ends = np.flatnonzero((np.arange(size) % 24 == 23) | (np.arange(size) == size - 1))
    setup = fastpath.Setup(open_, close, 10_000.0, 0.001, 0.0, 1.0, 60, size * 60.0, day_ends)
    never = np.zeros(size, dtype=bool)
    # When the walk tests them bar by bar, and when numexpr evaluates them to flags first
    signals, flags = [], []
    for rule in parsed:
        assert rule.pairwise is not None
        operands = rule.operands(columns, {})
        signals.append(fastpath.Signal.of_test(rule.pairwise[0], *operands, rule.lookback))
        flags.append(rule.evaluate(columns, {}))
    signals += [fastpath.Signal.never()] * (4 - len(signals))
    flags += [never] * (4 - len(flags))
    tested, tested_daily = fastpath.rule_metrics(setup, *signals)
    expected, expected_daily = fastpath.signal_metrics(setup, *flags)
    # Then the trades and every metric are the same, bit for bit
    assert expected["trades"] > 0
    assert tested == expected
    assert np.array_equal(tested_daily, expected_daily)


def test_only_crossovers_and_comparisons_of_two_arrays_are_pairwise() -> None:
    assert rules.parse("crossover(sma(close, 5), sma(close, 60))").pairwise == (
        "crossover",
        "sma(close, 5)",
        "sma(close, 60)",
    )
    assert rules.parse("close - open > sma(close, 3)").pairwise is None  # inline operand
    assert rules.parse("close > sma(close, 3)").pairwise == (">", "close", "sma(close, 3)")
    assert rules.parse("close > 5").pairwise is None
    assert rules.parse("(close > open) & (open > low)").pairwise is None
    assert rules.parse("1 < 2").pairwise is None
