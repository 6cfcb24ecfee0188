"""The transactional outbox: wake-ups owed to queued jobs, and the sweeper that sends them."""

from __future__ import annotations

import functools
import logging

import dramatiq
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db.pool import transaction
from algotcha.services import chunks, jobs
from algotcha.services.periodic import Periodic

logger = logging.getLogger(__name__)

# A submit publishes right after its commit; only rows older than this are orphans.
PUBLISH_GRACE_S = 5.0


def publish_pending(pool: ConnectionPool, broker: dramatiq.Broker, *, grace_s: float) -> int:
    """Send the wake-ups the outbox still owes (older than grace_s); returns how many."""
    with transaction(pool) as conn:
        ids = job_db.select_outbox_job_ids(conn, older_than_s=grace_s)
    sent: list[int] = []
    try:
        for job_id in ids:
            queues.publish(broker, queues.RUN_BACKTEST, job_id)
            sent.append(job_id)
    finally:
        if sent:
            with transaction(pool) as conn:
                job_db.delete_outbox(conn, sent)
            logger.info("event=jobs_republished count=%s first=%s", len(sent), sent[0])
    return len(sent)


def forget_published(pool: ConnectionPool) -> None:
    """Owe every queued job a message again, for a broker that lost them (in-process)."""
    with transaction(pool) as conn:
        job_db.insert_outbox_for_queued(conn)


def sweep(pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> int:
    """One pass: return stale jobs and chunks to the queue, then send every wake-up owed."""
    jobs.recover_stale(pool, settings)
    chunks.recover(pool, broker, settings)
    return publish_pending(pool, broker, grace_s=PUBLISH_GRACE_S)


def sweeper(pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> Periodic:
    """sweep() every SWEEP_INTERVAL_SECONDS; any process may run one."""
    return Periodic(
        "algotcha_sweep",
        settings.sweep_interval_s,
        functools.partial(sweep, pool, broker, settings),
    )
