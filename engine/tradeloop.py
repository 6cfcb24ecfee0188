"""The trade loop of simulate() for stops and forced event order, compiled with numba.

A strategy with stops is path-dependent: where a trade exits fixes where the next can start,
and the stop levels depend on each fill price, so it cannot be one array expression. This
loop walks the bars once, trade after trade, with the exact arithmetic of API.md's Semantics
(the same operations in the same order as the former per-trade numpy scans, so results are
bit-identical). Compiled once per machine and cached on disk next to this file (or in the
user's cache when that is read-only); a process pays only the load of the cached code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np
from numpy.typing import NDArray

from engine import jit

# The reason codes are compiled in as constants, and numba's disk cache is checked against
# this file only: were their values ever changed in simulate.py, touch this file too.
from engine.simulate import (
    END,
    REVERSE,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    TRAILING_STOP,
    Flags,
    Floats,
    Ints,
    Params,
)

# How often the loop hands back to report progress and let a cancel in, in bars.
_TICK_BARS = 131_072

_PRICES = numba.types.Array(numba.float64, 1, "C", readonly=True)
_FLAGS = numba.types.Array(numba.boolean, 1, "C", readonly=True)
_SIGNATURE = numba.int64(
    *(_PRICES,) * 4,
    *(_FLAGS,) * 4,
    *(numba.float64,) * 4,
    numba.int64[::1],
    numba.int64,
    numba.int8[::1],
    numba.int64[::1],
    numba.int64[::1],
    numba.float64[::1],
    numba.float64[::1],
    numba.int8[::1],
)


def trades(
    open_: Floats,
    high: Floats,
    low: Floats,
    close: Floats,
    long_entry: Flags,
    short_entry: Flags,
    long_exit: Flags,
    short_exit: Flags,
    params: Params,
    on_tick: Callable[[float], None] | None = None,
) -> tuple[NDArray[np.int8], Ints, Ints, Floats, Floats, NDArray[np.int8]]:
    """Trades found one at a time: entry signal -> first of (stop hit, exit signal, end).

    long_entry and short_entry are the cleaned entries (no conflicts, no entry on its own
    side's exit bar); long_exit and short_exit the raw exit rules. Between stretches of
    _TICK_BARS bars on_tick gets the fraction of bars covered. Returns the trade columns
    (side, entry bar, exit bar, entry price, exit price, reason).
    """
    size = len(close)
    rows = entries_upper_bound(long_entry, short_entry)
    sides = np.empty(rows, dtype=np.int8)
    entry_bars = np.empty(rows, dtype=np.int64)
    exit_bars = np.empty(rows, dtype=np.int64)
    entry_prices = np.empty(rows, dtype=np.float64)
    exit_prices = np.empty(rows, dtype=np.float64)
    reasons = np.empty(rows, dtype=np.int8)
    state = np.zeros(3, dtype=np.int64)  # from bar 0, side not found yet, no rows
    prices = [jit.read_only(a) for a in (open_, high, low, close)]
    flags = [jit.read_only(a) for a in (long_entry, short_entry, long_exit, short_exit)]
    # run_trades reads an unset level as 0 (stop loss, take profit) or NaN (trailing stop:
    # 0 is a stop at the best price so far)
    stop_loss, take_profit = params.stop_loss or 0.0, params.take_profit or 0.0
    trailing = math.nan if params.trailing_stop is None else params.trailing_stop
    stretch = size if on_tick is None else max(1, min(_TICK_BARS, size // 8))
    count = 0
    while state[0] < size:
        until = min(size, int(state[0]) + stretch)
        count = run_trades(
            prices[0], prices[1], prices[2], prices[3], flags[0], flags[1], flags[2], flags[3],
            params.slippage, stop_loss, take_profit, trailing, state, until,
            sides, entry_bars, exit_bars, entry_prices, exit_prices, reasons,
        )  # fmt: skip
        if on_tick is not None and state[0] < size:
            on_tick(int(state[0]) / size)
    # copies: views would keep the rows for every entry signal alive (a sweep holds many)
    return (
        sides[:count].copy(),
        entry_bars[:count].copy(),
        exit_bars[:count].copy(),
        entry_prices[:count].copy(),
        exit_prices[:count].copy(),
        reasons[:count].copy(),
    )


@numba.njit(inline="always")
def _next_entry(
    long_entry: Flags, short_entry: Flags, bar: int, size: int
) -> tuple[int, int]:  # pragma: no cover - compiled; tested through trades
    """The first bar from `bar` on with an entry signal that can fill (not the last bar) and
    its side, or (size, 0) when there is none."""
    signal_bars = size - 1
    while bar < signal_bars and not (long_entry[bar] or short_entry[bar]):
        bar += 1
    if bar < signal_bars:
        return bar, 1 if long_entry[bar] else -1
    return size, 0


@jit.compiled(_SIGNATURE)
def run_trades(
    open_: Floats,
    high: Floats,
    low: Floats,
    close: Floats,
    long_entry: Flags,
    short_entry: Flags,
    long_exit: Flags,
    short_exit: Flags,
    slippage: float,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    state: Ints,
    until: int,
    sides: NDArray[np.int8],
    entry_bars: Ints,
    exit_bars: Ints,
    entry_prices: Floats,
    exit_prices: Floats,
    reasons: NDArray[np.int8],
) -> int:
    """The loop of trades(): from the entry signal state[0] (side state[1], or 0 to look for
    the first entry from state[0] on), appending at row state[2], until a trade would start
    from a signal at or after bar `until`. Updates state in place (state[0] == len(close) once
    no trade is left) and returns the number of rows.
    """
    size = close.shape[0]
    signal_bars = size - 1
    signal, side, count = state[0], state[1], state[2]
    if side == 0:
        signal, side = _next_entry(long_entry, short_entry, signal, size)
    trailing = not math.isnan(trailing_stop)
    scanning = stop_loss != 0.0 or take_profit != 0.0 or trailing
    while signal < signal_bars and signal < until:
        entry = signal + 1
        price = open_[entry] * (1.0 + slippage * side)
        sign = float(side)
        stop = sign * price * (1.0 - sign * stop_loss) if stop_loss != 0.0 else -math.inf
        target = sign * price * (1.0 + sign * take_profit) if take_profit != 0.0 else math.inf
        factor = 1.0 - sign * trailing_stop
        reference = sign * price  # best price since entry, before the bar scanned
        bar = entry
        hit = False
        level = stop
        end_signal = -1
        # One pass over the trade's bars: a stop is checked on a bar before that bar's exit
        # signal can fill (at the next open).
        while bar < size:
            if side > 0:
                favour, against = high[bar], low[bar]
            else:
                favour, against = -low[bar], -high[bar]
            if scanning:
                level = max(stop, factor * reference) if trailing else stop
                if against <= level or favour >= target:
                    hit = True
                    break
                if trailing:
                    reference = max(reference, favour)
            if bar < signal_bars:
                if side > 0:
                    ends = short_entry[bar] or long_exit[bar]
                else:
                    ends = long_entry[bar] or short_exit[bar]
                if ends:
                    end_signal = bar
                    break
            bar += 1
        sides[count] = side
        entry_bars[count] = entry
        entry_prices[count] = price
        if hit:
            opened = open_[bar] if side > 0 else -open_[bar]
            stop_reason = TRAILING_STOP if level > stop else STOP_LOSS
            if opened <= level:
                fill, reason = sign * opened, stop_reason
            elif opened >= target:
                fill, reason = sign * opened, TAKE_PROFIT
            elif against <= level:
                fill, reason = sign * level, stop_reason
            else:
                fill, reason = sign * target, TAKE_PROFIT
            exit_bars[count] = bar
            exit_prices[count] = fill * (1.0 - slippage * side)
            reasons[count] = reason
            resume = bar
        elif end_signal >= 0:
            resume = end_signal + 1
            reverse = short_entry[end_signal] if side > 0 else long_entry[end_signal]
            exit_bars[count] = resume
            exit_prices[count] = open_[resume] * (1.0 - slippage * side)
            reasons[count] = REVERSE if reverse else SIGNAL
            if reverse:
                count += 1
                signal, side = end_signal, -side
                continue
        else:
            exit_bars[count] = size - 1
            exit_prices[count] = close[size - 1] * (1.0 - slippage * side)
            reasons[count] = END
            count += 1
            signal = size
            break
        count += 1
        signal, side = _next_entry(long_entry, short_entry, resume, size)
    if signal >= signal_bars:
        signal = size
    state[0], state[1], state[2] = signal, side, count
    return int(count)


def entries_upper_bound(long_entry: np.ndarray, short_entry: np.ndarray) -> int:
    """Rows enough for every trade: each starts from a distinct entry signal bar."""
    return int(np.count_nonzero(long_entry[:-1])) + int(np.count_nonzero(short_entry[:-1]))
