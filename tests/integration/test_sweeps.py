"""Sweeps through the real queue: one place in line, chunks fanned out over worker processes,
the same result as the engine alone, a killed worker, a cancel, the per-user limit."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import psutil
import psycopg
import pytest

import engine
from algotcha import engine_requests, schemas
from algotcha.config import Settings
from algotcha.services.chunks import CHUNKS_PER_JOB
from tests.fixtures.app import User, payload
from tests.fixtures.polling import wait_for
from tests.integration.test_worker import status_of

pytestmark = pytest.mark.integration

# 4 x 5 = 20 combinations, 18 after the constraint: a chunk each.
PARAMETERS = {"fast": {"from": 5, "to": 20, "step": 5}, "slow": [15, 30, 40, 50, 60]}


def sweep_request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payload": payload(
            strategyName="SMA grid",
            timeframe="15m",
            longEntry="crossover(sma(close, fast), sma(close, slow))",
            longExit="crossunder(sma(close, fast), sma(close, slow))",
        ),
        "parameters": PARAMETERS,
        "constraint": "fast < slow",
        "objective": "sharpe",
        "minTrades": 1,
        "outOfSample": 0.3,
    }
    body.update(changes)
    return body


def submit_sweep(user: User, **changes: Any) -> Any:
    return user.client.post(
        "/api/backtest/queue", json={"sweep": sweep_request(**changes), "notifyVia": "none"}
    )


def engine_result(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """The same sweep run by the engine alone, in this process, as the API renders it."""
    store = engine.BarStore(settings.data_dir)
    sweep = engine_requests.parse_sweep(request)
    sweep = dataclasses.replace(sweep, base=engine.check(sweep.base, store))
    base = sweep.base
    bars = store.load(base.symbol, base.timeframe, base.start, base.end)
    return schemas.render_sweep(engine.sweep.run(sweep, bars))


def without_time(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "elapsedMs"}


def backtest_processes(worker_pid: int) -> int:
    """The live processes a worker's forkserver has forked: its backtest processes."""
    forkservers = [
        child
        for child in psutil.Process(worker_pid).children()
        if "multiprocessing.forkserver" in " ".join(child.cmdline())
    ]
    return sum(
        child.status() != psutil.STATUS_ZOMBIE
        for server in forkservers
        for child in server.children()
    )


def chunks_of(db: psycopg.Connection, job_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT chunk, status, done_by, attempt FROM job_chunk WHERE job_id = %s ORDER BY chunk",
        (job_id,),
    ).fetchall()


def running_workers(db: psycopg.Connection, job_id: int) -> set[str]:
    rows = db.execute(
        "SELECT worker_id FROM job_chunk WHERE job_id = %s AND status = 'running'", (job_id,)
    ).fetchall()
    return {row[0] for row in rows}


def test_a_sweep_behind_two_backtests_is_third_and_runs_after_them(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    ann, bob = make_user(), make_user()
    first = ann.submit().json()["queueId"]
    second = bob.submit().json()["queueId"]
    accepted = submit_sweep(ann)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["position"] == 3 and body["combinations"] == 18
    sweep_id = body["queueId"]
    queued = ann.client.get(f"/api/backtest/queue/{sweep_id}").json()
    assert queued["kind"] == "sweep" and queued["combinationsDone"] == 0
    assert queued["queuePosition"] == 3 and queued["symbol"] == "SYNTH"

    start_worker()
    wait_for(lambda: status_of(db, sweep_id) == "completed", timeout_s=90, what="the sweep")
    rows = db.execute(
        "SELECT id, started_at, completed_at FROM backtest_job ORDER BY started_at"
    ).fetchall()
    assert [r[0] for r in rows] == [first, second, sweep_id]
    assert rows[1][2] <= rows[2][1], "the sweep started before the backtests ahead finished"
    done = ann.client.get(f"/api/backtest/queue/{sweep_id}").json()
    assert done["progress"] == 100 and done["combinationsDone"] == 18
    assert len(chunks_of(db, sweep_id)) == min(18, CHUNKS_PER_JOB)


def test_two_workers_share_a_sweep_and_match_the_engine_alone(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    ann, eve = make_user(), make_user()
    workers = [start_worker(DEBUG_BACKTEST_DELAY_SECONDS="0.4") for _ in range(2)]
    sweep_id = submit_sweep(ann).json()["queueId"]
    wait_for(lambda: status_of(db, sweep_id) == "completed", timeout_s=90, what="the sweep")
    for worker in workers:  # neither keeps the sweep's process, and the bars it holds
        wait_for(
            lambda: backtest_processes(worker.pid) == 1,  # noqa: B023
            timeout_s=30,
            what=f"worker {worker.pid} down to its waiting backtest process",
        )

    chunks = chunks_of(db, sweep_id)
    assert {status for _, status, _, _ in chunks} == {"done"}
    assert len({done_by for _, _, done_by, _ in chunks}) == 2, "one worker did every chunk"
    stored = db.execute(
        "SELECT count(*), count(DISTINCT unit), min(unit), max(unit) FROM chunk_row "
        "WHERE job_id = %s",
        (sweep_id,),
    ).fetchone()
    assert stored == (18, 18, 0, 17)

    job = ann.client.get(f"/api/backtest/queue/{sweep_id}").json()
    expected = engine_result(settings, sweep_request())
    assert without_time(job["result"]) == without_time(expected)
    assert job["result"]["top"][0]["inSample"]["sharpe"] is not None

    grid = ann.client.get(f"/api/backtest/queue/{sweep_id}/grid.csv")
    assert grid.status_code == 200 and grid.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(grid.text)))
    assert table[0][:3] == ["index", "fast", "slow"] and "oos_sharpe" in table[0]
    assert [int(row[0]) for row in table[1:]] == list(range(18))
    assert eve.client.get(f"/api/backtest/queue/{sweep_id}/grid.csv").status_code == 404
    # the result routes of a backtest (trades, exports) have nothing to show for a sweep
    trades = ann.client.get(f"/api/backtest/queue/{sweep_id}/trades")
    assert trades.status_code == 409 and "grid.csv" in trades.json()["detail"]

    best = job["result"]["top"][0]
    cell = f"/api/backtest/queue/{sweep_id}/combinations/{best['index']}/backtest"
    assert eve.client.post(cell).status_code == 404
    assert (
        ann.client.post(f"/api/backtest/queue/{sweep_id}/combinations/18/backtest").status_code
        == 404
    )
    opened = ann.client.post(cell)
    assert opened.status_code == 202, opened.text
    single_id = opened.json()["queueId"]
    wait_for(lambda: status_of(db, single_id) == "completed", timeout_s=60, what="the cell")
    single = ann.client.get(f"/api/backtest/queue/{single_id}").json()
    assert single["kind"] == "backtest"
    assert f"sma(close, {best['parameters']['fast']})" in single["payload"]["longEntry"]
    assert single["result"]["metrics"]["trades"] > 0


