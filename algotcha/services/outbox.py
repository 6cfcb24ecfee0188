"""Publish-after-commit: the sweeper that sends the wake-ups a crash kept from being sent."""

from __future__ import annotations

import logging
import threading

import dramatiq
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db.pool import transaction
from algotcha.errors import UnavailableError
from algotcha.services import jobs

logger = logging.getLogger(__name__)

# A submit publishes right after its commit; only rows older than this are orphans.
PUBLISH_GRACE_S = 5.0


def publish_pending(pool: ConnectionPool, broker: dramatiq.Broker, *, grace_s: float) -> int:
    """Publish queued jobs that were committed but never published; returns how many."""
    with transaction(pool) as conn:
        ids = job_db.select_unpublished_job_ids(conn, older_than_s=grace_s)
    sent: list[int] = []
    try:
        for job_id in ids:
            queues.publish(broker, queues.RUN_BACKTEST, job_id)
            sent.append(job_id)
    finally:
        if sent:
            with transaction(pool) as conn:
                job_db.update_job_published(conn, sent)
            logger.info("event=jobs_republished count=%s first=%s", len(sent), sent[0])
    return len(sent)


def sweep(pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> int:
    """One pass: return stale jobs to the queue, then publish every unpublished one."""
    jobs.recover_stale(pool, settings)
    return publish_pending(pool, broker, grace_s=PUBLISH_GRACE_S)


class Sweeper(threading.Thread):
    """Runs sweep() every SWEEP_INTERVAL_SECONDS until stopped; any process may run one."""

    def __init__(self, pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> None:
        super().__init__(name="algotcha-sweeper", daemon=True)
        self.pool, self.broker, self.settings = pool, broker, settings
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.settings.sweep_interval_s):
            try:
                sweep(self.pool, self.broker, self.settings)
            except UnavailableError as exc:
                logger.warning("event=sweep_skipped reason=%s", exc.detail)
            except Exception:
                logger.exception("event=sweep_failed")

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
