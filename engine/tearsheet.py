"""Tearsheet figures: monthly returns, worst drawdown periods, rolling Sharpe, trade statistics.

Everything period-based is computed on the daily equity: the equity at the close of the last bar
whose label falls on each UTC day (days without bars are absent). The initial capital stands
before the first day, so the first day's return and the first peak are measured against it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from engine.simulate import Floats, Ints

DAYS_PER_YEAR = 365
ROLLING_SHARPE_DAYS = 30
WORST_DRAWDOWNS = 5
RETURN_BINS = 20
# A chart is a few hundred pixels wide; more points only make every job document heavier.
MAX_ROLLING_POINTS = 500
_NS_PER_DAY = 86_400 * 1_000_000_000

Tearsheet = dict[str, Any]


def compute(
    equity: Floats,
    index: pd.DatetimeIndex,
    *,
    initial_capital: float,
    pnl: Floats,
    return_pct: Floats,
    entry_bar: Ints,
    exit_bar: Ints,
) -> Tearsheet:
    """The tearsheet of one run: `equity` per bar (at each bar's close), `index` the bars'
    labels, and the trades as columns (pnl, return_pct, entry and exit bar numbers)."""
    days, daily = daily_equity(equity, index)
    stamps = index.as_unit("ns").asi8
    durations_s = (stamps[exit_bar] - stamps[entry_bar]) / 1e9
    return {
        "monthly_returns": monthly_returns(days, daily, initial_capital),
        "drawdowns": worst_drawdowns(days, daily, initial_capital),
        "rolling_sharpe": rolling_sharpe(days, daily, initial_capital),
        "trade_returns": return_histogram(return_pct),
        "longest_winning_streak": longest_streak(pnl > 0),
        "longest_losing_streak": longest_streak(pnl < 0),
        "average_trade_duration_s": float(durations_s.mean()) if len(durations_s) else None,
    }


def daily_equity(equity: Floats, index: pd.DatetimeIndex) -> tuple[Ints, Floats]:
    """(UTC day numbers since 1970-01-01, equity at the last bar of each of those days)."""
    ns = index.as_unit("ns").asi8
    day = ns // _NS_PER_DAY
    last = np.flatnonzero(np.diff(day) != 0)
    picked = np.append(last, len(day) - 1) if len(day) else last
    return day[picked].astype(np.int64), equity[picked].astype(np.float64)


def _day_iso(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _growth(ends: Floats, initial_capital: float) -> Floats:
    """Return of each period from the end of the one before (the first from initial capital)."""
    before = np.concatenate(([initial_capital], ends[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return ends / before - 1


def monthly_returns(days: Ints, daily: Floats, initial_capital: float) -> list[dict[str, Any]]:
    """One row per calendar year: `months` holds 12 returns (None for a month without bars),
    `total` the year's return; each compounds from the equity at the end of the period before."""
    if len(days) == 0:
        return []
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month_end = np.append(np.flatnonzero(np.diff(months) != 0), len(months) - 1)
    month_numbers = months[month_end]
    month_returns = _growth(daily[month_end], initial_capital)
    years = month_numbers // 12
    year_end = np.append(np.flatnonzero(np.diff(years) != 0), len(years) - 1)
    year_returns = _growth(daily[month_end][year_end], initial_capital)
    rows = []
    for year, total in zip(years[year_end].tolist(), year_returns.tolist(), strict=True):
        cells: list[float | None] = [None] * 12
        in_year = years == year
        for number, value in zip(
            month_numbers[in_year].tolist(), month_returns[in_year].tolist(), strict=True
        ):
            cells[number % 12] = _finite(value)
        rows.append({"year": 1970 + year, "months": cells, "total": _finite(total)})
    return rows


def worst_drawdowns(
    days: Ints, daily: Floats, initial_capital: float, count: int = WORST_DRAWDOWNS
) -> list[dict[str, Any]]:
    """The `count` deepest drawdown periods, deepest first.

    A period starts on the first day that closes below the running peak (the initial capital
    included) and ends on the first day that closes at or above it again (`recovery`, None when
    the data ends first). `trough` is its lowest day, `depth` = trough / peak - 1 (negative),
    `days` the calendar days from start to recovery (to the last day, inclusive, if none).
    """
    if len(days) == 0:
        return []
    peaks = np.maximum.accumulate(np.concatenate(([initial_capital], daily)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = daily / peaks - 1
    below = drawdown < 0
    edges = np.diff(np.concatenate(([False], below, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # one past the last day below the peak
    if len(starts) == 0:
        return []
    depths = np.minimum.reduceat(drawdown, starts)
    order = np.argsort(depths, kind="stable")[:count]
    periods = []
    for i in order.tolist():
        start, stop = int(starts[i]), int(stops[i])
        trough = start + int(np.argmin(drawdown[start:stop]))
        recovered = stop < len(days)
        end_day = int(days[stop]) if recovered else int(days[-1]) + 1
        periods.append(
            {
                "start": _day_iso(int(days[start])),
                "trough": _day_iso(int(days[trough])),
                "recovery": _day_iso(int(days[stop])) if recovered else None,
                "depth": _finite(float(depths[i])),
                "days": end_day - int(days[start]),
            }
        )
    return periods


def rolling_sharpe(
    days: Ints, daily: Floats, initial_capital: float, window: int = ROLLING_SHARPE_DAYS
) -> list[dict[str, Any]]:
    """Sharpe ratio of the last `window` daily returns at each day from the window-th on:
    mean / sample standard deviation * sqrt(365), risk-free rate 0; None where the deviation is 0.
    Thinned to at most 500 evenly spaced points (the last one always kept)."""
    returns = pd.Series(_growth(daily, initial_capital))
    rolling = returns.rolling(window, min_periods=window)
    std = rolling.std(ddof=1).to_numpy()
    mean = rolling.mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 1e-15, mean / std * math.sqrt(DAYS_PER_YEAR), np.nan)
    picked = np.arange(window - 1, len(days))
    if len(picked) > MAX_ROLLING_POINTS:
        step = -(-len(picked) // MAX_ROLLING_POINTS)
        picked = np.unique(np.append(picked[::-1][::step][::-1], picked[-1]))
    return [
        {"t": _day_iso(int(days[i])), "sharpe": _finite(float(sharpe[i]))} for i in picked.tolist()
    ]


def return_histogram(return_pct: Floats, bins: int = RETURN_BINS) -> dict[str, list[Any]]:
    """Trade returns counted in `bins` equal-width bins from the lowest to the highest return;
    `edges` has bins + 1 values, each bin holds lo <= r < hi, the last one also r == highest.
    One bin when every return is the same; empty lists without trades."""
    values = return_pct[np.isfinite(return_pct)]
    if len(values) == 0:
        return {"edges": [], "counts": []}
    low, high = float(values.min()), float(values.max())
    if low == high:
        return {"edges": [low, high], "counts": [len(values)]}
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def longest_streak(flags: np.ndarray) -> int:
    """The longest run of consecutive True values."""
    if len(flags) == 0 or not flags.any():
        return 0
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.diff(padded)
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())
