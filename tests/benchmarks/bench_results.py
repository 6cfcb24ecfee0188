"""Large results: storing a 92,000-trade result, and the job document that carries it.

    python tests/benchmarks/bench_results.py [--json out.json]

A real engine run on 1-minute bars makes the trades (cut to 92,000). Storing is timed through
services.jobs.complete (trades in chunks plus the job row, one transaction) against the same
result without trades, so the difference is what the trades add; the former layout (every
trade in the job's JSONB) is timed in the same run for the ratio. The job document is read
through `algotcha api` over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from algotcha import models  # noqa: E402
from algotcha.db import jobs as job_db  # noqa: E402
from algotcha.db import pool as db_pool  # noqa: E402
from algotcha.services import jobs, workers  # noqa: E402
from engine import synth  # noqa: E402
from tests.benchmarks.bench_api import Stack, print_table, row  # noqa: E402
from tests.fixtures.app import payload  # noqa: E402

TRADES = 92_000
REPEATS = 3


def big_result() -> dict[str, Any]:
    """An engine result of exactly TRADES trades (a fast cross on 1-minute bars)."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    bars = synth.synth_bars(start, 700 * 24 * 60, seed=5)
    request = engine.BacktestRequest(
        strategy_name="busy",
        symbol="SYNTH",
        timeframe="1m",
        start=start,
        end=bars.index[-1].to_pydatetime(),
        initial_capital=10_000.0,
        fee_rate=0.0,
        slippage=0.0,
        position_size=1.0,
        long_entry="crossover(sma(close, 2), sma(close, 5))",
        long_exit="crossunder(sma(close, 2), sma(close, 5))",
        short_entry=None,
        short_exit=None,
        stop_loss=None,
        take_profit=None,
        trailing_stop=None,
    )
    result = engine.run(request, bars).as_dict()
    if len(result["trades"]) < TRADES:
        raise RuntimeError(f"the run made {len(result['trades'])} trades, fewer than {TRADES}")
    result["trades"] = result["trades"][:TRADES]
    return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = big_result()
    bare = {**result, "trades": []}
    stack = Stack(api_workers=1)
    pool = db_pool.create_pool(stack.database_url, max_size=2)
    pool.open(wait=True)
    try:
        token = stack.users(1)[0]
        client = httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        worker_id = workers.new_worker_id()
        workers.register(pool, worker_id)

        def claimed() -> int:
            body = {"payload": payload(), "notifyVia": "none"}
            assert client.post("/api/backtest/queue", json=body).status_code == 202
            job = jobs.claim(pool, 0, worker_id)
            assert job is not None
            return job.id

        def timed(store: Any) -> tuple[float, int]:
            job_id = claimed()
            started = time.perf_counter()
            store(job_id)
            return (time.perf_counter() - started) * 1000, job_id

        def store_old(job_id: int, whole: dict[str, Any] = result) -> None:
            with db_pool.transaction(pool) as conn:
                job_db.update_job_finished(
                    conn, job_id, worker_id, status="completed", result=whole
                )

        new = [timed(lambda j: jobs.complete(pool, j, worker_id, result)) for _ in range(REPEATS)]
        without = [timed(lambda j: jobs.complete(pool, j, worker_id, bare)) for _ in range(REPEATS)]
        old = [timed(store_old) for _ in range(REPEATS)]
        stored = statistics.median(t for t, _ in new)
        baseline = statistics.median(t for t, _ in without)
        former = statistics.median(t for t, _ in old)
        added = stored - baseline

        def document(job_id: int) -> tuple[float, int]:
            client.get(f"/api/backtest/queue/{job_id}")  # one warm-up read
            times, size = [], 0
            for _ in range(15):
                started = time.perf_counter()
                r = client.get(f"/api/backtest/queue/{job_id}")
                times.append((time.perf_counter() - started) * 1000)
                size = len(r.content)
                assert r.status_code == 200
            return statistics.median(times), size

        doc_ms, doc_bytes = document(new[0][1])
        old_doc_ms, _ = document(old[0][1])
        head = client.get(f"/api/backtest/queue/{new[0][1]}").json()["result"]
        assert head["tradeCount"] == TRADES and len(head["trades"]) == 100
        client.close()
    finally:
        pool.close()
        stack.close()
    full_json = len(json.dumps(models.camel_keys(result)))
    load = os.getloadavg()[0]
    rows = [
        # Wall times on a shared machine: read them against the load it was under.
        row("machine load average (1 min) during the run", load, "procs", "-", True),
        row(f"store a {TRADES:,}-trade result: added by trades", added, "ms", "< 200", added < 200),
        row(f"store a {TRADES:,}-trade result: whole complete()", stored, "ms", "-", True),
        row("store the same result without trades", baseline, "ms", "-", True),
        row("former layout (all trades in the JSONB)", former, "ms", "-", True),
        row("former / new store time", former / stored, "ratio", "-", True),
        row(
            f"job document of a {TRADES:,}-trade result (median)", doc_ms, "ms", "< 50", doc_ms < 50
        ),
        row("job document size", doc_bytes / 1000, "kB", "-", True),
        # A job stored the former way: its row's JSONB holds every trade, which is read whole
        # (the document now shows only the first 100 of them).
        row("former layout: job document (median)", old_doc_ms, "ms", "-", True),
        row("former layout / new job document time", old_doc_ms / doc_ms, "ratio", "-", True),
        row("former job document size (every trade in it)", full_json / 1000, "kB", "-", True),
    ]
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
