"""The backtest worker: one Dramatiq consumer thread, prefetch one, clean shutdown."""

from __future__ import annotations

import functools
import gc
import logging

import dramatiq
from psycopg_pool import ConnectionPool

from actors import broker as actor_broker
from actors import chunk, execution, process, progress
from algotcha import queues
from algotcha.config import Settings
from algotcha.db import pool as db_pool
from algotcha.services import chunks, jobs, outbox, workers
from monitoring.collector import QueueCollector

logger = logging.getLogger(__name__)

# How long a stop waits for the running backtest to be handed back.
SHUTDOWN_TIMEOUT_MS = 30_000


class BacktestWorker:
    """The consumer of the backtest queue with its heartbeat and sweeper threads."""

    def __init__(
        self, settings: Settings, pool: ConnectionPool, broker: dramatiq.Broker | None = None
    ) -> None:
        self.settings, self.pool = settings, pool
        self.rt = actor_broker.setup(settings, pool, broker)
        import actors.backtest  # noqa: F401  (binds run_backtest to this broker)

        self.worker = dramatiq.Worker(
            self.rt.broker, queues={queues.BACKTEST_QUEUE}, worker_threads=1
        )
        # One message in flight: a second would sit unacked here while RabbitMQ's "Ready"
        # count and every other worker's chance at it suffer.
        self.worker.queue_prefetch = 1
        self.sweeper = outbox.sweeper(pool, self.rt.broker, settings)

    def start(self) -> None:
        rt, pool = self.rt, self.pool
        execution.idle(self.settings.backtest_pretouch_bytes)
        chunk.warm_up()
        # What is imported by now lives as long as the process: frozen out of the collector's
        # sight, the objects a merge makes no longer have it walk pandas and numba each time.
        gc.freeze()
        rt.worker_id = workers.new_worker_id()
        workers.register(pool, rt.worker_id)
        dead = workers.dead_predecessors(pool, rt.worker_id)
        if dead:
            jobs.recover_from(pool, dead, self.settings)
            chunks.recover(pool, rt.broker, self.settings, dead)
        outbox.publish_pending(pool, rt.broker, grace_s=outbox.PUBLISH_GRACE_S)
        self.heartbeat = workers.heartbeat_thread(
            pool, rt.worker_id, self.settings.heartbeat_interval_s
        )
        rt.boot()
        self.heartbeat.start()
        self.sweeper.start()
        self.worker.start()
        logger.info("event=worker_ready worker=%s queue=%s", rt.worker_id, queues.BACKTEST_QUEUE)

    def stop(self) -> None:
        """Hand the running backtest back to the queue and leave the worker table."""
        logger.info("event=worker_stopping worker=%s", self.rt.worker_id)
        progress.shutting_down.set()
        self.worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
        execution.shut_down()
        self.sweeper.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        workers.deregister(self.pool, self.rt.worker_id)


def serve(settings: Settings) -> int:
    """`algotcha worker`: run until SIGTERM or SIGINT."""
    pool = db_pool.create_pool(settings.require_database_url(), max_size=4, name="algotcha-worker")
    pool.open(wait=True, timeout=30)
    collector = QueueCollector(functools.partial(jobs.queue_sample, pool, settings))
    return process.run_until_signalled(settings, pool, BacktestWorker(settings, pool), collector)
