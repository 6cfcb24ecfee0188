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
    half = chunks.CHUNKS_PER_JOB // 2
    assert claims == {"w1": list(range(half)), "w2": list(range(half, 2 * half))}


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


def test_a_progress_tick_waits_for_the_job_before_it_locks_its_chunk(
    pool: ConnectionPool, base_settings: Settings, db: psycopg.Connection
) -> None:
    """A tick (chunk, then job) and a cancel's settle (job, then every running chunk) from two
    workers deadlocked, and PostgreSQL aborted one: the tick now takes the job's lock first,
    so while another transaction holds the job, the tick holds no chunk."""
    job_id = running_sweep(pool, base_settings, 32)
    claimed = chunks.claim(pool, "w2")
    assert claimed is not None
    url = base_settings.database_url or ""
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as probe:
        job_chunk_db.lock_job(holder, job_id)  # as a settle does; held until rollback
        tick = threading.Thread(
            target=chunks.record_progress, args=(pool, claimed.chunk, "w2", 1), daemon=True
        )
        tick.start()
        tick.join(timeout=1.0)
        assert tick.is_alive(), "the tick must wait for the job's lock"
        # The tick holds no lock on its chunk: the settle could take it now.
        probe.execute(
            "SELECT 1 FROM job_chunk WHERE job_id = %s AND chunk = %s FOR UPDATE NOWAIT",
            (job_id, claimed.chunk.chunk),
        )
        holder.rollback()
        tick.join(timeout=10)
        assert not tick.is_alive()
