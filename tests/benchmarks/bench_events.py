"""Event-stream benchmark: 1,000 open streams on idle jobs against one `algotcha api` process.

    python tests/benchmarks/bench_events.py [--streams 1000] [--idle-seconds 30] [--rounds 5]

Measures the API process's CPU while the streams are open and nothing changes (the cost that
grows with every waiting user), and how long a queue change takes to reach every stream: a
worker claims the head of the queue, which moves the position of every job behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algotcha.db import jobs as job_db  # noqa: E402
from algotcha.db import workers as worker_db  # noqa: E402
from tests.benchmarks.bench_api import Stack, print_table, row  # noqa: E402

CPU_TARGET_CORES = 0.05
LATENCY_TARGET_MS = 100.0


@dataclass
class Stream:
    """One raw HTTP/1.1 event stream; every `data:` line is kept with its arrival time."""

    job_id: int
    # Parsed only after a round: the client's own work must not pass for the server's.
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, port: int, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                f"GET /api/backtest/queue/{self.job_id}/events HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream {self.job_id}: {status!r}")
        try:
            # Each event is one chunk of the chunked body, so a data line is never split.
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    self.arrivals.append((time.perf_counter(), line[6:]))
                    self.changed.set()
        finally:
            writer.close()


def api_processes(stack: Stack) -> list[psutil.Process]:
    """`algotcha api` and, with --api-workers above 1, the worker processes it started."""
    parent = psutil.Process(stack.processes[0].pid)
    return [parent, *parent.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(float(t.user + t.system) for t in (p.cpu_times() for p in processes))


async def cpu_cores(processes: list[psutil.Process], seconds: float) -> float:
    """CPU time the API used over a window, per second of wall time."""
    before, started = cpu_seconds(processes), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(processes) - before) / (time.perf_counter() - started)


def queue_idle_jobs(stack: Stack, count: int) -> list[int]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        rows = conn.execute(
            """
            INSERT INTO backtest_job (user_id, strategy_name, payload, notify_via)
            SELECT u.id, 'idle', '{}', 'none'
            FROM generate_series(1, %s) g
            CROSS JOIN LATERAL (SELECT id FROM app_user ORDER BY id LIMIT 1) u
            RETURNING id
            """,
            (count,),
        ).fetchall()
        conn.execute("VACUUM ANALYZE backtest_job")
    return sorted(r[0] for r in rows)


async def wait_for_events(streams: list[Stream], counts: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for stream, count in zip(streams, counts, strict=True):
        while len(stream.arrivals) <= count:
            stream.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"stream of job {stream.job_id} got no event")
            await asyncio.wait_for(stream.changed.wait(), remaining)


async def measure(args: argparse.Namespace, stack: Stack, token: str) -> list[dict[str, Any]]:
    process = api_processes(stack)
    baseline = await cpu_cores(process, args.baseline_seconds)
    streams = [Stream(job_id) for job_id in queue_idle_jobs(stack, args.streams)]
    tasks = [asyncio.create_task(s.run(stack.port, token)) for s in streams]
    opened = time.perf_counter()
    await wait_for_events(streams, [0] * len(streams), timeout_s=120)
    open_s = time.perf_counter() - opened
    await asyncio.sleep(2)  # let the opening burst settle before the idle window
    idle = await cpu_cores(process, args.idle_seconds)

    latencies: list[float] = []
    worst: list[float] = []
    fanout_cpu: list[float] = []
    single: list[float] = []
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        worker_db.insert_worker(conn, "bench-worker", "bench", 0)
        for _ in range(args.rounds):
            live = [s for s in streams if json.loads(s.arrivals[-1][1])["status"] == "queued"]
            counts = [len(s.arrivals) for s in live]
            cpu_before = cpu_seconds(process)
            changed_at = time.perf_counter()
            claimed = job_db.claim_next_job(conn, "bench-worker")
            assert claimed is not None
            await wait_for_events(live, counts, timeout_s=30)
            fanout_cpu.append((cpu_seconds(process) - cpu_before) * 1000)
            round_ms = [
                (s.arrivals[n][0] - changed_at) * 1000 for s, n in zip(live, counts, strict=True)
            ]
            latencies += round_ms
            worst.append(max(round_ms))
            await asyncio.sleep(1)
        # One job's own change (progress) with all the streams still open: the push path
        # without the fan-out.
        running = next(s for s in streams if json.loads(s.arrivals[-1][1])["status"] != "queued")
        for progress in range(1, 21):
            count = len(running.arrivals)
            changed_at = time.perf_counter()
            job_db.update_job_progress(conn, running.job_id, "bench-worker", progress)
            await wait_for_events([running], [count], timeout_s=30)
            single.append((running.arrivals[count][0] - changed_at) * 1000)
            await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    top = max(latencies)
    n = args.streams
    return [
        row(f"API processes: {args.api_workers}", args.api_workers, "", "-", True),
        row("API CPU, no stream open (baseline)", baseline, "cores", "-", True),
        row(
            f"API CPU, {n} idle streams open",
            idle,
            "cores",
            f"< {CPU_TARGET_CORES}",
            idle < CPU_TARGET_CORES,
        ),
        row(f"API CPU added by {n} idle streams", idle - baseline, "cores", "-", True),
        row(f"time to open {n} streams (all first events)", open_s * 1000, "ms", "-", True),
        row(
            f"job progress -> its stream, {n} streams open (median)",
            statistics.median(single),
            "ms",
            f"< {LATENCY_TARGET_MS:g}",
            statistics.median(single) < LATENCY_TARGET_MS,
        ),
        row(f"job progress -> its stream (max of {len(single)})", max(single), "ms", "-", True),
        # The first stream's latency is the notification and the one read; the rest is fan-out.
        row(f"queue change -> first stream, {n} streams (min)", min(latencies), "ms", "-", True),
        row(f"queue change -> stream, {n} streams (p50)", p50, "ms", "-", True),
        row(f"queue change -> stream, {n} streams (p99)", p99, "ms", "-", True),
        row(
            f"queue change -> every stream, {n} streams (max, {args.rounds} rounds)",
            top,
            "ms",
            f"< {LATENCY_TARGET_MS:g}",
            top < LATENCY_TARGET_MS,
        ),
        row(
            "queue change -> every stream (median of per-round max)",
            statistics.median(worst),
            "ms",
            "-",
            True,
        ),
        # The same fan-out in CPU time: what the latency would be on a core of its own.
        row(
            f"API CPU time per queue change, {n} streams (median)",
            statistics.median(fanout_cpu),
            "ms",
            "-",
            True,
        ),
        row("machine load average (1 min) during the run", os.getloadavg()[0], "", "-", True),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="processes of `algotcha api`; each has its own listener and fans out to its streams",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    stack = Stack(api_workers=args.api_workers)
    try:
        [token] = stack.users(1)
        # uvloop, as uvicorn uses it: the client's share of the two cores stays small.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rows = runner.run(measure(args, stack, token))
    finally:
        stack.close()
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
