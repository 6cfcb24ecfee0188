"""Simulation truth tables: hand-written bars and signals with the trades they must produce."""

from __future__ import annotations

import numpy as np
import pytest

from engine.simulate import REASONS, Params, Signals, Simulation, simulate
from tests.unit.engine.bartables import bars, flags


def run(
    table: str,
    *,
    long_entry: str | None = None,
    long_exit: str | None = None,
    short_entry: str | None = None,
    short_exit: str | None = None,
    vectorised: bool = True,
    **params: float | None,
) -> Simulation:
    frame = bars(table)
    signals = Signals(
        *(
            None if text is None else flags(text)
            for text in (long_entry, long_exit, short_entry, short_exit)
        )
    )
    settings = {"initial_capital": 1000.0, "fee_rate": 0.0, "slippage": 0.0, "position_size": 1.0}
    settings.update(params)  # type: ignore[arg-type]
    open_, high, low, close = (frame[name].to_numpy() for name in ("open", "high", "low", "close"))
    return simulate(
        open_,
        high,
        low,
        close,
        signals,
        Params(**settings),
        vectorised=vectorised,
    )


def rows(simulation: Simulation) -> list[tuple[str, int, int, float, float, str]]:
    return [
        ("long" if side > 0 else "short", entry, exit_, round(p, 9), round(x, 9), REASONS[r])
        for side, entry, exit_, p, x, r in zip(
            simulation.side.tolist(),
            simulation.entry_bar.tolist(),
            simulation.exit_bar.tolist(),
            simulation.entry_price.tolist(),
            simulation.exit_price.tolist(),
            simulation.reason.tolist(),
            strict=True,
        )
    ]


RISING = """
10 10 10 10
11 12 10 11
12 13 11 12
13 14 12 13
14 15 13 14
"""


@pytest.mark.parametrize("vectorised", [True, False])
def test_signals_fill_at_the_next_open(vectorised: bool) -> None:
    result = run(RISING, long_entry=".x...", long_exit="...x.", vectorised=vectorised)
    assert rows(result) == [("long", 2, 4, 12.0, 14.0, "signal")]
    units = 1000 / 12
    assert result.quantity.tolist() == pytest.approx([units])
    assert result.pnl.tolist() == pytest.approx([units * 2])
    assert result.equity.tolist() == pytest.approx([1000, 1000, 1000, units * 13, units * 14])


def test_fees_are_taken_on_both_fills_and_size_the_position() -> None:
    result = run(RISING, long_entry=".x...", long_exit="...x.", fee_rate=0.01)
    units = 1000 / (12 * 1.01)
    assert result.quantity[0] == pytest.approx(units)
    assert result.fees[0] == pytest.approx(0.01 * units * (12 + 14))
    assert result.equity[-1] == pytest.approx(units * 14 * 0.99)
    assert result.return_pct[0] == pytest.approx(result.pnl[0] / (units * 12))


def test_slippage_moves_buys_up_and_sells_down() -> None:
    result = run(RISING, long_entry=".x...", long_exit="...x.", slippage=0.01, fee_rate=0.001)
    assert rows(result) == [("long", 2, 4, 12.12, 13.86, "signal")]
    units = 1000 / (12.12 * 1.001)
    assert result.equity[-1] == pytest.approx(units * 13.86 * 0.999)


def test_position_size_invests_a_share_of_cash() -> None:
    result = run(RISING, long_entry=".x...", long_exit="...x.", position_size=0.5)
    assert result.quantity[0] == pytest.approx(500 / 12)
    assert result.equity[3] == pytest.approx(500 + 500 / 12 * 13)
    assert result.equity[-1] == pytest.approx(500 + 500 / 12 * 14)


@pytest.mark.parametrize("vectorised", [True, False])
def test_an_opposite_entry_reverses_at_the_same_open(vectorised: bool) -> None:
    result = run(
        RISING,
        long_entry="x....",
        short_entry="..x..",
        fee_rate=0.001,
        slippage=0.002,
        vectorised=vectorised,
    )
    assert rows(result) == [
        ("long", 1, 3, 11 * 1.002, 13 * 0.998, "reverse"),
        ("short", 3, 4, 13 * 0.998, 14 * 1.002, "end"),
    ]
    cash = 1000 * (13 * 0.998 * 0.999) / (11 * 1.002 * 1.001)
    units = cash / (13 * 0.998 * 1.001)
    assert result.quantity[1] == pytest.approx(units)
    final = cash + units * 13 * 0.998 * 0.999 - units * 14 * 1.002 * 1.001
    assert result.equity[-1] == pytest.approx(final)


