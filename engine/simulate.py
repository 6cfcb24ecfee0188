"""Order simulation: next-open fills, fees, slippage, stops and reversals -> trades and equity.

The semantics are API.md's "Semantics" section. Where it is silent:

- A bar whose entry and exit rule for the same side are both true is an exit, not an entry, and
  a bar where both sides' entries are true opens nothing (the rules disagree).
- Signals on the last bar are ignored: there is no next open to fill them.
- A trailing stop ratchets from the entry fill price: its reference is the highest of the entry
  fill price and the highs of the bars since entry before the current one (mirrored for shorts).
- When a protective stop and the trailing stop are both set, the tighter level applies; the
  exit reason says which one it was (stop_loss on a tie).
- Cash is compounded multiplicatively per trade (cash_after = cash_before * growth), so relative
  precision holds however small equity gets. A trade that leaves cash <= 0 ends trading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "reverse", "end")
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, REVERSE, END = range(len(REASONS))

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Params:
    initial_capital: float
    fee_rate: float
    slippage: float
    position_size: float
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None

    @property
    def has_stops(self) -> bool:
        return any(v is not None for v in (self.stop_loss, self.take_profit, self.trailing_stop))


@dataclass(frozen=True)
class Signals:
    """Rule values on each bar's close; None for a rule that is not given."""

    long_entry: Flags | None = None
    long_exit: Flags | None = None
    short_entry: Flags | None = None
    short_exit: Flags | None = None


@dataclass(frozen=True)
class Simulation:
    """Trades as columns (one row per trade, in time order) and the equity at each bar's close."""

    side: NDArray[np.int8]  # +1 long, -1 short
    entry_bar: Ints
    exit_bar: Ints  # the bar whose open, range or close (reason "end") filled the exit
    entry_price: Floats  # fill prices, slippage included
    exit_price: Floats
    reason: NDArray[np.int8]  # index into REASONS
    quantity: Floats
    pnl: Floats  # cash after minus cash before, both fees included
    return_pct: Floats  # pnl / (quantity * entry_price)
    fees: Floats
    equity: Floats

    @property
    def count(self) -> int:
        return len(self.side)


def simulate(
    open_: Floats,
    high: Floats,
    low: Floats,
    close: Floats,
    signals: Signals,
    params: Params,
    *,
    on_tick: Callable[[float], None] | None = None,
    vectorised: bool = True,
) -> Simulation:
    """Run the orders implied by the signals over the bars.

    Without stops the position at each bar follows from the signals alone and is computed with
    array operations; with stops, a compiled loop over the bars (engine/tradeloop.py) finds
    each exit. `vectorised=False` forces the loop (tests use it to check both agree). on_tick gets
    the fraction of bars covered so far.
    """
    size = len(close)
    none = np.zeros(size, dtype=bool)
    raw_le = none if signals.long_entry is None else signals.long_entry
    raw_lx = none if signals.long_exit is None else signals.long_exit
    raw_se = none if signals.short_entry is None else signals.short_entry
    raw_sx = none if signals.short_exit is None else signals.short_exit
    long_entry = raw_le & ~raw_lx
    short_entry = raw_se & ~raw_sx
    conflict = long_entry & short_entry
    long_entry &= ~conflict
    short_entry &= ~conflict
    if vectorised and not params.has_stops:
        side, entry, exit_, reason = _signal_trades(long_entry, short_entry, raw_lx, raw_sx)
        slip = params.slippage
        entry_price = open_[entry] * (1 + slip * side)
        exit_source = np.where(reason == END, close[exit_], open_[exit_])
        exit_price = exit_source * (1 - slip * side)
    else:
        # Imported here: numba's start-up is paid only by strategies that need the loop (the
        # worker's forkserver imports it ahead of any job).
        from engine import tradeloop

        side, entry, exit_, entry_price, exit_price, reason = tradeloop.trades(
            open_, high, low, close, long_entry, short_entry, raw_lx, raw_sx, params, on_tick
        )
    return _account(side, entry, exit_, entry_price, exit_price, reason, close, params)


