"""SQL for the login_failure table: recent failed logins per account and per client address."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class FailureCounts:
    """Failures inside the window, and seconds until the oldest of them leaves it."""

    account_failures: int
    account_clears_in_s: int
    address_failures: int
    address_clears_in_s: int


def insert_login_failure(
    conn: psycopg.Connection, *, email: str, address: str, window_s: float
) -> int:
    """Record one attempt as failed (until it proves otherwise); prune what the window left."""
    conn.execute(
        "DELETE FROM login_failure WHERE failed_at < now() - make_interval(secs => %(window_s)s)",
        {"window_s": window_s},
    )
    row = conn.execute(
        """
        INSERT INTO login_failure (email, address) VALUES (%(email)s, %(address)s)
        RETURNING id
        """,
        {"email": email, "address": address},
    ).fetchone()
    assert row is not None
    return int(row[0])


def select_failure_counts(
    conn: psycopg.Connection, *, email: str, address: str, window_s: float
) -> FailureCounts:
    cur = conn.cursor(row_factory=class_row(FailureCounts))
    row = cur.execute(
        """
        WITH recent AS (
            SELECT email, address, failed_at FROM login_failure
            WHERE (email = %(email)s OR address = %(address)s)
              AND failed_at > now() - make_interval(secs => %(window_s)s)
        )
        SELECT
            count(*) FILTER (WHERE email = %(email)s) AS account_failures,
            coalesce(ceil(extract(epoch FROM min(failed_at) FILTER (WHERE email = %(email)s)
                + make_interval(secs => %(window_s)s) - now())), 0)::int AS account_clears_in_s,
            count(*) FILTER (WHERE address = %(address)s) AS address_failures,
            coalesce(ceil(extract(epoch FROM min(failed_at) FILTER (WHERE address = %(address)s)
                + make_interval(secs => %(window_s)s) - now())), 0)::int AS address_clears_in_s
        FROM recent
        """,
        {"email": email, "address": address, "window_s": window_s},
    ).fetchone()
    assert row is not None
    return row


def delete_login_failure(conn: psycopg.Connection, failure_id: int) -> None:
    conn.execute("DELETE FROM login_failure WHERE id = %(id)s", {"id": failure_id})


def delete_login_failures_for_email(conn: psycopg.Connection, email: str) -> None:
    conn.execute("DELETE FROM login_failure WHERE email = %(email)s", {"email": email})
