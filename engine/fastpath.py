"""The sweep's hot path: a strategy without stops, from its signals to its metrics in one
compiled walk over the bars, with no trade list or equity array in between.

It follows simulate()'s signal semantics (API.md "Semantics": next-open fills, an exit beating
an entry on the same bar, conflicting entries opening nothing, reversals, the last bar's
signals ignored) and _account()'s arithmetic, operation for operation, so trades and equity are
bit-identical; the sums behind sharpe and sortino are compensated (Neumaier), so they agree with
metrics.compute() to far better than 1e-9 relative. A test checks both against simulate() and
metrics.compute() on random signals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from engine import jit, metrics

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]

# Slots of the kernel's `out` array.
(FINAL, WORST, TRADES, WINS, PROFIT, LOSS, RETURN_SUM, SPANS, SHARED, COUNT, MEAN, SPREAD,
 DOWNSIDE) = range(13)  # fmt: skip

# How a signal is read on a bar (see _fires): never (no rule), from a flag array, or tested
# on two operands.
(NEVER, FLAGS, CROSSOVER, CROSSUNDER, ABOVE, BELOW, AT_LEAST, AT_MOST, EQUAL,
 DIFFERENT) = range(10)  # fmt: skip
TESTS = {"crossover": CROSSOVER, "crossunder": CROSSUNDER, ">": ABOVE, "<": BELOW,
         ">=": AT_LEAST, "<=": AT_MOST, "==": EQUAL, "!=": DIFFERENT}  # fmt: skip

# Returns summed plainly before their sum joins the compensated total.
_BLOCK = 256
# Slack on the drawdown pre-check, far above rounding, so no lower ratio is ever skipped.
_SLACK = 1e-9
_PRICES = numba.types.Array(numba.float64, 1, "C", readonly=True)
_FLAGS = numba.types.Array(numba.boolean, 1, "C", readonly=True)
# four signals (long entry, long exit, short entry, short exit), one of each per tuple
_FOUR = numba.types.UniTuple
_SIGNATURE = numba.void(
    _PRICES,
    _PRICES,
    _FOUR(_FLAGS, 4),  # type: ignore[no-untyped-call]
    _FOUR(_PRICES, 4),  # type: ignore[no-untyped-call]
    _FOUR(_PRICES, 4),  # type: ignore[no-untyped-call]
    _FOUR(numba.int64, 4),  # type: ignore[no-untyped-call]
    _FOUR(numba.int64, 4),  # type: ignore[no-untyped-call]
    *(numba.float64,) * 4,
    numba.types.Array(numba.int64, 1, "C", readonly=True),
    numba.float64[::1],
    numba.float64[::1],
)


def _compile(function: Callable[..., None]) -> Callable[..., None]:
    """Compile eagerly, from the disk cache when there is one (as engine.tradeloop does)."""
    # error_model "numpy": x / 0 is inf or nan, as in the numpy code it mirrors, not an error
    try:
        compiled: Callable[..., None] = numba.njit(
            _SIGNATURE, cache=True, nogil=True, error_model="numpy"
        )(function)
    except RuntimeError:  # no writable cache location: compile in memory in each process
        compiled = numba.njit(_SIGNATURE, nogil=True, error_model="numpy")(function)
    return compiled


@numba.njit(inline="always")
def _fires(
    test: int, flags: Flags, first: Floats, second: Floats, lookback: int, bar: int
) -> bool:  # pragma: no cover - compiled; tested through rule_metrics
    """One signal on one bar: read from `flags`, or tested on the two operands of a pairwise
    rule exactly as indicators.crossover/crossunder and numexpr's comparisons do, false
    during the rule's warm-up as Rule.evaluate makes it."""
    if test == NEVER:
        return False
    if test == FLAGS:
        flag: bool = flags[bar]
        return flag
    if bar < lookback:
        return False
    a: float = first[bar]
    b: float = second[bar]
    if test == CROSSOVER:
        before: bool = first[bar - 1] <= second[bar - 1]
        return bar > 0 and a > b and before
    if test == CROSSUNDER:
        before = first[bar - 1] >= second[bar - 1]
        return bar > 0 and a < b and before
    if test == ABOVE:
        return a > b
    if test == BELOW:
        return a < b
    if test == AT_LEAST:
        return a >= b
    if test == AT_MOST:
        return a <= b
    if test == EQUAL:
        return a == b
    return a != b


