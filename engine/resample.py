"""1-minute bars -> 5m..1d OHLCV bars: left-closed bins labelled by their left edge, UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine.request import check_timeframe

COLUMNS = ("open", "high", "low", "close", "volume")
MINUTE_MS = 60_000

Columns = dict[str, NDArray[np.float64]]


def aggregate(
    times_ms: NDArray[np.int64], columns: Columns, minutes: int
) -> tuple[NDArray[np.int64], Columns]:
    """Aggregate sorted bars into bins of `minutes` aligned to the Unix epoch (so 1d bins start
    at 00:00 UTC and 4h bins at 00:00, 04:00, ... UTC): open = first, high = max, low = min,
    close = last, volume = sum. Bins without bars are dropped."""
    if minutes == 1 or len(times_ms) == 0:
        return times_ms, columns
    width = minutes * MINUTE_MS
    bins = times_ms // width
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    lasts = np.concatenate((starts[1:], [len(times_ms)])) - 1
    aggregated: Columns = {
        "open": columns["open"][starts],
        "high": np.maximum.reduceat(columns["high"], starts),
        "low": np.minimum.reduceat(columns["low"], starts),
        "close": columns["close"][lasts],
        "volume": np.add.reduceat(columns["volume"], starts),
    }
    labels: NDArray[np.int64] = bins[starts] * width
    return labels, aggregated


def resample(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """A bars DataFrame (UTC DatetimeIndex, the five columns) at `timeframe`."""
    times = bars.index.as_unit("ms").asi8
    columns = {name: bars[name].to_numpy(np.float64) for name in COLUMNS}
    labels, aggregated = aggregate(times, columns, check_timeframe(timeframe))
    return frame(labels, aggregated)


def frame(times_ms: NDArray[np.int64], columns: Columns) -> pd.DataFrame:
    """The engine's bars DataFrame: float64 columns on a UTC DatetimeIndex named "time"."""
    index = pd.DatetimeIndex(times_ms.view("datetime64[ms]"), tz="UTC", name="time")
    return pd.DataFrame({name: columns[name] for name in COLUMNS}, index=index, copy=False)
