"""Performance metrics from the equity curve and the trades; a year is 365 days of 24 h."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from engine.simulate import Floats, Simulation

DAYS_PER_YEAR = 365
MINUTES_PER_YEAR = DAYS_PER_YEAR * 24 * 60

Better = Literal["higher", "lower"] | None

# Every metric, in the order results list them, and which way it is better: "higher", "lower",
# or None where neither is (a count, a share of time, the market's own return). max_drawdown
# is negative (-0.25 is a 25 % fall), so higher is better.
BETTER: dict[str, Better] = {
    "total_return": "higher",
    "cagr": "higher",
    "max_drawdown": "higher",
    "sharpe": "higher",
    "sortino": "higher",
    "calmar": "higher",
    "win_rate": "higher",
    "profit_factor": "higher",
    "expectancy": "higher",
    "trades": None,
    "exposure": None,
    "final_equity": "higher",
    "buy_and_hold_return": None,
    "fees_paid": "lower",
}
KEYS = tuple(BETTER)

Metrics = dict[str, float | int | None]

# Bars per block of the drawdown search.
_BLOCK = 4096


def compute(
    simulation: Simulation,
    close: Floats,
    *,
    initial_capital: float,
    bar_minutes: int,
    span_minutes: float,
) -> Metrics:
    """Metrics as fractions (0.25 = 25 %), None where undefined (no trades, no losses...).

    - total_return: final_equity / initial_capital - 1.
    - cagr: (final / initial) ** (1 / years) - 1 over the span from the first bar's open to the
      last bar's close; -1 when equity ends at or below 0.
    - max_drawdown: the worst fall from a running peak of the per-bar equity (initial capital
      included), as a negative fraction: -0.25 is a 25 % drawdown.
    - sharpe, sortino: mean per-bar return over its standard deviation (sample) or downside
      deviation (root mean square of the negative returns), times sqrt(bars per year); risk-free
      rate 0.
    - calmar: cagr / |max_drawdown|.
    - win_rate: share of trades with pnl > 0; profit_factor: gross profit / gross loss;
      expectancy: mean trade return_pct.
    - exposure: share of bars on which a position was held at some time (entry bar to exit bar).
    - buy_and_hold_return: last close / first close - 1; fees_paid: in account currency.
    """
    equity = simulation.equity
    size = len(equity)
    final = float(equity[-1])
    ratio = final / initial_capital
    years = span_minutes / MINUTES_PER_YEAR
    cagr = _cagr(ratio, years)
    drawdown = _max_drawdown(equity, initial_capital)
    sharpe, sortino = _ratios(equity, MINUTES_PER_YEAR / bar_minutes)
    pnl = simulation.pnl
    count = simulation.count
    losses = float(-pnl[pnl < 0].sum())
    metrics: Metrics = {
        "total_return": ratio - 1,
        "cagr": cagr,
        "max_drawdown": drawdown,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / -drawdown if cagr is not None and drawdown < 0 else None,
        "win_rate": float((pnl > 0).mean()) if count else None,
        "profit_factor": float(pnl[pnl > 0].sum()) / losses if losses > 0 else None,
        "expectancy": float(simulation.return_pct.mean()) if count else None,
        "trades": count,
        "exposure": _exposure(simulation, size),
        "final_equity": final,
        "buy_and_hold_return": float(close[-1] / close[0] - 1),
        "fees_paid": float(simulation.fees.sum()),
    }
    return {key: _finite(value) for key, value in metrics.items()}


def _finite(value: float | int | None) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cagr(ratio: float, years: float) -> float | None:
    if ratio <= 0:
        return -1.0
    if years <= 0:
        return None
    try:
        return math.exp(math.log(ratio) / years) - 1
    except OverflowError:
        return None


def _max_drawdown(equity: Floats, initial_capital: float) -> float:
    """min(equity / running peak) - 1, computing the running peak only in blocks that can
    hold the minimum: a running maximum is a sequential scan (the slowest pass of the
    metrics), while block minima and maxima are vectorised. Exact: a block is skipped only
    when block minimum / its highest possible peak (a bound the rounding of division keeps)
    is no lower than a ratio already found."""
    size = len(equity)
    blocks = size // _BLOCK
    lowest = float(equity.min()) if size else 0.0
    if blocks < 4 or not lowest > 0:  # short, or equity at or below 0: the bound does not hold
        return _drawdown_of(equity, initial_capital, initial_capital)
    body = equity[: blocks * _BLOCK].reshape(blocks, _BLOCK)
    block_min = body.min(axis=1)
    peak_after = np.maximum.accumulate(np.maximum(body.max(axis=1), initial_capital))
    peak_before = np.concatenate(([initial_capital], peak_after[:-1]))
    bound = block_min / peak_after
    worst = _drawdown_of(equity[blocks * _BLOCK :], float(peak_after[-1]), initial_capital)
    for block in np.argsort(bound, kind="stable").tolist():
        if bound[block] - 1 >= worst:
            break
        rows = body[block]
        worst = min(worst, _drawdown_of(rows, float(peak_before[block]), initial_capital))
    return worst


def _drawdown_of(equity: Floats, peak: float, initial_capital: float) -> float:
    """min(equity / max(peak, running max of equity)) - 1, and 0 at most."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    np.maximum(peaks, max(peak, initial_capital), out=peaks)
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = float(np.min(equity / peaks)) - 1
    return min(worst, 0.0)


def _ratios(equity: Floats, bars_per_year: float) -> tuple[float | None, float | None]:
    if len(equity) < 3:
        return None, None
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity[1:] / equity[:-1]
    returns -= 1
    total = float(returns.sum())  # numpy's mean is this sum / count: one pass serves both
    if not math.isfinite(total):  # equity touched 0: returns after it are undefined
        returns = returns[np.isfinite(returns)]
        total = float(returns.sum())
    count = len(returns)
    if count < 2:
        return None, None
    mean = total / count
    deviations = returns - mean
    spread = math.sqrt(float(deviations @ deviations) / (count - 1))
    np.minimum(returns, 0.0, out=deviations)
    downside = math.sqrt(float(deviations @ deviations) / count)
    scale = math.sqrt(bars_per_year)
    sharpe = mean / spread * scale if spread > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


def _exposure(simulation: Simulation, size: int) -> float:
    """Bars from entry to exit bar inclusive; a reversal's bar counts once."""
    if simulation.count == 0:
        return 0.0
    spans = int((simulation.exit_bar - simulation.entry_bar + 1).sum())
    shared = int((simulation.exit_bar[:-1] == simulation.entry_bar[1:]).sum())
    return (spans - shared) / size