@numba.njit(inline="always")
def _next(
    test: int, flags: Flags, first: Floats, second: Floats, lookback: int, start: int, stop: int
) -> int:  # pragma: no cover - compiled; tested through rule_metrics
    """The first bar from `start` on which the signal fires, or `stop` if none before it."""
    if test == NEVER:
        return stop
    bar = start
    if test == CROSSOVER or test == CROSSUNDER:
        # one loop per test, each bar's comparison carried to the next: these scans are most
        # of a crossover strategy's walk
        bar = max(bar, lookback, 1)
        if bar >= stop:
            return stop
        up = test == CROSSOVER
        before = first[bar - 1] <= second[bar - 1] if up else first[bar - 1] >= second[bar - 1]
        while bar < stop:
            a, b = first[bar], second[bar]
            if up:
                if a > b and before:
                    return bar
                before = a <= b
            else:
                if a < b and before:
                    return bar
                before = a >= b
            bar += 1
        return stop
    while bar < stop and not _fires(test, flags, first, second, lookback, bar):
        bar += 1
    return bar


@_compile
def _walk(
    open_: Floats,
    close: Floats,
    flags: tuple[Flags, Flags, Flags, Flags],
    firsts: tuple[Floats, Floats, Floats, Floats],
    seconds: tuple[Floats, Floats, Floats, Floats],
    tests: tuple[int, int, int, int],
    lookbacks: tuple[int, int, int, int],
    capital: float,
    fee: float,
    slip: float,
    share: float,
    day_ends: NDArray[np.int64],
    daily: Floats,
    out: Floats,
) -> None:  # pragma: no cover - compiled; tested through signal_metrics
    size = len(close)
    # 1. trades, as simulate() finds them without stops
    entries = np.empty(size, dtype=np.int64)
    exits = np.empty(size, dtype=np.int64)
    sides = np.empty(size, dtype=np.int64)
    count = 0
    position = 0
    # Only a bar on which a signal that can move the position fires needs looking at (flat:
    # the entries; long: its exit and the short entry; short: likewise), so the walk jumps
    # from one such bar to the next. ahead[k]: the first bar at or after some earlier bar on
    # which signal k fires; still right while it is not behind the current bar.
    ahead = np.full(4, -1, dtype=np.int64)
    last = size - 1  # the last bar's signals are ignored
    bar = 0
    while bar < last:
        if position == 0:
            watched_a, watched_b = 0, 2
        elif position == 1:
            watched_a, watched_b = 1, 2
        else:
            watched_a, watched_b = 3, 0
        for k in (watched_a, watched_b):
            if ahead[k] < bar:
                ahead[k] = _next(tests[k], flags[k], firsts[k], seconds[k], lookbacks[k], bar, last)
        bar = min(ahead[watched_a], ahead[watched_b])
        if bar >= last:
            break
        long_entry = _fires(tests[0], flags[0], firsts[0], seconds[0], lookbacks[0], bar)
        long_exit = _fires(tests[1], flags[1], firsts[1], seconds[1], lookbacks[1], bar)
        short_entry = _fires(tests[2], flags[2], firsts[2], seconds[2], lookbacks[2], bar)
        short_exit = _fires(tests[3], flags[3], firsts[3], seconds[3], lookbacks[3], bar)
        go_long = long_entry and not long_exit
        go_short = short_entry and not short_exit
        if go_long and go_short:
            go_long = go_short = False
        if position == 1 and (long_exit or go_short):
            exits[count - 1] = bar + 1
            position = 0
            if go_short:
                entries[count], sides[count], position = bar + 1, -1, -1
                count += 1
        elif position == -1 and (short_exit or go_long):
            exits[count - 1] = bar + 1
            position = 0
            if go_long:
                entries[count], sides[count], position = bar + 1, 1, 1
                count += 1
        elif position == 0 and (go_long or go_short):
            side = 1 if go_long else -1
            entries[count], sides[count], position = bar + 1, side, side
            count += 1
        bar += 1
    end_open = position != 0
    if end_open:
        exits[count - 1] = size - 1
    # 2. cash per trade, as simulate._account: growth, compounding, the stretch a + b * close
    a = np.empty(count)
    b = np.empty(count)
    after = np.empty(count)
    cash = capital
    product = 1.0
    wins = 0
    profit = 0.0
    loss = 0.0
    return_sum = 0.0
    spans = 0
    shared = 0
    kept = count
    for k in range(count):
        side = sides[k]
        entry_price = open_[entries[k]] * (1 + slip * side)
        source = close[exits[k]] if (end_open and k == count - 1) else open_[exits[k]]
        exit_price = source * (1 - slip * side)
        cost = entry_price * (1 + fee)
        if side > 0:
            proceeds, outlay = exit_price * (1 - fee), cost
        else:
            proceeds, outlay = entry_price * (1 - fee), exit_price * (1 + fee)
        growth = 1 + share * (proceeds - outlay) / cost
        product = product * growth
        before = cash
        cash = capital * product
        after[k] = cash
        units_per_cash = share / cost
        if side > 0:
            a[k] = before * (1 - share)
            b[k] = before * units_per_cash
        else:
            a[k] = before * (1 + share * (1 - fee) / (1 + fee))
            b[k] = before * -units_per_cash
        pnl = before * (growth - 1)
        if pnl > 0:
            wins += 1
            profit += pnl
        elif pnl < 0:
            loss -= pnl
        return_sum += (growth - 1) * (1 + fee) / share
        spans += exits[k] - entries[k] + 1
        if k > 0 and exits[k - 1] == entries[k]:
            shared += 1
        if growth <= 0:  # broke: trading ends with this trade
            kept = k + 1
            break
    # 3. equity at each close, stretch by stretch: flat ones (even pieces) hold a constant
    # value, so after their first bar each return is exactly 0 and only counts. Returns are
    # summed plainly within blocks of _BLOCK bars and the block sums compensated (Neumaier).
    peak = capital
    worst = 0.0
    # a value at or above this cannot lower `worst`: the exact ratio is only taken below it
    floor = peak * (1 + worst)
    floor += abs(floor) * _SLACK
    total = 0.0
    carry = 0.0
    squares = 0.0
    square_carry = 0.0
    down = 0.0
    returns = 0
    block_sum = 0.0
    block_squares = 0.0
    in_block = 0
    previous = capital
    day = 0
    days = len(day_ends)
    for piece in range(2 * kept + 1):
        k = piece // 2
        if piece % 2 == 0:
            start = exits[k - 1] if k > 0 else 0
            end = entries[k] if k < kept else size
            level = after[k - 1] if k > 0 else capital
            slope = 0.0
            stop = min(end, start + 1)
        else:
            start, end, level, slope = entries[k], exits[k], a[k], b[k]
            stop = end
        for bar in range(start, stop):
            value = level + slope * close[bar]
            if value > peak:
                peak = value
                floor = peak * (1 + worst)
                floor += abs(floor) * _SLACK
            elif value < floor:
                ratio = value / peak - 1
                if ratio < worst:
                    worst = ratio
                    floor = peak * (1 + worst)
                    floor += abs(floor) * _SLACK
            if bar > 0:
                r = value / previous - 1
                if math.isfinite(r):
                    returns += 1
                    block_sum += r
                    r2 = r * r
                    block_squares += r2
                    if r < 0:
                        down += r2
                    in_block += 1
                    if in_block == _BLOCK:
                        t = total + block_sum
                        if abs(total) >= abs(block_sum):
                            carry += (total - t) + block_sum
                        else:
                            carry += (block_sum - t) + total
                        total = t
                        t = squares + block_squares
                        if squares >= block_squares:
                            square_carry += (squares - t) + block_squares
                        else:
                            square_carry += (block_squares - t) + squares
                        squares = t
                        block_sum = 0.0
                        block_squares = 0.0
                        in_block = 0
            previous = value
            if day < days and day_ends[day] == bar:
                daily[day] = value
                day += 1
        if end > stop:
            if math.isfinite(level / level - 1):
                returns += end - stop
            while day < days and day_ends[day] < end:
                daily[day] = level
                day += 1
    t = total + block_sum
    carry += (total - t) + block_sum if abs(total) >= abs(block_sum) else (block_sum - t) + total
    total = t
    t = squares + block_squares
    if squares >= block_squares:
        square_carry += (squares - t) + block_squares
    else:
        square_carry += (block_squares - t) + squares
    squares = t
    mean = (total + carry) / returns if returns > 0 else 0.0
    total = total + carry
    # sum of (r - mean)^2 = sum r^2 - mean * sum r: no cancellation worth the name, since
    # per-bar returns vary far more than their mean
    deviations = max((squares + square_carry) - mean * total, 0.0)
    out[FINAL] = previous
    out[WORST] = worst
    out[TRADES] = kept
    out[WINS] = wins
    out[PROFIT] = profit
    out[LOSS] = loss
    out[RETURN_SUM] = return_sum
    out[SPANS] = spans
    out[SHARED] = shared
    out[COUNT] = returns
    out[MEAN] = mean
    out[SPREAD] = math.sqrt(deviations / (returns - 1)) if returns > 1 else 0.0
    out[DOWNSIDE] = math.sqrt(down / returns) if returns > 0 else 0.0