def _signal_trades(
    long_entry: Flags, short_entry: Flags, long_exit: Flags, short_exit: Flags
) -> tuple[NDArray[np.int8], Ints, Ints, NDArray[np.int8]]:
    """Trades of a strategy without stops, computed over signal events rather than bars.

    Each entry signal at bar p (direction d) sets the position to d until the first exit signal
    of its side after p or the next entry signal, whichever comes first. Consecutive entries of
    the same side with no exit between extend one trade; an opposite one reverses it.
    """
    size = len(long_entry)
    signal_bars = size - 1
    at = np.flatnonzero((long_entry | short_entry)[:signal_bars])
    if len(at) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=np.int8), empty, empty, np.zeros(0, dtype=np.int8)
    side = np.where(long_entry[at], 1, -1).astype(np.int8)
    never = size  # beyond every signal bar
    first_exit = np.full(len(at), never, dtype=np.int64)
    for direction, exits in ((1, long_exit), (-1, short_exit)):
        mine = side == direction
        bars = np.flatnonzero(exits[:signal_bars])
        found = np.searchsorted(bars, at[mine], side="right")
        first_exit[mine] = np.append(bars, never)[found]
    following = np.append(at[1:], never)
    exits_first = first_exit < following  # flat again before the next entry signal
    turns = np.append(side[1:] != side[:-1], True)  # the next entry is opposite (or none)
    ends = exits_first | turns
    starts = np.concatenate(([True], ends[:-1]))
    entry = at[starts] + 1
    last = np.flatnonzero(ends)
    reason = np.where(exits_first[last], SIGNAL, REVERSE).astype(np.int8)
    exit_bar = np.where(exits_first[last], first_exit[last], following[last]) + 1
    if not exits_first[-1]:
        exit_bar[-1], reason[-1] = size - 1, END
    return side[starts], entry.astype(np.int64), exit_bar.astype(np.int64), reason


def _account(
    side: NDArray[np.int8],
    entry: Ints,
    exit_: Ints,
    entry_price: Floats,
    exit_price: Floats,
    reason: NDArray[np.int8],
    close: Floats,
    params: Params,
) -> Simulation:
    """Cash, quantities, fees and the equity curve of the trades."""
    fee, share = params.fee_rate, params.position_size
    cost = entry_price * (1 + fee)  # cash per unit bought (or owed per unit sold short)
    is_long = side > 0
    proceeds = np.where(is_long, exit_price * (1 - fee), entry_price * (1 - fee))
    outlay = np.where(is_long, cost, exit_price * (1 + fee))
    growth = 1 + share * (proceeds - outlay) / cost
    broke = np.flatnonzero(growth <= 0)
    if len(broke):
        keep = int(broke[0]) + 1
        side, entry, exit_, reason = side[:keep], entry[:keep], exit_[:keep], reason[:keep]
        entry_price, exit_price, cost, growth = (
            entry_price[:keep],
            exit_price[:keep],
            cost[:keep],
            growth[:keep],
        )
        is_long = is_long[:keep]
    capital = params.initial_capital
    cash_after: Floats = capital * np.cumprod(growth, dtype=np.float64)
    cash_before: Floats = np.concatenate(([capital], cash_after[:-1]))
    quantity = cash_before * share / cost
    pnl = cash_before * (growth - 1)
    fees = fee * quantity * (entry_price + exit_price)
    return_pct = (growth - 1) * (1 + fee) / share
    equity = _equity(is_long, entry, exit_, cost, cash_before, cash_after, close, params)
    return Simulation(
        side,
        entry,
        exit_,
        entry_price,
        exit_price,
        reason,
        quantity,
        pnl,
        return_pct,
        fees,
        equity,
    )


def _equity(
    is_long: Flags,
    entry: Ints,
    exit_: Ints,
    cost: Floats,
    cash_before: Floats,
    cash_after: Floats,
    close: Floats,
    params: Params,
) -> Floats:
    """Equity at each close = a + b * close, piecewise: flat stretches (b = 0) alternate with
    trades, each a stretch [entry, exit) with a and b fixed by its cash and entry cost."""
    size = len(close)
    fee, share = params.fee_rate, params.position_size
    count = len(entry)
    # long: cash * (1 - share) + units * close;
    # short: cash + units * entry * (1 - fee) - units * close (sale proceeds credited)
    units_per_cash = share / cost
    held_a = cash_before * np.where(is_long, 1 - share, 1 + share * (1 - fee) / (1 + fee))
    held_b = cash_before * np.where(is_long, units_per_cash, -units_per_cash)
    bounds = np.empty(2 * count + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, size
    bounds[1:-1:2] = entry
    bounds[2:-1:2] = exit_
    lengths = np.diff(bounds)
    a = np.empty(2 * count + 1)
    b = np.zeros(2 * count + 1)
    a[0] = params.initial_capital
    a[1::2] = held_a
    b[1::2] = held_b
    a[2::2] = cash_after
    # in place: two fresh arrays of len(close) instead of four (the same sums: + commutes)
    equity: Floats = np.repeat(b, lengths)
    equity *= close
    equity += np.repeat(a, lengths)
    return equity
