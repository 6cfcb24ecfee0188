"""Readiness: can this process reach PostgreSQL and the broker right now?"""

from __future__ import annotations

import contextlib
import logging

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from psycopg_pool import ConnectionPool

from algotcha.db.pool import transaction
from algotcha.errors import UnavailableError

logger = logging.getLogger(__name__)


def check(pool: ConnectionPool, broker: dramatiq.Broker) -> dict[str, bool]:
    return {"database": _database(pool), "broker": _broker(broker)}


def _database(pool: ConnectionPool) -> bool:
    try:
        with transaction(pool) as conn:
            conn.execute("SELECT 1")
    except UnavailableError:
        return False
    return True


def _broker(broker: dramatiq.Broker) -> bool:
    if not isinstance(broker, RabbitmqBroker):  # an in-process broker is always there
        return True
    try:
        # This thread's connection, opened on first use; a dead one fails here.
        broker.connection.process_data_events(time_limit=0)
    except Exception as exc:
        logger.warning("event=broker_unreachable error=%s", exc)
        with contextlib.suppress(Exception):
            del broker.connection
        return False
    return True
