"""Faults on purpose: lost broker connections, a vanished database, a crowd of submits.

Each test uses real PostgreSQL, RabbitMQ and worker processes, and is bounded in time.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pika
import psutil
import psycopg
import pytest

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from tests.fixtures.app import LiveServer, payload
from tests.fixtures.polling import wait_for
from tests.fixtures.proxy import Proxy
from tests.integration.test_notifications import purge_notification_queues
from tests.integration.test_worker import status_of

pytestmark = pytest.mark.integration


def backtest_messages(broker_url: str) -> int:
    """Messages ready in the backtest queue, as RabbitMQ counts them."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        declared = connection.channel().queue_declare(queues.BACKTEST_QUEUE, passive=True)
        return int(declared.method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return 0  # not declared yet: nothing was ever published to it
    finally:
        connection.close()


def ahead(conn: psycopg.Connection, job_id: int) -> int:
    job = job_db.select_job(conn, job_id)
    assert job is not None
    return job_db.count_queued_ahead(conn, job)


def test_broker_connections_dropped_lose_nothing(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    """Given a running job and queued ones, when RabbitMQ drops every connection, then the
    API and the worker reconnect by themselves and every job completes exactly once."""
    user = make_user()
    ids = [user.submit().json()["queueId"] for _ in range(3)]
    worker = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1.5")
    wait_for(lambda: status_of(db, ids[0]) == "processing", what="the first job running")

    vhost = urllib.parse.unquote(urllib.parse.urlparse(settings.broker_url).path[1:])
    subprocess.run(
        ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "--limit", "100", "fault"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    ids += [user.submit().json()["queueId"] for _ in range(2)]

    wait_for(
        lambda: all(status_of(db, i) == "completed" for i in ids), timeout_s=90, what="all five"
    )
    log = worker.output()
    for job_id in ids:
        assert log.count(f"event=job_completed job={job_id} ") == 1, job_id
    rows = db.execute("SELECT started_at, completed_at FROM backtest_job ORDER BY started_at")
    for (_, ended), (started, _) in itertools.pairwise(rows.fetchall()):
        assert ended <= started, "two backtests overlapped"


def test_database_gone_during_submits_is_503_then_recovers(
    make_user: Any, settings: Settings, postgres_proxy: Proxy
) -> None:
    """Given an API whose database vanishes, submits are refused with 503 and Retry-After and
    nothing is published; once it is back, submits are accepted again."""
    user = make_user()
    url = settings.database_url
    assert url is not None
    through_proxy = url.replace("127.0.0.1:5432", f"127.0.0.1:{postgres_proxy.port}")
    body = {"payload": payload(), "notifyVia": "none"}
    headers = {"Authorization": f"Bearer {user.token}"}
    flaky = replace(settings, database_url=through_proxy, db_timeout_s=1)
    assert settings.broker_url is not None
    before = backtest_messages(settings.broker_url)
    with LiveServer(flaky) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/api/backtest/queue", json=body, headers=headers).status_code == 202
        postgres_proxy.cut()
        for _ in range(3):
            r = c.post("/api/backtest/queue", json=body, headers=headers)
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            assert r.headers["content-type"] == "application/problem+json"
        assert backtest_messages(settings.broker_url) == before + 1
        postgres_proxy.restore()
        wait_for(
            lambda: c.post("/api/backtest/queue", json=body, headers=headers).status_code == 202,
            timeout_s=30,
            what="submits accepted again",
        )
    assert backtest_messages(settings.broker_url) == before + 2


def test_a_crowd_of_submits_keeps_the_queue_consistent(
    settings: Settings, start_worker: Any, make_user: Any, db: psycopg.Connection
) -> None:
    """Given 50 users and a per-user limit of 3, when 200 submits arrive at once while a
    worker runs, then each is accepted or refused with 429, positions stay unique and
    contiguous at every sample, and the worker never runs two backtests at once."""
    limited = replace(settings, max_queued_per_user=3)
    with LiveServer(limited) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        users = [make_user() for _ in range(50)]
        start_worker(DEBUG_BACKTEST_DELAY_SECONDS="0.2")
        samples: list[tuple[list[int], int]] = []
        done = threading.Event()

        def sample() -> None:
            with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
                while not done.is_set():
                    with conn.transaction():
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        queued = conn.execute(
                            "SELECT id FROM backtest_job WHERE status = 'queued'"
                        ).fetchall()
                        positions = [1 + ahead(conn, i) for (i,) in queued]
                        processing = conn.execute(
                            "SELECT count(*) FROM backtest_job WHERE status = 'processing'"
                        ).fetchone()
                    samples.append((positions, int(processing[0])))  # type: ignore[index]
                    time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()

        def submit(n: int) -> int:
            user = users[n % 50]
            r = client.post(
                "/api/backtest/queue",
                json={"payload": payload(), "notifyVia": "none"},
                headers={"Authorization": f"Bearer {user.token}"},
            )
            return r.status_code

        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = list(pool.map(submit, range(200)))
            # Keep sampling while the worker drains the queue; on a loaded machine each sample
            # (hundreds of position queries) is slow, so wait for enough of them, bounded.
            deadline = time.monotonic() + 60
            time.sleep(2)
            while len(samples) <= 10 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            done.set()
            sampler.join()

    assert set(statuses) <= {202, 429}
    assert statuses.count(202) >= 150  # each user queued at least 3 (more if one started)
    assert statuses.count(429) > 0
    assert len(samples) > 10
    for positions, processing in samples:
        assert sorted(positions) == list(range(1, len(positions) + 1))
        assert processing <= 1
    rows = db.execute(
        """SELECT started_at, completed_at FROM backtest_job
           WHERE completed_at IS NOT NULL ORDER BY started_at"""
    ).fetchall()
    assert len(rows) > 0
    for (_, ended), (started, _) in itertools.pairwise(rows):
        assert ended <= started, "two backtests overlapped"


def test_sigkill_mid_job_then_restart_notifies_exactly_once(
    make_user: Any,
    start_worker: Any,
    start_notifier: Any,
    smtp_server: Any,
    db: psycopg.Connection,
    settings: Settings,
) -> None:
    """Given a user who wants email, when the worker is killed mid-job and started again,
    then the job completes once and exactly one email arrives."""
    assert settings.broker_url is not None
    purge_notification_queues(settings.broker_url)
    user = make_user()
    job_id = user.client.post(
        "/api/backtest/queue", json={"payload": payload(), "notifyVia": "email"}
    ).json()["queueId"]
    start_notifier(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_server.port),
        SMTP_TLS="none",
        SMTP_FROM="algotcha@example.com",
        NOTIFY_MIN_BACKOFF_SECONDS="0.2",
        NOTIFY_MAX_BACKOFF_SECONDS="0.5",
    )
    first = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="3")
    wait_for(lambda: status_of(db, job_id) == "processing", what="processing")
    first.kill()
    second = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1")
    wait_for(lambda: len(smtp_server.received) >= 1, what="the email")
    time.sleep(2)  # room for a duplicate to show up, were there one
    assert status_of(db, job_id) == "completed"
    assert (first.output() + second.output()).count(f"event=job_completed job={job_id} ") == 1
    assert len(smtp_server.received) == 1
    assert smtp_server.received[0].recipients == [user.email]


def test_a_backtest_process_that_dies_fails_its_job_and_the_worker_goes_on(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    """Given a running backtest, when its process dies as a crash in native code would
    (SIGKILL), then the job fails with that reason and the worker runs the next job."""
    user = make_user()
    doomed = user.submit().json()["queueId"]
    after = user.submit().json()["queueId"]
    worker = start_worker(DEBUG_BACKTEST_DELAY_SECONDS="3")
    wait_for(lambda: status_of(db, doomed) == "processing", what="processing")
    # The forkserver is the worker's child; backtest processes are its children: the one
    # running the job, and the younger spare that waits for the next.
    backtests = [p for child in psutil.Process(worker.pid).children() for p in child.children()]
    min(backtests, key=lambda p: (p.create_time(), p.pid)).kill()
    wait_for(lambda: status_of(db, doomed) == "failed", what="the crashed job failed")
    assert "killed by signal 9" in user.client.get(f"/api/backtest/queue/{doomed}").json()["error"]
    wait_for(lambda: status_of(db, after) == "completed", what="the next job")
