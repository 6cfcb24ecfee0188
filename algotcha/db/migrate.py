"""Applies db/migrations/NNNN_slug.sql in order, one transaction each, and records them."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 7_346_001


def pending(applied: set[str]) -> list[tuple[str, str]]:
    files = resources.files("algotcha.db").joinpath("migrations")
    names = sorted(f.name for f in files.iterdir() if f.name.endswith(".sql"))
    return [(n, files.joinpath(n).read_text()) for n in names if n not in applied]


def apply(database_url: str) -> list[str]:
    """Bring the schema up to date; safe to run from several processes at once."""
    done: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migration (
                    name text PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """
            )
            applied = {r[0] for r in conn.execute("SELECT name FROM schema_migration")}
            for name, sql in pending(applied):
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migration (name) VALUES (%s)", (name,))
                logger.info("event=migration_applied name=%s", name)
                done.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done