@dataclass(frozen=True)
class Setup:
    """What a walk needs besides the signals: the prices, the account and the day ends."""

    open_: Floats
    close: Floats
    capital: float
    fee: float
    slip: float
    share: float
    bar_minutes: int
    span_minutes: float
    day_ends: NDArray[np.int64]


@dataclass(frozen=True)
class Signal:
    """How the walk reads one signal: a flag per bar, or the test (one of TESTS) of a pairwise
    rule on its two operands, false for the first `lookback` bars."""

    test: int
    flags: Flags
    first: Floats
    second: Floats
    lookback: int = 0

    @classmethod
    def never(cls) -> Signal:
        """The signal of a rule not given: false on every bar."""
        return cls(NEVER, _NO_FLAGS, _NO_OPERAND, _NO_OPERAND)

    @classmethod
    def of_flags(cls, flags: Flags) -> Signal:
        return cls(FLAGS, jit.read_only(flags), _NO_OPERAND, _NO_OPERAND)

    @classmethod
    def of_test(cls, test: str, first: Floats, second: Floats, lookback: int) -> Signal:
        return cls(TESTS[test], _NO_FLAGS, _operand(first), _operand(second), lookback)


def _operand(values: NDArray[np.floating[Any]]) -> Floats:
    return jit.read_only(np.asarray(values, dtype=np.float64))


