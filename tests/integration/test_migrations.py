"""Migrations: applied once each, checksummed, and an edited one refuses to start the service."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from algotcha.db import migrate
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.integration

# The line of 0001 under which the index of 0003 had been edited in, after 0002 shipped.
USER_INDEX = "CREATE INDEX backtest_job_user ON backtest_job (user_id, id DESC);\n"
EDITED_IN = (
    "-- The per-user limit counts only queued jobs: a handful, however long the user's history.\n"
    "CREATE INDEX backtest_job_user_queued ON backtest_job (user_id) WHERE status = 'queued';\n"
)


def shipped(name: str) -> migrate.Migration:
    return next(m for m in migrate.migrations() if m.name == name)


def has_index(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def migrate_the_old_way(url: str, sql_by_name: dict[str, str]) -> None:
    """What the migrator did before checksums: run each file, record its name only."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migration (name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for name, sql in sql_by_name.items():
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migration (name) VALUES (%s)", (name,))


def algotcha(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "JWT_SECRET": "x" * 48, "BROKER_URL": "amqp://x/"}
    return subprocess.run(
        [sys.executable, "-m", "algotcha", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_new_database_records_a_checksum_per_migration(empty_database_url: str) -> None:
    applied = migrate.apply(empty_database_url)
    assert applied == [m.name for m in migrate.migrations()]
    with psycopg.connect(empty_database_url) as conn:
        rows = dict(conn.execute("SELECT name, checksum FROM schema_migration").fetchall())
        assert rows == {m.name: m.checksum for m in migrate.migrations()}
        assert has_index(conn, "backtest_job_user_queued")
    assert migrate.apply(empty_database_url) == []


def test_an_edited_migration_refuses_to_migrate_or_start_naming_the_file(
    empty_database_url: str,
) -> None:
    migrate.apply(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        # As if 0001 had been edited after this database applied it.
        conn.execute(
            "UPDATE schema_migration SET checksum = %s WHERE name = '0001_initial.sql'",
            ("0" * 64,),
        )

    with pytest.raises(migrate.MigrationChangedError, match=r"0001_initial\.sql"):
        migrate.apply(empty_database_url)
    for command in (["migrate"], ["api", "--port", "1"], ["worker"], ["notifier"]):
        run = algotcha(empty_database_url, *command)
        assert run.returncode == 2, (command, run.stdout, run.stderr)
        assert "migration 0001_initial.sql was changed" in run.stderr, command


def test_a_database_migrated_before_checksums_upgrades_and_gains_the_index(
    empty_database_url: str,
) -> None:
    """Migrated with 0001 and 0002 as first shipped, it never saw the index edited into 0001."""
    migrate_the_old_way(
        empty_database_url,
        {m.name: m.sql for m in migrate.migrations() if m.name < "0003"},
    )

    applied = migrate.apply(empty_database_url)

    assert "0003_backtest_job_user_queued.sql" in applied
    with psycopg.connect(empty_database_url) as conn:
        assert has_index(conn, "backtest_job_user_queued")
        rows = dict(conn.execute("SELECT name, checksum FROM schema_migration").fetchall())
    assert rows == {m.name: m.checksum for m in migrate.migrations()}


def test_a_database_migrated_with_the_edited_0001_upgrades_cleanly(
    empty_database_url: str,
) -> None:
    original = shipped("0001_initial.sql").sql
    assert USER_INDEX in original and EDITED_IN not in original
    migrate_the_old_way(
        empty_database_url,
        {
            "0001_initial.sql": original.replace(USER_INDEX, USER_INDEX + EDITED_IN),
            "0002_notifications.sql": shipped("0002_notifications.sql").sql,
        },
    )

    applied = migrate.apply(empty_database_url)

    assert applied[0] == "0003_backtest_job_user_queued.sql"
    with psycopg.connect(empty_database_url) as conn:
        assert has_index(conn, "backtest_job_user_queued")
    migrate.check(empty_database_url)
