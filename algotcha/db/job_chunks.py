"""SQL for the job_chunk and chunk_row tables: the chunks of a sweep (or any chunked job).

Not to be confused with trade_chunks.py (a result's trades stored in blocks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class ChunkRow:
    job_id: int
    chunk: int
    first_unit: int
    end_unit: int
    status: str
    attempt: int
    worker_id: str | None
    done_by: str | None
    units_done: int
    heartbeat_at: datetime | None
    started_at: datetime | None
    done_at: datetime | None
    elapsed_ms: float | None

    @property
    def units(self) -> int:
        return self.end_unit - self.first_unit


@dataclass(frozen=True)
class UnitRow:
    """What one unit (a sweep's combination) stored: its JSON and its float64 series."""

    unit: int
    data: dict[str, Any]
    series: bytes


@dataclass(frozen=True)
class IdleJob:
    """A running chunked job that no worker has touched for a while."""

    id: int
    cancel_requested: bool
    undone: int
    running: int


def insert_chunks(conn: psycopg.Connection, job_id: int, bounds: list[tuple[int, int]]) -> None:
    """Cut a job into chunks of units [first, end), numbered in order."""
    conn.execute(
        """
        INSERT INTO job_chunk (job_id, chunk, first_unit, end_unit)
        SELECT %(job_id)s, ordinality - 1, first_unit, end_unit
        FROM unnest(%(firsts)s::int[], %(ends)s::int[]) WITH ORDINALITY AS b(first_unit, end_unit)
        """,
        {
            "job_id": job_id,
            "firsts": [first for first, _ in bounds],
            "ends": [end for _, end in bounds],
        },
    )


def select_claimable_job(conn: psycopg.Connection) -> int | None:
    """The running chunked job first in queue order that has an undone chunk to give out (a
    job with a cancel requested gives out no more chunks)."""
    row = conn.execute(
        """
        SELECT j.id FROM backtest_job j
        WHERE j.status = 'processing' AND NOT j.cancel_requested
          AND EXISTS (SELECT 1 FROM job_chunk k WHERE k.job_id = j.id AND k.status = 'undone')
        ORDER BY (-j.priority), j.id
        LIMIT 1
        """
    ).fetchone()
    return None if row is None else int(row[0])


def update_chunk_claimed(
    conn: psycopg.Connection, job_id: int, chunk: int, worker_id: str
) -> ChunkRow | None:
    """Take one undone chunk of a job that still gives out chunks; None if another worker took
    it first (the row lock makes the loser wait, then see it running) or the job stopped."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        UPDATE job_chunk c
        SET status = 'running', attempt = c.attempt + 1, worker_id = %(worker_id)s,
            units_done = 0, started_at = now(), heartbeat_at = now()
        WHERE c.job_id = %(job_id)s AND c.chunk = %(chunk)s AND c.status = 'undone'
          AND EXISTS (SELECT 1 FROM backtest_job j WHERE j.id = c.job_id
                      AND j.status = 'processing' AND NOT j.cancel_requested)
        RETURNING c.*
        """,
        {"job_id": job_id, "chunk": chunk, "worker_id": worker_id},
    ).fetchone()


def lock_job(conn: psycopg.Connection, job_id: int) -> None:
    """Lock the job's row before any of its chunks' rows.

    A progress tick writes its chunk then the job; a cancel's settle writes the job then every
    chunk still running. Taken in those orders by two workers at once they deadlock (PostgreSQL
    then aborts one of them); every transaction that writes a job and its chunks starts here,
    so they queue on the job instead.
    """
    conn.execute("SELECT 1 FROM backtest_job WHERE id = %s FOR NO KEY UPDATE", (job_id,))


def update_chunk_progress(
    conn: psycopg.Connection, job_id: int, chunk: int, worker_id: str, units_done: int
) -> bool:
    """Record a running chunk's units done and heartbeat; False if it is no longer ours."""
    row = conn.execute(
        """
        UPDATE job_chunk SET units_done = GREATEST(units_done, %(done)s), heartbeat_at = now()
        WHERE job_id = %(job_id)s AND chunk = %(chunk)s
          AND status = 'running' AND worker_id = %(worker_id)s
        RETURNING 1
        """,
        {"job_id": job_id, "chunk": chunk, "worker_id": worker_id, "done": units_done},
    ).fetchone()
    return row is not None


def update_job_from_chunks(conn: psycopg.Connection, job_id: int) -> bool | None:
    """The job's heartbeat, and progress from its units done and in flight (never 100 before
    the merge); returns cancel_requested, or None when the job no longer runs."""
    row = conn.execute(
        """
        UPDATE backtest_job
        SET heartbeat_at = now(),
            progress = GREATEST(progress, LEAST(99, 100 * (units_done + (
                SELECT COALESCE(sum(units_done), 0) FROM job_chunk
                WHERE job_id = %(id)s AND status = 'running')) / units))
        WHERE id = %(id)s AND status = 'processing' AND kind <> 'backtest'
        RETURNING cancel_requested
        """,
        {"id": job_id},
    ).fetchone()
    return None if row is None else bool(row[0])


def update_chunk_done(
    conn: psycopg.Connection, job_id: int, chunk: int, worker_id: str, elapsed_ms: float
) -> ChunkRow | None:
    """Mark a chunk this worker holds done; None if it was taken away meanwhile."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        UPDATE job_chunk
        SET status = 'done', units_done = end_unit - first_unit, done_by = worker_id,
            done_at = now(), heartbeat_at = now(), elapsed_ms = %(elapsed_ms)s
        WHERE job_id = %(job_id)s AND chunk = %(chunk)s
          AND status = 'running' AND worker_id = %(worker_id)s
        RETURNING *
        """,
        {"job_id": job_id, "chunk": chunk, "worker_id": worker_id, "elapsed_ms": elapsed_ms},
    ).fetchone()


