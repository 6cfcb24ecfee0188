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

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "reverse", "end")
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, REVERSE, END = range(len(REASONS))

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]
Ints = NDArray[np.int64]

# How often the trade loop reports progress and checks for a cancel, in trades.
_TICK_EVERY = 2048
# Bars a stop scan looks at first; each further window is 4 times longer.
_FIRST_WINDOW = 64


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
    array operations; with stops, a loop over trades (not bars) finds each exit with vectorised
    scans. `vectorised=False` forces the loop (tests use it to check both agree). on_tick gets
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
        side, entry, exit_, entry_price, exit_price, reason = _event_trades(
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


def _event_trades(
    open_: Floats,
    high: Floats,
    low: Floats,
    close: Floats,
    long_entry: Flags,
    short_entry: Flags,
    long_exit: Flags,
    short_exit: Flags,
    params: Params,
    on_tick: Callable[[float], None] | None,
) -> tuple[NDArray[np.int8], Ints, Ints, Floats, Floats, NDArray[np.int8]]:
    """Trades found one at a time: entry signal -> first of (stop hit, exit signal, end)."""
    size = len(close)
    signal_bars = size - 1
    entries: list[int] = np.flatnonzero((long_entry | short_entry)[:signal_bars]).tolist()
    ends = {
        1: np.flatnonzero((short_entry | long_exit)[:signal_bars]).tolist(),
        -1: np.flatnonzero((long_entry | short_exit)[:signal_bars]).tolist(),
    }
    scanner = _StopScanner(open_, high, low, params) if params.has_stops else None
    slip = params.slippage
    sides: list[int] = []
    entry_bars: list[int] = []
    exit_bars: list[int] = []
    entry_prices: list[float] = []
    exit_prices: list[float] = []
    reasons: list[int] = []
    signal = entries[0] if entries else size
    side = 1 if entries and long_entry[signal] else -1
    while signal < signal_bars:
        if on_tick is not None and len(sides) % _TICK_EVERY == _TICK_EVERY - 1:
            on_tick(signal / size)
        entry = signal + 1
        price = float(open_[entry]) * (1 + slip * side)
        side_ends = ends[side]
        found = bisect_left(side_ends, entry)
        end_signal = side_ends[found] if found < len(side_ends) else -1
        limit = end_signal if end_signal >= 0 else size - 1
        hit = scanner.first_hit(side, price, entry, limit) if scanner is not None else None
        sides.append(side)
        entry_bars.append(entry)
        entry_prices.append(price)
        if hit is not None:
            resume, level, reason = hit
            exit_bars.append(resume)
            exit_prices.append(level * (1 - slip * side))
            reasons.append(reason)
        elif end_signal >= 0:
            resume = end_signal + 1
            reverse = bool(short_entry[end_signal] if side > 0 else long_entry[end_signal])
            exit_bars.append(resume)
            exit_prices.append(float(open_[resume]) * (1 - slip * side))
            reasons.append(REVERSE if reverse else SIGNAL)
            if reverse:
                signal, side = end_signal, -side
                continue
        else:
            exit_bars.append(size - 1)
            exit_prices.append(float(close[-1]) * (1 - slip * side))
            reasons.append(END)
            break
        following = bisect_left(entries, resume)
        signal = entries[following] if following < len(entries) else size
        side = 1 if signal < size and long_entry[signal] else -1
    return (
        np.array(sides, dtype=np.int8),
        np.array(entry_bars, dtype=np.int64),
        np.array(exit_bars, dtype=np.int64),
        np.array(entry_prices, dtype=np.float64),
        np.array(exit_prices, dtype=np.float64),
        np.array(reasons, dtype=np.int8),
    )


class _StopScanner:
    """Finds the first bar at which a position's stop, target or trailing stop fills.

    Shorts are scanned as longs on negated prices (high and low swap), so one code path
    serves both sides.
    """

    def __init__(self, open_: Floats, high: Floats, low: Floats, params: Params) -> None:
        self.params = params
        self.sides: dict[int, tuple[Floats, Floats, Floats]] = {1: (open_, high, low)}
        self.source = (open_, high, low)

    def prices(self, side: int) -> tuple[Floats, Floats, Floats]:
        if side not in self.sides:
            open_, high, low = self.source
            self.sides[side] = (-open_, -low, -high)
        return self.sides[side]

    def first_hit(
        self, side: int, entry_price: float, first: int, last: int
    ) -> tuple[int, float, int] | None:
        """(bar, fill level before slippage, reason) of the first stop exit in bars
        first..last, or None. Prices are negated for shorts, so "below" means "against"."""
        p = self.params
        open_, high, low = self.prices(side)
        sign = float(side)
        stop = sign * entry_price * (1 - sign * p.stop_loss) if p.stop_loss else -np.inf
        target = sign * entry_price * (1 + sign * p.take_profit) if p.take_profit else np.inf
        if p.trailing_stop is not None:
            factor = 1 - sign * p.trailing_stop
            found = self._trailing(high, low, sign * entry_price, stop, target, factor, first, last)
        else:
            found = self._fixed(high, low, stop, target, first, last)
        if found is None:
            return None
        bar, level = found
        stop_reason = TRAILING_STOP if level > stop else STOP_LOSS
        opened = float(open_[bar])
        if opened <= level:
            return bar, sign * opened, stop_reason
        if opened >= target:
            return bar, sign * opened, TAKE_PROFIT
        if float(low[bar]) <= level:
            return bar, sign * level, stop_reason
        return bar, sign * target, TAKE_PROFIT

    @staticmethod
    def _fixed(
        high: Floats, low: Floats, stop: float, target: float, first: int, last: int
    ) -> tuple[int, float] | None:
        """First bar in first..last with low <= stop or high >= target, and the stop level."""
        start, width = first, _FIRST_WINDOW
        while start <= last:
            end = min(last + 1, start + width)
            # numpy's per-call cost dominates short windows: skip a test whose level is unset
            if target == np.inf:
                hit = low[start:end] <= stop
            elif stop == -np.inf:
                hit = high[start:end] >= target
            else:
                hit = low[start:end] <= stop
                hit |= high[start:end] >= target
            offset = int(hit.argmax())
            if hit[offset]:
                return start + offset, stop
            start, width = end, width * 4
        return None

    @staticmethod
    def _trailing(
        high: Floats,
        low: Floats,
        reference: float,
        stop: float,
        target: float,
        factor: float,
        first: int,
        last: int,
    ) -> tuple[int, float] | None:
        """Like _fixed with the stop raised to factor * (highest of the entry price and the
        highs before the bar since entry)."""
        start, width = first, _FIRST_WINDOW
        while start <= last:
            end = min(last + 1, start + width)
            highs = high[start:end]
            running = np.maximum.accumulate(highs)
            before = np.empty(len(highs))
            before[0] = reference
            np.maximum(running[:-1], reference, out=before[1:])
            levels = np.maximum(stop, factor * before)
            hit = low[start:end] <= levels
            hit |= highs >= target
            offset = int(hit.argmax())
            if hit[offset]:
                return start + offset, float(levels[offset])
            reference = max(reference, float(running[-1]))
            start, width = end, width * 4
        return None


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
    equity: Floats = np.repeat(a, lengths) + np.repeat(b, lengths) * close
    return equity
