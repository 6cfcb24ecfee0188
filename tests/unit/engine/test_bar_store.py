"""BarStore: validated writes, cheap listing, range loads and the resample cache."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import BarStore, DataError, DatasetInfo, resample, store
from engine.synth import synth_bars
from tests.unit.engine.bartables import START, bars

DAY = 24 * 60


@pytest.fixture
def bar_store(tmp_path: Path) -> BarStore:
    return BarStore(tmp_path / "data")


def test_write_then_list_and_load_round_trips(bar_store: BarStore) -> None:
    frame = synth_bars(START, 2 * DAY)
    info = bar_store.write("BTCUSDT", frame)
    assert info == DatasetInfo("BTCUSDT", START, START + timedelta(days=2), 2 * DAY)
    assert bar_store.datasets() == [info]
    assert bar_store.info("BTCUSDT") == info
    loaded = bar_store.load("BTCUSDT", "1m", START, START + timedelta(days=2))
    pd.testing.assert_frame_equal(loaded, frame, check_freq=False)
    assert str(loaded.index.dtype) == "datetime64[ms, UTC]"


def test_load_keeps_bars_wholly_inside_the_range(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(START, 2 * DAY))
    start = START + timedelta(hours=1, minutes=30)
    end = START + timedelta(hours=5, minutes=59)
    minutes = bar_store.load("X", "1m", start, end)
    assert minutes.index[0] == start and minutes.index[-1] == end - timedelta(minutes=1)
    hours = bar_store.load("X", "1h", start, end)
    assert list(hours.index.hour) == [2, 3, 4]
    assert bar_store.load("X", "1d", START, START + timedelta(hours=23)).empty


def test_resampled_loads_are_cached_on_disk_and_in_memory(
    bar_store: BarStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bar_store.write("X", synth_bars(START, DAY))
    calls: list[int] = []
    original = resample.aggregate

    def counting(*args: object) -> object:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "aggregate", counting)
    first = bar_store.load("X", "5m", START, START + timedelta(days=1))
    again = bar_store.load("X", "5m", START, START + timedelta(days=1))
    fresh = BarStore(bar_store.data_dir).load("X", "5m", START, START + timedelta(days=1))
    assert len(calls) == 1
    assert (bar_store.data_dir / ".cache" / "X.5m.parquet").is_file()
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, fresh)


def test_rewriting_a_symbol_invalidates_its_cache(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(START, DAY, seed=1))
    before = bar_store.load("X", "1h", START, START + timedelta(days=1))
    other = BarStore(bar_store.data_dir)
    other.load("X", "1h", START, START + timedelta(days=1))
    bar_store.write("X", synth_bars(START, DAY, seed=2))
    after = other.load("X", "1h", START, START + timedelta(days=1))
    assert not np.allclose(before["close"], after["close"])
    assert np.allclose(
        after["close"], bar_store.load("X", "1h", START, START + timedelta(1))["close"]
    )


def test_an_unwritable_cache_still_serves(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(START, DAY))
    (bar_store.data_dir / ".cache").write_text("not a directory")
    assert len(bar_store.load("X", "4h", START, START + timedelta(days=1))) == 6


def test_a_parquet_file_from_another_tool_is_listed(bar_store: BarStore) -> None:
    bar_store.data_dir.mkdir(parents=True)
    times = pa.array(np.arange(3) * 60_000 + 1_704_067_200_000, pa.timestamp("ms", tz="UTC"))
    table = pa.table(
        {"time": times}
        | {c: [1.0, 2.0, 3.0] for c in ("open", "close", "volume")}
        | {"high": [1.0, 2.0, 3.0], "low": [1.0, 2.0, 3.0]}
    )
    pq.write_table(table, bar_store.data_dir / "OTHER.parquet")
    (bar_store.data_dir / "not a symbol.parquet").write_bytes(b"")
    assert bar_store.datasets() == [DatasetInfo("OTHER", START, START + timedelta(minutes=3), 3)]


def test_unknown_and_invalid_symbols(bar_store: BarStore) -> None:
    assert bar_store.datasets() == []
    assert bar_store.info("NOPE") is None
    assert bar_store.info("../../etc/passwd") is None
    with pytest.raises(DataError) as caught:
        bar_store.load("NOPE", "1m", START, START + timedelta(1))
    assert caught.value.field == "symbol"
    for bad in ("../../etc/passwd", "btc", "A" * 31, "A/B", "", "A.B"):
        with pytest.raises(DataError) as caught:
            bar_store.write(bad, synth_bars(START, 10))
        assert caught.value.field == "symbol"
    with pytest.raises(DataError) as caught:
        bar_store.load("NOPE", "7m", START, START + timedelta(1))
    assert caught.value.field == "timeframe"


def with_row(row: int, **values: float) -> pd.DataFrame:
    frame = synth_bars(START, 5)
    for column, value in values.items():
        frame.iloc[row, frame.columns.get_loc(column)] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (with_row(2, open=np.nan), "bar at 2024-01-01T00:02:00Z: open is missing or infinite"),
        (with_row(1, volume=np.inf), "volume is missing or infinite"),
        (with_row(3, low=-1.0), "low must be above 0"),
        (with_row(3, close=0.0), "close must be above 0 (open=30000.36442227706,"),
        (with_row(0, volume=-1.0), "volume must not be negative"),
        (with_row(4, high=1.0), "high is below open or close"),
        (with_row(4, low=1e9), "low is above open or close"),
        (synth_bars(START, 5).iloc[::-1], "increase strictly"),
        (pd.concat([synth_bars(START, 2), synth_bars(START, 2)]), "row 2 at 2024-01-01T00:00:00Z"),
        (synth_bars(START, 5).tz_localize(None), "timezone-aware UTC"),
        (
            synth_bars(START + timedelta(seconds=30), 2).set_axis(
                pd.DatetimeIndex(["2024-01-01T00:00:30Z", "2024-01-01T00:01:30Z"]).as_unit("ms")
            ),
            "whole minutes; 2024-01-01T00:00:30Z",
        ),
        (synth_bars(START, 5).drop(columns="low"), "lack the column(s) low"),
        (synth_bars(START, 5)[0:0], "no bars"),
        (synth_bars(START, 5).reset_index(), "indexed by UTC times"),
        (synth_bars(START, 2).astype({"open": object}).assign(open="x"), "must be numbers"),
    ],
)
def test_write_refuses_invalid_bars(bar_store: BarStore, frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError) as caught:
        bar_store.write("X", frame)
    assert message in caught.value.message
    assert bar_store.info("X") is None


def test_bars_in_another_zone_are_stored_in_utc(bar_store: BarStore) -> None:
    frame = bars("10 11 9 10\n10 12 9 11")
    frame.index = frame.index.tz_convert("Asia/Tokyo")
    assert bar_store.write("X", frame).start == START


def test_load_refuses_naive_times(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(START, 5))
    with pytest.raises(DataError, match="time zone"):
        bar_store.load("X", "1m", START.replace(tzinfo=None), START + timedelta(1))
