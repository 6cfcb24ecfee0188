"""Notifications per (job, channel): recorded, published after commit, delivered at most once.

At most once, and why it holds:

1. The worker stores the job's final status first; then `enqueue` inserts one `pending` row per
   channel (a no-op for rows that exist) and publishes a message only for the rows it inserted.
   The sweeper publishes rows whose message never left, and records the rows of a job whose
   worker died before `enqueue` ran.
2. `deliver` claims the row, `pending -> sending` with attempts + 1, and **commits that before
   the network call**. Whatever then happens to the process, the row no longer says `pending`,
   so a redelivered or duplicated message cannot start a second send.
3. After the call the same attempt settles the row (fenced by its attempt number): `sent`;
   `failed` for a permanent refusal; back to `pending` for a transient error, which by
   construction (notify.errors) means nothing was delivered, so the retry cannot duplicate.
4. The window: the process dies (or the database goes away) after the send and before step 3.
   We cannot know whether Telegram or the mail server took the message, and neither offers an
   idempotency key. At most once means we never guess "no": a row left `sending` longer than
   the lease (settings.sending_lease_s, longer than any one send can take) is settled as
   `failed` with "outcome unknown". The user may have got it; they never get it twice. The same
   applies to a reply lost after the request left (UncertainError).
"""

from __future__ import annotations

import functools
import logging
import random
import time

import dramatiq
import psycopg
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import deliveries as delivery_db
from algotcha.db import jobs as job_db
from algotcha.db import users as user_db
from algotcha.db.deliveries import DeliveryRow
from algotcha.db.pool import transaction
from algotcha.errors import UnavailableError
from algotcha.notify import messages
from algotcha.notify.errors import (
    BlockedError,
    DeliveryError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from algotcha.notify.transports import Transport
from algotcha.services.periodic import Periodic
from algotcha.vocabulary import NotifyChannel
from monitoring import metrics

logger = logging.getLogger(__name__)

CHANNELS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "telegram": ("telegram",),
    "both": ("email", "telegram"),
    "none": (),
}
ACTORS = {"email": queues.NOTIFY_EMAIL, "telegram": queues.NOTIFY_TELEGRAM}

# The worker publishes right after its commit; only older rows are the sweeper's.
PUBLISH_GRACE_S = 5.0
# How far back the sweeper looks for finished jobs whose deliveries were never recorded.
CATCH_UP_WINDOW_S = 6 * 3600.0
# A delayed message is held unacknowledged by the consumer; RabbitMQ's consumer_timeout is 30 min.
MAX_DELAY_S = 1500.0
LOST = "outcome unknown: the notifier stopped during the send, so it is not sent again"


class RetryLater(Exception):  # a control-flow signal, like dramatiq's Retry
    """The delivery is pending again (or another attempt holds it): try after delay_s."""

    def __init__(self, reason: str, delay_s: float) -> None:
        super().__init__(reason)
        self.reason, self.delay_s = reason, delay_s


# --- recording and publishing ------------------------------------------------------------------


def enqueue(
    pool: ConnectionPool, broker: dramatiq.Broker, job_id: int, notify_via: NotifyChannel
) -> int:
    """Record the job's deliveries, then publish one message per new row; returns how many.

    Call it after the job's final status is committed. Rows that already exist are left to
    whoever inserted them, so running this twice publishes nothing twice.
    """
    channels = list(CHANNELS.get(notify_via, ()))
    if not channels:
        return 0
    with transaction(pool) as conn:
        inserted = delivery_db.insert_deliveries(conn, job_id, channels)
    return _publish(pool, broker, [(job_id, channel) for channel in inserted])


def _publish(pool: ConnectionPool, broker: dramatiq.Broker, rows: list[tuple[int, str]]) -> int:
    sent = 0
    for job_id, channel in rows:
        queues.publish(broker, ACTORS[channel], job_id)
        with transaction(pool) as conn:
            delivery_db.update_delivery_published(conn, job_id, channel)
        logger.info("event=notification_enqueued job=%s channel=%s", job_id, channel)
        sent += 1
    return sent


