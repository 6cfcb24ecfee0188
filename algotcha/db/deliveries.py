"""SQL for the notification_delivery table: one row per (job, channel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from algotcha.vocabulary import NotifyChannel


@dataclass(frozen=True)
class DeliveryRow:
    job_id: int
    channel: str
    status: str  # pending sending sent failed skipped
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    published_at: datetime | None
    sending_at: datetime | None
    external_id: str | None


@dataclass(frozen=True)
class Unpublished:
    job_id: int
    channel: str


def insert_deliveries(conn: psycopg.Connection, job_id: int, channels: list[str]) -> list[str]:
    """Pending rows for the channels that have none yet; returns the channels inserted."""
    rows = conn.execute(
        """
        INSERT INTO notification_delivery (job_id, channel)
        SELECT %(job_id)s, unnest(%(channels)s::text[])
        ON CONFLICT (job_id, channel) DO NOTHING
        RETURNING channel
        """,
        {"job_id": job_id, "channels": channels},
    ).fetchall()
    return [str(r[0]) for r in rows]


def update_delivery_published(conn: psycopg.Connection, job_id: int, channel: str) -> None:
    conn.execute(
        """
        UPDATE notification_delivery SET published_at = now()
        WHERE job_id = %(job_id)s AND channel = %(channel)s
        """,
        {"job_id": job_id, "channel": channel},
    )


def select_delivery(conn: psycopg.Connection, job_id: int, channel: str) -> DeliveryRow | None:
    cur = conn.cursor(row_factory=class_row(DeliveryRow))
    return cur.execute(
        """
        SELECT * FROM notification_delivery
        WHERE job_id = %(job_id)s AND channel = %(channel)s
        """,
        {"job_id": job_id, "channel": channel},
    ).fetchone()


def claim_delivery(conn: psycopg.Connection, job_id: int, channel: str) -> DeliveryRow | None:
    """pending -> sending with the next attempt number; None when it is not pending."""
    cur = conn.cursor(row_factory=class_row(DeliveryRow))
    return cur.execute(
        """
        UPDATE notification_delivery
        SET status = 'sending', attempts = attempts + 1, sending_at = now()
        WHERE job_id = %(job_id)s AND channel = %(channel)s AND status = 'pending'
        RETURNING *
        """,
        {"job_id": job_id, "channel": channel},
    ).fetchone()


def update_delivery_finished(
    conn: psycopg.Connection,
    job_id: int,
    channel: str,
    *,
    attempt: int,
    status: str,
    error: str | None = None,
    external_id: str | None = None,
) -> bool:
    """Settle the attempt that holds the claim (sent, failed, or back to pending).

    Fenced by the attempt number: an attempt whose claim was already settled (declared lost)
    changes nothing. Returns whether this attempt still held the claim.
    """
    row = conn.execute(
        """
        UPDATE notification_delivery
        SET status = %(status)s,
            last_error = COALESCE(%(error)s, last_error),
            external_id = COALESCE(%(external_id)s, external_id),
            sent_at = CASE WHEN %(status)s = 'sent' THEN now() ELSE sent_at END
        WHERE job_id = %(job_id)s AND channel = %(channel)s
          AND status = 'sending' AND attempts = %(attempt)s
        RETURNING 1
        """,
        {
            "job_id": job_id,
            "channel": channel,
            "attempt": attempt,
            "status": status,
            "error": error,
            "external_id": external_id,
        },
    ).fetchone()
    return row is not None


def update_delivery_lost(
    conn: psycopg.Connection, job_id: int, channel: str, *, lease_s: float, error: str
) -> DeliveryRow | None:
    """sending -> failed when the claim is older than the lease: its sender is gone."""
    cur = conn.cursor(row_factory=class_row(DeliveryRow))
    return cur.execute(
        """
        UPDATE notification_delivery
        SET status = 'failed', last_error = %(error)s
        WHERE job_id = %(job_id)s AND channel = %(channel)s AND status = 'sending'
          AND sending_at < now() - make_interval(secs => %(lease)s)
        RETURNING *
        """,
        {"job_id": job_id, "channel": channel, "lease": lease_s, "error": error},
    ).fetchone()


def update_lost_deliveries(conn: psycopg.Connection, *, lease_s: float, error: str) -> int:
    """Every send claimed longer ago than the lease becomes failed; returns how many."""
    cur = conn.execute(
        """
        UPDATE notification_delivery
        SET status = 'failed', last_error = %(error)s
        WHERE status = 'sending' AND sending_at < now() - make_interval(secs => %(lease)s)
        """,
        {"lease": lease_s, "error": error},
    )
    return cur.rowcount


def select_unpublished_deliveries(
    conn: psycopg.Connection, *, older_than_s: float
) -> list[Unpublished]:
    cur = conn.cursor(row_factory=class_row(Unpublished))
    return cur.execute(
        """
        SELECT job_id, channel FROM notification_delivery
        WHERE status = 'pending' AND published_at IS NULL
          AND created_at < now() - make_interval(secs => %(age)s)
        ORDER BY created_at
        LIMIT 1000
        """,
        {"age": older_than_s},
    ).fetchall()


@dataclass(frozen=True)
class Unrecorded:
    id: int
    notify_via: NotifyChannel


def select_unrecorded_jobs(
    conn: psycopg.Connection, *, older_than_s: float, within_s: float
) -> list[Unrecorded]:
    """Jobs that ended completed or failed, asked for a notification, and have no delivery rows."""
    cur = conn.cursor(row_factory=class_row(Unrecorded))
    return cur.execute(
        """
        SELECT j.id, j.notify_via FROM backtest_job j
        WHERE j.status IN ('completed', 'failed') AND j.notify_via <> 'none'
          AND j.completed_at < now() - make_interval(secs => %(age)s)
          AND j.completed_at > now() - make_interval(secs => %(within)s)
          AND NOT EXISTS (SELECT 1 FROM notification_delivery d WHERE d.job_id = j.id)
        ORDER BY j.completed_at
        LIMIT 1000
        """,
        {"age": older_than_s, "within": within_s},
    ).fetchall()
