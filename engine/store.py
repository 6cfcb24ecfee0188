"""Parquet bar store: validated 1-minute bars per symbol, listing, cached resampled loads."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from engine.errors import DataError
from engine.request import SYMBOL_PATTERN, TIMEFRAMES, check_symbol, check_timeframe
from engine.resample import COLUMNS, MINUTE_MS, Columns, aggregate, frame

logger = logging.getLogger(__name__)

METADATA_KEY = b"algotcha"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CACHE_DIR = ".cache"
# Resampled datasets kept in memory per store; 5 years of 5m bars are about 25 MB.
_MEMORY_ENTRIES = 8


@dataclass(frozen=True)
class DatasetInfo:
    """A stored symbol. `start` is the first bar's open time; `end` is exclusive: the close
    time of the last 1-minute bar (its open + 1 minute), so [start, end) is the covered span."""

    symbol: str
    start: datetime
    end: datetime
    bars: int


_INFO_CACHE: dict[tuple[str, int, int], DatasetInfo] = {}


def warm_up() -> None:
    """Pay pyarrow's first-use set-up now: a fresh (forked) process spends ~70 ms on its
    first Parquet read otherwise. A process that waits for work calls this while it waits."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [0.0]}), buffer)
    pq.read_table(pa.BufferReader(buffer.getvalue()))


