"""The notifier: Dramatiq consumers of the notification queue, and the delivery sweeper."""

from __future__ import annotations

import logging

import dramatiq
from psycopg_pool import ConnectionPool

from actors import broker as actor_broker
from actors import process
from algotcha import queues
from algotcha.config import Settings
from algotcha.db import pool as db_pool
from algotcha.services import deliveries

logger = logging.getLogger(__name__)

# A send in progress is bounded by its socket timeouts; SIGTERM waits this long for it.
SHUTDOWN_TIMEOUT_MS = 30_000


class Notifier:
    """NOTIFIER_THREADS consumers of algotcha.notifications, and the sweeper of deliveries."""

    def __init__(
        self, settings: Settings, pool: ConnectionPool, broker: dramatiq.Broker | None = None
    ) -> None:
        self.settings, self.pool = settings, pool
        self.rt = _runtime(settings, pool, broker)
        import actors.notify  # noqa: F401  (binds notify_telegram and notify_email)

        self.worker = dramatiq.Worker(
            self.rt.broker,
            queues={queues.NOTIFICATION_QUEUE},
            worker_threads=settings.notifier_threads,
        )
        self.sweeper = deliveries.sweeper(pool, self.rt.broker, settings)

    def start(self) -> None:
        self.rt.boot()
        self.sweeper.start()
        self.worker.start()
        logger.info(
            "event=notifier_ready queue=%s threads=%s telegram=%s email=%s",
            queues.NOTIFICATION_QUEUE,
            self.settings.notifier_threads,
            "on" if self.settings.telegram_bot_token else "off",
            "on" if self.settings.smtp_host else "off",
        )

    def stop(self) -> None:
        logger.info("event=notifier_stopping")
        self.worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
        self.sweeper.stop()


def _runtime(
    settings: Settings, pool: ConnectionPool, broker: dramatiq.Broker | None
) -> actor_broker.Runtime:
    """This process's runtime: the backtest worker's when both share a process and broker."""
    try:
        existing = actor_broker.runtime()
    except RuntimeError:
        existing = None
    if existing is not None and broker is not None and existing.broker is broker:
        return existing
    return actor_broker.setup(settings, pool, broker)


def serve(settings: Settings) -> int:
    """`algotcha notifier`: run until SIGTERM or SIGINT."""
    pool = db_pool.create_pool(
        settings.require_database_url(),
        max_size=settings.notifier_threads + 2,
        name="algotcha-notifier",
    )
    pool.open(wait=True, timeout=30)
    return process.run_until_signalled(settings, pool, Notifier(settings, pool))
