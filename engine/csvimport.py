"""CSV import: Binance kline dumps and generic timestamp,open,high,low,close,volume files,
plain or zipped (as data.binance.vision publishes them)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine.errors import DataError
from engine.resample import COLUMNS, frame

BINANCE_COLUMNS = 12
GENERIC_TIME_NAMES = ("timestamp", "time")
# Epoch numbers below these are seconds, milliseconds, microseconds (else nanoseconds).
_SECONDS_BELOW, _MILLIS_BELOW, _MICROS_BELOW = 1e11, 1e14, 1e17


def read_csv(path: Path) -> pd.DataFrame:
    """Bars from a CSV file, sorted by time, as BarStore.write expects them (not yet validated).

    Recognised formats:
    - Binance kline dumps (data.binance.vision): 12 columns, with or without a header row,
      open time in milliseconds or (from 2025 on) microseconds; only the first six are used.
    - A header naming `timestamp` (or `time`), open, high, low, close, volume in any order
      (other columns ignored); timestamps are ISO 8601 (UTC when no zone is given) or epoch
      seconds, milliseconds, microseconds or nanoseconds.
    A `.zip` holding one such CSV is read as that CSV.
    Anything else raises DataError saying what was found.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".zip":
            return read_csv_text(path.name, _unzip(path))
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(None, f"cannot read {path.name}: {error}") from None
    return read_csv_text(path.name, text)


def _unzip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1 or not members[0].filename.lower().endswith(".csv"):
                names = ", ".join(info.filename for info in members) or "nothing"
                raise DataError(None, f"{path.name} must hold exactly one .csv file, not {names}")
            return archive.read(members[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        raise DataError(None, f"{path.name} is not a readable zip file: {error}") from None


def read_csv_text(name: str, text: str) -> pd.DataFrame:
    """Bars from the text of a CSV file called `name` (see read_csv)."""
    first_line = text.split("\n", 1)[0].strip()
    if not first_line:
        raise DataError(None, f"{name} is empty")
    header = [cell.strip().lower() for cell in next(csv.reader([first_line]))]
    has_header = not _is_number(header[0])
    if len(header) == BINANCE_COLUMNS and (not has_header or header[0] == "open_time"):
        return _binance(name, text, has_header)
    if has_header:
        time_name = next((column for column in GENERIC_TIME_NAMES if column in header), None)
        missing = [column for column in COLUMNS if column not in header]
        if time_name is not None and not missing:
            return _generic(name, text, time_name)
    raise DataError(
        None,
        f"{name} is not a recognised CSV: expected a Binance kline dump (12 columns) or a "
        f"header timestamp,open,high,low,close,volume; the first line is {first_line[:80]!r}",
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _binance(name: str, text: str, has_header: bool) -> pd.DataFrame:
    names = ["open_time", *COLUMNS]
    table = _read(name, text, header=0 if has_header else None, usecols=range(6), names=names)
    try:
        opened = table["open_time"].to_numpy(np.int64)
    except (TypeError, ValueError):
        raise DataError(None, f"{name}: open times must be whole numbers") from None
    # Binance switched spot dumps from milliseconds to microseconds in 2025.
    times = np.where(opened >= _MILLIS_BELOW, opened // 1000, opened)
    return _bars(name, times, table)


def _generic(name: str, text: str, time_name: str) -> pd.DataFrame:
    table = _read(name, text, header=0, usecols=None, names=None)
    table.columns = [str(column).strip().lower() for column in table.columns]
    stamps = table[time_name]
    if pd.api.types.is_numeric_dtype(stamps):
        values = stamps.to_numpy(np.float64)
        largest = float(np.nanmax(np.abs(values))) if len(values) else 0.0
        scale = (
            1000.0
            if largest < _SECONDS_BELOW
            else 1.0
            if largest < _MILLIS_BELOW
            else 1e-3
            if largest < _MICROS_BELOW
            else 1e-6
        )
        times = np.rint(values * scale).astype(np.int64)
    else:
        try:
            parsed = pd.to_datetime(stamps, utc=True, format="ISO8601")
        except (ValueError, TypeError) as error:
            raise DataError(None, f"{name}: {time_name} values must be ISO 8601: {error}") from None
        times = pd.DatetimeIndex(parsed).as_unit("ms").asi8
    return _bars(name, times, table)


def _read(
    name: str, text: str, *, header: int | None, usecols: range | None, names: list[str] | None
) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), header=header, usecols=usecols, names=names)
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(None, f"{name}: cannot parse the CSV: {error}") from None


def _bars(name: str, times: NDArray[np.int64], table: pd.DataFrame) -> pd.DataFrame:
    try:
        columns = {column: table[column].to_numpy(np.float64) for column in COLUMNS}
    except (TypeError, ValueError) as error:
        raise DataError(None, f"{name}: prices and volume must be numbers: {error}") from None
    order = np.argsort(times, kind="stable")
    return frame(times[order], {column: values[order] for column, values in columns.items()})