def insert_unit_rows(
    conn: psycopg.Connection, job_id: int, chunk: int, rows: Iterable[UnitRow]
) -> None:
    """Store a chunk's rows (COPY: a chunk may hold thousands)."""
    with (
        conn.cursor() as cur,
        cur.copy("COPY chunk_row (job_id, unit, chunk, data, series) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row((job_id, row.unit, chunk, Jsonb(row.data), row.series))


def update_job_units_done(conn: psycopg.Connection, job_id: int, units: int) -> tuple[int, int]:
    """Count a chunk's units as done; (units done, units) of the job after it.

    The row lock serialises the chunks finishing at once: exactly one of them sees every
    unit done, and that one merges.
    """
    row = conn.execute(
        """
        UPDATE backtest_job
        SET units_done = units_done + %(units)s, heartbeat_at = now(),
            progress = GREATEST(progress, LEAST(99, 100 * (units_done + %(units)s) / units))
        WHERE id = %(id)s AND status = 'processing' AND kind <> 'backtest'
        RETURNING units_done, units
        """,
        {"id": job_id, "units": units},
    ).fetchone()
    return (-1, 0) if row is None else (int(row[0]), int(row[1]))


def select_unit_rows(conn: psycopg.Connection, job_id: int) -> list[UnitRow]:
    # Binary: the series come as their bytes, not as hex text to decode (the merge's tail).
    cur = conn.cursor(row_factory=class_row(UnitRow), binary=True)
    return cur.execute(
        "SELECT unit, data, series FROM chunk_row WHERE job_id = %(id)s ORDER BY unit",
        {"id": job_id},
    ).fetchall()


def select_unit_data(conn: psycopg.Connection, job_id: int) -> Iterable[dict[str, Any]]:
    """Each unit's JSON in unit order, streamed (no series): for the grid CSV."""
    cur = conn.cursor(name="unit_data")  # server-side: a 10,000-row grid is never held whole
    cur.itersize = 500
    cur.execute("SELECT data FROM chunk_row WHERE job_id = %(id)s ORDER BY unit", {"id": job_id})
    for (data,) in cur:
        yield data


def select_unit(conn: psycopg.Connection, job_id: int, unit: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT data FROM chunk_row WHERE job_id = %(id)s AND unit = %(unit)s",
        {"id": job_id, "unit": unit},
    ).fetchone()
    return None if row is None else dict(row[0])


def select_chunks(conn: psycopg.Connection, job_id: int) -> list[ChunkRow]:
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        "SELECT * FROM job_chunk WHERE job_id = %(id)s ORDER BY chunk", {"id": job_id}
    ).fetchall()


def update_chunk_released(
    conn: psycopg.Connection, job_id: int, chunk: int, worker_id: str
) -> ChunkRow | None:
    """Back to undone without using up an attempt: its worker stopped, or the job ended."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        UPDATE job_chunk
        SET status = 'undone', attempt = GREATEST(attempt - 1, 0), worker_id = NULL,
            units_done = 0, heartbeat_at = NULL
        WHERE job_id = %(job_id)s AND chunk = %(chunk)s
          AND status = 'running' AND worker_id = %(worker_id)s
        RETURNING *
        """,
        {"job_id": job_id, "chunk": chunk, "worker_id": worker_id},
    ).fetchone()


def update_stale_chunks_undone(
    conn: psycopg.Connection, *, stale_after_s: float, dead_workers: list[str]
) -> list[ChunkRow]:
    """Return running chunks whose worker stopped heartbeating (or is known dead) to undone;
    the attempt they used stays counted."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        UPDATE job_chunk c
        SET status = 'undone', worker_id = NULL, units_done = 0, heartbeat_at = NULL
        WHERE (c.job_id, c.chunk) IN (
            SELECT job_id, chunk FROM job_chunk
            WHERE status = 'running'
              AND (heartbeat_at < now() - make_interval(secs => %(stale)s)
                   OR worker_id = ANY(%(dead)s) OR worker_id IS NULL)
            FOR UPDATE SKIP LOCKED)
        RETURNING c.*
        """,
        {"stale": stale_after_s, "dead": dead_workers},
    ).fetchall()


def select_idle_jobs(conn: psycopg.Connection, *, stale_after_s: float) -> list[IdleJob]:
    """Running chunked jobs whose heartbeat is stale: no worker has had a chunk of them."""
    cur = conn.cursor(row_factory=class_row(IdleJob))
    return cur.execute(
        """
        SELECT j.id, j.cancel_requested,
            (SELECT count(*)::int FROM job_chunk
             WHERE job_id = j.id AND status = 'undone') AS undone,
            (SELECT count(*)::int FROM job_chunk
             WHERE job_id = j.id AND status = 'running') AS running
        FROM backtest_job j
        WHERE j.status = 'processing' AND j.kind <> 'backtest'
          AND j.heartbeat_at < now() - make_interval(secs => %(stale)s)
        FOR UPDATE OF j SKIP LOCKED
        """,
        {"stale": stale_after_s},
    ).fetchall()


def update_chunks_stopped(conn: psycopg.Connection, job_id: int) -> None:
    """A finished job's chunks still marked running go back to undone (nobody claims them)."""
    conn.execute(
        """
        UPDATE job_chunk SET status = 'undone', worker_id = NULL, heartbeat_at = NULL
        WHERE job_id = %(id)s AND status = 'running'
        """,
        {"id": job_id},
    )


def count_running_chunks(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM job_chunk WHERE status = 'running'").fetchone()
    assert row is not None
    return int(row[0])
