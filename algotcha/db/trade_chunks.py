"""SQL for the backtest_trade_chunk table: a completed job's trades, 1,000 to a row."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class ChunkRow:
    first_trade: int
    trade_count: int
    trades: bytes


def insert_trade_chunks(
    conn: psycopg.Connection, job_id: int, chunks: list[tuple[int, int, bytes]]
) -> None:
    """Store (first_trade, trade_count, encoded trades) rows; one round trip for all."""
    if not chunks:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO backtest_trade_chunk (job_id, first_trade, trade_count, trades)
            VALUES (%(job_id)s, %(first)s, %(count)s, %(trades)s)
            """,
            [
                {"job_id": job_id, "first": first, "count": count, "trades": data}
                for first, count, data in chunks
            ],
        )


def select_trade_chunks_from(
    conn: psycopg.Connection, job_id: int, *, after: int, limit: int
) -> list[ChunkRow]:
    """The chunks that hold trades after+1 .. after+limit, in order."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        SELECT first_trade, trade_count, trades FROM backtest_trade_chunk
        WHERE job_id = %(job_id)s
          AND first_trade + trade_count > %(after)s + 1
          AND first_trade <= %(after)s + %(limit)s
        ORDER BY first_trade
        """,
        {"job_id": job_id, "after": after, "limit": limit},
    ).fetchall()


def select_trade_chunks(conn: psycopg.Connection, job_id: int) -> list[ChunkRow]:
    """Every chunk of a job, in order (compressed: about 60 kB per 1,000 trades)."""
    cur = conn.cursor(row_factory=class_row(ChunkRow))
    return cur.execute(
        """
        SELECT first_trade, trade_count, trades FROM backtest_trade_chunk
        WHERE job_id = %(job_id)s ORDER BY first_trade
        """,
        {"job_id": job_id},
    ).fetchall()
