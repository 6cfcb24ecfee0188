"""Walk-forward benchmark: a 5-fold walk-forward of the reference 1,000-combination SMA grid on
2.6M synthetic 1-minute bars, timed against one sweep of the same grid on the same bars.

    python tests/benchmarks/bench_walkforward.py [--quick] [--json out.json]

Each run (the sweep, then the walk-forward) happens in a fresh child process, so both pay
numba's start-up and each peak RSS is its own. A rolling walk-forward of F folds with an
in-sample share s sweeps F in-sample windows of s / (s + F (1 - s)) of the bars each (1.59 times
the bars for 5 folds at 0.7) where the sweep covers the bars once: the expected ratio is near
that. Prints measured figures only; never asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable from anywhere

from engine import sweep, walkforward
from tests.benchmarks.bench_sweep import BARS, bars_of, peak_rss_kib, sweep_request

GRID = "sma_grid"
FOLDS = 5
IN_SAMPLE = 0.7


def child(kind: str, size: int, data_dir: Path | None) -> dict[str, Any]:
    """One sweep or one walk-forward in this (fresh) process."""
    bars = bars_of(data_dir, size)
    request = sweep_request(GRID, size)
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "sweep":
        result = sweep.run(request, bars)
        shape: dict[str, Any] = {"combinations": result.combinations}
    else:
        walk = walkforward.WalkForwardRequest(request, FOLDS, IN_SAMPLE)
        outcome = walkforward.run(walk, bars)
        shape = {
            "folds": [fold.parameters for fold in outcome.folds],
            "efficiency": outcome.efficiency,
            "stitched_trades": outcome.stitched.metrics["trades"],
            "reading": outcome.reading,
            **stored_sizes(outcome.folds),
        }
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_gib": peak_rss_kib() / 2**20,
        **shape,
    }


def stored_sizes(folds: tuple[walkforward.FoldResult, ...]) -> dict[str, Any]:
    """Bytes of one fold result as JSON (FoldResult.as_dict) and as the queue stores it (its
    JSON without the segment, and Segment.to_bytes), the largest fold; the time to pack it."""
    largest = max(folds, key=lambda fold: len(fold.segment.times))
    as_json = len(json.dumps(largest.as_dict()))
    started = time.perf_counter()
    packed = largest.as_dict(packed=True)
    segment = packed.pop("segment")
    pack_s = time.perf_counter() - started
    started = time.perf_counter()
    walkforward.Segment.from_bytes(segment)
    return {
        "fold_json_bytes": as_json,
        "fold_stored_bytes": len(json.dumps(packed)) + len(segment),
        "fold_bars": len(largest.segment.times),
        "fold_trades": largest.segment.simulation.count,
        "pack_s": pack_s,
        "unpack_s": time.perf_counter() - started,
    }


def measure(kind: str, size: int, data_dir: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--bars", str(size)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="260k bars instead of 2.6M")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--data-dir", type=Path, help="the engine benchmark's bar store")
    parser.add_argument("--child", choices=("sweep", "walkforward"), help=argparse.SUPPRESS)
    parser.add_argument("--bars", type=int, default=BARS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = BARS // 10 if args.quick else args.bars
    if args.child:
        print(json.dumps(child(args.child, size, args.data_dir)))
        return 0
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    one = measure("sweep", size, args.data_dir)
    walk = measure("walkforward", size, args.data_dir)
    share = IN_SAMPLE / (IN_SAMPLE + FOLDS * (1 - IN_SAMPLE))
    expected = FOLDS * share
    ratio = walk["seconds"] / one["seconds"]
    print(
        f"sweep of the {one['combinations']:,}-combination grid on {size:,} bars: "
        f"{one['seconds']:.1f} s wall ({one['cpu_s']:.1f} s CPU), peak RSS "
        f"{one['peak_rss_gib']:.2f} GiB",
        flush=True,
    )
    print(
        f"{FOLDS}-fold rolling walk-forward (inSample {IN_SAMPLE}) of the same grid: "
        f"{walk['seconds']:.1f} s wall ({walk['cpu_s']:.1f} s CPU), peak RSS "
        f"{walk['peak_rss_gib']:.2f} GiB -> {ratio:.2f}x the sweep (its in-sample windows "
        f"cover {expected:.2f}x the bars; {walk['cpu_s'] / one['cpu_s']:.2f}x in CPU time)",
        flush=True,
    )
    print(f"  {walk['reading']}", flush=True)
    print(
        f"one fold's result ({walk['fold_bars']:,} out-of-sample bars, {walk['fold_trades']:,} "
        f"trades): {walk['fold_json_bytes'] / 1e6:.2f} MB as JSON, "
        f"{walk['fold_stored_bytes'] / 1e6:.2f} MB as the queue stores it "
        f"(packed in {walk['pack_s'] * 1000:.0f} ms, unpacked in {walk['unpack_s'] * 1000:.0f} ms)",
        flush=True,
    )
    if args.json:
        document = {"bars": size, "sweep": one, "walkforward": walk, "ratio": ratio}
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
