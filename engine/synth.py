"""Deterministic synthetic 1-minute bars: a geometric random walk for demos, tests, benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.resample import MINUTE_MS, frame
from engine.store import DatasetSource

# Per-minute log-return volatility: about 58 % a year, a crypto-like figure.
MINUTE_VOLATILITY = 0.0008
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def synth_bars(
    start: datetime, minutes: int, seed: int = 42, start_price: float = 30000.0
) -> pd.DataFrame:
    """`minutes` 1-minute bars from `start` (rounded down to the minute), the same for the same
    arguments. Each bar opens at the previous close; closes follow a driftless geometric random
    walk; wicks extend beyond the body by a half-normal amount; volume is log-normal. Valid for
    BarStore.write."""
    if start.tzinfo is None:
        raise DataError("start", "start must carry a time zone, e.g. 2024-01-01T00:00:00Z")
    if minutes < 1:
        raise DataError(None, "minutes must be at least 1")
    if not start_price > 0:
        raise DataError(None, "start_price must be above 0")
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, MINUTE_VOLATILITY, minutes)
    close = start_price * np.exp(np.cumsum(steps))
    open_ = np.empty(minutes)
    open_[0] = start_price
    open_[1:] = close[:-1]
    wicks = np.abs(rng.normal(0.0, MINUTE_VOLATILITY / 2, (2, minutes)))
    high = np.maximum(open_, close) * np.exp(wicks[0])
    low = np.minimum(open_, close) * np.exp(-wicks[1])
    volume = rng.lognormal(1.0, 0.5, minutes) * 10.0
    first = (start - _EPOCH) // timedelta(minutes=1) * MINUTE_MS
    times = first + np.arange(minutes, dtype=np.int64) * MINUTE_MS
    return frame(times, {"open": open_, "high": high, "low": low, "close": close, "volume": volume})


def synthetic_source() -> DatasetSource:
    """The source to store with synthetic bars, so every listing labels them as such."""
    return DatasetSource("synthetic", (), None, datetime.now(UTC).replace(microsecond=0))
