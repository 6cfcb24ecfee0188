"""Market data use cases: download from the archive, update to yesterday, import files.

Each one publishes its bars in one BarStore change or not at all: a failed file, a bad zip or
bars that disagree with the stored ones leave the dataset as it was (verified downloads stay
staged under DATA_DIR/.downloads, so a rerun fetches only what is still missing).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx
import pandas as pd

import engine
from algotcha.errors import MarketDataError
from algotcha.marketdata import archive, fetch
from algotcha.progress import Progress
from engine import csvimport
from engine.request import check_symbol

logger = logging.getLogger(__name__)

STAGING_DIR = ".downloads"
TIMEOUT_S = 30.0
# A failure report names this many files; the rest are counted.
_LISTED_FAILURES = 5


@dataclass(frozen=True)
class FetchOptions:
    parallel: int = 4
    attempts: int = 4
    backoff_s: float = 1.0


@dataclass
class Report:
    """What one download or update did for one symbol."""

    symbol: str
    info: engine.DatasetInfo | None = None
    fetched: int = 0
    resumed: int = 0
    missing: list[archive.ArchiveFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def download(
    store: engine.BarStore,
    base_url: str,
    symbol: str,
    *,
    market: str,
    first_day: date,
    last_day: date | None,
    today: date,
    stream: TextIO,
    options: FetchOptions = FetchOptions(),
) -> Report:
    """Fetch, verify and store `symbol`'s 1-minute bars for [first_day, last_day] (last_day
    None: up to yesterday, the archive's last complete day)."""
    symbol = _check_symbol(symbol)
    if market not in archive.MARKETS:
        raise MarketDataError(f"market must be one of {', '.join(archive.MARKETS)}, not {market!r}")
    report = Report(symbol)
    yesterday = today - timedelta(days=1)
    if first_day > yesterday:
        raise MarketDataError(
            f"--from {first_day} is in the future: the archive's last complete day is {yesterday}"
        )
    if last_day is None or last_day > yesterday:
        if last_day is not None:
            report.notes.append(f"--to {last_day} is after {yesterday}: stopping at {yesterday}")
        last_day = yesterday
    if first_day > last_day:
        raise MarketDataError(f"--from {first_day} is after --to {last_day}: swap them")
    stored = store.info(symbol)
    if stored is not None and stored.source is not None and stored.source.kind == "synthetic":
        raise MarketDataError(
            f"{symbol} holds synthetic bars: real data must not be mixed into them "
            f"(delete {store.data_dir / symbol} first)"
        )
    files = [
        file
        for file in archive.plan(symbol, market, first_day, last_day, today)
        if stored is None or not _covered(file, stored)
    ]
    if not files:
        report.info = stored
        report.notes.append(f"{symbol} already holds {first_day} to {last_day}")
        return report
    with _only_download(store.data_dir / STAGING_DIR / market / symbol):
        return _fetch_and_store(
            store, base_url, symbol, market, files, today, stream, options, report
        )


def update(
    store: engine.BarStore,
    base_url: str,
    symbols: list[str],
    *,
    today: date,
    stream: TextIO,
    options: FetchOptions = FetchOptions(),
) -> list[Report | MarketDataError]:
    """Append what the archive has from each downloaded dataset's last bar to yesterday.
    No symbols: every downloaded dataset. A symbol's failure does not stop the others."""
    if symbols:
        targets = [_downloaded(store, _check_symbol(symbol)) for symbol in symbols]
    else:
        targets = [
            info
            for info in store.datasets()
            if info.source is not None and info.source.kind == "download"
        ]
        if not targets:
            raise MarketDataError(
                "no downloaded datasets to update: start with "
                "`algotcha data download BTCUSDT --from 2021-01`"
            )
    results: list[Report | MarketDataError] = []
    for info in targets:
        # From the day after the last stored bar, or that day again if it was not complete.
        first_day = (info.end - timedelta(minutes=1)).date()
        if info.end.time() == datetime.min.time():
            first_day = info.end.date()
        try:
            if first_day >= today:
                results.append(Report(info.symbol, info, notes=["already up to date"]))
                continue
            results.append(
                download(
                    store,
                    base_url,
                    info.symbol,
                    market=_market(info),
                    first_day=first_day,
                    last_day=None,
                    today=today,
                    stream=stream,
                    options=options,
                )
            )
        except MarketDataError as error:
            results.append(error)
    return results


def import_files(
    store: engine.BarStore,
    symbol: str,
    paths: list[Path],
    *,
    append: bool,
    on_file: Callable[[str], None] | None = None,
) -> engine.DatasetInfo:
    """Bars from CSV or zip files as `symbol`'s dataset, or added to it with `append`;
    on_file(name) after each file is read (a long import shows progress)."""
    frames = []
    for path in paths:
        frames.append(csvimport.read_csv(path))
        if on_file is not None:
            on_file(path.name)
    bars = pd.concat(frames).sort_index()
    names = tuple(path.name for path in paths)
    if append:
        stored = store.info(symbol)
        if stored is not None and stored.source is not None and stored.source.kind == "import":
            names = tuple(dict.fromkeys(stored.source.files + names))
        source = engine.DatasetSource("import", names, None, _now())
        return store.append(symbol, bars, source=source)
    return store.write(symbol, bars, source=engine.DatasetSource("import", names, None, _now()))


