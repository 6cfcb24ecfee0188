"""Sweep benchmark: the reference 1,000-combination SMA grid and a 100-combination RSI grid with
stops on 2.6M synthetic 1-minute bars, through engine.sweep and through vectorbt, same run.

    python tests/benchmarks/bench_sweep.py [--quick] [--json out.json]

Each engine sweep runs in a fresh child process, so its peak RSS is its own and its time
includes numba's start-up. vectorbt runs a sample of combinations in chunks small enough to
fit in memory (it holds bars x columns arrays) and its time is extrapolated to the whole grid;
the output says so. Prints measured figures next to the targets; never asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable from anywhere

import pandas as pd

import engine
from engine import grid, sweep
from engine.request import RULE_FIELDS
from engine.synth import synth_bars

START = datetime(2020, 1, 1, tzinfo=UTC)
BARS = 2_628_000
FEE = 0.001
TARGET_S = 20.0
TARGET_RSS_GIB = 2.0
TARGET_RATIO = 10.0
GRIDS: dict[str, dict[str, Any]] = {
    "sma_grid": {
        "rules": {
            "long_entry": "crossover(sma(close, fast), sma(close, slow))",
            "long_exit": "crossunder(sma(close, fast), sma(close, slow))",
        },
        "parameters": {"fast": (5, 50, 5), "slow": (60, 258, 2)},
    },
    "rsi_grid": {
        "rules": {"long_entry": "rsi(close, 14) < lower", "long_exit": "rsi(close, 14) > 70"},
        "parameters": {
            "lower": (20, 38, 2),
            "stopLoss": [0.01, 0.015, 0.02, 0.025, 0.03],
            "takeProfit": [0.03, 0.05],
        },
    },
}
# vectorbt combinations timed per grid, in chunks of this many columns
VBT_SAMPLE = {"sma_grid": 6, "rsi_grid": 6}
VBT_CHUNK = 2


def sweep_request(name: str, size: int) -> engine.SweepRequest:
    spec = GRIDS[name]
    parameters = {
        key: tuple(float(v) for v in value)
        if isinstance(value, list)
        else grid.expand(key, *map(float, value))
        for key, value in spec["parameters"].items()
    }
    first = {key: values[0] for key, values in parameters.items()}
    texts: dict[str, str] = spec["rules"]
    fields: dict[str, Any] = dict.fromkeys(RULE_FIELDS)
    fields |= {
        field: engine.rules.template(text, frozenset(parameters)).bind(first)
        for field, text in texts.items()
    }
    base = engine.BacktestRequest(
        strategy_name=name,
        symbol="BENCH",
        start=START,
        end=START + timedelta(minutes=size),
        fee_rate=FEE,
        **fields,
        stop_loss=first.get("stopLoss"),
        take_profit=first.get("takeProfit"),
    )
    return engine.SweepRequest(base, texts, parameters, out_of_sample=0.3)


def bars_of(data_dir: Path | None, size: int) -> pd.DataFrame:
    """The benchmark's bars: from the engine benchmark's store when it is there."""
    if data_dir is not None:
        store = engine.BarStore(data_dir)
        info = store.info("BENCH2_6M")
        if info is not None and info.bars >= size:
            return store.load("BENCH2_6M", "1m", START, START + timedelta(minutes=size))
    return synth_bars(START, size, seed=42)


def child(name: str, size: int, data_dir: Path | None) -> dict[str, Any]:
    """One engine sweep in this (fresh) process: seconds, peak RSS, and the result's shape."""
    started = time.perf_counter()
    bars = bars_of(data_dir, size)
    loaded = time.perf_counter()
    cpu = time.process_time()
    request = sweep_request(name, size)
    result = sweep.run(request, bars)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    peak_kib = peak_rss_kib()
    best = result.top[0] if result.top else None
    return {
        "grid": name,
        "combinations": result.combinations,
        "load_s": loaded - started,
        "sweep_s": done - loaded,
        # CPU seconds of this process: what the sweep costs when the machine is shared
        "sweep_cpu_s": cpu,
        "total_s": done - started,
        "peak_rss_gib": peak_kib / 2**20,
        "best": None if best is None else best.parameters,
        "best_trades": None if best is None else best.in_sample["trades"],
        "deflated_sharpe": result.overfitting.deflated_sharpe,
        "pbo": result.overfitting.pbo,
    }


