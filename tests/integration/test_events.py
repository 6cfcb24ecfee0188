"""The event stream of a job: pushed by LISTEN/NOTIFY, resumable, and ended by shutdown."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from algotcha import state
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db import workers as worker_db
from algotcha.services.job_events import EventHub
from tests.fixtures.app import LiveServer, User, free_port

pytestmark = pytest.mark.integration

# Far longer than any wait below: an event that arrives came by notification, not by poll.
SAFETY_POLL_S = 600.0
EVENT_WAIT_S = 10.0


class Stream:
    """One open event stream, read in a thread into a queue of (id, data) pairs."""

    def __init__(self, user: User, job_id: int, last_event_id: str | None = None) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.blocks: list[str] = []
        self._context = user.client.stream(
            "GET", f"/api/backtest/queue/{job_id}/events", headers=headers
        )
        self.response = self._context.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._thread.start()

    def _read(self) -> None:
        block: list[str] = []
        try:
            for line in self.response.iter_lines():
                if line:
                    block.append(line)
                    continue
                fields = dict(item.split(": ", 1) for item in block if not item.startswith(":"))
                self.blocks.append("\n".join(block))
                block = []
                if "data" in fields:
                    self.events.put((fields["id"], json.loads(fields["data"])))
        except httpx.HTTPError:
            pass
        self.events.put(None)  # the server ended the stream

    def next(self, timeout_s: float = EVENT_WAIT_S) -> tuple[str, dict[str, Any]]:
        item = self.events.get(timeout=timeout_s)
        assert item is not None, "the stream ended"
        return item

    def ended(self, timeout_s: float = EVENT_WAIT_S) -> bool:
        return self.events.get(timeout=timeout_s) is None

    def close(self) -> None:
        # The reader thread is blocked in recv(); closing the socket under it would send
        # nothing until the next ping arrives. A shutdown wakes it and says goodbye now.
        sock = self.response.extensions["network_stream"].get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        self._context.__exit__(None, None, None)
        if self._thread.is_alive():
            self._thread.join(timeout=EVENT_WAIT_S)


def event_id(raw: str) -> tuple[int, int]:
    revision, tick = raw.split(":")
    return int(revision), int(tick)


@pytest.fixture
def pushed_api(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(replace(settings, events_poll_interval_s=SAFETY_POLL_S)) as server:
        yield server


@pytest.fixture
def user(pushed_api: LiveServer) -> Iterator[User]:
    with httpx.Client(base_url=pushed_api.url, timeout=30) as client:
        made = User(client, f"events-{time.monotonic_ns()}@example.com", "correct horse battery")
        yield made
        made.client.close()


def open_streams(server: LiveServer) -> int:
    """The streams the server's event hub is feeding (its lifespan state, through uvicorn)."""
    hub: EventHub = server.server.lifespan.state[state.KEY].events
    return hub.stream_count


def wait_until_no_stream(server: LiveServer) -> None:
    deadline = time.monotonic() + EVENT_WAIT_S
    while open_streams(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_streams(server) == 0


def submit(user: User) -> int:
    r = user.submit()
    assert r.status_code == 202, r.text
    return int(r.json()["queueId"])


def test_stream_gets_a_cancel_pushed_and_then_ends(user: User, pushed_api: LiveServer) -> None:
    job_id = submit(user)
    stream = Stream(user, job_id)
    try:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        _, first = stream.next()
        assert first == {
            "id": job_id,
            "status": "queued",
            "queuePosition": 1,
            "progress": 0,
            "estimatedWait": first["estimatedWait"],
        }
        assert user.client.delete(f"/api/backtest/queue/{job_id}").status_code == 200
        _, cancelled = stream.next()
        assert cancelled["status"] == "cancelled" and cancelled["queuePosition"] is None
        assert stream.ended()
        assert all("retry: 3000" in block for block in stream.blocks if "data: " in block)
    finally:
        stream.close()
    wait_until_no_stream(pushed_api)


def test_a_client_that_goes_away_leaves_no_watch_behind(user: User, pushed_api: LiveServer) -> None:
    streams = [Stream(user, submit(user)) for _ in range(3)]
    for stream in streams:
        stream.next()
    assert open_streams(pushed_api) == 3
    for stream in streams:
        stream.close()
    wait_until_no_stream(pushed_api)


def test_positions_move_when_a_job_ahead_leaves_and_ids_increase(
    user: User, db: psycopg.Connection
) -> None:
    ahead, behind = submit(user), submit(user)
    stream = Stream(user, behind)
    try:
        first_id, first = stream.next()
        assert first["queuePosition"] == 2
        # A worker's claims and progress, through the worker's own statements.
        worker_db.insert_worker(db, "w1", "host", 1)
        claimed = job_db.claim_next_job(db, "w1")
        assert claimed is not None and claimed.id == ahead
        moved_id, moved = stream.next()
        assert moved["status"] == "queued" and moved["queuePosition"] == 1
        assert job_db.claim_next_job(db, "w1") is not None
        started_id, started = stream.next()
        assert started["status"] == "processing" and started["queuePosition"] == 0
        job_db.update_job_progress(db, behind, "w1", 40)
        progress_id, progress = stream.next()
        assert progress["progress"] == 40

        ids = [event_id(i) for i in (first_id, moved_id, started_id, progress_id)]
        for before, after in itertools.pairwise(ids):
            assert after[0] >= before[0] and after[1] >= before[1] and after != before
    finally:
        stream.close()


def test_last_event_id_resumes_without_repeating_and_ends_with_204(user: User) -> None:
    ahead, job_id = submit(user), submit(user)
    stream = Stream(user, job_id)
    first_id, first = stream.next()
    stream.close()
    assert first["queuePosition"] == 2

    # Nothing changed: the resumed stream sends nothing until something does.
    resumed = Stream(user, job_id, last_event_id=first_id)
    try:
        with pytest.raises(queue.Empty):
            resumed.next(timeout_s=1.0)
        assert user.client.delete(f"/api/backtest/queue/{ahead}").status_code == 200
        moved_id, moved = resumed.next()
        assert moved["queuePosition"] == 1 and event_id(moved_id) > event_id(first_id)
    finally:
        resumed.close()

    # Something changed while the client was away: it gets the current state at once.
    assert user.client.delete(f"/api/backtest/queue/{job_id}").status_code == 200
    stale = Stream(user, job_id, last_event_id=moved_id)
    try:
        final_id, final = stale.next()
        assert final["status"] == "cancelled" and stale.ended()
    finally:
        stale.close()

    # The client saw the final state: 204 tells an EventSource to stop reconnecting.
    done = Stream(user, job_id, last_event_id=final_id)
    done.close()
    assert done.response.status_code == 204
    # An id this server never wrote is ignored: the stream starts afresh.
    fresh = Stream(user, job_id, last_event_id="not-an-id")
    try:
        assert fresh.next()[1]["status"] == "cancelled" and fresh.ended()
    finally:
        fresh.close()


def test_stream_recovers_from_a_dropped_listener_connection(
    user: User, db: psycopg.Connection
) -> None:
    job_id = submit(user)
    stream = Stream(user, job_id)
    try:
        stream.next()
        dropped = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'algotcha-api-events' AND datname = current_database()"
        ).fetchall()
        assert dropped == [(True,)]
        # Changed while nobody listens: the notification is lost, the reconnect re-reads.
        assert user.client.delete(f"/api/backtest/queue/{job_id}").status_code == 200
        _, cancelled = stream.next()
        assert cancelled["status"] == "cancelled"
        listeners = db.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'algotcha-api-events' AND datname = current_database()"
        ).fetchone()
        assert listeners == (1,)
    finally:
        stream.close()


