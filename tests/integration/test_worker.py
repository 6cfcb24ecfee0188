"""Jobs through real RabbitMQ and real worker processes: order, one at a time, cancel, recovery."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
import pytest

from tests.fixtures.app import User
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration


def status_of(db: psycopg.Connection, job_id: int) -> str:
    row = db.execute("SELECT status FROM backtest_job WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_jobs_run_in_order_one_at_a_time(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    ann, bob = make_user(), make_user()
    submitted = [(ann, ann.submit()), (bob, bob.submit()), (ann, ann.submit(strategyName="third"))]
    assert [r.json()["position"] for _, r in submitted] == [1, 2, 3]
    ids = [r.json()["queueId"] for _, r in submitted]

    start_worker()
    wait_for(lambda: all(status_of(db, i) == "completed" for i in ids), what="three completed jobs")

    rows = db.execute(
        "SELECT id, started_at, completed_at, attempt FROM backtest_job ORDER BY started_at"
    ).fetchall()
    assert [r[0] for r in rows] == ids
    for earlier, later in itertools.pairwise(rows):
        assert earlier[2] <= later[1], "two backtests overlapped"
    assert all(r[3] == 1 for r in rows)

    owner: User
    for (owner, _), job_id in zip(submitted, ids, strict=True):
        job = owner.client.get(f"/api/backtest/queue/{job_id}").json()
        assert job["status"] == "completed" and job["progress"] == 100
        assert job["queuePosition"] is None
        result = job["result"]
        assert result["bars"] > 1000 and result["metrics"]["finalEquity"] > 0
        assert {"totalReturn", "maxDrawdown", "sharpe", "winRate"} <= set(result["metrics"])
        assert len(result["equityCurve"]) <= 2000
        assert {"entryTime", "exitReason", "pnl"} <= set(result["trades"][0])


def test_a_rejected_backtest_fails_with_its_reason_and_the_next_runs(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    doomed = user.submit().json()["queueId"]
    fine = user.submit().json()["queueId"]
    # The data changed under a queued job: its stored payload now names an unknown symbol.
    db.execute(
        """UPDATE backtest_job SET payload = jsonb_set(payload, '{symbol}', '"GONE"')
           WHERE id = %s""",
        (doomed,),
    )
    start_worker()
    wait_for(lambda: status_of(db, fine) == "completed", what="the second job")
    job = user.client.get(f"/api/backtest/queue/{doomed}").json()
    assert job["status"] == "failed" and "GONE" in job["error"]


def test_cancel_stops_a_processing_job(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="30")
    wait_for(lambda: status_of(db, job_id) == "processing", what="processing")
    position = user.client.get(f"/api/backtest/queue/position/{job_id}").json()
    assert position["queuePosition"] == 0 and position["estimatedWait"] == 0

    r = user.client.delete(f"/api/backtest/queue/{job_id}")
    assert r.status_code == 202
    wait_for(lambda: status_of(db, job_id) == "cancelled", timeout_s=10, what="cancelled")


def test_a_job_over_the_time_limit_fails_and_the_worker_goes_on(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    slow = user.submit().json()["queueId"]
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="30", BACKTEST_TIME_LIMIT="1.5")
    wait_for(lambda: status_of(db, slow) == "failed", timeout_s=20, what="time limit")
    error = user.client.get(f"/api/backtest/queue/{slow}").json()["error"]
    assert "time limit" in error


def test_sigkill_mid_job_then_restart_completes_it_exactly_once(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    first = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="3")
    wait_for(lambda: status_of(db, job_id) == "processing", what="processing")
    first.kill()
    assert status_of(db, job_id) == "processing"

    second = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="3")
    wait_for(lambda: status_of(db, job_id) == "completed", what="completed after restart")
    assert db.execute("SELECT attempt FROM backtest_job WHERE id = %s", (job_id,)).fetchone() == (
        2,
    )
    completions = (first.output() + second.output()).count(f"event=job_completed job={job_id} ")
    assert completions == 1


def test_a_job_that_kills_its_worker_every_time_is_failed(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Any
) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    for attempt in range(1, settings.max_attempts + 1):
        worker = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="30")
        wait_for(
            lambda a=attempt: db.execute(
                "SELECT status = 'processing' AND attempt = %s FROM backtest_job WHERE id = %s",
                (a, job_id),
            ).fetchone()[0],
            what=f"attempt {attempt}",
        )
        worker.kill()
    start_worker()
    wait_for(lambda: status_of(db, job_id) == "failed", what="failed after the last attempt")
    error = user.client.get(f"/api/backtest/queue/{job_id}").json()["error"]
    assert f"{settings.max_attempts} times" in error


def test_a_job_committed_but_never_published_is_swept(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    # What the API leaves behind if it dies between its commit and its publish: the job
    # and its outbox row, committed together, and no message.
    with db.transaction():
        job_id = db.execute(
            """
            INSERT INTO backtest_job (user_id, strategy_name, payload, notify_via)
            SELECT %s, strategy_name, payload, 'none' FROM backtest_job WHERE id = %s
            RETURNING id
            """,
            (user.id, user.submit().json()["queueId"]),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO job_outbox (job_id, created_at) VALUES (%s, now() - interval '1 minute')",
            (job_id,),
        )
    start_worker()
    wait_for(lambda: status_of(db, job_id) == "completed", what="the swept job")
    assert db.execute("SELECT count(*) FROM job_outbox").fetchone() == (0,)


def test_sigterm_mid_job_hands_it_back_and_it_completes(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    worker = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="30")
    wait_for(lambda: status_of(db, job_id) == "processing", what="processing")
    assert worker.stop() == 0
    assert status_of(db, job_id) == "queued"
    start_worker()
    wait_for(lambda: status_of(db, job_id) == "completed", what="completed by the next worker")
    assert db.execute("SELECT attempt FROM backtest_job WHERE id = %s", (job_id,)).fetchone() == (
        1,
    )
