"""The archive layout: which files cover a range, their names and paths, CHECKSUM parsing."""

from __future__ import annotations

from datetime import date

import pytest

from algotcha.marketdata.archive import ArchiveFile, describe, parse_checksum, plan

TODAY = date(2024, 6, 10)


def names(files: list[ArchiveFile]) -> list[str]:
    return [file.name for file in files]


def test_whole_past_months_are_monthly_files_and_this_month_is_daily() -> None:
    files = plan("BTCUSDT", "spot", date(2024, 4, 1), date(2024, 6, 9), TODAY)
    assert names(files) == [
        "BTCUSDT-1m-2024-04.zip",
        "BTCUSDT-1m-2024-05.zip",
        *(f"BTCUSDT-1m-2024-06-{day:02d}.zip" for day in range(1, 10)),
    ]


def test_a_partial_month_is_fetched_day_by_day() -> None:
    files = plan("ETHUSDT", "spot", date(2024, 2, 27), date(2024, 3, 31), TODAY)
    assert names(files) == [
        "ETHUSDT-1m-2024-02-27.zip",
        "ETHUSDT-1m-2024-02-28.zip",
        "ETHUSDT-1m-2024-02-29.zip",
        "ETHUSDT-1m-2024-03.zip",
    ]
    assert (files[-1].first_day, files[-1].last_day) == (date(2024, 3, 1), date(2024, 3, 31))


def test_paths_follow_the_archive_for_spot_and_usd_m_futures() -> None:
    monthly = ArchiveFile("BTCUSDT", "spot", date(2024, 1, 1), date(2024, 1, 31), monthly=True)
    daily = ArchiveFile("BTCUSDT", "um", date(2024, 1, 5), date(2024, 1, 5), monthly=False)
    assert monthly.path == "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip"
    assert daily.path == "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip"


def test_a_checksum_file_is_read_and_checked_against_the_file_name() -> None:
    digest = "ab" * 32
    assert parse_checksum(f"{digest}  BTCUSDT-1m-2024-01.zip\n", "BTCUSDT-1m-2024-01.zip") == digest
    assert parse_checksum(digest.upper(), "x.zip") == digest
    with pytest.raises(ValueError, match="does not start with a SHA-256"):
        parse_checksum("<html>not found</html>", "x.zip")
    with pytest.raises(ValueError, match=r"is for 'other\.zip'"):
        parse_checksum(f"{digest}  other.zip", "x.zip")


def test_missing_files_are_described_with_runs_of_days_shortened() -> None:
    files = plan("BTCUSDT", "spot", date(2024, 4, 1), date(2024, 6, 9), TODAY)
    files += plan("BTCUSDT", "spot", date(2024, 3, 30), date(2024, 3, 31), TODAY)
    assert describe(files) == (
        "BTCUSDT-1m-2024-03-30.zip, BTCUSDT-1m-2024-03-31.zip, BTCUSDT-1m-2024-04.zip, "
        "BTCUSDT-1m-2024-05.zip, "
        "BTCUSDT-1m-2024-06-01.zip … BTCUSDT-1m-2024-06-09.zip (9 files)"
    )
