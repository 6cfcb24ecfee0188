"""The psycopg connection pool and the connection errors that mean "unavailable"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from algotcha.errors import UnavailableError


def create_pool(
    database_url: str, *, max_size: int = 10, name: str = "algotcha", timeout_s: float = 5.0
) -> ConnectionPool:
    """A closed pool: open it in the process's start-up (the app lifespan, the worker boot)."""
    return ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        open=False,
        name=name,
        # How long a request waits for a connection before it is answered 503.
        timeout=timeout_s,
        # A connection that died while idle in the pool is found before it is handed out.
        check=ConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "connect_timeout": max(2, round(timeout_s)),
            "application_name": name,
        },
    )


@contextmanager
def transaction(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """One transaction on a pooled connection; lost connections become UnavailableError."""
    try:
        with pool.connection() as conn, conn.transaction():
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise UnavailableError("the database is unavailable; try again shortly") from exc
