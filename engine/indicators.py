"""Technical indicators as pure array functions: float64 arrays in, float64 arrays out.

Conventions shared by every function:

- The output has the input's length; bars before the indicator has enough data ("warm-up") are
  NaN, and so is every window that contains a NaN input. Leading NaNs in the input (an indicator
  of an indicator) shift the warm-up: smoothing starts at the first valid value.
- Recursive smoothers are seeded with the simple average of their first n values (the TA-Lib
  convention), so `ema(x, n)` is first defined on bar n-1, like `sma(x, n)`.
- Recursions run in pandas' Cython `ewm`, which has no exact vectorised numpy equivalent; rolling
  sums use block-local cumulative sums, so their rounding error does not grow with the series.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Rolling sums are exact-ish within a block of this many bars; see _window_sum.
_BLOCK = 4096
# Block sums of read-only series kept for the next call, oldest dropped first (_block_sums).
_KEEP = 4
_KEPT_SUMS: dict[tuple[int, int, int], tuple[Array, Array]] = {}


def _nan(size: int) -> Array:
    return np.full(size, np.nan)


def _first_valid(x: Array) -> int:
    """Index of the first non-NaN value, or len(x) when there is none."""
    if len(x) == 0 or not np.isnan(x[0]):
        return 0
    valid = ~np.isnan(x)
    return int(valid.argmax()) if valid.any() else len(x)


def _window_sum(x: Array, n: int) -> Array:
    """Sum of the last n values at each bar (NaN before n values are available).

    A plain cumulative-sum difference loses precision as the running total grows (2.6 M bars of
    30,000 reach 8e10); summing within blocks of _BLOCK bars keeps every term near n * |x|.
    """
    size = len(x)
    out = _nan(size)
    start = _first_valid(x)
    xs = x[start:]
    m = len(xs)
    if m < n:
        return out
    if not np.isfinite(xs.sum()):
        # A NaN or inf inside the series would poison a whole block; pandas handles each window.
        out[start:] = pd.Series(xs).rolling(n).sum().to_numpy()
        return out
    block = max(_BLOCK, n)
    blocks = -(-m // block)
    local = _block_sums(x, start, block)
    flat = local.ravel()
    # window ending at t: local[t] - local[t - n], plus the previous block's total when the
    # window starts in that block (position in block < n).
    sums = np.empty_like(flat)
    sums[:n] = flat[:n]
    np.subtract(flat[n:], flat[:-n], out=sums[n:])
    sums.reshape(blocks, block)[1:, :n] += local[:-1, -1:]
    out[start + n - 1 :] = sums[n - 1 : m]
    return out


def _block_sums(x: Array, start: int, block: int) -> Array:
    """Cumulative sums of x[start:] within blocks of `block` bars, one row per block (the last
    padded with zeros). The same for every window up to _BLOCK bars, so those of a few
    read-only series are kept: a sweep asks for many periods of one series."""
    key = (id(x), start, block)
    kept = _KEPT_SUMS.get(key)
    if kept is not None and kept[0] is x:
        return kept[1]
    xs = x[start:]
    blocks = -(-len(xs) // block)
    padded = np.zeros(blocks * block)
    padded[: len(xs)] = xs
    local = np.cumsum(padded.reshape(blocks, block), axis=1)
    if not x.flags.writeable:  # a writeable series could change under the kept sums
        local.flags.writeable = False
        if len(_KEPT_SUMS) >= _KEEP:
            del _KEPT_SUMS[next(iter(_KEPT_SUMS))]
        _KEPT_SUMS[key] = (x, local)  # x held, so its id is not reused while kept
    return local


def _smooth(x: Array, n: int, alpha: float) -> Array:
    """Exponential smoothing y[t] = y[t-1] + alpha * (x[t] - y[t-1]), seeded with the SMA of the
    first n valid values (at bar first_valid + n - 1)."""
    size = len(x)
    out = _nan(size)
    start = _first_valid(x)
    seed_at = start + n - 1
    if seed_at >= size:
        return out
    tail = x[seed_at:].copy()
    tail[0] = x[start : seed_at + 1].mean()
    out[seed_at:] = _ewm(tail, alpha)
    return out


def _ewm(values: Array, alpha: float) -> Array:
    # engine.smoothing computes the same bits 2-5 times faster, but numba's start-up (~1 s)
    # pays only in a process that runs many backtests: the worker imports it ahead of jobs,
    # a one-off process (the CLI) keeps pandas.
    compiled = sys.modules.get("engine.smoothing")
    if compiled is not None:
        fast: Array = compiled.ewm(values, alpha)
        return fast
    smoothed: Array = (
        pd.Series(values, copy=False).ewm(alpha=alpha, adjust=False).mean().to_numpy(np.float64)
    )
    return smoothed


def sma(x: Array, n: int) -> Array:
    """Simple moving average: mean of the last n values, sum(x[t-n+1..t]) / n."""
    means = _window_sum(x, n)
    means /= n  # in place: one full-length array fewer
    return means


def ema(x: Array, n: int) -> Array:
    """Exponential moving average, alpha = 2 / (n + 1): y[t] = y[t-1] + alpha * (x[t] - y[t-1]),
    seeded with sma(x, n) on bar n-1 (TA-Lib; backtesting.py users get the same with
    `ta.EMA`). Differs from pandas `ewm(adjust=False)` seeded from x[0] only in the first bars."""
    return _smooth(x, n, 2.0 / (n + 1))


def wma(x: Array, n: int) -> Array:
    """Linearly weighted moving average: sum(w_i * x[t-n+i]) / (n(n+1)/2) with w_i = i for
    i = 1..n, so the newest value weighs n and the oldest 1.

    Computed by the recursion N[t] = N[t-1] + n * x[t] - sum(x[t-n..t-1]), re-anchored with an
    exact dot product every few thousand bars so rounding never accumulates far.
    """
    size = len(x)
    out = _nan(size)
    start = _first_valid(x)
    xs = x[start:]
    m = len(xs)
    if m < n:
        return out
    weights = np.arange(1, n + 1, dtype=np.float64)
    windows = sliding_window_view(xs, n)
    if not np.isfinite(xs.sum()):
        out[start + n - 1 :] = windows @ weights / weights.sum()
        return out
    count = m - n + 1  # outputs for local bars n-1 .. m-1
    # pandas' compensated rolling sum: its error, not the recursion's, would otherwise dominate
    sums = pd.Series(xs, copy=False).rolling(n).sum().to_numpy(np.float64)
    increments = np.zeros(count)
    increments[1:] = n * xs[n:] - sums[n - 1 : m - 1]
    blocks = -(-count // _BLOCK)
    anchors = windows[np.arange(blocks) * _BLOCK] @ weights
    padded = np.zeros(blocks * _BLOCK)
    padded[:count] = increments
    grid = padded.reshape(blocks, _BLOCK)
    grid[:, 0] = 0.0
    weighted = (np.cumsum(grid, axis=1) + anchors[:, None]).ravel()[:count]
    out[start + n - 1 :] = weighted / weights.sum()
    return out


def rsi(x: Array, n: int) -> Array:
    """Relative strength index with Wilder smoothing (alpha = 1/n), in 0..100.

    gain[t] = max(x[t] - x[t-1], 0), loss[t] = max(x[t-1] - x[t], 0); each is averaged with the
    SMA of its first n values as seed, then avg[t] = avg[t-1] + (v[t] - avg[t-1]) / n;
    RSI = 100 * avg_gain / (avg_gain + avg_loss), and 50 when both averages are 0 (a flat
    series). First defined on bar n.
    """
    out = _nan(len(x))
    if len(x) < 2:
        return out
    delta = np.diff(x)
    # np.maximum keeps NaN, so warm-up NaNs of the input stay NaN here
    gain = _smooth(np.maximum(delta, 0.0), n, 1.0 / n)
    loss = _smooth(np.maximum(-delta, 0.0), n, 1.0 / n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.where(total == 0.0, 50.0, 100.0 * gain / total)
    return out


def atr(high: Array, low: Array, close: Array, n: int) -> Array:
    """Average true range with Wilder smoothing (alpha = 1/n).

    TR[t] = max(high[t] - low[t], |high[t] - close[t-1]|, |low[t] - close[t-1]|) from bar 1 on
    (bar 0 has no previous close); ATR is seeded with the mean of TR[1..n] on bar n, then
    ATR[t] = ATR[t-1] + (TR[t] - ATR[t-1]) / n (TA-Lib).
    """
    true_range = _nan(len(close))
    if len(close) > 1:
        previous = close[:-1]
        true_range[1:] = np.maximum(
            high[1:] - low[1:],
            np.maximum(np.abs(high[1:] - previous), np.abs(low[1:] - previous)),
        )
    return _smooth(true_range, n, 1.0 / n)


def stdev(x: Array, n: int) -> Array:
    """Population standard deviation of the last n values: sqrt(sum((x - mean)^2) / n)
    (ddof = 0, as TA-Lib STDDEV and Bollinger's bands use). pandas' online variance is exact
    to about 1e-10 of the series' level, like TA-Lib's sum-of-squares form."""
    out = _nan(len(x))
    start = _first_valid(x)
    if len(x) - start >= n:
        rolled = pd.Series(x[start:], copy=False).rolling(n).std(ddof=0)
        out[start:] = rolled.to_numpy(np.float64)
    return out


def _rolling_max(x: Array, n: int) -> Array:
    """Maximum of the last n values (van Herk / Gil-Werman: three passes whatever n is)."""
    size = len(x)
    out = _nan(size)
    if size < n:
        return out
    if n == 1:
        return x.copy()
    blocks = -(-size // n)
    padded = np.full(blocks * n, -np.inf)
    padded[:size] = x
    grid = padded.reshape(blocks, n)
    prefix = np.maximum.accumulate(grid, axis=1).ravel()
    suffix = np.maximum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    out[n - 1 :] = np.maximum(suffix[: size - n + 1], prefix[n - 1 : size])
    return out


def highest(x: Array, n: int) -> Array:
    """Highest value of the last n bars, including the current one."""
    return _rolling_max(x, n)


def lowest(x: Array, n: int) -> Array:
    """Lowest value of the last n bars, including the current one."""
    return -_rolling_max(-x, n)


def stoch(high: Array, low: Array, close: Array, n: int) -> Array:
    """Stochastic oscillator, fast %K in 0..100: 100 * (close[t] - LL) / (HH - LL), where HH and
    LL are the highest high and the lowest low of the last n bars, the current one included;
    0 where HH == LL (TA-Lib STOCHF's fastk, unsmoothed)."""
    top = highest(high, n)
    bottom = lowest(low, n)
    span = top - bottom
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Array = 100.0 * (close - bottom) / span
    out[span == 0] = 0.0
    return out


def roc(x: Array, n: int) -> Array:
    """Rate of change in percent: 100 * (x[t] / x[t-n] - 1) (TA-Lib ROC)."""
    out = _nan(len(x))
    if len(x) > n:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n:] = 100.0 * (x[n:] / x[:-n] - 1.0)
    return out


def prev(x: Array, n: int) -> Array:
    """The value n bars ago: x[t-n]."""
    out = _nan(len(x))
    if len(x) > n:
        out[n:] = x[:-n]
    return out


def macd(x: Array, fast: int, slow: int) -> Array:
    """MACD line: ema(x, fast) - ema(x, slow), first defined on bar slow-1."""
    return ema(x, fast) - ema(x, slow)


def macd_signal(x: Array, fast: int, slow: int, signal: int) -> Array:
    """MACD signal line: ema(macd(x, fast, slow), signal), seeded with the SMA of the first
    `signal` MACD values (first defined on bar slow + signal - 2)."""
    return ema(macd(x, fast, slow), signal)


def bb_upper(x: Array, n: int, k: float) -> Array:
    """Upper Bollinger band: sma(x, n) + k * stdev(x, n) (population deviation)."""
    return sma(x, n) + k * stdev(x, n)


def bb_lower(x: Array, n: int, k: float) -> Array:
    """Lower Bollinger band: sma(x, n) - k * stdev(x, n) (population deviation)."""
    return sma(x, n) - k * stdev(x, n)


def crossover(a: Array, b: Array) -> NDArray[np.bool_]:
    """True where a > b on this bar and a <= b on the previous one (False on bar 0 and
    wherever a value is NaN)."""
    out = np.zeros(len(a), dtype=bool)
    out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def crossunder(a: Array, b: Array) -> NDArray[np.bool_]:
    """True where a < b on this bar and a >= b on the previous one."""
    out = np.zeros(len(a), dtype=bool)
    out[1:] = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    return out
