"""SQL for the telegram_link table: one-time tokens that link a Telegram chat to an account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class LinkRow:
    token_hash: bytes
    user_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def insert_link(
    conn: psycopg.Connection, *, token_hash: bytes, user_id: int, ttl_s: float
) -> LinkRow:
    cur = conn.cursor(row_factory=class_row(LinkRow))
    row = cur.execute(
        """
        INSERT INTO telegram_link (token_hash, user_id, expires_at)
        VALUES (%(hash)s, %(user_id)s, now() + make_interval(secs => %(ttl)s))
        RETURNING *
        """,
        {"hash": token_hash, "user_id": user_id, "ttl": ttl_s},
    ).fetchone()
    assert row is not None
    return row


def delete_unused_links_of_user(conn: psycopg.Connection, user_id: int) -> None:
    """Earlier unused tokens of this user: only the newest deep link works."""
    conn.execute(
        "DELETE FROM telegram_link WHERE user_id = %(id)s AND used_at IS NULL", {"id": user_id}
    )


def delete_expired_links(conn: psycopg.Connection, *, older_than_s: float) -> None:
    conn.execute(
        """
        DELETE FROM telegram_link
        WHERE expires_at < now() - make_interval(secs => %(age)s)
        """,
        {"age": older_than_s},
    )


def update_link_used(conn: psycopg.Connection, token_hash: bytes) -> LinkRow | None:
    """Use an unused, unexpired token; None when there is no such token."""
    cur = conn.cursor(row_factory=class_row(LinkRow))
    return cur.execute(
        """
        UPDATE telegram_link SET used_at = now()
        WHERE token_hash = %(hash)s AND used_at IS NULL AND expires_at > now()
        RETURNING *
        """,
        {"hash": token_hash},
    ).fetchone()


def select_link(conn: psycopg.Connection, token_hash: bytes) -> LinkRow | None:
    cur = conn.cursor(row_factory=class_row(LinkRow))
    return cur.execute(
        "SELECT * FROM telegram_link WHERE token_hash = %(hash)s", {"hash": token_hash}
    ).fetchone()
