"""SQL for the app_user table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from algotcha.vocabulary import NotifyChannel


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    password_hash: str
    notify_via: NotifyChannel
    telegram_chat_id: int | None
    telegram_blocked: bool
    created_at: datetime


def insert_user(conn: psycopg.Connection, *, email: str, name: str, password_hash: str) -> UserRow:
    cur = conn.cursor(row_factory=class_row(UserRow))
    row = cur.execute(
        """
        INSERT INTO app_user (email, name, password_hash)
        VALUES (%(email)s, %(name)s, %(password_hash)s)
        RETURNING *
        """,
        {"email": email, "name": name, "password_hash": password_hash},
    ).fetchone()
    assert row is not None
    return row


def select_user(conn: psycopg.Connection, user_id: int) -> UserRow | None:
    cur = conn.cursor(row_factory=class_row(UserRow))
    return cur.execute("SELECT * FROM app_user WHERE id = %(id)s", {"id": user_id}).fetchone()


def select_user_by_email(conn: psycopg.Connection, email: str) -> UserRow | None:
    cur = conn.cursor(row_factory=class_row(UserRow))
    return cur.execute(
        "SELECT * FROM app_user WHERE lower(email) = lower(%(email)s)", {"email": email}
    ).fetchone()


def update_user_password_hash(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    conn.execute(
        "UPDATE app_user SET password_hash = %(hash)s WHERE id = %(id)s",
        {"id": user_id, "hash": password_hash},
    )


def update_user_profile(
    conn: psycopg.Connection, user_id: int, *, name: str | None, notify_via: NotifyChannel | None
) -> UserRow | None:
    cur = conn.cursor(row_factory=class_row(UserRow))
    return cur.execute(
        """
        UPDATE app_user
        SET name = COALESCE(%(name)s, name), notify_via = COALESCE(%(notify_via)s, notify_via)
        WHERE id = %(id)s
        RETURNING *
        """,
        {"id": user_id, "name": name, "notify_via": notify_via},
    ).fetchone()


def update_user_telegram(conn: psycopg.Connection, user_id: int, *, chat_id: int | None) -> None:
    conn.execute(
        """
        UPDATE app_user SET telegram_chat_id = %(chat_id)s, telegram_blocked = false
        WHERE id = %(id)s
        """,
        {"id": user_id, "chat_id": chat_id},
    )


def select_user_by_telegram_chat(conn: psycopg.Connection, chat_id: int) -> UserRow | None:
    cur = conn.cursor(row_factory=class_row(UserRow))
    return cur.execute(
        "SELECT * FROM app_user WHERE telegram_chat_id = %(chat_id)s ORDER BY id LIMIT 1",
        {"chat_id": chat_id},
    ).fetchone()


def update_users_telegram_released(
    conn: psycopg.Connection, chat_id: int, *, keep_user_id: int
) -> None:
    """Unlink a chat from every other account: one chat notifies one account."""
    conn.execute(
        """
        UPDATE app_user SET telegram_chat_id = NULL, telegram_blocked = false
        WHERE telegram_chat_id = %(chat_id)s AND id <> %(keep)s
        """,
        {"chat_id": chat_id, "keep": keep_user_id},
    )


def update_user_telegram_blocked(
    conn: psycopg.Connection, user_id: int, *, chat_id: int, blocked: bool
) -> None:
    """Mark the link blocked (or not), if the user is still linked to that chat."""
    conn.execute(
        """
        UPDATE app_user SET telegram_blocked = %(blocked)s
        WHERE id = %(id)s AND telegram_chat_id = %(chat_id)s
        """,
        {"id": user_id, "chat_id": chat_id, "blocked": blocked},
    )
