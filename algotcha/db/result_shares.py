"""SQL for the result_share table: read-only links to one result, kept as token hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class ShareRow:
    job_id: int
    token_hash: bytes
    created_at: datetime
    expires_at: datetime | None


def upsert_share(
    conn: psycopg.Connection, job_id: int, *, token_hash: bytes, ttl_s: float | None
) -> ShareRow:
    """The job's one link: a new token replaces the previous one, which stops working."""
    cur = conn.cursor(row_factory=class_row(ShareRow))
    row = cur.execute(
        """
        INSERT INTO result_share (job_id, token_hash, expires_at)
        VALUES (%(job_id)s, %(hash)s,
                CASE WHEN %(ttl)s::float8 IS NULL THEN NULL
                     ELSE now() + make_interval(secs => %(ttl)s::float8) END)
        ON CONFLICT (job_id) DO UPDATE
        SET token_hash = EXCLUDED.token_hash, created_at = now(),
            expires_at = EXCLUDED.expires_at
        RETURNING *
        """,
        {"job_id": job_id, "hash": token_hash, "ttl": ttl_s},
    ).fetchone()
    assert row is not None
    return row


def delete_share(conn: psycopg.Connection, job_id: int) -> bool:
    cur = conn.execute("DELETE FROM result_share WHERE job_id = %(id)s", {"id": job_id})
    return cur.rowcount > 0


def select_shared_job_id(conn: psycopg.Connection, token_hash: bytes) -> int | None:
    """The job a live (unexpired) token opens; None for an unknown, revoked or expired one."""
    row = conn.execute(
        """
        SELECT job_id FROM result_share
        WHERE token_hash = %(hash)s AND (expires_at IS NULL OR expires_at > now())
        """,
        {"hash": token_hash},
    ).fetchone()
    return None if row is None else int(row[0])
