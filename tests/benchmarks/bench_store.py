"""Bar store benchmark: a 5-year 1-minute dataset, monthly partitions against the single file.

    python tests/benchmarks/bench_store.py [--quick] [--json PATH]

Measures, in one run and on the same bars (5 years = 2.63 M synthetic 1-minute bars):
- the load of the whole dataset for a backtest (1m bars, and 1h bars from the resample cache),
  from the single-file layout used before partitions ("before") and from monthly partitions
  ("after");
- appending one day: wall time and bytes written (the write() calls' bytes, /proc/self/io
  wchar), against rewriting the single file, which is what an append cost before;
- an SMA 20/50 backtest end to end (load + engine.run) from the partitioned store, against
  DESIGN.md's 0.5 s target.
Timings are the best of several runs; the machine may be shared, so the load average is printed.
Not collected by pytest (no test_ names).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable from anywhere

import pyarrow.parquet as pq

import engine
from engine import partitions
from engine.store import METADATA_KEY, validate
from engine.synth import synth_bars
from tests.benchmarks.bench_engine import make_request

START = datetime(2020, 1, 1, tzinfo=UTC)
FIVE_YEARS_MINUTES = 2_628_000
DAY_MINUTES = 24 * 60
TARGET_BACKTEST_MS = 500.0


def best_pair_ms(
    before: Callable[[], object], after: Callable[[], object], repeat: int
) -> tuple[float, float, float, float]:
    """Best wall and best CPU milliseconds of each action, the two run alternately so that a
    busy moment of a shared machine hits both alike: (before wall, after wall, before CPU,
    after CPU)."""
    best = [float("inf")] * 4
    for _ in range(repeat):
        for slot, action in enumerate((before, after)):
            wall, cpu = time.perf_counter(), time.process_time()
            action()
            best[slot] = min(best[slot], (time.perf_counter() - wall) * 1000)
            best[slot + 2] = min(best[slot + 2], (time.process_time() - cpu) * 1000)
    return best[0], best[1], best[2], best[3]


def written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def write_single_file(directory: Path, symbol: str, bars: Any) -> None:
    """The layout before partitions: one <SYMBOL>.parquet with a summary in its metadata."""
    times, columns = validate(bars)
    summary = {"start_ms": int(times[0]), "last_ms": int(times[-1]), "bars": len(times)}
    table = partitions.bars_table(times, columns).replace_schema_metadata(
        {METADATA_KEY: json.dumps(summary).encode()}
    )
    directory.mkdir(parents=True, exist_ok=True)
    partitions.write_table(table, directory / f"{symbol}.parquet")


def measure(directory: Path, minutes: int, repeat: int) -> dict[str, Any]:
    bars = synth_bars(START, minutes + DAY_MINUTES, seed=42)
    history, new_day = bars.iloc[:minutes], bars.iloc[minutes:]
    end = START + timedelta(minutes=minutes)
    before_dir, after_dir = directory / "before", directory / "after"
    write_single_file(before_dir, "BENCH", history)
    engine.BarStore(after_dir).write("BENCH", history)
    before, after = engine.BarStore(before_dir), engine.BarStore(after_dir)
    row: dict[str, Any] = {"bars": minutes}
    for store in (before, after):
        store.load("BENCH", "1h", START, end)  # fill the resample cache
    for timeframe, fresh in (("1m", False), ("1h", True)):

        def load(store: engine.BarStore, timeframe: str = timeframe, fresh: bool = fresh) -> None:
            # 1h: a new store each time, so the load reads the disk cache, not process memory
            (engine.BarStore(store.data_dir) if fresh else store).load(
                "BENCH", timeframe, START, end
            )

        measured = best_pair_ms(lambda: load(before), lambda: load(after), repeat)
        row[f"load_{timeframe}_before_ms"], row[f"load_{timeframe}_after_ms"] = measured[:2]
        row[f"load_{timeframe}_before_cpu_ms"], row[f"load_{timeframe}_after_cpu_ms"] = measured[2:]

    appends, rewrites = [], []
    for _ in range(repeat):
        trial = directory / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(after_dir, trial)
        store = engine.BarStore(trial)
        wrote, began = written_bytes(), time.perf_counter()
        store.append("BENCH", new_day)
        appends.append(((time.perf_counter() - began) * 1000, written_bytes() - wrote))
        wrote, began = written_bytes(), time.perf_counter()
        write_single_file(trial, "REWRITE", bars)
        rewrites.append(((time.perf_counter() - began) * 1000, written_bytes() - wrote))
    row["append_day_ms"], row["append_day_bytes"] = min(appends)
    row["rewrite_single_file_ms"], row["rewrite_single_file_bytes"] = min(rewrites)
    row["dataset_bytes"] = sum(p.stat().st_size for p in (after_dir / "BENCH").glob("*.parquet"))
    row["partitions"] = len(list((after_dir / "BENCH").glob("*.parquet")))
    assert pq.read_metadata(before_dir / "BENCH.parquet").num_rows == minutes

    request = make_request("BENCH", "1m", "sma_cross")
    measured = best_pair_ms(
        lambda: engine.run(request, before.load("BENCH", "1m", START, end)),
        lambda: engine.run(request, after.load("BENCH", "1m", START, end)),
        repeat,
    )
    row["backtest_before_ms"], row["backtest_after_ms"] = measured[:2]
    row["backtest_before_cpu_ms"], row["backtest_after_cpu_ms"] = measured[2:]
    return row


def report(row: dict[str, Any]) -> list[dict[str, Any]]:
    r = row
    lines = [
        ("load 1m bars", r["load_1m_after_ms"], r["load_1m_before_ms"], "ms"),
        ("load 1m bars, CPU time", r["load_1m_after_cpu_ms"], r["load_1m_before_cpu_ms"], "ms"),
        ("load 1h bars (resample cache)", r["load_1h_after_ms"], r["load_1h_before_ms"], "ms"),
        ("append one day: time", r["append_day_ms"], r["rewrite_single_file_ms"], "ms"),
        ("append one day: bytes written", r["append_day_bytes"],
         r["rewrite_single_file_bytes"], "B"),
        ("SMA 20/50 backtest, load + run", r["backtest_after_ms"], r["backtest_before_ms"], "ms"),
        ("the same, CPU time", r["backtest_after_cpu_ms"], r["backtest_before_cpu_ms"], "ms"),
    ]  # fmt: skip
    print(f"\n{row['bars']:,} bars in {row['partitions']} monthly partitions "
          f"({row['dataset_bytes'] / 1e6:.1f} MB)")  # fmt: skip
    print(f"{'':<36} {'partitions':>14} {'single file':>14} {'ratio':>7}")
    results = []
    for what, after, before, unit in lines:
        ratio = after / before
        print(f"{what:<36} {after:>12,.1f}{unit:>2} {before:>12,.1f}{unit:>2} {ratio:7.3f}")
        results.append({"what": what, "partitions": after, "single_file": before, "ratio": ratio})
    met = row["backtest_after_ms"] < TARGET_BACKTEST_MS
    print(f"\ntarget: 5y 1m SMA backtest from stored Parquet under {TARGET_BACKTEST_MS:.0f} ms: "
          f"{row['backtest_after_ms']:.1f} ms {'ok' if met else 'MISSED'}")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one year, fewer repeats")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    minutes = 365 * DAY_MINUTES if args.quick else FIVE_YEARS_MINUTES
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        row = measure(Path(tmp), minutes, repeat=3 if args.quick else 7)
    results = report(row)
    if args.json:
        args.json.write_text(json.dumps({"row": row, "results": results}, indent=2))
    return 0 if row["backtest_after_ms"] < TARGET_BACKTEST_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
