"""Queue invariants under any sequence of submits, cancels, claims and finishes (hypothesis)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from psycopg import sql
from psycopg_pool import ConnectionPool

from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.services import jobs
from tests.fixtures.app import payload
from tests.fixtures.services import TABLES

pytestmark = pytest.mark.integration

USERS = 3
LIMIT = 4


class QueueMachine(RuleBasedStateMachine):
    """A model of the queue (ids in order) checked against the database after every step."""

    pool: ConnectionPool
    settings: Settings

    @initialize()
    def empty(self) -> None:
        with self.pool.connection() as conn:
            tables = sql.SQL(", ").join(map(sql.Identifier, TABLES))
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))
            conn.execute("INSERT INTO worker (id, hostname, pid) VALUES ('w', 'h', 1)")
            for n in range(USERS):
                conn.execute(
                    "INSERT INTO app_user (email, password_hash) VALUES (%s, 'x')",
                    (f"u{n}@example.com",),
                )
        self.queued: list[int] = []
        self.processing: int | None = None
        self.owner: dict[int, int] = {}

    @rule(user=st.integers(1, USERS))
    def submit(self, user: int) -> None:
        mine = sum(1 for j in self.queued if self.owner[j] == user)
        try:
            item = jobs.submit(
                self.pool,
                _NullBroker(),
                self.settings,
                user_id=user,
                strategy_name="p",
                payload=payload(),
                notify_via="none",
            )
        except Exception as exc:
            assert type(exc).__name__ == "QueueLimitError" and mine >= LIMIT
            return
        assert mine < LIMIT
        self.queued.append(item.job.id)
        self.owner[item.job.id] = user
        assert item.position == len(self.queued)

    @rule(data=st.data())
    def cancel(self, data: Any) -> None:
        if not self.queued:
            return
        job_id = data.draw(st.sampled_from(self.queued))
        job = jobs.cancel(self.pool, self.owner[job_id], job_id)
        assert job.status == "cancelled"
        self.queued.remove(job_id)

    @rule()
    def claim(self) -> None:
        if self.processing is not None:
            return
        job = jobs.claim(self.pool, 0, "w")
        if not self.queued:
            assert job is None
            return
        assert job is not None and job.id == self.queued.pop(0), "the head of the queue starts"
        self.processing = job.id

    @rule()
    def finish(self) -> None:
        if self.processing is not None:
            assert jobs.complete(self.pool, self.processing, "w", {"metrics": {}}) is not None
            self.processing = None

    @invariant()
    def positions_are_the_model(self) -> None:
        if not hasattr(self, "queued"):
            return
        with self.pool.connection() as conn:
            for position, job_id in enumerate(self.queued, start=1):
                job = job_db.select_job(conn, job_id)
                assert job is not None and job.status == "queued"
                assert job_db.count_queued_ahead(conn, job) + 1 == position
            blocks = conn.execute("SELECT COALESCE(sum(queued), 0) FROM queue_block").fetchone()
            assert blocks == (len(self.queued),)


class _NullBroker:
    """Stands in for RabbitMQ here: these properties are about the database's queue."""

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        return message


def test_queue_positions_follow_the_model(base_settings: Settings, db: psycopg.Connection) -> None:
    with ConnectionPool(base_settings.database_url or "", kwargs={"autocommit": True}) as pool:
        QueueMachine.pool = pool
        QueueMachine.settings = Settings(
            database_url=base_settings.database_url, max_queued_per_user=LIMIT
        )
        run = QueueMachine.TestCase
        run.settings = settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        run().runTest()
