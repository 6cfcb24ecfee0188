"""Indicators: hand-computed cases, and agreement with naive loops on random series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine import indicators

nan = math.nan


def array(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_sma_is_the_mean_of_the_last_n_values() -> None:
    assert_same(indicators.sma(array(1, 2, 3, 4, 5), 3), array(nan, nan, 2, 3, 4))


def test_sma_of_one_bar_is_the_series() -> None:
    assert_same(indicators.sma(array(3, 1, 4), 1), array(3, 1, 4))


def test_sma_longer_than_the_series_is_all_nan() -> None:
    assert np.isnan(indicators.sma(array(1, 2), 3)).all()


def test_sma_starts_after_leading_nans() -> None:
    assert_same(indicators.sma(array(nan, 1, 2, 3), 2), array(nan, nan, 1.5, 2.5))


def test_sma_window_with_an_inner_nan_is_nan_only_there() -> None:
    result = indicators.sma(array(1, 2, nan, 4, 5, 6), 2)
    assert_same(result, array(nan, 1.5, nan, nan, 4.5, 5.5))


def test_ema_is_seeded_with_the_sma_then_smoothed_with_alpha_2_over_n_plus_1() -> None:
    # alpha = 0.5: seed mean(2, 4, 6) = 4; 4 + 0.5 * (8 - 4) = 6; 6 + 0.5 * (4 - 6) = 5
    assert_same(indicators.ema(array(2, 4, 6, 8, 4), 3), array(nan, nan, 4, 6, 5))


def test_ema_of_one_bar_is_the_series() -> None:
    assert_same(indicators.ema(array(2, 4, 6), 1), array(2, 4, 6))


def test_wma_weighs_the_newest_value_n_and_the_oldest_1() -> None:
    # (1*1 + 2*2 + 3*3) / 6 and (1*2 + 2*3 + 3*4) / 6
    assert_same(indicators.wma(array(1, 2, 3, 4), 3), array(nan, nan, 14 / 6, 20 / 6))


def test_wma_with_nan_inside_falls_back_to_windows() -> None:
    result = indicators.wma(array(1, 2, nan, 4, 5, 6), 2)
    assert_same(result, array(nan, 5 / 3, nan, nan, 14 / 3, 17 / 3))


def test_rsi_uses_wilder_smoothing() -> None:
    # gains 1 1 0 1 1, losses 0 0 1 0 0; seeds 1 and 0 at bar 2; then alpha = 1/2
    result = indicators.rsi(array(1, 2, 3, 2, 3, 4), 2)
    assert_same(result, array(nan, nan, 100, 50, 75, 87.5))


def test_rsi_of_an_indicator_starts_after_its_warm_up() -> None:
    result = indicators.rsi(array(nan, nan, 1, 2, 3, 2, 3, 4), 2)
    assert_same(result, array(nan, nan, nan, nan, 100, 50, 75, 87.5))


def test_rsi_of_a_flat_series_is_50() -> None:
    assert_same(indicators.rsi(array(5, 5, 5, 5), 2), array(nan, nan, 50, 50))


def test_rsi_of_a_single_bar_is_nan() -> None:
    assert np.isnan(indicators.rsi(array(5), 2)).all()


def test_atr_uses_true_range_and_wilder_smoothing() -> None:
    high, low, close = array(3, 4, 5, 6), array(1, 2, 2, 4), array(2, 3, 4, 5)
    # TR from bar 1: 2, 3, 2; seed mean(2, 3) = 2.5; 2.5 + (2 - 2.5) / 2 = 2.25
    assert_same(indicators.atr(high, low, close, 2), array(nan, nan, 2.5, 2.25))


def test_atr_counts_a_gap_from_the_previous_close() -> None:
    high, low, close = array(10, 21, 22), array(9, 20, 20), array(10, 21, 21)
    # bar 1: max(1, |21 - 10|, |20 - 10|) = 11; bar 2: max(2, 1, 1) = 2
    assert_same(indicators.atr(high, low, close, 1), array(nan, 11, 2))


def test_stdev_is_the_population_deviation() -> None:
    assert_same(indicators.stdev(array(2, 4, 4, 4, 5, 5, 7, 9), 8)[-1:], array(2.0))
    assert_same(indicators.stdev(array(1, 2, 3, 4), 2), array(nan, 0.5, 0.5, 0.5))


def test_highest_and_lowest_include_the_current_bar() -> None:
    values = array(1, 3, 2, 5, 4)
    assert_same(indicators.highest(values, 2), array(nan, 3, 3, 5, 5))
    assert_same(indicators.lowest(values, 2), array(nan, 1, 2, 2, 4))
    assert_same(indicators.highest(values, 1), values)
    assert np.isnan(indicators.highest(values, 6)).all()


def test_stoch_places_the_close_in_the_range_of_the_last_n_bars() -> None:
    high, low, close = array(3, 4, 5, 4, 7, 7), array(1, 2, 2, 1, 7, 7), array(2, 3, 4, 2, 7, 7)
    # bar 3: highest high 5, lowest low 1 -> 100 * (2 - 1) / 4; bar 5: a flat range is 0
    expected = array(nan, 100 * 2 / 3, 100 * 2 / 3, 25, 100 * 6 / 6, 0)
    assert_same(indicators.stoch(high, low, close, 2), expected)
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    high, low = close * (1 + rng.random(500) / 50), close * (1 - rng.random(500) / 50)
    top = pd.Series(high).rolling(14).max()
    bottom = pd.Series(low).rolling(14).min()
    by_pandas = (100 * (close - bottom) / (top - bottom)).to_numpy()
    assert_same(indicators.stoch(high, low, close, 14), by_pandas)


def test_roc_is_a_percentage() -> None:
    result = indicators.roc(array(10, 11, 12, 9.9), 1)
    assert_same(result, array(nan, 10, 100 * (12 / 11 - 1), -17.5))


def test_prev_shifts_by_n_bars() -> None:
    assert_same(indicators.prev(array(1, 2, 3), 1), array(nan, 1, 2))
    assert np.isnan(indicators.prev(array(1, 2, 3), 3)).all()


def test_macd_is_fast_ema_minus_slow_ema() -> None:
    values = array(1, 2, 3, 4, 5, 6)
    # ema2 = [nan, 1.5, 2.5, 3.5, 4.5, 5.5], ema3 = [nan, nan, 2, 3, 4, 5]
    assert_same(indicators.macd(values, 2, 3), array(nan, nan, 0.5, 0.5, 0.5, 0.5))


def test_macd_signal_is_an_ema_of_macd_seeded_after_its_warm_up() -> None:
    values = array(1, 2, 4, 4, 6, 5)
    line = indicators.macd(values, 2, 3)
    seed = (line[2] + line[3]) / 2
    expected = array(nan, nan, nan, seed, seed + 2 / 3 * (line[4] - seed), nan)
    expected[5] = expected[4] + 2 / 3 * (line[5] - expected[4])
    assert_same(indicators.macd_signal(values, 2, 3, 2), expected)


def test_bollinger_bands_are_k_population_deviations_around_the_sma() -> None:
    values = array(1, 2, 3, 4)
    assert_same(indicators.bb_upper(values, 2, 2.0), array(nan, 2.5, 3.5, 4.5))
    assert_same(indicators.bb_lower(values, 2, 2.0), array(nan, 0.5, 1.5, 2.5))


def test_crossover_needs_above_now_and_at_or_below_before() -> None:
    assert indicators.crossover(array(1, 2, 3), array(2, 2, 2)).tolist() == [False, False, True]
    assert indicators.crossover(array(3, 1, 3), array(2, 2, 2)).tolist() == [False, False, True]
    assert indicators.crossover(array(nan, 3, 3), array(2, 2, 2)).tolist() == [False] * 3


def test_crossunder_needs_below_now_and_at_or_above_before() -> None:
    assert indicators.crossunder(array(3, 2, 1), array(2, 2, 2)).tolist() == [False, False, True]


def naive_ema(values: np.ndarray, n: int, alpha: float) -> np.ndarray:
    out = np.full(len(values), nan)
    if len(values) >= n:
        out[n - 1] = values[:n].mean()
        for t in range(n, len(values)):
            out[t] = out[t - 1] + alpha * (values[t] - out[t - 1])
    return out


def naive_window(values: np.ndarray, n: int, reduce: object) -> np.ndarray:
    out = np.full(len(values), nan)
    for t in range(n - 1, len(values)):
        out[t] = reduce(values[t - n + 1 : t + 1])  # type: ignore[operator]
    return out


@pytest.mark.parametrize("size", [5, 300, 9000])
@pytest.mark.parametrize("n", [1, 2, 14, 50, 4097])
def test_indicators_match_naive_loops_on_a_random_walk(size: int, n: int) -> None:
    rng = np.random.default_rng(size * 10_000 + n)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.002, size)))
    high = close * (1 + rng.random(size) * 0.01)
    low = close * (1 - rng.random(size) * 0.01)
    weights = np.arange(1, n + 1)
    cases = {
        "sma": (indicators.sma(close, n), naive_window(close, n, np.mean)),
        "wma": (
            indicators.wma(close, n),
            naive_window(close, n, lambda v: v @ weights / weights.sum()),
        ),
        "stdev": (indicators.stdev(close, n), naive_window(close, n, np.std)),
        "highest": (indicators.highest(close, n), naive_window(close, n, np.max)),
        "lowest": (indicators.lowest(close, n), naive_window(close, n, np.min)),
        "ema": (indicators.ema(close, n), naive_ema(close, n, 2 / (n + 1))),
    }
    delta = np.diff(close)
    gains = naive_ema(np.maximum(delta, 0), n, 1 / n)
    losses = naive_ema(np.maximum(-delta, 0), n, 1 / n)
    cases["rsi"] = (indicators.rsi(close, n), np.r_[nan, 100 * gains / (gains + losses)])
    previous = close[:-1]
    true_range = np.maximum(
        high[1:] - low[1:], np.maximum(abs(high[1:] - previous), abs(low[1:] - previous))
    )
    cases["atr"] = (
        indicators.atr(high, low, close, n),
        np.r_[nan, naive_ema(true_range, n, 1 / n)],
    )
    for name, (actual, expected) in cases.items():
        # pandas' online rolling variance is exact to ~1e-10 of the price level, not of the
        # deviation (a deviation of 0.1 on 30,000 keeps 6 digits); no rule can see the rest.
        floor = 1e-10 * float(close.max()) if name == "stdev" else 0.0
        np.testing.assert_allclose(
            actual, expected, rtol=1e-9, atol=floor, equal_nan=True, err_msg=name
        )


def test_sma_of_read_only_series_reuses_block_sums_and_equals_a_fresh_computation() -> None:
    rng = np.random.default_rng(7)
    series = []
    for _ in range(3):
        values = 100 + np.cumsum(rng.normal(0, 1, 20_000))
        values[:3] = np.nan  # a warm-up: the block sums start at the first valid value
        frozen = values.view()
        frozen.flags.writeable = False
        series.append((values, frozen))
    for n in (1, 5, 60, 4096, 5000):
        for values, frozen in series:  # each series after another: kept sums are not mixed up
            for _ in range(2):
                fresh = indicators.sma(values.copy(), n)
                assert np.array_equal(indicators.sma(frozen, n), fresh, equal_nan=True)


def test_sma_of_a_writeable_series_sees_its_changes() -> None:
    values = np.arange(1.0, 10_001.0)
    before = indicators.sma(values, 10)
    values *= 2  # same array object, new values: nothing may be kept for it
    assert np.array_equal(indicators.sma(values, 10), before * 2, equal_nan=True)
