"""`algotcha data download|update|import|list` as a user runs them, against a local archive."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import engine
from algotcha import cli
from tests.fixtures.binance_archive import Archive, day_bars, kline_csv, month_end, months_back

TODAY = datetime.now(UTC).date()
M4, M3, M2, M1 = (months_back(TODAY, n) for n in (4, 3, 2, 1))
ROOT = Path(__file__).resolve().parents[2]
THREE_MONTHS = ("--from", f"{M4:%Y-%m}", "--to", f"{M2:%Y-%m}")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def environment(archive: Archive, store_dir: Path) -> dict[str, str]:
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return keep | {
        "DATA_DIR": str(store_dir),
        "MARKET_DATA_URL": archive.url,
        "LOG_LEVEL": "WARNING",
    }


def algotcha(archive: Archive, store_dir: Path, *args: str, max_file_bytes: int = 0) -> Run:
    def limit_file_size() -> None:  # a full disk, as a process sees it: writes fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    done = subprocess.run(
        [sys.executable, "-m", "algotcha", *args],
        env=environment(archive, store_dir),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        preexec_fn=limit_file_size if max_file_bytes else None,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def publish_three_months(archive: Archive, symbol: str = "BTCUSDT") -> list[str]:
    # one of each format the archive has used: header or not, milliseconds or microseconds
    return [
        archive.publish_month(symbol, M4, header=False, micro=False),
        archive.publish_month(symbol, M3, header=True, micro=False),
        archive.publish_month(symbol, M2, header=True, micro=True),
    ]


def minutes(first: date, last: date) -> int:
    return ((last - first).days + 1) * 24 * 60


def stored(store_dir: Path, symbol: str) -> engine.DatasetInfo | None:
    return engine.BarStore(store_dir).info(symbol)


def assert_three_months_stored(store_dir: Path) -> None:
    info = stored(store_dir, "BTCUSDT")
    assert info is not None and info.bars == minutes(M4, month_end(M2))


def test_a_fresh_download_of_several_months_stores_every_verified_bar(
    binance_archive: Archive, store_dir: Path
) -> None:
    paths = publish_three_months(binance_archive)
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    info = stored(store_dir, "BTCUSDT")
    assert info is not None and info.bars == minutes(M4, month_end(M2))
    assert info.start == datetime.combine(M4, datetime.min.time(), UTC)
    assert info.source is not None and info.source.kind == "download"
    assert info.source.url == f"{binance_archive.url}/data/spot"
    assert f"3 file(s) downloaded, 0 reused; {info.bars} bars" in run.out
    assert "BTCUSDT: 3/3 " in run.err  # plain progress lines when not on a terminal
    for path in paths:
        assert binance_archive.count(path) == 1 and binance_archive.count(f"{path}.CHECKSUM") == 1
    listed = algotcha(binance_archive, store_dir, "data", "list")
    assert f"downloaded from {binance_archive.url}/data/spot" in listed.out
    # the prices are the archive's, to the 8 decimals of its CSV
    loaded = engine.BarStore(store_dir).load("BTCUSDT", "1m", info.start, info.end)
    expected = day_bars(M3 + timedelta(days=4))
    assert loaded.loc[expected.index, "close"].tolist() == expected["close"].round(8).tolist()
    assert not (store_dir / ".downloads" / "spot" / "BTCUSDT").exists()


def test_an_interrupted_download_resumes_without_fetching_completed_files_again(
    binance_archive: Archive, store_dir: Path
) -> None:
    first, held, last = publish_three_months(binance_archive)
    release = binance_archive.held[held] = threading.Event()
    command = [sys.executable, "-m", "algotcha", "data", "download", "BTCUSDT",
               "--from", f"{M4:%Y-%m}", "--to", f"{M2:%Y-%m}"]  # fmt: skip
    process = subprocess.Popen(command, env=environment(binance_archive, store_dir), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    staging = store_dir / ".downloads" / "spot" / "BTCUSDT"
    deadline = time.monotonic() + 60
    while len(list(staging.glob("*.zip"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)  # a power cut: no clean-up of any kind
    process.wait(10)
    assert sorted(p.name for p in staging.glob("*.zip")) == [
        first.rsplit("/", 1)[1],
        last.rsplit("/", 1)[1],
    ]
    assert stored(store_dir, "BTCUSDT") is None  # nothing half-done is visible to backtests
    release.set()
    del binance_archive.held[held]
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    assert "1 file(s) downloaded, 2 reused" in run.out
    assert binance_archive.count(first) == 1 and binance_archive.count(last) == 1
    assert_three_months_stored(store_dir)


def start_held_download(
    archive: Archive, store_dir: Path
) -> tuple[subprocess.Popen[bytes], threading.Event, str]:
    """A download of three months, started once its middle month, held, is in flight."""
    _, held, _ = publish_three_months(archive)
    release = archive.held[held] = threading.Event()
    command = [sys.executable, "-m", "algotcha", "data", "download", "BTCUSDT", *THREE_MONTHS]
    process = subprocess.Popen(command, env=environment(archive, store_dir), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while archive.count(held) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    return process, release, held


def test_ctrl_c_lets_the_files_in_flight_finish_and_a_second_one_stops_at_once(
    binance_archive: Archive, store_dir: Path
) -> None:
    """Given a download waiting on a file in flight, when Ctrl-C comes, then it waits for that
    file (verified files are kept for the rerun); when Ctrl-C comes again, it stops at once."""
    process, release, held = start_held_download(binance_archive, store_dir)
    staging = store_dir / ".downloads" / "spot" / "BTCUSDT"
    deadline = time.monotonic() + 60
    while len(list(staging.glob("*.zip"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(1)  # the held file is still in flight
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == -signal.SIGINT  # the default action: no clean-up, no traceback
    _, err = process.communicate()
    assert b"event=download_stopping" in err and b"Traceback" not in err
    assert stored(store_dir, "BTCUSDT") is None
    release.set()
    del binance_archive.held[held]
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    assert "1 file(s) downloaded, 2 reused" in run.out
    assert_three_months_stored(store_dir)


def test_ctrl_c_once_ends_a_download_with_the_interrupted_status(
    binance_archive: Archive, store_dir: Path
) -> None:
    process, release, _ = start_held_download(binance_archive, store_dir)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    release.set()  # the file in flight arrives; nothing more is fetched or stored
    out, err = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert err.decode().endswith("algotcha: interrupted\n") and b"Traceback" not in err
    assert out == b""
    assert stored(store_dir, "BTCUSDT") is None


def test_a_second_download_of_the_same_symbol_waits_its_turn(
    binance_archive: Archive, store_dir: Path
) -> None:
    first, release, _ = start_held_download(binance_archive, store_dir)
    second = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    release.set()
    assert first.wait(120) == 0
    assert second.code == 2
    assert "another download of BTCUSDT is running" in second.err
    assert_three_months_stored(store_dir)


def test_a_network_cut_in_the_middle_of_a_file_is_retried(
    binance_archive: Archive, store_dir: Path
) -> None:
    _, cut, _ = publish_three_months(binance_archive)
    binance_archive.cut_once.add(cut)
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    assert binance_archive.count(cut) == 2
    assert_three_months_stored(store_dir)


def test_a_checksum_mismatch_is_refused_and_nothing_is_stored(
    binance_archive: Archive, store_dir: Path
) -> None:
    _, bad, _ = publish_three_months(binance_archive)
    binance_archive.corrupt_checksum(bad)
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 2
    name = bad.rsplit("/", 1)[1]
    assert f"{name}: checksum mismatch" in run.err and "nothing was stored" in run.err
    assert stored(store_dir, "BTCUSDT") is None
    assert not (store_dir / ".downloads" / "spot" / "BTCUSDT" / name).exists()


def test_a_verified_file_with_the_wrong_columns_is_refused_and_nothing_is_stored(
    binance_archive: Archive, store_dir: Path
) -> None:
    first, _, _ = publish_three_months(binance_archive)
    name = first.rsplit("/", 1)[1]
    eleven_columns = "1704067200000,1,2,0.5,1.5,10,1704067259999,15,3,5,7\n"
    binance_archive.publish_file(first, name, eleven_columns)  # with its matching CHECKSUM
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 2
    assert f"{name} is not a recognised CSV" in run.err and "nothing was stored" in run.err
    assert stored(store_dir, "BTCUSDT") is None
    assert not (store_dir / ".downloads" / "spot" / "BTCUSDT" / name).exists()


def test_a_full_disk_stores_nothing_and_a_rerun_finishes_the_job(
    binance_archive: Archive, store_dir: Path
) -> None:
    publish_three_months(binance_archive)
    run = algotcha(
        binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS,
        max_file_bytes=1_000_000,
    )  # fmt: skip
    assert run.code == 2
    assert "cannot write" in run.err and "nothing was stored" in run.err
    assert stored(store_dir, "BTCUSDT") is None
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    assert_three_months_stored(store_dir)


def test_a_month_missing_from_the_archive_is_reported_and_skipped(
    binance_archive: Archive, store_dir: Path
) -> None:
    publish_three_months(binance_archive)
    run = algotcha(
        binance_archive,
        store_dir,
        "data",
        "download",
        "BTCUSDT",
        "--from",
        f"{months_back(TODAY, 5):%Y-%m}",
        "--to",
        f"{M2:%Y-%m}",
    )
    assert run.code == 0, run.err
    assert (
        f"not in the archive (404), skipped: BTCUSDT-1m-{months_back(TODAY, 5):%Y-%m}.zip"
        in run.out
    )
    assert_three_months_stored(store_dir)


def test_an_unknown_symbol_is_refused_and_nothing_is_stored(
    binance_archive: Archive, store_dir: Path
) -> None:
    publish_three_months(binance_archive)
    run = algotcha(binance_archive, store_dir, "data", "download", "NOPEUSDT", *THREE_MONTHS)
    assert run.code == 2
    assert "the archive has no 1-minute bars of NOPEUSDT on the spot market" in run.err
    assert algotcha(binance_archive, store_dir, "data", "list").out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2999-01"], "--from 2999-01-01 is in the future"),
        (["--from", "2024-06", "--to", "2024-01"], "--from 2024-06-01 is after --to 2024-01-31"),
        (["--from", "June 2024"], "'June 2024' is not a month (2021-01) or a day (2021-01-15)"),
    ],
)
def test_a_bad_range_is_refused_with_a_clear_message(
    binance_archive: Archive, store_dir: Path, args: list[str], message: str
) -> None:
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *args)
    assert run.code == 2 and message in run.err
    assert binance_archive.requests == []


def test_update_appends_the_new_days_and_backtests_like_an_import_at_once(
    binance_archive: Archive, store_dir: Path, tmp_path: Path
) -> None:
    paths = publish_three_months(binance_archive)
    run = algotcha(binance_archive, store_dir, "data", "download", "BTCUSDT", *THREE_MONTHS)
    assert run.code == 0, run.err
    # Last month is not published as one file yet, only its days; this month has its days too.
    days = [M1 + timedelta(days=d) for d in range((TODAY - M1).days)]
    paths += [binance_archive.publish_day("BTCUSDT", day, micro=day.day % 2 == 0) for day in days]
    run = algotcha(binance_archive, store_dir, "data", "update")
    assert run.code == 0, run.err
    info = stored(store_dir, "BTCUSDT")
    yesterday = TODAY - timedelta(days=1)
    assert info is not None and info.bars == minutes(M4, yesterday)
    assert info.end == datetime.combine(TODAY, datetime.min.time(), UTC)
    for path in paths[:3]:
        assert binance_archive.count(path) == 1  # the stored months were not fetched again
    again = algotcha(binance_archive, store_dir, "data", "update", "BTCUSDT")
    assert again.code == 0 and "already up to date" in again.out
    # The same zips imported at once give the same backtest.
    zips = []
    for path in paths:
        zips.append(tmp_path / path.rsplit("/", 1)[1])
        zips[-1].write_bytes(binance_archive.files[path])
    imported = algotcha(binance_archive, store_dir, "data", "import", "ONCE", *map(str, zips))
    assert imported.code == 0, imported.err
    results = []
    for symbol in ("BTCUSDT", "ONCE"):
        payload = tmp_path / f"{symbol}.json"
        payload.write_text(json.dumps({
            "strategyName": "SMA cross", "symbol": symbol, "timeframe": "15m",
            "start": f"{M4}T00:00:00Z", "end": f"{TODAY}T00:00:00Z", "initialCapital": 10000,
            "feeRate": 0.001, "longEntry": "crossover(sma(close, 20), sma(close, 50))",
            "longExit": "crossunder(sma(close, 20), sma(close, 50))",
        }))  # fmt: skip
        done = algotcha(binance_archive, store_dir, "backtest", "run", str(payload), "--json")
        assert done.code == 0, done.err
        result = json.loads(done.out)
        del result["elapsedMs"]
        results.append(result)
    assert results[0]["metrics"]["trades"] > 10
    assert results[0] == results[1]


def test_usd_m_futures_come_from_their_own_part_of_the_archive(
    binance_archive: Archive, store_dir: Path
) -> None:
    paths = [binance_archive.publish_month("BTCUSDT", month, market="um") for month in (M4, M3)]
    window = ("--from", f"{M4:%Y-%m}", "--to", f"{M3:%Y-%m}")
    run = algotcha(
        binance_archive, store_dir, "data", "download", "BTCUSDT", *window, "--market", "um"
    )
    assert run.code == 0, run.err
    assert all(path.startswith("data/futures/um/monthly/klines/BTCUSDT/1m/") for path in paths)
    assert [binance_archive.count(path) for path in paths] == [1, 1]
    info = stored(store_dir, "BTCUSDT")
    assert info is not None and info.bars == minutes(M4, month_end(M3))
    assert info.source is not None and info.source.url == f"{binance_archive.url}/data/futures/um"


def test_update_refuses_a_dataset_that_was_not_downloaded(
    binance_archive: Archive, store_dir: Path
) -> None:
    assert algotcha(binance_archive, store_dir, "data", "synth", "SYNTH", "--days", "2").code == 0
    run = algotcha(binance_archive, store_dir, "data", "update", "SYNTH")
    assert run.code == 2 and "SYNTH was not downloaded from the archive (synthetic)" in run.err
    listed = algotcha(binance_archive, store_dir, "data", "list")
    assert "synthetic, not market data" in listed.out


def test_import_append_adds_zips_and_refuses_an_overlap_that_disagrees(
    binance_archive: Archive, store_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.zip"
    second = tmp_path / "second.csv"
    first.write_bytes(binance_archive.files[binance_archive.publish_day("ETHUSDT", M3)])
    day = M3 + timedelta(days=1)
    second.write_text(kline_csv(day_bars(day), header=False, micro=False))
    assert algotcha(binance_archive, store_dir, "data", "import", "ETHUSDT", str(first)).code == 0
    run = algotcha(binance_archive, store_dir, "data", "import", "ETHUSDT", str(second), "--append")
    assert run.code == 0, run.err
    info = stored(store_dir, "ETHUSDT")
    assert info is not None and info.bars == 2 * 24 * 60
    assert info.source is not None and info.source.files == ("first.zip", "second.csv")
    changed = day_bars(day).iloc[100:200].copy()
    changed["close"] = changed["open"]
    changed["high"] = changed[["open", "high"]].max(axis=1)
    changed["low"] = changed[["open", "low"]].min(axis=1)
    third = tmp_path / "third.csv"
    third.write_text(kline_csv(changed, header=True, micro=True))
    run = algotcha(binance_archive, store_dir, "data", "import", "ETHUSDT", str(third), "--append")
    assert run.code == 2
    moment = pd.Timestamp(changed.index[0]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"differ at {moment}" in run.err
    assert stored(store_dir, "ETHUSDT") == info


def test_a_corrupt_zip_is_refused_naming_it(
    binance_archive: Archive, store_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "BTCUSDT-1m-2024-01.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    run = algotcha(binance_archive, store_dir, "data", "import", "BTCUSDT", str(broken))
    assert run.code == 2 and "BTCUSDT-1m-2024-01.zip is not a readable zip file" in run.err
    assert stored(store_dir, "BTCUSDT") is None
