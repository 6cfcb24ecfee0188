"""What every consumer process does around its Dramatiq worker: metrics, signals, orderly stop."""

from __future__ import annotations

import signal
import threading
from typing import Protocol

from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from actors.broker import Runtime
from algotcha.config import Settings
from monitoring import exporter


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
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.start()
    stop.wait()
    service.stop()
    service.rt.broker.close()
    server.shutdown()
    server.server_close()
    pool.close()
    return 0