class BarStore:
    """One Parquet file of 1-minute bars per symbol under data_dir (`<SYMBOL>.parquet`).

    Resampled timeframes are cached under `data_dir/.cache`, keyed by the source file's size
    and modification time, and in memory, so a repeated load does not resample again.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._memory: OrderedDict[tuple[str, str, str], tuple[NDArray[np.int64], Columns]] = (
            OrderedDict()
        )

    def path(self, symbol: str) -> Path:
        return self.data_dir / f"{check_symbol(symbol)}.parquet"

    def datasets(self) -> list[DatasetInfo]:
        """Every stored symbol, by name; reads only Parquet footers."""
        if not self.data_dir.is_dir():
            return []
        found = []
        for path in sorted(self.data_dir.glob("*.parquet")):
            if SYMBOL_PATTERN.fullmatch(path.stem):
                found.append(self._info(path.stem, path))
        return found

    def info(self, symbol: str) -> DatasetInfo | None:
        """The symbol's dataset, or None if it is not stored (or not a valid symbol name)."""
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
            return None
        path = self.path(symbol)
        return self._info(symbol, path) if path.is_file() else None

    def _info(self, symbol: str, path: Path) -> DatasetInfo:
        # Every submit checks its range against the dataset: answer from memory while the
        # file is unchanged (a rewrite changes its mtime and size).
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = _INFO_CACHE.get(key)
        if cached is None:
            cached = _INFO_CACHE[key] = self._read_info(symbol, path)
        return cached

    def _read_info(self, symbol: str, path: Path) -> DatasetInfo:
        metadata = pq.read_schema(path).metadata or {}
        if METADATA_KEY in metadata:
            summary = json.loads(metadata[METADATA_KEY])
            first, last, count = summary["start_ms"], summary["last_ms"], summary["bars"]
        else:  # a file written by another tool: read the time column once
            times = self._read(path, ["time"])[0]
            count = len(times)
            first, last = (int(times[0]), int(times[-1])) if count else (0, -MINUTE_MS)
        return DatasetInfo(symbol, _datetime(first), _datetime(last + MINUTE_MS), count)

    def load(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Bars of `timeframe` whose whole span lies in [start, end): label >= start and
        label + bar length <= end. An empty frame if there are none."""
        path = self.path(symbol)
        minutes = check_timeframe(timeframe)
        if not path.is_file():
            raise DataError("symbol", f"unknown symbol {symbol!r}: import its data first")
        if minutes == 1:
            times, columns = self._read(path, ["time", *COLUMNS])
        else:
            times, columns = self._resampled(symbol, timeframe, path)
        first = int(np.searchsorted(times, _milliseconds(start), side="left"))
        last = int(np.searchsorted(times, _milliseconds(end) - minutes * MINUTE_MS, side="right"))
        last = max(first, last)
        return frame(times[first:last], {name: columns[name][first:last] for name in COLUMNS})

    def write(self, symbol: str, bars: pd.DataFrame) -> DatasetInfo:
        """Validate 1-minute bars and store them as the symbol's dataset (replacing any)."""
        path = self.path(symbol)
        times, columns = validate(bars)
        summary = {"start_ms": int(times[0]), "last_ms": int(times[-1]), "bars": len(times)}
        table = pa.table(
            {"time": pa.array(times, pa.timestamp("ms", tz="UTC"))}
            | {name: pa.array(columns[name]) for name in COLUMNS},
        ).replace_schema_metadata({METADATA_KEY: json.dumps(summary).encode()})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(table, path)
        self._forget(symbol)
        logger.info("dataset written symbol=%s bars=%d", symbol, len(times))
        return DatasetInfo(
            symbol, _datetime(times[0]), _datetime(int(times[-1]) + MINUTE_MS), len(times)
        )

    def _forget(self, symbol: str) -> None:
        for key in [key for key in self._memory if key[0] == symbol]:
            del self._memory[key]
        for cached in (self.data_dir / CACHE_DIR).glob(f"{symbol}.*.parquet"):
            cached.unlink(missing_ok=True)

    def _resampled(
        self, symbol: str, timeframe: str, path: Path
    ) -> tuple[NDArray[np.int64], Columns]:
        stat = path.stat()
        signature = f"{stat.st_size}:{stat.st_mtime_ns}"
        key = (symbol, timeframe, signature)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        cache = self.data_dir / CACHE_DIR / f"{symbol}.{timeframe}.parquet"
        loaded = self._read_cache(cache, signature)
        if loaded is None:
            times, columns = self._read(path, ["time", *COLUMNS])
            loaded = aggregate(times, columns, TIMEFRAMES[timeframe])
            self._write_cache(cache, signature, *loaded)
        self._memory[key] = loaded
        while len(self._memory) > _MEMORY_ENTRIES:
            self._memory.popitem(last=False)
        return loaded

    def _read_cache(self, cache: Path, signature: str) -> tuple[NDArray[np.int64], Columns] | None:
        try:
            metadata = pq.read_schema(cache).metadata or {}
        except (OSError, pa.ArrowInvalid):
            return None
        if metadata.get(b"source") != signature.encode():
            return None
        return self._read(cache, ["time", *COLUMNS])

    def _write_cache(
        self, cache: Path, signature: str, times: NDArray[np.int64], columns: Columns
    ) -> None:
        table = pa.table(
            {"time": pa.array(times, pa.timestamp("ms", tz="UTC"))}
            | {name: pa.array(columns[name]) for name in COLUMNS},
        ).replace_schema_metadata({b"source": signature.encode()})
        try:
            cache.parent.mkdir(exist_ok=True)
            _write_atomically(table, cache)
        except OSError as error:  # a read-only data dir still serves, just without the cache
            logger.warning("resample cache not written path=%s error=%s", cache, error)

    @staticmethod
    def _read(path: Path, names: list[str]) -> tuple[NDArray[np.int64], Columns]:
        table = pq.read_table(path, columns=names, memory_map=True, pre_buffer=False)
        times = table.column("time").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        columns = {
            name: table.column(name).to_numpy().astype(np.float64, copy=False)
            for name in names
            if name != "time"
        }
        return times.to_numpy().astype(np.int64, copy=False), columns


def validate(bars: pd.DataFrame) -> tuple[NDArray[np.int64], Columns]:
    """(times in ms, float64 columns) of valid 1-minute bars, or DataError saying what is wrong
    and where: a UTC, strictly increasing, whole-minute index; no NaN; prices > 0; volume >= 0;
    low <= min(open, close) and high >= max(open, close)."""
    if not isinstance(bars, pd.DataFrame) or not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError(None, "bars must be a DataFrame indexed by UTC times (DatetimeIndex)")
    if len(bars) == 0:
        raise DataError(None, "there are no bars to store")
    missing = [name for name in COLUMNS if name not in bars.columns]
    if missing:
        raise DataError(None, "bars lack the column(s) " + ", ".join(missing))
    if bars.index.tz is None:
        raise DataError(None, "bar times must be timezone-aware UTC, e.g. 2024-01-01T00:00:00Z")
    times = bars.index.tz_convert("UTC").as_unit("ms").asi8.astype(np.int64, copy=False)
    steps = np.diff(times)
    if (steps <= 0).any():
        at = int(np.argmax(steps <= 0)) + 1
        raise DataError(
            None,
            f"bar times must increase strictly (sorted, no duplicates); row {at} at "
            f"{_iso(times[at])} does not",
        )
    if (times % MINUTE_MS != 0).any():
        at = int(np.argmax(times % MINUTE_MS != 0))
        raise DataError(
            None, f"1-minute bars must start on whole minutes; {_iso(times[at])} does not"
        )
    try:
        columns = {name: bars[name].to_numpy(np.float64) for name in COLUMNS}
    except (TypeError, ValueError) as error:
        raise DataError(None, f"bar values must be numbers: {error}") from None
    checks = [
        (
            ~np.isfinite(columns[name]),
            f"{name} is missing or infinite: fill or drop such bars",
        )
        for name in COLUMNS
    ]
    checks += [
        (columns[name] <= 0, f"{name} must be above 0") for name in ("open", "high", "low", "close")
    ]
    checks += [
        (columns["volume"] < 0, "volume must not be negative"),
        (
            columns["high"] < np.maximum(columns["open"], columns["close"]),
            "high is below open or close",
        ),
        (
            columns["low"] > np.minimum(columns["open"], columns["close"]),
            "low is above open or close",
        ),
    ]
    for bad, problem in checks:
        if bad.any():
            at = int(np.argmax(bad))
            values = ", ".join(f"{name}={columns[name][at].item()!r}" for name in COLUMNS)
            raise DataError(None, f"bar at {_iso(times[at])}: {problem} ({values})")
    return times, columns


def _write_atomically(table: pa.Table, path: Path) -> None:
    # A reader never sees a half-written file: write beside it, then rename over it.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        # Random float prices barely compress, and plain pages memory-map: reading 2.6 M bars
        # takes ~40 ms this way against ~130 ms with the dictionary-encoded snappy default.
        pq.write_table(table, temporary, use_dictionary=False, compression="none")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _milliseconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise DataError("start", "times must carry a time zone, e.g. 2024-01-01T00:00:00Z")
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _datetime(milliseconds: int | np.integer) -> datetime:
    return EPOCH + timedelta(milliseconds=int(milliseconds))


def _iso(milliseconds: int | np.integer) -> str:
    return _datetime(milliseconds).isoformat().replace("+00:00", "Z")
