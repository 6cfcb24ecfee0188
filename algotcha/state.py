"""What the API's routes share, typed: built once in the lifespan, read through `of(request)`.

Starlette copies the lifespan's dict into each request's state; one typed object in it, rather
than nine untyped attributes, lets mypy check every route's use of the pool, the broker, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # only named: auth imports this module, and the CLI imports auth
    import dramatiq
    from prometheus_client import CollectorRegistry
    from psycopg_pool import ConnectionPool

    import engine
    from algotcha.auth import HashSlots
    from algotcha.config import Settings
    from algotcha.notify import telegram
    from algotcha.services import job_events
    from monitoring.collector import QueueCollector

KEY = "algotcha"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    pool: ConnectionPool
    broker: dramatiq.Broker
    store: engine.BarStore
    collector: QueueCollector
    events: job_events.EventHub
    telegram: telegram.Client | None  # None without a bot token
    hash_slots: HashSlots
    registry: CollectorRegistry


def of(connection: HTTPConnection) -> AppState:
    shared = getattr(connection.state, KEY)
    assert isinstance(shared, AppState), "the app was not started through its lifespan"
    return shared