def kill_one_of_two_busy_workers(
    user: User, start_worker: Any, db: psycopg.Connection, submit: Any, units: int
) -> dict[str, Any]:
    """Submit a chunked job of `units` with two workers, SIGKILL one once both run a chunk,
    and see the job complete once with each unit stored once and a chunk redone; the job."""
    doomed = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1.0")
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1.0")
    job_id = submit(user).json()["queueId"]
    wait_for(lambda: len(running_workers(db, job_id)) == 2, timeout_s=60, what="both busy")
    doomed.kill()

    wait_for(lambda: status_of(db, job_id) == "completed", timeout_s=120, what="the job")
    chunks = chunks_of(db, job_id)
    assert max(attempt for *_, attempt in chunks) == 2, "no chunk was redone"
    stored = db.execute(
        "SELECT count(*), count(DISTINCT unit) FROM chunk_row WHERE job_id = %s", (job_id,)
    ).fetchone()
    assert stored == (units, units)
    attempt = db.execute("SELECT attempt FROM backtest_job WHERE id = %s", (job_id,)).fetchone()
    assert attempt == (1,)
    job: dict[str, Any] = user.client.get(f"/api/backtest/queue/{job_id}").json()
    return job


def test_a_worker_killed_mid_sweep_loses_only_its_chunk(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    job = kill_one_of_two_busy_workers(make_user(), start_worker, db, submit_sweep, 18)
    assert without_time(job["result"]) == without_time(engine_result(settings, sweep_request()))


def cancel_with_both_workers_busy(
    user: User, start_worker: Any, db: psycopg.Connection, submit: Any
) -> None:
    """Submit a chunked job with two workers whose chunks the delay holds 30 s, cancel it
    once both run one, and see both let go of their chunk and the job end cancelled."""
    workers = [start_worker(DEBUG_BACKTEST_DELAY_SECONDS="30") for _ in range(2)]
    job_id = submit(user).json()["queueId"]
    wait_for(lambda: len(running_workers(db, job_id)) == 2, timeout_s=60, what="both busy")

    cancelled = user.client.delete(f"/api/backtest/queue/{job_id}")
    assert cancelled.status_code == 202, cancelled.text
    # Only the cancel check stops the chunks before 30 s: within a second or two on a quiet
    # machine; 10 s leaves room for a loaded one.
    wait_for(lambda: status_of(db, job_id) == "cancelled", timeout_s=10, what="cancelled")
    wait_for(lambda: not running_workers(db, job_id), timeout_s=10, what="no chunk running")
    assert db.execute(
        "SELECT count(*) FROM job_chunk WHERE job_id = %s AND status = 'done'", (job_id,)
    ).fetchone() == (0,)
    # each worker lets go of its chunk: stopped at a tick, or (its child having just finished)
    # refused when it tried to store the rows
    stopped = ("event=chunk_stopped", "event=job_cancelled", "event=chunk_taken_away")
    for worker in workers:
        wait_for(
            lambda w=worker: any(f"{event} job={job_id} chunk=" in w.output() for event in stopped),
            timeout_s=10,
            what="each worker stopping its chunk",
        )


def test_cancel_mid_sweep_stops_the_chunks_of_both_workers(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    cancel_with_both_workers_busy(make_user(), start_worker, db, submit_sweep)


def test_a_second_sweep_of_the_same_user_is_429_and_bad_sweeps_are_422(
    make_user: Any, db: psycopg.Connection
) -> None:
    ann, bob = make_user(), make_user()
    assert submit_sweep(ann).status_code == 202
    second = submit_sweep(ann)
    assert second.status_code == 429, second.text
    assert int(second.headers["Retry-After"]) > 0 and second.json()["success"] is False
    assert submit_sweep(bob).status_code == 202, "another user's sweep is not limited"
    assert ann.submit().status_code == 202, "a backtest is not limited by the sweep limit"

    bad = submit_sweep(bob, parameters={"fast": {"from": 5, "to": 1, "step": 1}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "sweep.parameters.fast.to"
    unknown = submit_sweep(bob, payload={**sweep_request()["payload"], "symbol": "NOPE"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "sweep.payload.symbol"
    both = ann.client.post(
        "/api/backtest/queue", json={"sweep": sweep_request(), "payload": payload()}
    )
    assert both.status_code == 422
    count = db.execute("SELECT count(*) FROM backtest_job WHERE kind = 'sweep'").fetchone()
    assert count == (2,)
