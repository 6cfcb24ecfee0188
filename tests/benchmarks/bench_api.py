"""API and queue benchmarks: real PostgreSQL, RabbitMQ, `algotcha api` and `algotcha worker`.

    python tests/benchmarks/bench_api.py [--seconds 10] [--json out.json]

Measures submits per second and their latency under load (wrk, loopback only, bounded
in time), queue-position latency with 100,000 jobs queued, the time from submit to the
worker starting on an idle queue, and the worker's overhead per job beyond the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine import synth  # noqa: E402
from tests.fixtures import services  # noqa: E402
from tests.fixtures.app import free_port, payload  # noqa: E402

WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local body = os.getenv("BODY")
local n = 0
request = function()
  n = n + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  return wrk.format("POST", "/api/backtest/queue", headers, body)
end
"""


def row(name: str, measured: float, unit: str, target: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "measured": round(measured, 3), "unit": unit, "target": target, "ok": ok}


class Stack:
    """A database, a vhost, bar data and an API process of their own, removed afterwards."""

    def __init__(self, api_workers: int = 2) -> None:
        services.ensure_services()
        self.database_url = services.create_database(services.POSTGRES_URL, "algotcha_bench")
        self.vhost, self.broker_url = services.create_vhost("algotcha_bench")
        self.tmp = Path(tempfile.mkdtemp(prefix="algotcha-bench-"))
        engine.BarStore(self.tmp).write(
            "SYNTH", synth.synth_bars(datetime(2022, 1, 1, tzinfo=UTC), 60 * 24 * 60, seed=7)
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "BROKER_URL": self.broker_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATA_DIR": str(self.tmp),
            "MAX_QUEUED_PER_USER": "1000000",
            "HEARTBEAT_INTERVAL_SECONDS": "0.2",
            "STALE_AFTER_SECONDS": "5",
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": str(free_port()),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.start("api", "--port", str(self.port), "--workers", str(api_workers))
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{args[0]}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "algotcha", *args], env=self.env, stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    def users(self, count: int) -> list[str]:
        tokens = []
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for n in range(count):
                creds = {"email": f"bench{n}@example.com", "password": "bench password"}
                client.post("/api/auth/register", json=creds)
                tokens.append(client.post("/api/auth/login", json=creds).json()["accessToken"])
        return tokens

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
        services.drop_database(self.database_url)
        services.delete_vhost(self.vhost)
        shutil.rmtree(self.tmp, ignore_errors=True)


def bench_submit(
    stack: Stack, tokens: list[str], seconds: int, connections: int = 32
) -> list[dict[str, Any]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    tokens_file = stack.tmp / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    script = stack.tmp / "submit.lua"
    script.write_text(WRK_SCRIPT)
    body = json.dumps({"payload": payload(), "notifyVia": "none"})
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            stack.url,
        ],
        env={**os.environ, "TOKENS_FILE": str(tokens_file), "BODY": body},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(out, "50%")
    p99 = _wrk_ms(out, "99%")
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = (int(bad.group(1)) if bad else 0) + (1 if socket_errors else 0)
    with psycopg.connect(stack.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM backtest_job").fetchone()[0]  # type: ignore[index]
        conn.execute("DELETE FROM backtest_job")
    load = f"POST /api/backtest/queue, {connections} conns"
    return [
        row(f"{load}: rate", rate, "req/s", "> 500", rate > 500),
        row(f"{load}: p50", p50, "ms", "-", True),
        row(f"{load}: p99", p99, "ms", "< 50", p99 < 50),
        row(f"{load}: errors", errors, "responses", "0", errors == 0),
        # wrk stops counting with requests still in flight: those may be stored too
        row(f"{load}: stored/answered", stored / max(total, 1), "ratio", ">= 1", stored >= total),
    ]


def _wrk_ms(output: str, percentile: str) -> float:
    match = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)", output)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def bench_position(stack: Stack, tokens: list[str], queued: int = 100_000) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM backtest_job WHERE status = 'queued'").fetchone()[
            0
        ]  # type: ignore[index]
        conn.execute(
            """
            INSERT INTO backtest_job (user_id, strategy_name, payload, notify_via)
            SELECT u.id, 'filler', j.payload, 'none'
            FROM generate_series(1, %s) g
            CROSS JOIN LATERAL (SELECT id FROM app_user ORDER BY id LIMIT 1) u
            CROSS JOIN LATERAL (SELECT payload FROM backtest_job LIMIT 1) j
            """,
            (max(0, queued - have),),
        )
        conn.execute("VACUUM ANALYZE backtest_job")
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    latencies = []
    with psycopg.connect(stack.database_url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                """SELECT id FROM backtest_job WHERE status = 'queued'
               AND user_id = (SELECT id FROM app_user ORDER BY id LIMIT 1)
               ORDER BY random() LIMIT 300"""
            )
        ]
        last = conn.execute(
            """SELECT max(id) FROM backtest_job
               WHERE user_id = (SELECT id FROM app_user ORDER BY id LIMIT 1)"""
        ).fetchone()[0]  # type: ignore[index]
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
        for job_id in [last, *ids]:
            started = time.perf_counter()
            r = client.get(f"/api/backtest/queue/position/{job_id}")
            latencies.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text
        last_position = client.get(f"/api/backtest/queue/position/{last}").json()["queuePosition"]
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    return [
        row(f"position query, {last_position} queued (p50)", p50, "ms", "< 5", p50 < 5),
        row(f"position query, {last_position} queued (p99)", p99, "ms", "-", True),
    ]


def bench_worker(stack: Stack, tokens: list[str], jobs: int = 10) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM backtest_job")
    worker = stack.start("worker")
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    waits, overheads = [], []
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
        time.sleep(3)  # let the worker boot (forkserver warm-up) before timing
        for _ in range(jobs):
            job_id = client.post(
                "/api/backtest/queue", json={"payload": payload(), "notifyVia": "none"}
            ).json()["queueId"]
            deadline = time.monotonic() + 60
            while (job := client.get(f"/api/backtest/queue/{job_id}").json())[
                "status"
            ] != "completed":
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"job {job_id} did not complete: {job}")
                time.sleep(0.05)
            created = datetime.fromisoformat(job["createdAt"])
            started = datetime.fromisoformat(job["startedAt"])
            completed = datetime.fromisoformat(job["completedAt"])
            waits.append((started - created).total_seconds() * 1000)
            overheads.append(
                (completed - started).total_seconds() * 1000 - job["result"]["elapsedMs"]
            )
    wait, overhead = statistics.median(waits), statistics.median(overheads)
    return [
        row("submit -> worker starts, idle queue (median)", wait, "ms", "< 100", wait < 100),
        row(
            "worker overhead per job beyond the engine (median)",
            overhead,
            "ms",
            "< 50",
            overhead < 50,
        ),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=2, help="processes of `algotcha api`")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    stack = Stack(args.api_workers)
    try:
        tokens = stack.users(50)
        # Saturated (throughput), then a moderate load (latency a user sees).
        rows = bench_submit(stack, tokens, args.seconds, connections=32)
        rows += bench_submit(stack, tokens, args.seconds, connections=8)
        rows += bench_worker(stack, tokens)
        rows += bench_position(stack, tokens)
    finally:
        stack.close()
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(r["name"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'measured':>12}  {'unit':<9}  {'target':<8}  ok")
    for r in rows:
        print(
            f"{r['name']:<{width}}  {r['measured']:>12,.3f}  {r['unit']:<9}  {r['target']:<8}  "
            f"{'yes' if r['ok'] else 'NO'}"
        )


if __name__ == "__main__":
    main()
