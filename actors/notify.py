"""notify_telegram(job_id), notify_email(job_id): deliver one finished job's notice, at most once.

Retries: services.deliveries counts attempts in PostgreSQL and says when to try again
(RetryLater, Telegram's retry_after included); Dramatiq only carries the delay. Its own
max_retries is a backstop above NOTIFY_MAX_ATTEMPTS, for database outages.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.broker import runtime
from algotcha import queues
from algotcha.notify import transports
from algotcha.services import deliveries

_rt = runtime()
_settings = _rt.settings

# Room for the in-flight waits and database outages beyond the delivery attempts.
_MAX_RETRIES = _settings.notify_max_attempts + 5
_MIN_BACKOFF_MS = int(_settings.notify_min_backoff_s * 1000)
_MAX_BACKOFF_MS = int(_settings.notify_max_backoff_s * 1000)
# A send that outlived its lease would be declared lost while still running.
_TIME_LIMIT_MS = int(_settings.sending_lease_s * 1000)


# Both channels share the queue and the retry policy.
_OPTIONS: dict[str, Any] = {
    "queue_name": queues.NOTIFICATION_QUEUE,
    "max_retries": _MAX_RETRIES,
    "min_backoff": _MIN_BACKOFF_MS,
    "max_backoff": _MAX_BACKOFF_MS,
    "time_limit": _TIME_LIMIT_MS,
}


@dramatiq.actor(actor_name=queues.NOTIFY_TELEGRAM, **_OPTIONS)
def notify_telegram(job_id: int) -> None:
    _deliver(job_id, "telegram")


@dramatiq.actor(actor_name=queues.NOTIFY_EMAIL, **_OPTIONS)
def notify_email(job_id: int) -> None:
    _deliver(job_id, "email")


def _deliver(job_id: int, channel: str) -> None:
    rt = runtime()
    with transports.open_transport(rt.settings, channel) as transport:
        try:
            deliveries.deliver(rt.pool, rt.settings, job_id, channel, transport)
        except deliveries.RetryLater as later:
            raise dramatiq.Retry(later.reason, delay=int(later.delay_s * 1000)) from None