def sweep(pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> None:
    """Settle lost sends, record forgotten jobs, publish unpublished rows."""
    with transaction(pool) as conn:
        lost = delivery_db.update_lost_deliveries(
            conn, lease_s=settings.sending_lease_s, error=LOST
        )
        forgotten = delivery_db.select_unrecorded_jobs(
            conn, older_than_s=PUBLISH_GRACE_S, within_s=CATCH_UP_WINDOW_S
        )
    if lost:
        logger.warning("event=notifications_lost count=%s", lost)
    for job in forgotten:
        logger.warning("event=notifications_recorded_late job=%s", job.id)
        enqueue(pool, broker, job.id, job.notify_via)
    with transaction(pool) as conn:
        unpublished = delivery_db.select_unpublished_deliveries(conn, older_than_s=PUBLISH_GRACE_S)
    _publish(pool, broker, [(row.job_id, row.channel) for row in unpublished])


def sweeper(pool: ConnectionPool, broker: dramatiq.Broker, settings: Settings) -> Periodic:
    """sweep() every SWEEP_INTERVAL_SECONDS in the notifier."""
    return Periodic(
        "algotcha_notification_sweep",
        settings.sweep_interval_s,
        functools.partial(sweep, pool, broker, settings),
    )


# --- delivering --------------------------------------------------------------------------------


def deliver(
    pool: ConnectionPool, settings: Settings, job_id: int, channel: str, transport: Transport
) -> str:
    """Send one finished job's notice on one channel, at most once; returns the row's status.

    Raises RetryLater when a transient failure put the row back to pending, or when another
    attempt holds the claim and may still be sending.
    """
    with transaction(pool) as conn:
        job = job_db.select_job(conn, job_id)
        user = user_db.select_user(conn, job.user_id) if job else None
        if (
            job is None
            or user is None
            or job.status not in ("completed", "failed")
            or channel not in CHANNELS.get(job.notify_via, ())
        ):
            # No finished job that asked for this channel (deleted, or a hand-made message).
            logger.warning("event=notification_dropped job=%s channel=%s", job_id, channel)
            return "dropped"
        notice = messages.render(job, settings.public_url)
        try:
            recipient, refusal = transport.recipient(user), None
        except PermanentError as exc:
            recipient, refusal = "", exc.reason
        # A message whose row was never written (the sweeper had not run yet) gets one here.
        delivery_db.insert_deliveries(conn, job_id, [channel])
        claim = delivery_db.claim_delivery(conn, job_id, channel)
        if claim is None:
            current = delivery_db.select_delivery(conn, job_id, channel)
            lost = delivery_db.update_delivery_lost(
                conn, job_id, channel, lease_s=settings.sending_lease_s, error=LOST
            )
        elif refusal is not None:
            _settle(conn, claim, "failed", refusal)
    if claim is None:
        return _not_pending(settings, current, lost)
    if refusal is not None:
        metrics.NOTIFICATIONS.labels(channel, "skipped").inc()
        _log("skipped", claim, refusal)
        return "failed"
    # The claim is committed: from here on a crash leaves the row 'sending', never resent.
    try:
        reference = transport.send(recipient, notice)
    except TransientError as exc:
        return _transient(pool, settings, claim, exc)
    except DeliveryError as exc:
        # PermanentError (BlockedError among them) or UncertainError: never sent again.
        chat = user.telegram_chat_id
        block = (user.id, chat) if isinstance(exc, BlockedError) and chat is not None else None
        _record(pool, claim, "failed", exc.reason, block=block)
        metrics.NOTIFICATIONS.labels(channel, "failed").inc()
        _log("failed", claim, exc.reason)
        return "failed"
    _record(pool, claim, "sent", None, reference=reference)
    metrics.NOTIFICATIONS.labels(channel, "sent").inc()
    _log("sent", claim)
    return "sent"


def _record(
    pool: ConnectionPool,
    claim: DeliveryRow,
    status: str,
    error: str | None,
    *,
    reference: str | None = None,
    block: tuple[int, int] | None = None,
) -> None:
    """Settle an attempt after its send; `block` = (user, chat) marks that link blocked.

    A short database outage is waited out here: given up, the row stays 'sending' and is
    later declared lost, though its outcome was known.
    """
    for wait_s in (1.0, 2.0, 4.0, 0.0):
        try:
            with transaction(pool) as conn:
                _settle(conn, claim, status, error, reference)
                if block is not None:
                    user_db.update_user_telegram_blocked(
                        conn, block[0], chat_id=block[1], blocked=True
                    )
            return
        except UnavailableError:
            if not wait_s:
                raise
            logger.warning(
                "event=notification_record_delayed job=%s channel=%s", claim.job_id, claim.channel
            )
            time.sleep(wait_s)


def _not_pending(settings: Settings, current: DeliveryRow | None, lost: DeliveryRow | None) -> str:
    if lost is not None:
        metrics.NOTIFICATIONS.labels(lost.channel, "failed").inc()
        _log("lost", lost, LOST)
        return "failed"
    assert current is not None
    if current.status == "sending":
        # Another attempt is sending now, or died doing so: look again once its lease is over.
        _log("in_flight", current)
        raise RetryLater("another attempt holds the claim", settings.sending_lease_s + 1)
    _log("duplicate", current)
    return current.status


def _transient(
    pool: ConnectionPool, settings: Settings, claim: DeliveryRow, exc: TransientError
) -> str:
    if claim.attempts >= settings.notify_max_attempts:
        reason = f"{exc.reason} (gave up after {claim.attempts} attempts)"
        with transaction(pool) as conn:
            _settle(conn, claim, "failed", reason)
        metrics.NOTIFICATIONS.labels(claim.channel, "failed").inc()
        _log("failed", claim, reason)
        return "failed"
    with transaction(pool) as conn:
        _settle(conn, claim, "pending", exc.reason)
    if isinstance(exc, RateLimitedError):
        delay_s = min(exc.retry_after_s, MAX_DELAY_S)
    else:
        delay_s = backoff_s(settings, claim.attempts)
    metrics.NOTIFICATIONS.labels(claim.channel, "retried").inc()
    _log("retry", claim, exc.reason, delay_s=delay_s)
    raise RetryLater(exc.reason, delay_s)


def backoff_s(settings: Settings, attempt: int) -> float:
    """Exponential from NOTIFY_MIN_BACKOFF_SECONDS, capped, with up to 25 % jitter."""
    base = settings.notify_min_backoff_s * 2.0 ** max(attempt - 1, 0)
    return min(base, settings.notify_max_backoff_s) * random.uniform(1.0, 1.25)


def _settle(
    conn: psycopg.Connection,
    claim: DeliveryRow,
    status: str,
    error: str | None,
    reference: str | None = None,
) -> None:
    held = delivery_db.update_delivery_finished(
        conn,
        claim.job_id,
        claim.channel,
        attempt=claim.attempts,
        status=status,
        error=error,
        external_id=reference,
    )
    if not held:
        logger.warning(
            "event=notification_claim_lost job=%s channel=%s attempt=%s",
            claim.job_id,
            claim.channel,
            claim.attempts,
        )


def _log(event: str, row: DeliveryRow, reason: str | None = None, **extra: float) -> None:
    fields = "".join(f" {k}={v:g}" for k, v in extra.items())
    why = f" reason={reason!r}" if reason else ""
    level = logging.INFO if event in ("sent", "duplicate", "in_flight") else logging.WARNING
    logger.log(
        level,
        "event=notification_%s job=%s channel=%s attempt=%s%s%s",
        event,
        row.job_id,
        row.channel,
        row.attempts,
        fields,
        why,
    )
