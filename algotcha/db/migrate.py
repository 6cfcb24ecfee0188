"""Applies db/migrations/NNNN_slug.sql in order, one transaction each, with their checksums."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import psycopg

from algotcha.errors import ConfigError

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 7_346_001


class MigrationChangedError(ConfigError):
    """A migration file differs from the one applied to this database."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    checksum: str  # sha256 of the file's bytes, hex


def migrations() -> list[Migration]:
    """Every migration file shipped with this version, in the order they apply."""
    files = resources.files("algotcha.db").joinpath("migrations")
    found = []
    for name in sorted(f.name for f in files.iterdir() if f.name.endswith(".sql")):
        data = files.joinpath(name).read_bytes()
        found.append(Migration(name, data.decode(), hashlib.sha256(data).hexdigest()))
    return found


def pending(applied: set[str]) -> list[Migration]:
    return [m for m in migrations() if m.name not in applied]


def apply(database_url: str) -> list[str]:
    """Bring the schema up to date; safe to run from several processes at once.

    Refuses (MigrationChangedError, nothing applied) when an applied file was edited since.
    """
    done: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            with conn.transaction():
                _create_table(conn)
                _backfill_checksums(conn)
            verify(conn)
            applied = set(_recorded(conn))
            for migration in pending(applied):
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migration (name, checksum) VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
                logger.info("event=migration_applied name=%s", migration.name)
                done.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done


def check(database_url: str) -> None:
    """Refuse to run against a database whose applied migrations differ from these files."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migration') IS NOT NULL").fetchone()
        if exists and exists[0]:
            verify(conn)


def verify(conn: psycopg.Connection) -> None:
    shipped = {m.name: m for m in migrations()}
    for name, recorded in _recorded(conn).items():
        migration = shipped.get(name)
        if migration is None:
            # A newer version migrated this database (a rollback, say): not ours to judge.
            logger.warning("event=migration_unknown name=%s", name)
        elif recorded is not None and recorded != migration.checksum:
            raise MigrationChangedError(
                f"migration {name} was changed after it was applied to this database "
                f"(applied sha256 {recorded[:12]}, file sha256 {migration.checksum[:12]}); "
                f"restore {name} as it was and put the change in a new migration"
            )


def _create_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migration (
            name text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now())
        """
    )
    # Databases migrated before checksums were recorded gain the column here.
    conn.execute("ALTER TABLE schema_migration ADD COLUMN IF NOT EXISTS checksum text")


def _backfill_checksums(conn: psycopg.Connection) -> None:
    """Adopt the shipped checksum for files applied before checksums were recorded.

    Nothing older can be compared, so those files are trusted as they are now; 0003 brings
    the one index that an edit of 0001 had hidden from such databases.
    """
    for migration in migrations():
        updated = conn.execute(
            "UPDATE schema_migration SET checksum = %s WHERE name = %s AND checksum IS NULL",
            (migration.checksum, migration.name),
        )
        if updated.rowcount:
            logger.info("event=migration_checksum_recorded name=%s", migration.name)


def _recorded(conn: psycopg.Connection) -> dict[str, str | None]:
    rows = conn.execute("SELECT name, checksum FROM schema_migration ORDER BY name").fetchall()
    return {name: checksum for name, checksum in rows}
