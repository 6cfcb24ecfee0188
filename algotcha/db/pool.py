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
        # No check on checkout: it would cost a round trip per use. A connection that died
        # fails its request with 503 and is discarded by the pool when it comes back.
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


@contextmanager
def connection(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A pooled connection in autocommit mode, for work that is one statement.

    Saves the BEGIN and COMMIT round trips a transaction() would add; hot paths need that.
    """
    try:
        with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise UnavailableError("the database is unavailable; try again shortly") from exc
