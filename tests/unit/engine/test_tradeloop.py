"""The compiled trade loop: its input layouts, beside simulate's truth tables."""

from __future__ import annotations

import numpy as np

from engine import tradeloop
from engine.simulate import Floats, Params, Signals, Simulation, simulate

TRADE_COLUMNS = ("side", "entry_bar", "exit_bar", "entry_price", "exit_price", "reason")


def random_walk(rng: np.random.Generator, size: int, step: float, wick: float) -> Floats:
    """Bars as a (size, 4) table: open, high, low, close."""
    close = 100 * np.exp(np.cumsum(rng.normal(0, step, size)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    return np.column_stack([open_, high, low, close])


def assert_same_trades(got: Simulation, expected: Simulation) -> None:
    for name in TRADE_COLUMNS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_strided_and_writable_inputs_give_the_same_trades_as_contiguous_read_only_ones() -> None:
    rng = np.random.default_rng(3)
    size = 4000
    table = random_walk(rng, size, 0.004, 0.002)  # columns of this are strided views
    entries, exits = rng.random(size) < 0.02, rng.random(size) < 0.01
    params = Params(1e4, 0.001, 0.0, 1.0, 0.01, 0.02, 0.005)
    frozen = [np.ascontiguousarray(column) for column in table.T]
    for column in frozen:
        column.flags.writeable = False
    strided = simulate(*table.T, Signals(entries, exits, exits, entries), params)
    contiguous = simulate(*frozen, Signals(entries, exits, exits, entries), params)
    assert strided.count > 50
    assert_same_trades(strided, contiguous)


def test_rows_bound_covers_a_trade_per_entry_bar() -> None:
    entries = np.ones(10, dtype=bool)
    assert tradeloop.entries_upper_bound(entries, ~entries) == 9


def test_stretches_between_progress_ticks_give_the_trades_of_one_pass() -> None:
    rng = np.random.default_rng(5)
    size = 50_000
    table = random_walk(rng, size, 0.003, 0.001)
    entries = np.zeros(size, dtype=bool)
    entries[rng.choice(size // 2, 400, replace=False) + size // 4] = True  # none early on
    exits = rng.random(size) < 0.002
    params = Params(1e4, 0.001, 0.0005, 1.0, 0.01, 0.02, 0.004)
    signals = Signals(entries, exits, exits & ~entries, None)
    ticks: list[float] = []
    ticked = simulate(*table.T, signals, params, on_tick=ticks.append)
    whole = simulate(*table.T, signals, params)
    assert len(ticks) >= 4 and whole.count > 100
    assert_same_trades(ticked, whole)
