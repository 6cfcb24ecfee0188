"""The reference sweep through the whole service: submit -> completed with one worker and with
two, against the engine alone on the same bars, same run.

    python tests/benchmarks/bench_queue_sweep.py [--quick] [--json out.json]

Real PostgreSQL, RabbitMQ, `algotcha api` and `algotcha worker` processes (bench_api.Stack).
The engine alone runs in a fresh process (bench_sweep's child: load + sweep). Prints measured
figures next to the targets of DESIGN.md (the queue adds under 10 %; two workers take at most
0.6x the time of one) and the machine's load, which on a shared machine moves them; never
asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from algotcha.config import Settings  # noqa: E402
from tests.benchmarks import bench_sweep  # noqa: E402
from tests.benchmarks.bench_api import Stack  # noqa: E402
from tests.fixtures.app import free_port  # noqa: E402

FINAL = ("completed", "failed", "cancelled")
TARGET_OVERHEAD = 0.10
TARGET_SPEEDUP_RATIO = 0.6
SYMBOL = "BENCH"


def sweep_body(size: int) -> dict[str, Any]:
    """The reference grid (bench_sweep's sma_grid) as a SweepRequest JSON on `size` bars."""
    spec = bench_sweep.GRIDS["sma_grid"]
    start = bench_sweep.START
    end = start + timedelta(minutes=size)
    rules = {"long_entry": "longEntry", "long_exit": "longExit"}
    payload = {
        "strategyName": "reference grid",
        "symbol": SYMBOL,
        "timeframe": "1m",
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "initialCapital": 10_000,
        "feeRate": bench_sweep.FEE,
        "slippage": 0.0,
        "positionSize": 1.0,
        **{rules[field]: text for field, text in spec["rules"].items()},
    }
    parameters = {
        name: {"from": low, "to": high, "step": step}
        for name, (low, high, step) in spec["parameters"].items()
    }
    return {"payload": payload, "parameters": parameters, "outOfSample": 0.3}


def through_queue(stack: Stack, token: str, size: int, workers: int) -> dict[str, Any]:
    """Start `workers` worker processes, then time one sweep from submit to completed."""
    started_workers = []
    for _ in range(workers):
        # The default heartbeat, not the Stack's fast one: a chunk's progress is recorded on
        # each beat, and the figure is the service's as deployed.
        env = {
            **stack.env,
            "METRICS_PORT": str(free_port()),
            "LOG_LEVEL": "INFO",
            "HEARTBEAT_INTERVAL_SECONDS": str(Settings().heartbeat_interval_s),
        }
        saved, stack.env = stack.env, env
        started_workers.append(stack.start("worker"))
        stack.env = saved
    headers = {"Authorization": f"Bearer {token}"}
    done = threading.Event()
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as client:
        _wait_for_workers(client, workers)
        worker_cpu = CpuMeter([process.pid for process in started_workers])
        api_cpu = CpuMeter([stack.processes[0].pid])
        began = time.perf_counter()
        answer = client.post(
            "/api/backtest/queue", json={"sweep": sweep_body(size), "notifyVia": "none"}
        )
        answer.raise_for_status()
        job_id = answer.json()["queueId"]
        sampler = threading.Thread(target=worker_cpu.sample_until, args=(done,), daemon=True)
        sampler.start()
        _wait_for_the_end(client, job_id)
        elapsed = time.perf_counter() - began
        done.set()
        sampler.join()
        job = client.get(f"/api/backtest/queue/{job_id}").json()
    api_cpu.sample()
    for process in started_workers:
        process.terminate()
    for process in started_workers:
        process.wait(timeout=60)
    if job["status"] != "completed":
        raise SystemExit(f"the sweep ended {job['status']}: {job['error']}")
    result = job["result"]
    return {
        "workers": workers,
        "seconds": elapsed,
        # the workers' CPU from submit to completed, their backtest processes included
        "worker_cpu_s": worker_cpu.used_s(),
        "api_cpu_s": api_cpu.used_s(),
        "engine_ms_summed": result["elapsedMs"],
        "combinations": result["combinations"],
        "best": result["top"][0]["parameters"] if result["top"] else None,
    }


def _wait_for_the_end(client: httpx.Client, job_id: int) -> None:
    """Follow the job's event stream, as the page does, until its final status: polling
    took CPU from the workers being measured, and saw the end up to an interval late."""
    path = f"/api/backtest/queue/{job_id}/events"
    with client.stream("GET", path, timeout=httpx.Timeout(60, read=None)) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and json.loads(line[5:])["status"] in FINAL:
                return
    raise SystemExit(f"the event stream of job {job_id} ended before the job")


class CpuMeter:
    """CPU seconds used since it was made by some processes and their descendants, sampled.

    Each process counts by its own times, last sampled: a backtest process that ends between
    two samples loses what it used since the earlier one (sampling every 0.2 s, little), and
    never counts twice. Its parent's children times cannot stand in for it: a chunk's process
    is a child of the worker's forkserver, which may not have reaped it when the job is seen
    completed, so reading them once at the end missed or kept the whole engine by chance.
    """

    def __init__(self, pids: list[int]) -> None:
        self.roots = [psutil.Process(pid) for pid in pids]
        self.start = self._read()
        self.last = dict(self.start)

    def _read(self) -> dict[int, float]:
        seen = {}
        for root in self.roots:
            for process in [root, *root.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                seen[process.pid] = times.user + times.system
        return seen

    def sample(self) -> None:
        self.last |= self._read()

    def sample_until(self, stop: threading.Event, every_s: float = 0.2) -> None:
        while not stop.wait(every_s):
            self.sample()
        self.sample()

    def used_s(self) -> float:
        return sum(self.last.values()) - sum(self.start.values())


def _wait_for_workers(client: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 120
    while client.get("/api/backtest/queue/stats").json()["workers"] < count:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start")
        time.sleep(0.2)
    time.sleep(2)  # the forkserver and the first backtest process warm up after registering


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="260k bars instead of 2.6M")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--data-dir", type=Path, help="the engine benchmark's bar store")
    args = parser.parse_args(argv)
    size = bench_sweep.BARS // 10 if args.quick else bench_sweep.BARS
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    alone = bench_sweep.ours("sma_grid", size, args.data_dir)
    stack = Stack(api_workers=1)
    try:
        engine.BarStore(stack.tmp).write(SYMBOL, bench_sweep.bars_of(args.data_dir, size))
        token = stack.users(1)[0]
        one = through_queue(stack, token, size, workers=1)
        two = through_queue(stack, token, size, workers=2)
    finally:
        stack.close()
    overhead = one["seconds"] / alone["total_s"] - 1
    cpu_overhead = one["worker_cpu_s"] / alone["sweep_cpu_s"] - 1
    ratio = two["seconds"] / one["seconds"]
    print(
        f"reference sweep, {one['combinations']:,} combinations on {size:,} bars:\n"
        f"  engine alone (one process, load + sweep): {alone['total_s']:.1f} s "
        f"({alone['sweep_s']:.1f} s sweeping, {alone['sweep_cpu_s']:.1f} s of CPU)\n"
        f"  through the queue, 1 worker (submit -> completed): {one['seconds']:.1f} s -> "
        f"the queue adds {overhead:+.1%} (target under {TARGET_OVERHEAD:.0%}); the worker "
        f"used {one['worker_cpu_s']:.1f} s of CPU ({cpu_overhead:+.1%} over the engine's)\n"
        f"  through the queue, 2 workers: {two['seconds']:.1f} s -> {ratio:.2f}x the time of one "
        f"(target at most {TARGET_SPEEDUP_RATIO}x), speed-up {1 / ratio:.2f}x; "
        f"{two['worker_cpu_s']:.1f} s of CPU ({two['worker_cpu_s'] / one['worker_cpu_s'] - 1:+.1%} "
        f"over one worker's); the API used {one['api_cpu_s']:.1f} and {two['api_cpu_s']:.1f} s\n"
        f"  (wall times need idle CPUs: with a load of {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs, two workers cannot run twice as fast)",
        flush=True,
    )
    report = {"bars": size, "alone": alone, "one": one, "two": two, "overhead": overhead,
              "cpu_overhead": cpu_overhead, "two_over_one": ratio}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