_NO_FLAGS = jit.read_only(np.zeros(0, dtype=np.bool_))
_NO_OPERAND = jit.read_only(np.zeros(0))


def signal_metrics(
    setup: Setup,
    long_entry: Flags,
    long_exit: Flags,
    short_entry: Flags,
    short_exit: Flags,
) -> tuple[metrics.Metrics, Floats]:
    """metrics.compute()'s values (those a sweep ranks and shows) of the strategy without
    stops, and the equity at each day end."""
    flags = (long_entry, long_exit, short_entry, short_exit)
    return rule_metrics(setup, *(Signal.of_flags(values) for values in flags))


def rule_metrics(
    setup: Setup,
    long_entry: Signal,
    long_exit: Signal,
    short_entry: Signal,
    short_exit: Signal,
) -> tuple[metrics.Metrics, Floats]:
    """signal_metrics() with each signal given as a Signal, so a crossover or comparison is
    tested bar by bar in the walk instead of as a full-length flag array first."""
    signals = (long_entry, long_exit, short_entry, short_exit)
    out = np.zeros(13)
    daily = np.zeros(len(setup.day_ends))
    _walk(
        setup.open_,
        setup.close,
        tuple(signal.flags for signal in signals),
        tuple(signal.first for signal in signals),
        tuple(signal.second for signal in signals),
        tuple(signal.test for signal in signals),
        tuple(signal.lookback for signal in signals),
        setup.capital,
        setup.fee,
        setup.slip,
        setup.share,
        setup.day_ends,
        daily,
        out,
    )
    size = len(setup.close)
    final = float(out[FINAL])
    ratio = final / setup.capital
    drawdown = min(float(out[WORST]), 0.0)
    years = setup.span_minutes / metrics.MINUTES_PER_YEAR
    cagr = metrics._cagr(ratio, years)
    trades = int(out[TRADES])
    count = int(out[COUNT])
    scale = math.sqrt(metrics.MINUTES_PER_YEAR / setup.bar_minutes)
    sharpe = sortino = None
    if size >= 3 and count >= 2:
        mean = float(out[MEAN])
        spread, downside = float(out[SPREAD]), float(out[DOWNSIDE])
        sharpe = mean / spread * scale if spread > 0 else None
        sortino = mean / downside * scale if downside > 0 else None
    loss = float(out[LOSS])
    measured: metrics.Metrics = {
        "total_return": ratio - 1,
        "cagr": cagr,
        "max_drawdown": drawdown,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / -drawdown if cagr is not None and drawdown < 0 else None,
        "win_rate": float(out[WINS]) / trades if trades else None,
        "profit_factor": float(out[PROFIT]) / loss if loss > 0 else None,
        "expectancy": float(out[RETURN_SUM]) / trades if trades else None,
        "trades": trades,
        "exposure": (int(out[SPANS]) - int(out[SHARED])) / size if trades else 0.0,
        "final_equity": final,
    }
    return {key: metrics._finite(value) for key, value in measured.items()}, daily
