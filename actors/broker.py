"""setup(settings): the one Dramatiq broker of a worker process, and what the actors need."""

from __future__ import annotations

import dramatiq
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings

_runtime: Runtime | None = None


class Runtime:
    """What actor bodies use: settings, the database pool and the broker of this process."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker, pool: ConnectionPool) -> None:
        self.settings, self.broker, self.pool = settings, broker, pool
        self.worker_id = ""
        self._booted = False

    def boot(self) -> None:
        """Tell the broker's middleware the process is up (arms TimeLimit), once per process,
        however many Dramatiq workers it runs (`algotcha up` runs two)."""
        if not self._booted:
            self.broker.emit_after("process_boot")
            self._booted = True


def setup(
    settings: Settings, pool: ConnectionPool, broker: dramatiq.Broker | None = None
) -> Runtime:
    """Bind actors to RabbitMQ at BROKER_URL (or the given broker) before they are imported.

    dramatiq.actor binds to a global broker at import time, defaulting to RabbitMQ on
    127.0.0.1; setting it first is what keeps a worker from talking to the wrong one. Without
    BROKER_URL this raises ConfigError: an in-memory broker would leave a worker that looks
    online and consumes nothing (only `algotcha up` passes its in-process broker).
    """
    global _runtime
    if broker is None:
        broker = queues.create_broker(settings.require_broker_url())
    dramatiq.set_broker(broker)
    _runtime = Runtime(settings, broker, pool)
    return _runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("call actors.broker.setup(settings, pool) before importing actors")
    return _runtime