def test_short_sale_proceeds_are_credited_and_equity_marks_to_close() -> None:
    result = run(RISING, short_entry="x....", short_exit="..x..")
    units = 1000 / 11
    assert rows(result) == [("short", 1, 3, 11.0, 13.0, "signal")]
    assert result.equity.tolist() == pytest.approx(
        [1000, 1000, 1000 + units * (11 - 12), 1000 - units * 2, 1000 - units * 2]
    )


@pytest.mark.parametrize("vectorised", [True, False])
def test_an_open_position_closes_at_the_last_close(vectorised: bool) -> None:
    result = run(RISING, long_entry="x....", slippage=0.01, vectorised=vectorised)
    assert rows(result) == [("long", 1, 4, 11.11, 13.86, "end")]


def test_entry_signals_while_in_a_position_are_ignored() -> None:
    result = run(RISING, long_entry="xxxx.", long_exit="....x")
    assert rows(result) == [("long", 1, 4, 11.0, 14.0, "end")]


def test_a_signal_on_the_last_bar_is_ignored() -> None:
    assert run(RISING, long_entry="....x").count == 0
    assert rows(run(RISING, long_entry="x....", long_exit="....x")) == [
        ("long", 1, 4, 11.0, 14.0, "end")
    ]


@pytest.mark.parametrize("vectorised", [True, False])
def test_entry_and_exit_on_the_same_bar_is_an_exit(vectorised: bool) -> None:
    result = run(RISING, long_entry="x.x..", long_exit="..x..", vectorised=vectorised)
    assert rows(result) == [("long", 1, 3, 11.0, 13.0, "signal")]
    assert run(RISING, long_entry="x....", long_exit="x....", vectorised=vectorised).count == 0


def test_long_and_short_entries_on_the_same_bar_open_nothing() -> None:
    assert run(RISING, long_entry="x....", short_entry="x....").count == 0


def test_no_signals_no_trades() -> None:
    result = run(RISING, long_entry=".....")
    assert result.count == 0 and result.equity.tolist() == [1000.0] * 5


STOPS = """
100 100 100 100
100 102  99 101
{bar2}
100 101  99 100
"""


@pytest.mark.parametrize(
    ("bar2", "expected"),
    [
        ("101 103 94 96", (2, 95.0, "stop_loss")),
        ("101 111 99 105", (2, 110.0, "take_profit")),
        ("101 111 94 100", (2, 95.0, "stop_loss")),  # both in one bar: the stop first
        ("90 92 89 91", (2, 90.0, "stop_loss")),  # opens through the stop: fill at the open
        ("115 116 100 112", (2, 115.0, "take_profit")),  # opens through the target
        ("101 103 99 102", (3, 100.0, "end")),
    ],
)
@pytest.mark.parametrize("vectorised", [True, False])
def test_stop_loss_and_take_profit(
    bar2: str, expected: tuple[int, float, str], vectorised: bool
) -> None:
    result = run(
        STOPS.format(bar2=bar2),
        long_entry="x...",
        stop_loss=0.05,
        take_profit=0.1,
        vectorised=vectorised,
    )
    bar, price, reason = expected
    assert rows(result) == [("long", 1, bar, 100.0, price, reason)]


def test_a_stop_is_active_on_the_entry_bar() -> None:
    result = run("100 100 100 100\n100 101 94 99\n99 99 99 99", long_entry="x..", stop_loss=0.05)
    assert rows(result) == [("long", 1, 1, 100.0, 95.0, "stop_loss")]
    assert result.equity.tolist() == pytest.approx([1000, 950, 950])


def test_a_pending_signal_exit_fills_at_the_open_and_skips_the_stop() -> None:
    result = run(
        STOPS.format(bar2="100 103 80 96"), long_entry="x...", long_exit=".x..", stop_loss=0.05
    )
    assert rows(result) == [("long", 1, 2, 100.0, 100.0, "signal")]


def test_stops_are_relative_to_the_fill_price_with_slippage() -> None:
    result = run(
        STOPS.format(bar2="101 103 94 96"), long_entry="x...", stop_loss=0.05, slippage=0.01
    )
    stop = 101 * 0.95
    assert rows(result) == [("long", 1, 2, 101.0, round(stop * 0.99, 9), "stop_loss")]


def test_an_entry_signal_on_the_stop_bar_fills_at_the_next_open() -> None:
    result = run(STOPS.format(bar2="101 103 94 96"), long_entry="x.x.", stop_loss=0.05)
    assert rows(result) == [
        ("long", 1, 2, 100.0, 95.0, "stop_loss"),
        ("long", 3, 3, 100.0, 100.0, "end"),
    ]


def test_a_stop_exit_then_the_opposite_entry_of_the_same_bar() -> None:
    result = run(
        STOPS.format(bar2="101 103 94 96"), long_entry="x...", short_entry="..x.", stop_loss=0.05
    )
    assert [row[-1] for row in rows(result)] == ["stop_loss", "end"]
    assert result.side.tolist() == [1, -1]


