"""The compiled trade loop: its input layouts, beside simulate's truth tables."""

from __future__ import annotations

import numpy as np

from engine import tradeloop
from engine.simulate import Params, Signals, simulate


def test_strided_and_writable_inputs_give_the_same_trades_as_contiguous_read_only_ones() -> None:
    rng = np.random.default_rng(3)
    size = 4000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, size)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    table = np.column_stack([open_, high, low, close])  # columns of this are strided views
    entries, exits = rng.random(size) < 0.02, rng.random(size) < 0.01
    params = Params(1e4, 0.001, 0.0, 1.0, 0.01, 0.02, 0.005)
    frozen = [np.ascontiguousarray(column) for column in table.T]
    for column in frozen:
        column.flags.writeable = False
    strided = simulate(*table.T, Signals(entries, exits, exits, entries), params)
    contiguous = simulate(*frozen, Signals(entries, exits, exits, entries), params)
    assert strided.count > 50
    for name in ("side", "entry_bar", "exit_bar", "entry_price", "exit_price", "reason"):
        np.testing.assert_array_equal(getattr(strided, name), getattr(contiguous, name))


def test_rows_bound_covers_a_trade_per_entry_bar() -> None:
    entries = np.ones(10, dtype=bool)
    assert tradeloop.entries_upper_bound(entries, ~entries) == 9


def test_stretches_between_progress_ticks_give_the_trades_of_one_pass() -> None:
    rng = np.random.default_rng(5)
    size = 50_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, size)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    entries = np.zeros(size, dtype=bool)
    entries[rng.choice(size // 2, 400, replace=False) + size // 4] = True  # none early on
    exits = rng.random(size) < 0.002
    params = Params(1e4, 0.001, 0.0005, 1.0, 0.01, 0.02, 0.004)
    signals = Signals(entries, exits, exits & ~entries, None)
    ticks: list[float] = []
    ticked = simulate(open_, high, low, close, signals, params, on_tick=ticks.append)
    whole = simulate(open_, high, low, close, signals, params)
    assert len(ticks) >= 4 and whole.count > 100
    for name in ("side", "entry_bar", "exit_bar", "entry_price", "exit_price", "reason"):
        np.testing.assert_array_equal(getattr(ticked, name), getattr(whole, name))
