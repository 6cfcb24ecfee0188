"""Sweeps through the queue: submit, the rows of a chunk, the merge, the grid, one cell's backtest.

A sweep is a chunked job (services/chunks.py runs its life); this module knows what its
units are: the combinations of engine.grid.plan, run by engine.sweep.run_chunk in a worker's
backtest process and merged by engine.sweep.merge when the last chunk is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dramatiq
import numpy as np
from psycopg_pool import ConnectionPool

import engine
from algotcha import engine_requests, exports
from algotcha.config import Settings
from algotcha.db import job_chunks as job_chunk_db
from algotcha.db import jobs as job_db
from algotcha.db.job_chunks import UnitRow
from algotcha.db.jobs import JobRow
from algotcha.db.pool import connection
from algotcha.errors import ConflictError, NotFoundError
from algotcha.services import jobs
from algotcha.vocabulary import NotifyChannel

logger = logging.getLogger(__name__)


def submit(
    pool: ConnectionPool,
    broker: dramatiq.Broker,
    settings: Settings,
    *,
    user_id: int,
    sweep: engine_requests.SweepSubmission,
    notify_via: NotifyChannel | None,
) -> jobs.QueuedJob[JobRow]:
    """Queue a sweep as one job: one position, one estimate, one notification."""
    return jobs.submit(
        pool,
        broker,
        settings,
        user_id=user_id,
        strategy_name=sweep.request.base.strategy_name,
        payload=sweep.document,
        notify_via=notify_via,
        kind="sweep",
        units=sweep.combinations,
        unit_bars=sweep.unit_bars,
    )


# A stored sweep passed MAX_SWEEP_COMBINATIONS when it was queued; re-reading it must not
# refuse it because the limit has changed since (or because the grid counts combinations
# the constraint then removed).
STORED_LIMIT = 2**31


def unit_rows(chunk: dict[str, Any]) -> list[UnitRow]:
    """engine.sweep.ChunkResult.as_dict() as stored rows: the JSON, and the daily returns as
    float64 bytes (exact, and a fifth of their size as JSON text)."""
    rows = []
    for row in chunk["rows"]:
        data = {key: value for key, value in row.items() if key != "daily_returns"}
        series = np.asarray(row["daily_returns"], dtype=np.float64).tobytes()
        rows.append(UnitRow(int(row["index"]), data, series))
    return rows


def merge(job: JobRow, rows: list[UnitRow], elapsed_ms: float) -> dict[str, Any]:
    """The SweepResult of every stored row, as engine.sweep.run would give it (to store);
    elapsed_ms is the engine time of all its chunks."""
    request = _request(job)
    sweep_rows = [
        engine.sweep.SweepRow.from_dict(
            {**row.data, "daily_returns": np.frombuffer(row.series, dtype=np.float64)}
        )
        for row in rows
    ]
    chunk = engine.sweep.ChunkResult(tuple(sweep_rows), elapsed_ms)
    return engine.sweep.merge(request, [chunk]).as_dict()


def _request(job: JobRow) -> engine.SweepRequest:
    return engine_requests.parse_sweep(job.payload, max_combinations=STORED_LIMIT)


def _sweep_of(conn: Any, user_id: int, job_id: int) -> JobRow:
    job = job_db.select_job_for_user(conn, job_id, user_id)
    if job is None or job.kind != "sweep":
        raise NotFoundError(f"no sweep {job_id}")
    return job


def grid_csv(
    pool: ConnectionPool, user_id: int, job_id: int, *, partial: bool = False
) -> Iterator[str]:
    """The grid CSV of a completed sweep, streamed from its stored rows (404 for another
    user's job or one that is not a sweep, 409 before it has completed). `partial` takes the
    rows of the chunks finished so far at any status: the page's heatmap fills in from them."""
    with connection(pool) as conn:
        job = _sweep_of(conn, user_id, job_id)
    if job.status != "completed" and not partial:
        raise ConflictError(f"sweep {job_id} is {job.status}: its grid is there once completed")
    names = list(job.payload["parameters"])

    def lines() -> Iterator[str]:
        with connection(pool) as conn, conn.transaction():
            yield from exports.grid_csv_lines(names, job_chunk_db.select_unit_data(conn, job_id))

    return lines()


def backtest_combination(
    pool: ConnectionPool,
    broker: dramatiq.Broker,
    settings: Settings,
    store: engine.BarStore,
    *,
    user_id: int,
    job_id: int,
    index: int,
    notify_via: NotifyChannel | None,
) -> jobs.QueuedJob[JobRow]:
    """Queue the ordinary backtest of combination `index` of the user's sweep ("open this
    cell"): the sweep's payload with that combination's values bound into it."""
    with connection(pool) as conn:
        job = _sweep_of(conn, user_id, job_id)
    request = _request(job)
    laid_out = engine.grid.plan(request)
    if not 0 <= index < len(laid_out.combinations):
        raise NotFoundError(
            f"sweep {job_id} has combinations 0 to {len(laid_out.combinations) - 1}, not {index}"
        )
    try:
        single = engine.check(request.backtest(laid_out.values(index)), store)
    except engine.EngineError as exc:
        raise engine_requests.sweep_error(exc) from None
    return jobs.submit(
        pool,
        broker,
        settings,
        user_id=user_id,
        strategy_name=single.strategy_name,
        payload=engine_requests.payload_dict(single),
        notify_via=notify_via or job.notify_via,
    )