TRAIL = """
100 100 100 100
100 105  99 104
104 120  96 118
115 116 107 110
110 111 109 110
"""


def test_trailing_stop_follows_the_highest_high_before_the_bar() -> None:
    # bar 2: level 0.9 * max(100, 105) = 94.5 (low 96 holds); bar 3: 0.9 * 120 = 108
    result = run(TRAIL, long_entry="x....", trailing_stop=0.1)
    assert rows(result) == [("long", 1, 3, 100.0, 108.0, "trailing_stop")]


def test_the_tighter_of_stop_loss_and_trailing_stop_names_the_exit() -> None:
    result = run(TRAIL, long_entry="x....", trailing_stop=0.1, stop_loss=0.05)
    assert rows(result) == [("long", 1, 3, 100.0, 108.0, "trailing_stop")]
    result = run(TRAIL, long_entry="x....", trailing_stop=0.5, stop_loss=0.05, take_profit=0.19)
    assert rows(result) == [("long", 1, 2, 100.0, 119.0, "take_profit")]


def test_trailing_stop_gap_fills_at_the_open() -> None:
    table = TRAIL.replace("115 116 107 110", "105 106 104 105")
    result = run(table, long_entry="x....", trailing_stop=0.1)
    assert rows(result) == [("long", 1, 3, 100.0, 105.0, "trailing_stop")]


SHORT = """
100 100 100 100
100 101  99 100
{bar2}
100 101  99 100
"""


@pytest.mark.parametrize(
    ("bar2", "expected"),
    [
        ("99 106 98 104", (2, 105.0, "stop_loss")),
        ("99 100 89 91", (2, 90.0, "take_profit")),
        ("107 108 106 107", (2, 107.0, "stop_loss")),
        ("85 86 84 85", (2, 85.0, "take_profit")),
    ],
)
@pytest.mark.parametrize("vectorised", [True, False])
def test_short_stops_are_mirrored(
    bar2: str, expected: tuple[int, float, str], vectorised: bool
) -> None:
    result = run(
        SHORT.format(bar2=bar2),
        short_entry="x...",
        stop_loss=0.05,
        take_profit=0.1,
        vectorised=vectorised,
    )
    bar, price, reason = expected
    assert rows(result) == [("short", 1, bar, 100.0, price, reason)]


def test_short_trailing_stop_follows_the_lowest_low() -> None:
    table = """
100 100 100 100
100 101  95 96
96   97  80 82
85   93  84 90
90   91  89 90
"""
    # bar 2: 1.1 * 95 = 104.5; bar 3: 1.1 * 80 = 88 -> opens at 85, high 93 >= 88
    result = run(table, short_entry="x....", trailing_stop=0.1)
    assert rows(result) == [("short", 1, 3, 100.0, 88.0, "trailing_stop")]


def test_a_losing_short_that_wipes_out_cash_ends_trading() -> None:
    table = """
10 10 10 10
10 10 10 10
30 30 30 30
30 30 30 30
30 30 30 30
"""
    result = run(table, short_entry="x.x..", short_exit=".x...")
    assert result.count == 1 and result.pnl[0] == pytest.approx(-2000)
    assert result.equity[-1] == pytest.approx(-1000)


def test_relative_precision_holds_with_tiny_equity() -> None:
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    table = "\n".join(f"{c} {c * 1.01} {c * 0.99} {c}" for c in closes)
    entries = "".join("x" if i % 2 == 0 else "." for i in range(400))
    exits = "".join("." if i % 2 == 0 else "x" for i in range(400))
    big = run(table, long_entry=entries, long_exit=exits, fee_rate=0.05)
    tiny = run(table, long_entry=entries, long_exit=exits, fee_rate=0.05, initial_capital=1e-200)
    assert big.equity[-1] < 1e-2
    np.testing.assert_allclose(tiny.equity * 1e203, big.equity, rtol=1e-12)


