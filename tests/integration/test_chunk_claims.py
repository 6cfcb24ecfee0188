"""Which chunks workers claim, against the real database: stretches of consecutive chunks per
worker, and never one chunk to two workers however many claim at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from algotcha.config import Settings
from algotcha.db import job_chunks as job_chunk_db
from algotcha.db.pool import transaction
from algotcha.services import chunks, jobs
from tests.fixtures.app import payload
from tests.integration.test_queue_properties import _NullBroker

pytestmark = pytest.mark.integration

WORKERS = ("w1", "w2", "w3", "w4", "w5", "w6")


@pytest.fixture
def pool(base_settings: Settings, db: psycopg.Connection) -> Iterator[ConnectionPool]:
    db.execute("INSERT INTO app_user (email, password_hash) VALUES ('ann@example.com', 'x')")
    for worker in WORKERS:
        db.execute("INSERT INTO worker (id, hostname, pid) VALUES (%s, 'h', 1)", (worker,))
    url = base_settings.database_url or ""
    with ConnectionPool(url, kwargs={"autocommit": True}, max_size=len(WORKERS)) as pool:
        yield pool


def running_sweep(pool: ConnectionPool, settings: Settings, units: int) -> int:
    """A sweep of `units` combinations, claimed (so cut into chunks) by worker w1."""
    queued = jobs.submit(
        pool,
        _NullBroker(),  # type: ignore[arg-type]
        settings,
        user_id=1,
        strategy_name="grid",
        payload={"payload": payload()},
        notify_via="none",
        kind="sweep",
        units=units,
        unit_bars=1000,
    )
    job = jobs.claim(pool, queued.job.id, "w1")
    assert job is not None and job.id == queued.job.id
    return job.id


def finish(pool: ConnectionPool, claimed: chunks.Claimed, worker: str) -> None:
    """Mark a claimed chunk done as complete() does, without the rows it stores."""
    with transaction(pool) as conn:
        done = job_chunk_db.update_chunk_done(conn, claimed.job.id, claimed.chunk.chunk, worker, 1)
    assert done is not None


def test_two_workers_in_turn_run_two_stretches_of_consecutive_chunks(
    pool: ConnectionPool, base_settings: Settings
) -> None:
    running_sweep(pool, base_settings, units=1000)
    claims: dict[str, list[int]] = {"w1": [], "w2": []}
    held: dict[str, Any] = {}
    while True:
        for worker in claims:
            claimed = held.pop(worker, None)
            if claimed is not None:
                finish(pool, claimed, worker)
            claimed = chunks.claim(pool, worker)
            if claimed is not None:
                held[worker] = claimed
                claims[worker].append(claimed.chunk.chunk)
        if not held:
            break
    # with interleaved chunks each worker would compute the indicators of the whole grid
    assert claims == {"w1": list(range(8)), "w2": list(range(8, 16))}


def test_workers_claiming_at_once_take_every_chunk_exactly_once(
    pool: ConnectionPool, base_settings: Settings
) -> None:
    job_id = running_sweep(pool, base_settings, units=16)
    claims: list[tuple[str, int]] = []
    start = threading.Barrier(len(WORKERS))

    def work(worker: str) -> None:
        start.wait()
        while (claimed := chunks.claim(pool, worker)) is not None:
            claims.append((worker, claimed.chunk.chunk))
            finish(pool, claimed, worker)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in WORKERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(chunk for _, chunk in claims) == Counter(range(16))
    with pool.connection() as conn:
        rows = job_chunk_db.select_chunks(conn, job_id)
    assert [(row.status, row.attempt) for row in rows] == [("done", 1)] * 16
    assert {row.done_by for row in rows} == {worker for worker, _ in claims}
