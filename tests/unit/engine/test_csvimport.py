"""CSV import of Binance kline dumps and generic files, and synthetic bars."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import BarStore, DataError
from engine.csvimport import read_csv
from engine.synth import synth_bars
from tests.unit.engine.bartables import START

# Two rows of a real BTCUSDT-1m-2024-01.csv (milliseconds) and the 2025 layout (microseconds).
BINANCE_MS = (
    "1704067200000,42283.58,42298.62,42283.57,42298.61,35.92724,1704067259999,1519419.5,1327,"
    "23.26,983765.3,0\n"
    "1704067260000,42298.62,42320.00,42298.61,42320.00,21.07084,1704067319999,891368.1,1024,"
    "13.8,583795.8,0\n"
)
BINANCE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore\n"
)


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_a_binance_dump_in_milliseconds(tmp_path: Path) -> None:
    frame = read_csv(write(tmp_path, BINANCE_MS))
    assert list(frame.index) == [START, START + timedelta(minutes=1)]
    assert frame.iloc[0].tolist() == [42283.58, 42298.62, 42283.57, 42298.61, 35.92724]
    BarStore(tmp_path).write("BTCUSDT", frame)


def test_reads_a_binance_dump_in_microseconds_with_a_header(tmp_path: Path) -> None:
    text = BINANCE_HEADER + BINANCE_MS.replace("1704067200000,", "1704067200000000,").replace(
        "1704067260000,", "1704067260000000,"
    )
    frame = read_csv(write(tmp_path, text))
    assert list(frame.index) == [START, START + timedelta(minutes=1)]


def test_unsorted_rows_are_sorted(tmp_path: Path) -> None:
    lines = BINANCE_MS.splitlines()
    frame = read_csv(write(tmp_path, lines[1] + "\n" + lines[0] + "\n"))
    assert frame.index.is_monotonic_increasing


@pytest.mark.parametrize(
    "stamps",
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
        ("2024-01-01 00:00:00", "2024-01-01 00:01:00"),
        ("2024-01-01T01:00:00+01:00", "2024-01-01T01:01:00+01:00"),
        ("1704067200", "1704067260"),
        ("1704067200000", "1704067260000"),
        ("1704067200000000", "1704067260000000"),
        ("1704067200000000000", "1704067260000000000"),
    ],
)
def test_reads_a_generic_file_with_iso_or_epoch_timestamps(
    tmp_path: Path, stamps: tuple[str, str]
) -> None:
    text = "Volume,timestamp,open,high,low,close,extra\n" + "".join(
        f"{i + 1},{stamp},10,11,9,10.5,x\n" for i, stamp in enumerate(stamps)
    )
    frame = read_csv(write(tmp_path, text))
    assert list(frame.index) == [START, START + timedelta(minutes=1)]
    assert frame["volume"].tolist() == [1.0, 2.0]
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bars.csv is empty"),
        ("date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n", "not a recognised CSV"),
        ("1704067200000,1,1,1,1,1\n", "not a recognised CSV"),
        ("timestamp,open,high,low,close\n1,1,1,1,1\n", "not a recognised CSV"),
        ("timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "must be ISO 8601"),
        ("timestamp,open,high,low,close,volume\n1704067200,a,1,1,1,1\n", "must be numbers"),
        (BINANCE_MS.replace("1704067260000,", "soon,"), "open times must be whole numbers"),
        ('timestamp,open\n"unclosed,1\n', "not a recognised CSV"),
        ('timestamp,open,high,low,close,volume\n1,2,3,4,5,6,7,8\n"x', "cannot parse the CSV"),
    ],
)
def test_refuses_anything_else_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataError) as caught:
        read_csv(write(tmp_path, text))
    assert message in caught.value.message


def test_a_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")


def test_synth_bars_are_deterministic_and_valid(tmp_path: Path) -> None:
    start = datetime(2024, 3, 1, 12, 30, 45, tzinfo=UTC)
    first = synth_bars(start, 1000, seed=9)
    again = synth_bars(start, 1000, seed=9)
    other = synth_bars(start, 1000, seed=10)
    assert first.equals(again) and not first.equals(other)
    assert first.index[0] == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert first["open"].iloc[0] == 30000.0
    assert np.array_equal(first["open"].to_numpy()[1:], first["close"].to_numpy()[:-1])
    BarStore(tmp_path).write("SYNTH", first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": START.replace(tzinfo=None), "minutes": 3}, "time zone"),
        ({"start": START, "minutes": 0}, "at least 1"),
        ({"start": START, "minutes": 3, "start_price": 0.0}, "above 0"),
    ],
)
def test_synth_bars_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        synth_bars(**kwargs)


def zipped(tmp_path: Path, members: dict[str, str], name: str = "BTCUSDT-1m-2024-01.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


def test_reads_a_binance_zip_as_its_csv(tmp_path: Path) -> None:
    frame = read_csv(zipped(tmp_path, {"BTCUSDT-1m-2024-01.csv": BINANCE_HEADER + BINANCE_MS}))
    assert list(frame.index) == [START, START + timedelta(minutes=1)]
    assert frame.iloc[1].tolist() == [42298.62, 42320.0, 42298.61, 42320.0, 21.07084]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not really a zip", "not a readable zip file"),
        ({"a.csv": BINANCE_MS, "b.csv": BINANCE_MS}, "exactly one .csv file, not a.csv, b.csv"),
        ({"notes.txt": "hello"}, "exactly one .csv file, not notes.txt"),
        ({"x.csv": "1704067200000,1,2,0.5,1.5,10,0,0,0,0,0\n"}, "not a recognised CSV"),
    ],
)
def test_a_bad_zip_is_a_data_error_naming_the_file(
    tmp_path: Path, content: bytes | dict[str, str], message: str
) -> None:
    if isinstance(content, bytes):
        path = tmp_path / "broken.zip"
        path.write_bytes(content)
    else:
        path = zipped(tmp_path, content, name="broken.zip")
    with pytest.raises(DataError, match=r"broken\.zip") as caught:
        read_csv(path)
    assert message in caught.value.message
