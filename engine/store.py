"""Parquet bar store: validated 1-minute bars per symbol, listing, cached resampled loads."""

from __future__ import annotations

import io
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from engine import partitions
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
class DatasetSource:
    """Where a dataset's bars came from: `kind` is synthetic, import or download; `files` the
    imported file names; `url` the archive a download came from; `updated_at` the last change."""

    kind: str
    files: tuple[str, ...] = ()
    url: str | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "files": list(self.files),
            "url": self.url,
            "updated_at": _iso_seconds(self.updated_at) if self.updated_at else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetSource:
        updated = raw.get("updated_at")
        return cls(
            kind=str(raw.get("kind", "unknown")),
            files=tuple(raw.get("files") or ()),
            url=raw.get("url"),
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )


@dataclass(frozen=True)
class DatasetInfo:
    """A stored symbol. `start` is the first bar's open time; `end` is exclusive: the close
    time of the last 1-minute bar (its open + 1 minute), so [start, end) is the covered span.
    `source` is None for data written without one (older stores, other tools)."""

    symbol: str
    start: datetime
    end: datetime
    bars: int
    source: DatasetSource | None = None


_INFO_CACHE: dict[tuple[str, int, int], DatasetInfo] = {}


def warm_up() -> None:
    """Pay pyarrow's first-use set-up now: a fresh (forked) process spends ~70 ms on its
    first Parquet read otherwise. A process that waits for work calls this while it waits."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [0.0]}), buffer)
    pq.read_table(pa.BufferReader(buffer.getvalue()))


class BarStore:
    """1-minute bars per symbol under data_dir, one directory per symbol holding monthly
    Parquet partitions and a manifest (see engine.partitions), so appending a day rewrites one
    month, not the dataset. A single `<SYMBOL>.parquet` file (the layout before partitions, or
    another tool's) is still read, and becomes partitions on the symbol's next write.

    Resampled timeframes are cached under `data_dir/.cache`, keyed by the manifest's size and
    modification time, and in memory, so a repeated load does not resample again.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._memory: OrderedDict[tuple[str, str, str], tuple[NDArray[np.int64], Columns]] = (
            OrderedDict()
        )

    def datasets(self) -> list[DatasetInfo]:
        """Every stored symbol, by name; reads only manifests and Parquet footers."""
        if not self.data_dir.is_dir():
            return []
        symbols = {path.stem for path in self.data_dir.glob("*.parquet") if path.is_file()} | {
            path.parent.name for path in self.data_dir.glob(f"*/{partitions.MANIFEST}")
        }
        return [
            self._info(symbol) for symbol in sorted(symbols) if SYMBOL_PATTERN.fullmatch(symbol)
        ]

    def info(self, symbol: str) -> DatasetInfo | None:
        """The symbol's dataset, or None if it is not stored (or not a valid symbol name)."""
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
            return None
        return self._info(symbol) if self._head(symbol).is_file() else None

    def _head(self, symbol: str) -> Path:
        """The file whose change means the dataset changed: the manifest, or a single file."""
        manifest = self.data_dir / check_symbol(symbol) / partitions.MANIFEST
        return manifest if manifest.is_file() else self.data_dir / f"{symbol}.parquet"

    def _info(self, symbol: str) -> DatasetInfo:
        # Every submit checks its range against the dataset: answer from memory while the
        # head file is unchanged (a publish changes its mtime and size).
        head = self._head(symbol)
        stat = head.stat()
        key = (str(head), stat.st_mtime_ns, stat.st_size)
        cached = _INFO_CACHE.get(key)
        if cached is None:
            cached = _INFO_CACHE[key] = self._read_info(symbol, head)
        return cached

    def _read_info(self, symbol: str, head: Path) -> DatasetInfo:
        if head.name == partitions.MANIFEST:
            manifest = partitions.read_manifest(head.parent)
            assert manifest is not None  # _head found it
            source = DatasetSource.from_dict(manifest.source) if manifest.source else None
            first, last, count = manifest.start_ms, manifest.last_ms, manifest.bars
            return DatasetInfo(symbol, _datetime(first), _datetime(last + MINUTE_MS), count, source)
        metadata = pq.read_schema(head).metadata or {}
        if METADATA_KEY in metadata:
            summary = json.loads(metadata[METADATA_KEY])
            first, last, count = summary["start_ms"], summary["last_ms"], summary["bars"]
        else:  # a file written by another tool: read the time column once
            times = self._read(head, ["time"])[0]
            count = len(times)
            first, last = (int(times[0]), int(times[-1])) if count else (0, -MINUTE_MS)
        return DatasetInfo(symbol, _datetime(first), _datetime(last + MINUTE_MS), count)

    def load(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Bars of `timeframe` whose whole span lies in [start, end): label >= start and
        label + bar length <= end. An empty frame if there are none."""
        minutes = check_timeframe(timeframe)
        if not self._head(symbol).is_file():
            raise DataError("symbol", f"unknown symbol {symbol!r}: import its data first")
        if minutes == 1:
            times, columns = self._read_all(symbol)
        else:
            times, columns = self._resampled(symbol, timeframe)
        first = int(np.searchsorted(times, _milliseconds(start), side="left"))
        last = int(np.searchsorted(times, _milliseconds(end) - minutes * MINUTE_MS, side="right"))
        last = max(first, last)
        return frame(times[first:last], {name: columns[name][first:last] for name in COLUMNS})

    def _read_all(self, symbol: str) -> tuple[NDArray[np.int64], Columns]:
        directory = self.data_dir / symbol
        # A writer deletes the files its new manifest replaced right after publishing it: a
        # reader that read the old manifest just before reads the new one instead.
        for attempt in range(3):
            manifest = partitions.read_manifest(directory)
            if manifest is None:
                return self._read(self.data_dir / f"{symbol}.parquet", ["time", *COLUMNS])
            try:
                return partitions.read_arrays(
                    [directory / partition.file for partition in manifest.partitions]
                )
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def write(
        self, symbol: str, bars: pd.DataFrame, *, source: DatasetSource | None = None
    ) -> DatasetInfo:
        """Validate 1-minute bars and store them as the symbol's dataset (replacing any)."""
        directory = self.data_dir / check_symbol(symbol)
        times, columns = validate(bars)
        with partitions.locked(directory):
            old = partitions.read_manifest(directory)
            generation = old.generation + 1 if old else 1
            written = [
                partitions.write_partition(directory, month, generation, month_times, month_columns)
                for month, month_times, month_columns in partitions.split_by_month(times, columns)
            ]
            info = self._publish(symbol, generation, written, source)
        logger.info("dataset written symbol=%s bars=%d", symbol, info.bars)
        return info

    def append(
        self, symbol: str, bars: pd.DataFrame, *, source: DatasetSource | None = None
    ) -> DatasetInfo:
        """Validate 1-minute bars and add them to the symbol's dataset, rewriting only the
        months they fall in. Bars already stored must agree exactly, else DataError naming the
        first differing time (and nothing is stored). Without a dataset this is `write`."""
        directory = self.data_dir / check_symbol(symbol)
        new_times, new_columns = validate(bars)
        with partitions.locked(directory):
            old = partitions.read_manifest(directory)
            legacy = self.data_dir / f"{symbol}.parquet"
            if old is None:
                if legacy.is_file():  # migrate: the single file becomes partitions, once
                    stored = self._read(legacy, ["time", *COLUMNS])
                    new_times, new_columns = partitions.merge(stored, (new_times, new_columns))
                changed = list(partitions.split_by_month(new_times, new_columns))
                kept: list[partitions.Partition] = []
            else:
                stored_months = {partition.month: partition for partition in old.partitions}
                changed = []
                for month, month_times, month_columns in partitions.split_by_month(
                    new_times, new_columns
                ):
                    if month in stored_months:
                        stored = partitions.read_arrays([directory / stored_months[month].file])
                        month_times, month_columns = partitions.merge(
                            stored, (month_times, month_columns)
                        )
                    changed.append((month, month_times, month_columns))
                touched = {month for month, _, _ in changed}
                kept = [p for p in old.partitions if p.month not in touched]
            generation = old.generation + 1 if old else 1
            written = [
                partitions.write_partition(directory, month, generation, month_times, month_columns)
                for month, month_times, month_columns in changed
            ]
            info = self._publish(
                symbol, generation, kept + written, source if source else _source(old)
            )
        logger.info("dataset appended symbol=%s bars=%d added=%d", symbol, info.bars, len(bars))
        return info

    def _publish(
        self,
        symbol: str,
        generation: int,
        written: list[partitions.Partition],
        source: DatasetSource | None,
    ) -> DatasetInfo:
        ordered = tuple(sorted(written, key=lambda partition: partition.month))
        manifest = partitions.Manifest(
            generation=generation,
            partitions=ordered,
            bars=sum(partition.bars for partition in ordered),
            start_ms=ordered[0].first_ms,
            last_ms=ordered[-1].last_ms,
            source=source.as_dict() if source else None,
        )
        partitions.publish(self.data_dir / symbol, manifest)
        (self.data_dir / f"{symbol}.parquet").unlink(missing_ok=True)
        self._forget(symbol)
        return DatasetInfo(
            symbol,
            _datetime(manifest.start_ms),
            _datetime(manifest.last_ms + MINUTE_MS),
            manifest.bars,
            source,
        )

    def _forget(self, symbol: str) -> None:
        for key in [key for key in self._memory if key[0] == symbol]:
            del self._memory[key]
        for cached in (self.data_dir / CACHE_DIR).glob(f"{symbol}.*.parquet"):
            cached.unlink(missing_ok=True)

    def _resampled(self, symbol: str, timeframe: str) -> tuple[NDArray[np.int64], Columns]:
        stat = self._head(symbol).stat()
        signature = f"{stat.st_size}:{stat.st_mtime_ns}"
        key = (symbol, timeframe, signature)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        cache = self.data_dir / CACHE_DIR / f"{symbol}.{timeframe}.parquet"
        loaded = self._read_cache(cache, signature)
        if loaded is None:
            times, columns = self._read_all(symbol)
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
        table = partitions.bars_table(times, columns).replace_schema_metadata(
            {b"source": signature.encode()}
        )
        try:
            cache.parent.mkdir(exist_ok=True)
            partitions.write_table(table, cache)
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


def _source(manifest: partitions.Manifest | None) -> DatasetSource | None:
    return DatasetSource.from_dict(manifest.source) if manifest and manifest.source else None


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


def _milliseconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise DataError("start", "times must carry a time zone, e.g. 2024-01-01T00:00:00Z")
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _datetime(milliseconds: int | np.integer) -> datetime:
    return EPOCH + timedelta(milliseconds=int(milliseconds))


def _iso(milliseconds: int | np.integer) -> str:
    return _datetime(milliseconds).isoformat().replace("+00:00", "Z")


def _iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
