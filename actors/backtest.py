"""run_backtest(job_id): woken by a submit or a sweep's chunk, runs one thing to its end: the
next chunk of the running sweep if there is one, else the job at the head of the queue."""

from __future__ import annotations

import logging

import dramatiq

from actors import chunk, execution, progress
from actors.broker import runtime
from algotcha import engine_requests, queues
from algotcha.errors import ValidationError
from algotcha.services import chunks, jobs

logger = logging.getLogger(__name__)

_rt = runtime()

# Dramatiq's own limit is a backstop only: the child process limit fires first.
_TIME_LIMIT_MS = int((_rt.settings.backtest_time_limit_s + 120) * 1000)


@dramatiq.actor(
    actor_name=queues.RUN_BACKTEST,
    queue_name=queues.BACKTEST_QUEUE,
    max_retries=0,  # attempts are counted in PostgreSQL; see jobs.recover_stale
    time_limit=_TIME_LIMIT_MS,
)
def run_backtest(job_id: int) -> None:
    rt = runtime()
    claimed = chunks.claim(rt.pool, rt.worker_id)
    if claimed is not None:
        chunk.run(rt, claimed)
        return
    job = jobs.claim(rt.pool, job_id, rt.worker_id)
    if job is None:
        execution.idle(rt.settings.backtest_pretouch_bytes)
        return
    if job.kind != "backtest":
        chunk.start(rt, job)
        return
    ticker = progress.Ticker(rt.pool, job.id, rt.worker_id)
    try:
        request = engine_requests.parse_payload(job.payload)
    except ValidationError as exc:  # stored before a check became stricter
        progress.settle(rt, job.id, execution.Rejected(exc.detail), ticker)
        return
    outcome = execution.run(
        request,
        rt.settings.data_dir,
        time_limit_s=rt.settings.backtest_time_limit_s,
        tick_interval_s=rt.settings.heartbeat_interval_s,
        on_tick=ticker.tick,
        delay_s=rt.settings.debug_backtest_delay_s,
    )
    progress.settle(rt, job.id, outcome, ticker)
    execution.idle(rt.settings.backtest_pretouch_bytes)
