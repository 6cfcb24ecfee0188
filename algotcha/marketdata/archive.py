"""The archive's layout: which monthly and daily zip files cover a range of days, and where."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

# Where each market's 1-minute klines live under MARKET_DATA_URL.
MARKETS = {"spot": "data/spot", "um": "data/futures/um"}
INTERVAL = "1m"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ArchiveFile:
    """One zip of the archive: a whole month or a single day of one symbol's 1-minute bars."""

    symbol: str
    market: str
    first_day: date
    last_day: date
    monthly: bool

    @property
    def name(self) -> str:
        period = f"{self.first_day:%Y-%m}" if self.monthly else f"{self.first_day:%Y-%m-%d}"
        return f"{self.symbol}-{INTERVAL}-{period}.zip"

    @property
    def path(self) -> str:
        """The zip's path under the archive's base URL; its checksum is this + .CHECKSUM."""
        period = "monthly" if self.monthly else "daily"
        return f"{MARKETS[self.market]}/{period}/klines/{self.symbol}/{INTERVAL}/{self.name}"


def plan(
    symbol: str, market: str, first_day: date, last_day: date, today: date
) -> list[ArchiveFile]:
    """The files covering [first_day, last_day]: a monthly file for each whole month before the
    current one (the archive publishes a month once it is over), daily files elsewhere."""
    files: list[ArchiveFile] = []
    month_start = first_day.replace(day=1)
    while month_start <= last_day:
        month_end = month_start.replace(
            day=calendar.monthrange(month_start.year, month_start.month)[1]
        )
        lo, hi = max(first_day, month_start), min(last_day, month_end)
        if lo == month_start and hi == month_end and month_end < today.replace(day=1):
            files.append(ArchiveFile(symbol, market, month_start, month_end, monthly=True))
        else:
            files += days(symbol, market, lo, hi)
        month_start = month_end + timedelta(days=1)
    return files


def days(symbol: str, market: str, first_day: date, last_day: date) -> list[ArchiveFile]:
    count = (last_day - first_day).days + 1
    return [
        ArchiveFile(symbol, market, day, day, monthly=False)
        for day in (first_day + timedelta(days=offset) for offset in range(count))
    ]


def parse_checksum(text: str, name: str) -> str:
    """The SHA-256 (hex) in a .CHECKSUM file: `<sha256>  <file name>`; ValueError if not."""
    fields = text.split()
    if not fields or not _SHA256.fullmatch(fields[0].lower()):
        raise ValueError(f"{name}.CHECKSUM does not start with a SHA-256: {text[:80]!r}")
    if len(fields) > 1 and fields[1].lstrip("*") != name:
        raise ValueError(f"{name}.CHECKSUM is for {fields[1]!r}")
    return fields[0].lower()


def describe(files: list[ArchiveFile]) -> str:
    """File names for people: runs of consecutive daily files as `first … last (n files)`."""
    parts: list[str] = []
    run: list[ArchiveFile] = []

    def flush() -> None:
        if len(run) > 2:
            parts.append(f"{run[0].name} … {run[-1].name} ({len(run)} files)")
        else:
            parts.extend(file.name for file in run)
        run.clear()

    for file in sorted(files, key=lambda file: (file.first_day, not file.monthly)):
        if run and (file.monthly or file.first_day != run[-1].first_day + timedelta(days=1)):
            flush()
        if file.monthly:
            parts.append(file.name)
        else:
            run.append(file)
    flush()
    return ", ".join(parts)
