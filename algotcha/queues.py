"""Queue and actor names (the API <-> worker contract) and publishing by name.

The API publishes messages by actor name, so it never imports actor code; the worker
declares actors with the same names in actors/.
"""

from __future__ import annotations

import logging

import dramatiq
import dramatiq.errors
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from algotcha.errors import UnavailableError

logger = logging.getLogger(__name__)

BACKTEST_QUEUE = "algotcha.backtests"
NOTIFICATION_QUEUE = "algotcha.notifications"

RUN_BACKTEST = "run_backtest"
NOTIFY_TELEGRAM = "notify_telegram"
NOTIFY_EMAIL = "notify_email"

ACTOR_QUEUES = {
    RUN_BACKTEST: BACKTEST_QUEUE,
    NOTIFY_TELEGRAM: NOTIFICATION_QUEUE,
    NOTIFY_EMAIL: NOTIFICATION_QUEUE,
}


def create_broker(broker_url: str) -> RabbitmqBroker:
    """A RabbitMQ broker that waits for publisher confirms, so a 202 means RabbitMQ has it."""
    broker = RabbitmqBroker(url=broker_url, confirm_delivery=True)
    for queue in (BACKTEST_QUEUE, NOTIFICATION_QUEUE):
        broker.declare_queue(queue)
    return broker


def publish(broker: dramatiq.Broker, actor_name: str, *args: int) -> None:
    """Send one message to the named actor; UnavailableError when the broker cannot take it."""
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=ACTOR_QUEUES[actor_name],
        actor_name=actor_name,
        args=args,
        kwargs={},
        options={},
    )
    try:
        broker.enqueue(message)
    except (dramatiq.errors.BrokerConnectionError, pika.exceptions.AMQPError) as exc:
        logger.warning("event=publish_failed actor=%s args=%s error=%s", actor_name, args, exc)
        raise UnavailableError("the job queue is unavailable; try again shortly") from exc
