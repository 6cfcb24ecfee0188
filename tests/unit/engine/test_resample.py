"""Resampling 1-minute bars: OHLCV aggregation, epoch-aligned left-labelled bins, gaps."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from engine import DataError
from engine.resample import resample
from engine.synth import synth_bars
from tests.unit.engine.bartables import START, bars


def test_five_minute_bins_aggregate_first_max_min_last_sum() -> None:
    frame = bars(
        """
        10 12  9 11 1
        11 15 10 14 2
        14 14  8  9 3
        9  10  9 10 4
        10 11 10 11 5
        11 13 11 12 6
        """
    )
    result = resample(frame, "5m")
    assert list(result.index) == [START, START + timedelta(minutes=5)]
    assert result.iloc[0].tolist() == [10, 15, 8, 11, 15]
    assert result.iloc[1].tolist() == [11, 13, 11, 12, 6]


def test_bins_are_aligned_to_the_epoch_and_labelled_by_their_left_edge() -> None:
    frame = synth_bars(START + timedelta(hours=1, minutes=7), 9 * 60)
    four_hours = resample(frame, "4h")
    assert [t.hour for t in four_hours.index] == [0, 4, 8]
    assert four_hours["open"].iloc[0] == frame["open"].iloc[0]
    days = resample(frame, "1d")
    assert list(days.index) == [START]


def test_empty_bins_are_dropped() -> None:
    frame = pd.concat([synth_bars(START, 30), synth_bars(START + timedelta(hours=3), 30)])
    result = resample(frame, "15m")
    assert [t.strftime("%H:%M") for t in result.index] == ["00:00", "00:15", "03:00", "03:15"]


@pytest.mark.parametrize("timeframe", ["5m", "15m", "30m", "1h", "4h", "1d"])
def test_matches_pandas_resample(timeframe: str) -> None:
    frame = synth_bars(START + timedelta(minutes=13), 3 * 24 * 60 + 17, seed=3)
    frame = frame.drop(frame.index[100:400])  # a gap
    rule = {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1D"}
    naive = frame.tz_convert(None)  # pandas honours origin="epoch" for days only when naive
    expected = (
        naive.resample(rule[timeframe], label="left", closed="left", origin="epoch")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
        .tz_localize("UTC")
    )
    result = resample(frame, timeframe)
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert (result.index == expected.index).all()


def test_one_minute_is_unchanged_and_unknown_timeframes_refused() -> None:
    frame = synth_bars(START, 10)
    pd.testing.assert_frame_equal(resample(frame, "1m"), frame)
    with pytest.raises(DataError) as caught:
        resample(frame, "7m")
    assert caught.value.field == "timeframe"
