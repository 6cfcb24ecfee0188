"""What every consumer process does around its Dramatiq worker: metrics, signals, orderly stop."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from actors import execution
from actors.broker import Runtime
from algotcha.config import Settings
from monitoring import exporter

logger = logging.getLogger(__name__)


class Service(Protocol):
    rt: Runtime

    def start(self) -> None: ...

    def stop(self) -> None: ...


def run_until_signalled(
    settings: Settings, pool: ConnectionPool, service: Service, *collectors: Collector
) -> int:
    """Serve metrics on METRICS_HOST:METRICS_PORT and run `service` until SIGTERM or SIGINT."""
    server, _ = exporter.start_http_exporter(
        exporter.registry(settings.metrics_multiproc_dir),
        settings.metrics_host,
        settings.metrics_port,
        *collectors,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        exit_on_next_signal(execution.shut_down)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    service.start()
    stop.wait()
    service.stop()
    service.rt.broker.close()
    server.shutdown()
    server.server_close()
    pool.close()
    return 0


def exit_on_next_signal(cleanup: Callable[[], None]) -> None:
    """From now on, SIGINT or SIGTERM (a second Ctrl-C) ends the process at once.

    The operator will not wait for the orderly stop. cleanup() kills what would outlive the
    process; a job left running goes back to the queue when a worker next starts (its
    heartbeat has stopped). Without this, an interrupted stop left non-daemon threads behind
    and the process never exited.
    """

    def force(signum: int, _frame: FrameType | None) -> None:
        logger.warning("event=forced_stop signal=%s", signal.Signals(signum).name)
        cleanup()
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, force)
