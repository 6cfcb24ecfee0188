"""Walk-forwards through the queue: submit, the row of a fold, the merge, the folds table.

A walk-forward is a chunked job (services/chunks.py runs its life) of one chunk per fold,
whose units are the engine's steps (each in-sample combination, then the out-of-sample
backtest), so progress and waits move within a fold: engine.walkforward.run_fold runs a fold
in a worker's backtest process, and engine.walkforward.merge_folds stitches them when the last
is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dramatiq
from psycopg_pool import ConnectionPool

import engine
from algotcha import engine_requests, exports
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db.job_chunks import UnitRow
from algotcha.db.jobs import JobRow
from algotcha.db.pool import connection
from algotcha.errors import ConflictError, NotFoundError
from algotcha.services import jobs, sweeps
from algotcha.vocabulary import NotifyChannel

logger = logging.getLogger(__name__)


def submit(
    pool: ConnectionPool,
    broker: dramatiq.Broker,
    settings: Settings,
    store: engine.BarStore,
    *,
    user_id: int,
    walk_forward: engine_requests.WalkForwardSubmission,
    notify_via: NotifyChannel | None,
) -> jobs.QueuedJob[JobRow]:
    """Cut a walk-forward's folds and queue it as one job: one position, one estimate, one
    notification; it counts against MAX_SWEEPS_PER_USER with the sweeps."""
    units, unit_bars = engine_requests.plan_walkforward(walk_forward, store)
    return jobs.submit(
        pool,
        broker,
        settings,
        user_id=user_id,
        strategy_name=walk_forward.request.sweep.base.strategy_name,
        payload=walk_forward.document,
        notify_via=notify_via,
        kind="walk_forward",
        units=units,
        unit_bars=unit_bars,
    )


def request_of(job: JobRow) -> engine.WalkForwardRequest:
    """The stored request, re-read without the limits of the day it was queued."""
    return engine_requests.parse_walkforward(
        job.payload, "sweep", max_combinations=sweeps.STORED_LIMIT
    )


def unit_rows(fold: dict[str, Any]) -> list[UnitRow]:
    """A fold result as the backtest process sends it (FoldResult.as_dict(packed=True)) as
    the one stored row of its chunk (numbered by the fold, not by its steps): the JSON, and
    the segment's bytes."""
    data = {key: value for key, value in fold.items() if key != "segment"}
    return [UnitRow(int(fold["index"]), data, fold["segment"])]


def merge(job: JobRow, rows: list[UnitRow], elapsed_ms: float) -> dict[str, Any]:
    """The walk-forward result of every stored fold, as engine.walkforward.run would give it
    (to store); its elapsedMs is the folds' own engine time, as there."""
    folds = [engine.FoldResult.from_dict({**row.data, "segment": row.series}) for row in rows]
    return engine.walkforward.merge_folds(request_of(job), folds).as_dict()


def folds_csv(pool: ConnectionPool, user_id: int, job_id: int) -> Iterator[str]:
    """The folds table of a completed walk-forward (404 for another user's job or one that is
    not a walk-forward, 409 before it has completed)."""
    with connection(pool) as conn:
        job = job_db.select_job_for_user(conn, job_id, user_id)
    if job is None or job.kind != "walk_forward":
        raise NotFoundError(f"no walk-forward {job_id}")
    if job.status != "completed" or job.result is None:
        raise ConflictError(
            f"walk-forward {job_id} is {job.status}: its folds table is there once completed"
        )
    names = list(job.payload["parameters"])
    return exports.folds_csv_lines(names, job.result["folds"])