def peak_rss_kib() -> int:
    """This process's peak RSS. /proc's VmHWM starts afresh at exec; ru_maxrss keeps the
    parent's peak across fork and exec, which would count vectorbt's arrays here."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def ours(name: str, size: int, data_dir: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--bars", str(size)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def vectorbt(name: str, bars: pd.DataFrame, request: engine.SweepRequest) -> dict[str, Any] | None:
    """Seconds per combination of vectorbt on a sample of the grid, chunk by chunk."""
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    plan = sweep.plan(request)
    picks = [plan.values(i) for i in range(0, len(plan.combinations), 97)][: VBT_SAMPLE[name]]
    frame = bars.tz_localize(None)  # vectorbt is built for naive indexes
    close, open_ = frame["close"], frame["open"]

    def run_chunks(close: pd.Series, open_: pd.Series, frame: pd.DataFrame) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for at in range(0, len(picks), VBT_CHUNK):
                chunk = picks[at : at + VBT_CHUNK]
                extra: dict[str, Any] = {}
                if name == "sma_grid":
                    fast = vbt.MA.run(close, [int(p["fast"]) for p in chunk], short_name="f").ma
                    slow = vbt.MA.run(close, [int(p["slow"]) for p in chunk], short_name="s").ma
                    fast.columns = slow.columns = range(len(chunk))
                    entries, exits = fast.vbt.crossed_above(slow), fast.vbt.crossed_below(slow)
                else:
                    level = vbt.RSI.run(close, 14, ewm=True).rsi
                    keys = range(len(chunk))
                    entries = pd.concat([level < p["lower"] for p in chunk], axis=1, keys=keys)
                    exits = pd.concat([level > 70 for _ in chunk], axis=1, keys=keys)
                    extra = {"sl_stop": [p["stopLoss"] for p in chunk],
                             "tp_stop": [p["takeProfit"] for p in chunk],
                             "high": frame["high"], "low": frame["low"], "open": open_}  # fmt: skip
                portfolio = vbt.Portfolio.from_signals(
                    close,
                    entries=entries.shift(1, fill_value=False),  # next-open fills
                    exits=exits.shift(1, fill_value=False),
                    price=open_,
                    fees=FEE,
                    init_cash=10_000.0,
                    freq="1min",
                    **extra,
                )
                portfolio.total_return(), portfolio.sharpe_ratio(), portfolio.max_drawdown()

    # numba compiles vectorbt's kernels on first use (seconds): warm them up on a small slice
    small = frame.iloc[:5000]
    run_chunks(small["close"], small["open"], small)
    started, cpu = time.perf_counter(), time.process_time()
    run_chunks(close, open_, frame)
    elapsed = time.perf_counter() - started
    per = elapsed / len(picks)
    per_cpu = (time.process_time() - cpu) / len(picks)
    return {"sampled": len(picks), "per_combination_s": per,
            "extrapolated_s": per * len(plan.combinations),
            "extrapolated_cpu_s": per_cpu * len(plan.combinations)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="260k bars instead of 2.6M")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--data-dir", type=Path, help="the engine benchmark's bar store")
    parser.add_argument("--child", choices=sorted(GRIDS), help=argparse.SUPPRESS)
    parser.add_argument("--bars", type=int, default=BARS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = BARS // 10 if args.quick else args.bars
    if args.child:
        print(json.dumps(child(args.child, size, args.data_dir)))
        return 0
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    bars = bars_of(args.data_dir, size)
    rows = []
    for name in GRIDS:
        row = ours(name, size, args.data_dir)
        other = vectorbt(name, bars, sweep_request(name, size))
        row["vectorbt"] = other
        row["ratio"] = other["extrapolated_s"] / row["sweep_s"] if other else None
        row["cpu_ratio"] = other["extrapolated_cpu_s"] / row["sweep_cpu_s"] if other else None
        rows.append(row)
        per_ms = row["sweep_s"] / row["combinations"] * 1000
        print(
            f"{name}: {row['combinations']:,} combinations on {size:,} bars: "
            f"{row['sweep_s']:.1f} s wall ({per_ms:.1f} ms each; {row['sweep_cpu_s']:.1f} s of "
            f"CPU; {row['total_s']:.1f} s with the load), peak RSS {row['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
        if other:
            print(
                f"  vectorbt: {other['per_combination_s']:.2f} s per combination, timed on "
                f"{other['sampled']} combinations in chunks of {VBT_CHUNK} and extrapolated to "
                f"{other['extrapolated_s']:.0f} s for the grid -> engine {row['ratio']:.1f}x "
                f"faster ({row['cpu_ratio']:.1f}x in CPU time)",
                flush=True,
            )
        else:
            print("  vectorbt: not installed (pip install -e '.[bench]')", flush=True)
    reference = rows[0]
    print(
        f"target (sma_grid, 2.6M bars): under {TARGET_S:.0f} s -> {reference['sweep_s']:.1f} s; "
        f"peak RSS under {TARGET_RSS_GIB:.0f} GiB -> {reference['peak_rss_gib']:.2f} GiB; "
        f"at least {TARGET_RATIO:.0f}x vectorbt -> "
        + ("n/a" if reference["ratio"] is None else f"{reference['ratio']:.1f}x"),
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "bars": size}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
