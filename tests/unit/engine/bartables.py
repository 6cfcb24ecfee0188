"""Helpers for engine tests: bar tables written as text, and requests with defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from engine import BacktestRequest

START = datetime(2024, 1, 1, tzinfo=UTC)


def bars(table: str, *, start: datetime = START, minutes: int = 1) -> pd.DataFrame:
    """Bars from lines of 'open high low close' (optionally volume), one bar per line."""
    rows = [[float(cell) for cell in line.split()] for line in table.strip().splitlines()]
    values = np.array([row if len(row) == 5 else [*row, 1.0] for row in rows])
    index = pd.DatetimeIndex(
        [start + timedelta(minutes=minutes * i) for i in range(len(rows))], name="time"
    ).as_unit("ms")
    return pd.DataFrame(values, index=index, columns=["open", "high", "low", "close", "volume"])


def flat_bars(closes: list[float], *, start: datetime = START, minutes: int = 1) -> pd.DataFrame:
    """Bars that open at the previous close and close at the given prices."""
    lines = []
    previous = closes[0]
    for close in closes:
        lines.append(f"{previous} {max(previous, close)} {min(previous, close)} {close}")
        previous = close
    return bars("\n".join(lines), start=start, minutes=minutes)


def request(**overrides: Any) -> BacktestRequest:
    """A request on TEST for a year from START: 1,000 of capital, long on `close > open`; the
    rest are BacktestRequest's defaults."""
    fields: dict[str, Any] = {
        "symbol": "TEST",
        "start": START,
        "end": START + timedelta(days=365),
        "initial_capital": 1000.0,
        "long_entry": "close > open",
    }
    return BacktestRequest(**(fields | overrides))


def flags(text: str) -> np.ndarray:
    """A bool array from a string of '.' (False) and 'x' (True)."""
    return np.array([char == "x" for char in text.replace(" ", "")], dtype=bool)