def test_the_safety_poll_catches_a_change_that_notified_nothing(
    settings: Settings, db: psycopg.Connection
) -> None:
    with LiveServer(replace(settings, events_poll_interval_s=0.5)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            user = User(client, "poll@example.com", "correct horse battery")
            job_id = submit(user)
            stream = Stream(user, job_id)
            try:
                stream.next()
                # With triggers off (as in a restore or a replica), no NOTIFY is sent.
                with db.transaction():
                    db.execute("SET LOCAL session_replication_role = replica")
                    db.execute(
                        "UPDATE backtest_job SET status = 'cancelled', completed_at = now() "
                        "WHERE id = %s",
                        (job_id,),
                    )
                _, cancelled = stream.next()
                assert cancelled["status"] == "cancelled" and stream.ended()
            finally:
                stream.close()
                user.client.close()


def test_sigterm_stops_an_api_with_an_open_stream_within_seconds(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert settings.database_url and settings.broker_url and settings.jwt_secret
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BROKER_"))},
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": settings.broker_url,
        "JWT_SECRET": settings.jwt_secret,
        "DATA_DIR": str(settings.data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "algotcha", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "api.log"
            ).read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as client:
            user = User(client, "sigterm@example.com", "correct horse battery")
            stream = Stream(user, submit(user))
            try:
                stream.next()
                process.send_signal(signal.SIGTERM)
                # Without the fix uvicorn waits for the stream forever (until SIGKILL).
                # uvicorn re-raises the signal once it has shut down: -SIGTERM is its clean exit.
                assert process.wait(timeout=5) == -signal.SIGTERM
                assert stream.ended()
            finally:
                stream.close()
                user.client.close()
        logged = (tmp_path / "api.log").read_text()
        assert "event=api_stopped" in logged and "without completing response" not in logged
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_batched_positions_agree_with_the_position_route(db: psycopg.Connection) -> None:
    """select_job_events ranks blocks at once; it must count as count_queued_ahead does."""
    db.execute("INSERT INTO app_user (email, password_hash) VALUES ('rank@example.com', 'x')")
    db.execute(
        """
        INSERT INTO backtest_job (user_id, strategy_name, payload, notify_via, priority)
        SELECT u.id, 'rank', '{}', 'none', CASE WHEN g % 97 = 0 THEN 1 ELSE 0 END
        FROM generate_series(1, 2600) g CROSS JOIN app_user u
        """
    )
    # Holes in every block, and jobs in every status.
    db.execute("UPDATE backtest_job SET status = 'cancelled' WHERE id % 7 = 0")
    worker_db.insert_worker(db, "w1", "host", 1)
    for _ in range(3):
        assert job_db.claim_next_job(db, "w1") is not None
    ids = [r[0] for r in db.execute("SELECT id FROM backtest_job ORDER BY id")]
    batched = {row.id: row for row in job_db.select_job_events(db, ids)}
    assert len(batched) == len(ids)
    for job_id in ids[::13] + ids[1020:1030] + ids[-5:]:
        job = job_db.select_job(db, job_id)
        assert job is not None
        expected = job_db.count_queued_ahead(db, job) if job.status == "queued" else None
        assert batched[job_id].ahead == expected, job_id
        assert batched[job_id].status == job.status
