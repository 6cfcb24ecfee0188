"""The backtest worker process: one Dramatiq consumer thread, prefetch one, clean shutdown."""

from __future__ import annotations

import functools
import logging
import signal
import threading

import dramatiq

from actors import broker as actor_broker
from actors import progress
from algotcha import queues
from algotcha.config import Settings
from algotcha.db import pool as db_pool
from algotcha.services import execution, jobs, outbox, workers
from monitoring import exporter
from monitoring.collector import QueueCollector

logger = logging.getLogger(__name__)

# How long SIGTERM waits for the running backtest to be handed back before exiting.
SHUTDOWN_TIMEOUT_MS = 30_000


def serve(settings: Settings) -> int:
    pool = db_pool.create_pool(settings.require_database_url(), max_size=4, name="algotcha-worker")
    pool.open(wait=True, timeout=30)
    rt = actor_broker.setup(settings, pool)
    import actors.backtest  # noqa: F401  (binds run_backtest to this broker)

    execution.warm_up()
    rt.worker_id = workers.new_worker_id()
    workers.register(pool, rt.worker_id)
    dead = workers.dead_predecessors(pool, rt.worker_id)
    if dead:
        jobs.recover_from(pool, dead, settings)
    outbox.publish_pending(pool, rt.broker, grace_s=outbox.PUBLISH_GRACE_S)

    collector = QueueCollector(functools.partial(jobs.queue_sample, pool, settings))
    server, _ = exporter.start_http_exporter(
        exporter.registry(settings.metrics_multiproc_dir),
        settings.metrics_host,
        settings.metrics_port,
        collector,
    )
    heartbeat = workers.Heartbeat(pool, rt.worker_id, settings.heartbeat_interval_s)
    sweeper = outbox.Sweeper(pool, rt.broker, settings)
    worker = dramatiq.Worker(rt.broker, queues={queues.BACKTEST_QUEUE}, worker_threads=1)
    # One message in flight: a second would sit unacked here while RabbitMQ's "Ready"
    # count and every other worker's chance at it suffer.
    worker.queue_prefetch = 1
    rt.broker.emit_after("process_boot")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    heartbeat.start()
    sweeper.start()
    worker.start()
    logger.info("event=worker_ready worker=%s queue=%s", rt.worker_id, queues.BACKTEST_QUEUE)
    stop.wait()

    logger.info("event=worker_stopping worker=%s", rt.worker_id)
    progress.shutting_down.set()
    worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
    sweeper.stop()
    heartbeat.stop()
    rt.broker.emit_before("process_stop")
    rt.broker.close()
    workers.deregister(pool, rt.worker_id)
    server.shutdown()
    server.server_close()
    pool.close()
    return 0
