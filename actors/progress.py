"""The actor's side of a running backtest: heartbeat, progress, cancel, and the final status."""

from __future__ import annotations

import logging
import threading

from psycopg_pool import ConnectionPool

from actors import execution
from actors.broker import Runtime
from algotcha.db.jobs import JobRow
from algotcha.errors import UnavailableError
from algotcha.services import deliveries, jobs, outbox

logger = logging.getLogger(__name__)

# Set by the worker on SIGTERM: the running backtest is handed back to the queue.
shutting_down = threading.Event()


class Ticker:
    """Called about once a second while the child runs: writes progress and a heartbeat,
    and says whether to stop (cancel requested, the job taken away, or shutdown)."""

    def __init__(self, pool: ConnectionPool, job_id: int, worker_id: str) -> None:
        self.pool, self.job_id, self.worker_id = pool, job_id, worker_id
        self.cancelled = False

    def tick(self, progress: int) -> bool:
        if shutting_down.is_set():
            return True
        try:
            self.cancelled = jobs.record_progress(self.pool, self.job_id, self.worker_id, progress)
        except UnavailableError:
            # A short database outage should not kill a long backtest; a long one makes the
            # heartbeat stale and the sweeper hands the job to another worker.
            logger.warning("event=progress_not_recorded job=%s", self.job_id)
            return False
        return self.cancelled


def settle(
    rt: Runtime, job_id: int, outcome: execution.Finished | execution.Outcome, ticker: Ticker
) -> None:
    """Store how the run ended; a completed or failed job then gets its notifications."""
    finished: JobRow | None = None
    match outcome:
        case execution.Finished(result):
            finished = jobs.complete(rt.pool, job_id, rt.worker_id, result)
        case execution.Rejected(message):
            finished = jobs.fail(rt.pool, job_id, rt.worker_id, message)
        case execution.Crashed() if shutting_down.is_set():
            # Killed along with a stopping worker (a signal to its whole group): not the
            # job's fault, so it goes back to the queue like a stopped one.
            _hand_back(rt, job_id)
        case execution.Crashed(message):
            finished = jobs.fail(rt.pool, job_id, rt.worker_id, message, outcome="crashed")
        case execution.TimedOut(limit_s):
            message = f"the backtest ran over the time limit of {limit_s:g} s and was stopped"
            finished = jobs.fail(rt.pool, job_id, rt.worker_id, message, outcome="timed_out")
        case execution.Stopped() if ticker.cancelled:
            jobs.finish_cancelled(rt.pool, job_id, rt.worker_id)
        case execution.Stopped():
            _hand_back(rt, job_id)
    if finished is not None:
        notify(rt, finished)


def _hand_back(rt: Runtime, job_id: int) -> None:
    jobs.release(rt.pool, job_id, rt.worker_id)
    outbox.publish_pending(rt.pool, rt.broker, grace_s=0)


def notify(rt: Runtime, job: JobRow) -> None:
    """Record and publish the job's notifications; its result is committed already.

    A notification never fails the backtest: whatever goes wrong here is logged, and the
    notifier's sweeper records and publishes what is missing.
    """
    try:
        deliveries.enqueue(rt.pool, rt.broker, job.id, job.notify_via)
    except Exception as exc:
        logger.warning(
            "event=notifications_deferred job=%s reason=%s (the notifier's sweeper sends them)",
            job.id,
            type(exc).__name__,
        )
