"""BarStore's monthly partitions: append rewrites only touched months, overlaps must agree,
the single-file layout keeps loading and is migrated on the next write, sources are kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import BarStore, DataError, DatasetInfo, DatasetSource
from engine.synth import synth_bars

JAN = datetime(2024, 1, 1, tzinfo=UTC)
DAY = 24 * 60
MINUTES_JAN_TO_MAR = (31 + 29 + 31) * DAY


@pytest.fixture
def bar_store(tmp_path: Path) -> BarStore:
    return BarStore(tmp_path / "data")


def partition_files(bar_store: BarStore, symbol: str) -> dict[str, str]:
    manifest = json.loads((bar_store.data_dir / symbol / "dataset.json").read_text())
    return {partition["month"]: partition["file"] for partition in manifest["partitions"]}


def test_a_dataset_is_stored_as_one_file_per_month(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(JAN, MINUTES_JAN_TO_MAR))
    files = partition_files(bar_store, "X")
    assert sorted(files) == ["2024-01", "2024-02", "2024-03"]
    on_disk = sorted(path.name for path in (bar_store.data_dir / "X").glob("*.parquet"))
    assert on_disk == sorted(files.values())
    assert pq.read_metadata(bar_store.data_dir / "X" / files["2024-02"]).num_rows == 29 * DAY


def test_appending_a_day_rewrites_only_its_month(bar_store: BarStore) -> None:
    everything = synth_bars(JAN, MINUTES_JAN_TO_MAR + DAY)
    bar_store.write("X", everything.iloc[:MINUTES_JAN_TO_MAR])
    before = partition_files(bar_store, "X")
    info = bar_store.append("X", everything.iloc[MINUTES_JAN_TO_MAR:])
    after = partition_files(bar_store, "X")
    assert {month: after[month] for month in ("2024-01", "2024-02", "2024-03")} == before
    assert set(after) == {"2024-01", "2024-02", "2024-03", "2024-04"}
    assert info == DatasetInfo("X", JAN, JAN + timedelta(minutes=len(everything)), len(everything))
    loaded = bar_store.load("X", "1m", JAN, JAN + timedelta(days=400))
    pd.testing.assert_frame_equal(loaded, everything, check_freq=False)


def test_an_append_inside_a_month_merges_with_the_stored_bars(bar_store: BarStore) -> None:
    everything = synth_bars(JAN, 3 * DAY)
    bar_store.write("X", everything.iloc[: 2 * DAY])
    old_file = partition_files(bar_store, "X")["2024-01"]
    # overlapping by half a day, agreeing bar for bar
    bar_store.append("X", everything.iloc[DAY + DAY // 2 :])
    assert partition_files(bar_store, "X")["2024-01"] != old_file
    assert not (bar_store.data_dir / "X" / old_file).exists()
    loaded = bar_store.load("X", "1m", JAN, JAN + timedelta(days=3))
    pd.testing.assert_frame_equal(loaded, everything, check_freq=False)


def test_an_overlap_that_disagrees_is_refused_naming_the_first_differing_bar(
    bar_store: BarStore,
) -> None:
    everything = synth_bars(JAN, 2 * DAY)
    bar_store.write("X", everything.iloc[:DAY])
    changed = everything.iloc[DAY - 10 :].copy()
    changed.iloc[3, changed.columns.get_loc("close")] = changed["close"].iloc[3] * 1.0001
    changed.iloc[3, changed.columns.get_loc("high")] = (
        changed[["open", "close", "high"]].iloc[3].max()
    )
    files = partition_files(bar_store, "X")
    with pytest.raises(DataError) as caught:
        bar_store.append("X", changed)
    assert "differ at 2024-01-01T23:53:00Z" in caught.value.message
    assert "close stored" in caught.value.message
    assert partition_files(bar_store, "X") == files
    assert bar_store.info("X") == DatasetInfo("X", JAN, JAN + timedelta(days=1), DAY)


def test_invalid_bars_are_refused_before_anything_is_written(bar_store: BarStore) -> None:
    bar_store.write("X", synth_bars(JAN, DAY))
    bad = synth_bars(JAN + timedelta(days=1), 10)
    bad.iloc[4, bad.columns.get_loc("low")] = -1.0
    with pytest.raises(DataError, match="low must be above 0"):
        bar_store.append("X", bad)
    assert bar_store.info("X") == DatasetInfo("X", JAN, JAN + timedelta(days=1), DAY)


def test_a_single_file_dataset_keeps_loading_and_becomes_partitions_on_append(
    bar_store: BarStore,
) -> None:
    everything = synth_bars(JAN, 40 * DAY)
    bar_store.data_dir.mkdir(parents=True)
    times = everything.index[: 35 * DAY]
    legacy = pa.table(
        {"time": pa.array(times, pa.timestamp("ms", tz="UTC"))}
        | {name: everything[name].to_numpy()[: 35 * DAY] for name in everything.columns}
    )
    pq.write_table(legacy, bar_store.data_dir / "OLD.parquet")
    assert bar_store.info("OLD") == DatasetInfo("OLD", JAN, JAN + timedelta(days=35), 35 * DAY)
    assert len(bar_store.load("OLD", "1d", JAN, JAN + timedelta(days=35))) == 35
    bar_store.append("OLD", everything.iloc[34 * DAY :])
    assert not (bar_store.data_dir / "OLD.parquet").exists()
    assert sorted(partition_files(bar_store, "OLD")) == ["2024-01", "2024-02"]
    assert [info.symbol for info in bar_store.datasets()] == ["OLD"]
    loaded = bar_store.load("OLD", "1m", JAN, JAN + timedelta(days=40))
    pd.testing.assert_frame_equal(loaded, everything, check_freq=False)


def test_the_source_is_recorded_and_kept_by_an_append_without_one(bar_store: BarStore) -> None:
    updated = datetime(2024, 5, 1, 12, tzinfo=UTC)
    source = DatasetSource("import", ("a.csv",), None, updated)
    bar_store.write("X", synth_bars(JAN, DAY), source=source)
    bar_store.append("X", synth_bars(JAN, DAY))
    assert bar_store.info("X") == DatasetInfo("X", JAN, JAN + timedelta(days=1), DAY, source)
    assert BarStore(bar_store.data_dir).datasets()[0].source == source


def test_a_resampled_load_follows_an_append(bar_store: BarStore) -> None:
    everything = synth_bars(JAN, 2 * DAY)
    bar_store.write("X", everything.iloc[:DAY])
    assert len(bar_store.load("X", "1h", JAN, JAN + timedelta(days=2))) == 24
    bar_store.append("X", everything.iloc[DAY:])
    assert len(BarStore(bar_store.data_dir).load("X", "1h", JAN, JAN + timedelta(days=2))) == 48
    assert len(bar_store.load("X", "1h", JAN, JAN + timedelta(days=2))) == 48


def test_files_left_by_an_interrupted_write_are_never_read_and_are_cleaned_up(
    bar_store: BarStore,
) -> None:
    bar_store.write("X", synth_bars(JAN, DAY))
    stray = bar_store.data_dir / "X" / "2024-01.99.parquet"
    stray.write_bytes(b"half a file")
    assert bar_store.info("X") == DatasetInfo("X", JAN, JAN + timedelta(days=1), DAY)
    assert len(bar_store.load("X", "1m", JAN, JAN + timedelta(days=1))) == DAY
    bar_store.append("X", synth_bars(JAN, DAY))
    assert not stray.exists()
