"""The compiled smoother gives pandas' ewm(adjust=False) to the bit, and indicators the same
values whichever of the two computes them."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from engine import indicators, smoothing


def pandas_ewm(values: np.ndarray, alpha: float) -> np.ndarray:
    return pd.Series(values).ewm(alpha=alpha, adjust=False).mean().to_numpy(np.float64)


@pytest.mark.parametrize("seed", range(8))
def test_ewm_equals_pandas_bit_for_bit_with_gaps_and_flat_stretches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for alpha in (2 / 13, 2 / 27, 1 / 14, 0.5, 1.0, float(rng.uniform(0.001, 1))):
        values = 100 + rng.normal(0, 1, int(rng.integers(1, 3000))).cumsum()
        values[rng.random(len(values)) < 0.05] = np.nan  # gaps: alpha 0.5 has its own rule
        values[: len(values) // 4] = np.nan  # warm-up NaNs
        values[len(values) // 2 : len(values) // 2 + 50] = 42.0
        np.testing.assert_array_equal(smoothing.ewm(values, alpha), pandas_ewm(values, alpha))


def test_ewm_of_nothing_and_of_only_nans() -> None:
    assert len(smoothing.ewm(np.zeros(0), 0.2)) == 0
    assert np.isnan(smoothing.ewm(np.full(5, np.nan), 0.2)).all()


def test_indicators_give_the_same_values_with_or_without_the_compiled_smoother(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(rng.normal(0, 0.01, 5000).cumsum())
    assert "engine.smoothing" in sys.modules
    compiled = indicators.ema(close, 12), indicators.rsi(close, 14)
    monkeypatch.delitem(sys.modules, "engine.smoothing")
    with_pandas = indicators.ema(close, 12), indicators.rsi(close, 14)
    for fast, slow in zip(compiled, with_pandas, strict=True):
        np.testing.assert_array_equal(fast, slow)