def reference(
    table: np.ndarray, signals: list[np.ndarray], params: Params
) -> tuple[list[tuple[int, int, int, float, float, str]], list[float]]:
    """A bar-by-bar simulator written straight from API.md's Semantics, with plain cash."""
    o, h, low, c = table.T
    size = len(c)
    le_raw, lx, se_raw, sx = signals
    le, se = le_raw & ~lx, se_raw & ~sx
    both = le & se
    le, se = le & ~both, se & ~both
    cash, pos, units, entry_price, entry_bar, ref = params.initial_capital, 0, 0.0, 0.0, 0, 0.0
    fee, slip = params.fee_rate, params.slippage
    trades: list[tuple[int, int, int, float, float, str]] = []
    equity: list[float] = []

    def enter(side: int, bar: int) -> None:
        nonlocal cash, pos, units, entry_price, entry_bar, ref
        price = o[bar] * (1 + slip * side)
        units = cash * params.position_size / (price * (1 + fee))
        cash -= side * units * price + fee * units * price
        pos, entry_price, entry_bar, ref = side, price, bar, price

    def leave(bar: int, level: float, reason: str) -> None:
        nonlocal cash, pos
        price = level * (1 - slip * pos)
        cash += pos * units * price - fee * units * price
        trades.append((pos, entry_bar, bar, entry_price, price, reason))
        pos = 0

    for j in range(size):
        signal_exit = False
        if j > 0:
            i = j - 1
            if pos == 0 and cash > 0:
                if le[i]:
                    enter(1, j)
                elif se[i]:
                    enter(-1, j)
            elif (pos == 1 and se[i]) or (pos == -1 and le[i]):
                side = -pos
                leave(j, o[j], "reverse")
                if cash > 0:
                    enter(side, j)
            elif (pos == 1 and lx[i]) or (pos == -1 and sx[i]):
                leave(j, o[j], "signal")
                signal_exit = True
        if pos != 0 and not signal_exit:
            s, p = pos, entry_price
            stop = p * (1 - s * params.stop_loss) if params.stop_loss else None
            target = p * (1 + s * params.take_profit) if params.take_profit else None
            reason = "stop_loss"
            if params.trailing_stop:
                trail = ref * (1 - s * params.trailing_stop)
                if stop is None or s * trail > s * stop:
                    stop, reason = trail, "trailing_stop"
            against = low[j] if s > 0 else h[j]
            favour = h[j] if s > 0 else low[j]
            if stop is not None and s * o[j] <= s * stop:
                leave(j, o[j], reason)
            elif target is not None and s * o[j] >= s * target:
                leave(j, o[j], "take_profit")
            elif stop is not None and s * against <= s * stop:
                leave(j, stop, reason)
            elif target is not None and s * favour >= s * target:
                leave(j, target, "take_profit")
            else:
                ref = max(ref, h[j]) if s > 0 else min(ref, low[j])
        if pos != 0 and j == size - 1:
            leave(j, c[j], "end")
        equity.append(cash + pos * units * c[j])
    return trades, equity


@pytest.mark.parametrize("seed", range(12))
def test_simulate_agrees_with_a_bar_by_bar_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        size = int(rng.integers(2, 70))
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, size)))
        open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.01, size))
        high = np.maximum(open_, close) * (1 + rng.random(size) * 0.03)
        low = np.minimum(open_, close) * (1 - rng.random(size) * 0.03)
        table = np.column_stack([open_, high, low, close])
        rates = rng.random(4) * 0.4
        signals = [rng.random(size) < rate for rate in rates]
        if rng.random() < 0.3:
            signals[2] = signals[3] = np.zeros(size, dtype=bool)

        def maybe(low_: float, high_: float) -> float | None:
            return float(rng.uniform(low_, high_)) if rng.random() < 0.5 else None

        params = Params(
            float(rng.choice([1000.0, 1e-9])),
            float(rng.choice([0.0, 0.001, 0.02])),
            float(rng.choice([0.0, 0.003])),
            float(rng.choice([1.0, 0.3])),
            maybe(0.01, 0.06),
            maybe(0.01, 0.08),
            maybe(0.01, 0.06),
        )
        expected_trades, expected_equity = reference(table, signals, params)
        for vectorised in (True, False):
            result = simulate(
                open_, high, low, close, Signals(*signals), params, vectorised=vectorised
            )
            assert [row[:3] + row[5:] for row in rows(result)] == [
                (("long" if t[0] > 0 else "short"), t[1], t[2], t[5]) for t in expected_trades
            ]
            np.testing.assert_allclose(
                result.entry_price, [t[3] for t in expected_trades], rtol=1e-12
            )
            np.testing.assert_allclose(
                result.exit_price, [t[4] for t in expected_trades], rtol=1e-12
            )
            np.testing.assert_allclose(
                result.equity, expected_equity, rtol=1e-9, atol=1e-9 * params.initial_capital
            )


def test_progress_ticks_during_a_long_trade_loop() -> None:
    size = 20_000
    close = 100 + np.sin(np.arange(size) / 3)
    ticks: list[float] = []
    entries = np.arange(size) % 2 == 0
    simulate(
        close,
        close + 1,
        close - 1,
        close,
        Signals(entries, ~entries),
        Params(1e3, 0, 0, 1, 0.5),
        on_tick=ticks.append,
    )
    assert ticks and ticks == sorted(ticks) and 0 < ticks[-1] < 1