@contextlib.contextmanager
def _only_download(staging: Path) -> Iterator[None]:
    """Refuse a second download of the same symbol (a timer's update meeting a manual one):
    both would write the same staged files."""
    staging.parent.mkdir(parents=True, exist_ok=True)
    with open(staging.parent / f"{staging.name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MarketDataError(
                f"another download of {staging.name} is running; try again when it has finished"
            ) from None
        yield


def _fetch_and_store(
    store: engine.BarStore,
    base_url: str,
    symbol: str,
    market: str,
    files: list[archive.ArchiveFile],
    today: date,
    stream: TextIO,
    options: FetchOptions,
    report: Report,
) -> Report:
    staging = store.data_dir / STAGING_DIR / market / symbol
    fetched: list[fetch.Fetched] = []
    failed: list[fetch.Failed] = []
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    with (
        Progress(len(files), "files", stream, label=symbol) as progress,
        httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client,
    ):
        fetcher = fetch.Fetcher(
            client,
            base_url,
            staging,
            parallel=options.parallel,
            attempts=options.attempts,
            backoff_s=options.backoff_s,
            on_bytes=progress.add_bytes,
        )
        pending = files
        while pending:
            fallback: list[archive.ArchiveFile] = []
            for outcome in fetcher.fetch_all(pending):
                name = outcome.file.name
                if isinstance(outcome, fetch.Fetched):
                    fetched.append(outcome)
                    progress.advance(name, "already here" if outcome.resumed else "verified")
                elif isinstance(outcome, fetch.Missing):
                    file = outcome.file
                    if file.monthly and file.first_day == last_month:
                        # The month just ended may not be published yet: its days are.
                        days = archive.days(symbol, market, file.first_day, file.last_day)
                        fallback += days
                        progress.add_total(len(days))
                        progress.advance(name, "not published yet: using its daily files")
                    else:
                        report.missing.append(outcome.file)
                        progress.advance(name, "missing (404)")
                else:
                    failed.append(outcome)
                    progress.note(f"{name}: {outcome.reason}")
                    progress.advance(name, "failed")
            pending = fallback
    report.fetched = sum(not outcome.resumed for outcome in fetched)
    report.resumed = len(fetched) - report.fetched
    if failed:
        listed = "; ".join(f"{f.file.name}: {f.reason}" for f in failed[:_LISTED_FAILURES])
        more = (
            f" and {len(failed) - _LISTED_FAILURES} more" if len(failed) > _LISTED_FAILURES else ""
        )
        raise MarketDataError(
            f"{symbol}: {len(failed)} file(s) failed ({listed}{more}); nothing was stored. "
            f"Rerun the same command: the {len(fetched)} verified file(s) are kept and not "
            "fetched again"
        )
    stored = store.info(symbol)
    if not fetched:
        if stored is None:
            raise MarketDataError(
                f"the archive has no 1-minute bars of {symbol} on the {market} market from "
                f"{files[0].first_day} to {files[-1].last_day} (404 for every file): check the "
                "symbol (e.g. BTCUSDT) and --market; nothing was stored"
            )
        report.info = stored
        return report
    bars = _read(symbol, fetched)
    source = engine.DatasetSource("download", (), f"{base_url}/{archive.MARKETS[market]}", _now())
    try:
        report.info = store.append(symbol, bars, source=source)
    except engine.DataError as error:
        raise MarketDataError(f"{symbol}: {error.message}; nothing was stored") from None
    shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "event=dataset_downloaded symbol=%s files=%d missing=%d bars=%d",
        symbol,
        len(fetched),
        len(report.missing),
        report.info.bars,
    )
    return report


def _read(symbol: str, fetched: list[fetch.Fetched]) -> pd.DataFrame:
    frames = []
    for outcome in fetched:
        try:
            frames.append(csvimport.read_csv(outcome.path))
        except engine.DataError as error:
            # Verified yet unreadable: the archive's own file is bad. Drop it so a rerun
            # fetches it again rather than trusting the staged copy.
            outcome.path.unlink(missing_ok=True)
            raise MarketDataError(f"{symbol}: {error.message}; nothing was stored") from None
    return pd.concat(frames).sort_index()


def _covered(file: archive.ArchiveFile, stored: engine.DatasetInfo) -> bool:
    first = datetime.combine(file.first_day, datetime.min.time(), UTC)
    end = datetime.combine(file.last_day + timedelta(days=1), datetime.min.time(), UTC)
    return stored.start <= first and end <= stored.end


def _downloaded(store: engine.BarStore, symbol: str) -> engine.DatasetInfo:
    info = store.info(symbol)
    if info is None:
        raise MarketDataError(
            f"{symbol} is not stored: download it first "
            f"(`algotcha data download {symbol} --from 2021-01`)"
        )
    if info.source is None or info.source.kind != "download":
        kind = info.source.kind if info.source else "of unknown origin"
        raise MarketDataError(
            f"{symbol} was not downloaded from the archive ({kind}): "
            "add files to it with `algotcha data import --append`"
        )
    return info


def _market(info: engine.DatasetInfo) -> str:
    url = info.source.url if info.source else None
    for market, path in archive.MARKETS.items():
        if url and url.endswith("/" + path):
            return market
    raise MarketDataError(f"{info.symbol}: cannot tell its market from its source {url!r}")


def _check_symbol(symbol: str) -> str:
    try:
        return check_symbol(symbol.upper())
    except engine.DataError as error:
        raise MarketDataError(error.message) from None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
