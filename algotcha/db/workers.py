"""SQL for the worker table: registration and heartbeats of worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class WorkerRow:
    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


def insert_worker(conn: psycopg.Connection, worker_id: str, hostname: str, pid: int) -> None:
    conn.execute(
        """
        INSERT INTO worker (id, hostname, pid) VALUES (%(id)s, %(hostname)s, %(pid)s)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL
        """,
        {"id": worker_id, "hostname": hostname, "pid": pid},
    )


def update_worker_heartbeat(conn: psycopg.Connection, worker_id: str) -> None:
    conn.execute("UPDATE worker SET heartbeat_at = now() WHERE id = %(id)s", {"id": worker_id})


def update_worker_stopped(conn: psycopg.Connection, worker_id: str) -> None:
    conn.execute("UPDATE worker SET stopped_at = now() WHERE id = %(id)s", {"id": worker_id})


def count_live_workers(conn: psycopg.Connection, *, stale_after_s: float) -> int:
    row = conn.execute(
        """
        SELECT count(*) FROM worker
        WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(stale)s)
        """,
        {"stale": stale_after_s},
    ).fetchone()
    assert row is not None
    return int(row[0])


def select_workers_on_host(conn: psycopg.Connection, hostname: str) -> list[WorkerRow]:
    cur = conn.cursor(row_factory=class_row(WorkerRow))
    return cur.execute(
        "SELECT * FROM worker WHERE hostname = %(hostname)s AND stopped_at IS NULL",
        {"hostname": hostname},
    ).fetchall()
