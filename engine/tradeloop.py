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

import numba
import numpy as np
from numpy.typing import NDArray

from engine import jit

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]
Ints = NDArray[np.int64]

# Indices into simulate.REASONS (kept equal by a test: this module must not import simulate).
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, REVERSE, END = range(6)

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
    """Trades from the entry signal state[0] (side state[1]) on, appending at row state[2],
    until a trade would start from a signal at or after bar `until`. Updates state in place
    (state[0] == len(close) once no trade is left) and returns the number of rows.

    stop_loss / take_profit of 0 mean none; trailing_stop NaN means none (0 is a stop at the
    best price so far). long_entry and short_entry are the cleaned entries (no conflicts, no
    entry on its own side's exit bar); long_exit and short_exit the raw exit rules.
    """
    size = close.shape[0]
    signal_bars = size - 1
    signal, side, count = state[0], state[1], state[2]
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
        signal = resume
        while signal < signal_bars and not (long_entry[signal] or short_entry[signal]):
            signal += 1
        if signal < signal_bars:
            side = 1 if long_entry[signal] else -1
        else:
            signal = size
    if signal >= signal_bars:
        signal = size
    state[0], state[1], state[2] = signal, side, count
    return int(count)


def entries_upper_bound(long_entry: np.ndarray, short_entry: np.ndarray) -> int:
    """Rows enough for every trade: each starts from a distinct entry signal bar."""
    return int(np.count_nonzero(long_entry[:-1])) + int(np.count_nonzero(short_entry[:-1]))
