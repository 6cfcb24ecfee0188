"""create_app(settings): the Starlette application, its routes, middleware and lifespan."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import dramatiq
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

import engine
from algotcha import config, problems, queues, state
from algotcha.auth import HashSlots
from algotcha.config import Settings
from algotcha.db import pool as db_pool
from algotcha.errors import AlgotchaError
from algotcha.notify import telegram as telegram_api
from algotcha.routes import auth, datasets, events, me, ops, pages, queue, results, telegram
from algotcha.services import job_events, jobs, outbox
from monitoring import exporter
from monitoring.collector import QueueCollector

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, broker: dramatiq.Broker | None = None, sweep: bool = True
) -> Starlette:
    """The API. Pass a broker to share one (the all-in-one mode); else RabbitMQ at BROKER_URL."""
    database_url = settings.require_database_url()
    settings.require_jwt_secret()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, state.AppState]]:
        pool = db_pool.create_pool(
            database_url,
            max_size=settings.db_pool_max,
            name="algotcha-api",
            timeout_s=settings.db_timeout_s,
        )
        pool.open(wait=False)
        the_broker = broker or _rabbitmq(settings)
        sweeper = outbox.sweeper(pool, the_broker, settings)
        collector = QueueCollector(functools.partial(jobs.queue_sample, pool, settings))
        # The bot, for webhook replies and its username in deep links; None without a token.
        bot = telegram_api.Client.from_settings(settings)
        if sweep:
            sweeper.start()
        events = job_events.EventHub(pool, settings)
        await events.start()
        logger.info("event=api_started")
        try:
            shared = state.AppState(
                settings=settings,
                pool=pool,
                broker=the_broker,
                store=engine.BarStore(settings.data_dir),
                collector=collector,
                events=events,
                telegram=bot,
                hash_slots=HashSlots.for_settings(settings),
                registry=exporter.registry(settings.metrics_multiproc_dir),
            )
            yield {state.KEY: shared}
        finally:
            await events.stop()
            if sweep:
                sweeper.stop()
            if bot is not None:
                bot.close()
            pool.close()
            logger.info("event=api_stopped")

    return Starlette(
        routes=[
            *auth.routes,
            *me.routes,
            *queue.routes,
            *results.routes,
            *events.routes,
            *datasets.routes,
            *ops.routes,
            *telegram.routes,
            *pages.routes,
        ],
        middleware=[
            # First, so that what the body limit refuses is counted too.
            Middleware(exporter.HTTPMetricsMiddleware),
            Middleware(problems.BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            AlgotchaError: problems.handle,
            HTTPException: problems.handle_http,
            Exception: problems.handle_unexpected,
        },
        lifespan=lifespan,
    )


def create_app_from_environment() -> Starlette:
    """The app factory of `algotcha api --workers N`: each worker process builds its own."""
    return create_app(config.load_from_environment())


def _rabbitmq(settings: Settings) -> dramatiq.Broker:
    if not settings.broker_url:
        raise AlgotchaError("BROKER_URL is not set (e.g. amqp://algotcha:...@127.0.0.1:5672/%2F)")
    return queues.create_broker(settings.broker_url)
