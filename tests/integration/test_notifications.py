"""Notifications through real RabbitMQ, PostgreSQL, SMTP (aiosmtpd) and a local Telegram API.

The notifier runs as `python -m algotcha notifier`, the backtest worker as `algotcha worker`,
the API in a uvicorn thread; every retry backoff is shortened through the environment.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dramatiq
import httpx
import pika
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import pool as db_pool
from algotcha.notify import messages, transports
from algotcha.notify.errors import UncertainError
from algotcha.services import deliveries
from tests.fixtures.app import LiveServer, User
from tests.fixtures.polling import wait_for
from tests.fixtures.smtp import SmtpServer
from tests.fixtures.telegram_api import TOKEN, FakeTelegram, blocked, too_many_requests
from tests.fixtures.worker import worker_env

pytestmark = pytest.mark.integration

SECRET = "webhook-secret_123"
PUBLIC_URL = "https://algotcha.test"
SENDER = "Algotcha <alerts@algotcha.test>"
CHAT = 555_001
EVIL = "<b>x</b> & co"


def notifier_env(telegram: FakeTelegram, smtp_port: int, **extra: str) -> dict[str, str]:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": telegram.url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "SMTP_FROM": SENDER,
        "PUBLIC_URL": PUBLIC_URL,
        "NOTIFIER_THREADS": "2",
        "NOTIFY_TIMEOUT_SECONDS": "2",
        "NOTIFY_MIN_BACKOFF_SECONDS": "0.2",
        "NOTIFY_MAX_BACKOFF_SECONDS": "0.5",
        "NOTIFY_MAX_ATTEMPTS": "4",
    }
    env.update(extra)
    return env


def purge_notification_queues(broker_url: str) -> None:
    """Leftovers of another test (ids restart at 1 in every test) must not reach this one."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        for suffix in ("", ".DQ", ".XQ"):
            channel = connection.channel()
            try:
                channel.queue_purge(queues.NOTIFICATION_QUEUE + suffix)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # not declared yet, so empty
    finally:
        connection.close()


@pytest.fixture
def pool(settings: Settings) -> Iterator[ConnectionPool]:
    with db_pool.create_pool(settings.require_database_url(), max_size=2) as p:
        yield p


@pytest.fixture
def broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    assert settings.broker_url
    purge_notification_queues(settings.broker_url)
    the_broker = queues.create_broker(settings.broker_url)
    yield the_broker
    the_broker.close()


@pytest.fixture
def bot_settings(settings: Settings, telegram_api: FakeTelegram) -> Settings:
    return replace(
        settings,
        telegram_bot_token=TOKEN,
        telegram_api_base=telegram_api.url,
        telegram_webhook_secret=SECRET,
        public_url=PUBLIC_URL,
    )


@pytest.fixture
def bot_api(bot_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(bot_settings) as server:
        yield server


@pytest.fixture
def anonymous(bot_api: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bot_api.url, timeout=30) as client:
        yield client


def make_user(db: psycopg.Connection, *, chat_id: int | None = None, email: str = "") -> int:
    row = db.execute(
        """
        INSERT INTO app_user (email, password_hash, telegram_chat_id)
        VALUES (%s, 'not a hash', %s) RETURNING id
        """,
        (email or f"u{secrets.token_hex(4)}@example.com", chat_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finished_job(
    db: psycopg.Connection,
    user_id: int,
    *,
    notify_via: str = "both",
    status: str = "completed",
    error: str | None = None,
) -> int:
    """A job as a worker leaves it (no worker needed for the notifier's side)."""
    payload = {
        "strategyName": "SMA cross",
        "symbol": "SYNTH",
        "timeframe": "1h",
        "start": "2022-01-01T00:00:00Z",
        "end": "2022-03-01T00:00:00Z",
    }
    result = {
        "metrics": {
            "total_return": 0.1,
            "max_drawdown": -0.05,
            "sharpe": 1.5,
            "win_rate": 0.5,
            "trades": 4,
        }
    }
    row = db.execute(
        """
        INSERT INTO backtest_job (user_id, strategy_name, payload, notify_via, status, progress,
                                  attempt, started_at, completed_at, result, error)
        VALUES (%s, 'SMA cross', %s, %s, %s, 100, 1, now(), now(), %s, %s)
        RETURNING id
        """,
        (
            user_id,
            json.dumps(payload),
            notify_via,
            status,
            json.dumps(result) if status == "completed" else None,
            error,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def delivery(db: psycopg.Connection, job_id: int, channel: str) -> dict[str, Any]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute(
        "SELECT * FROM notification_delivery WHERE job_id = %s AND channel = %s",
        (job_id, channel),
    ).fetchone()
    return row or {}


def settled(db: psycopg.Connection, job_id: int, channel: str) -> bool:
    return delivery(db, job_id, channel).get("status") in ("sent", "failed")


def webhook(url: str, text: str, *, chat_id: int = CHAT, secret: str | None = SECRET) -> int:
    update = {
        "update_id": secrets.randbelow(10**9),
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "text": text,
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(f"{url}/api/telegram/webhook", json=update, headers=headers).status_code


def link_token(user: User) -> str:
    r = user.client.post("/api/me/telegram/link")
    assert r.status_code == 200, r.text
    return str(r.json()["url"]).split("?start=", 1)[1]


# --- end to end: worker, notifier, both channels ------------------------------------------------


def test_finished_jobs_reach_both_channels_once_and_a_redelivery_sends_nothing(
    bot_api: LiveServer,
    anonymous: httpx.Client,
    telegram_api: FakeTelegram,
    smtp_server: SmtpServer,
    broker: dramatiq.Broker,
    start_worker: Any,
    start_notifier: Any,
    db: psycopg.Connection,
) -> None:
    ann = User(anonymous, "ann@example.com", "correct horse battery")
    assert webhook(bot_api.url, f"/start {link_token(ann)}") == 200
    assert ann.client.get("/api/me").json()["telegramLinked"] is True

    body = {"payload": {**_payload(), "strategyName": EVIL}, "notifyVia": "both"}
    good = ann.client.post("/api/backtest/queue", json=body).json()["queueId"]
    bad = ann.client.post("/api/backtest/queue", json=body).json()["queueId"]
    db.execute(
        """UPDATE backtest_job SET payload = jsonb_set(payload, '{symbol}', '"GONE"')
           WHERE id = %s""",
        (bad,),
    )
    notifier = start_notifier(**notifier_env(telegram_api, smtp_server.port))
    start_worker()
    wait_for(
        lambda: all(settled(db, j, c) for j in (good, bad) for c in ("email", "telegram")),
        what="four deliveries",
    )

    for job_id in (good, bad):
        for channel in ("email", "telegram"):
            row = delivery(db, job_id, channel)
            assert (row["status"], row["attempts"]) == ("sent", 1), row
            assert row["sent_at"] is not None and row["external_id"]
    job = ann.client.get(f"/api/backtest/queue/{good}").json()
    assert job["status"] == "completed" and job["result"]["metrics"]
    assert ann.client.get(f"/api/backtest/queue/{bad}").json()["status"] == "failed"

    notices = [m["text"] for m in telegram_api.sent(CHAT) if "Backtest" in m["text"]]
    assert len(notices) == 2
    completed = next(t for t in notices if "Backtest completed" in t)
    failed = next(t for t in notices if "Backtest failed" in t)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in completed and EVIL not in completed
    assert f'href="{PUBLIC_URL}/#/jobs/{good}"' in completed
    assert "Total return:" in completed and "Sharpe:" in completed and "SYNTH 1h" in completed
    assert "GONE" in failed and f"/#/jobs/{bad}" in failed
    assert all(messages.units(messages.visible(t)) <= 4096 for t in notices)

    mails = smtp_server.received
    assert len(mails) == 2 and all(m.recipients == ["ann@example.com"] for m in mails)
    by_subject = {m.message["Subject"]: m.message for m in mails}
    mail = by_subject[f"Backtest completed: {EVIL}"]
    plain, rich = mail.iter_parts()
    assert EVIL in plain.get_content() and f"{PUBLIC_URL}/#/jobs/{good}" in plain.get_content()
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in rich.get_content()
    assert mail["Message-ID"].startswith("<") and mail["Date"]
    failure = by_subject[f"Backtest failed: {EVIL}"]
    assert "GONE" in failure.get_body(preferencelist=("plain",)).get_content()

    # The same messages again, as a redelivery after a lost ack would bring them.
    for job_id in (good, bad):
        queues.publish(broker, queues.NOTIFY_EMAIL, job_id)
        queues.publish(broker, queues.NOTIFY_TELEGRAM, job_id)
    wait_for(
        lambda: notifier.output().count("event=notification_duplicate") >= 4,
        what="four duplicates",
    )
    assert len(smtp_server.received) == 2
    assert len([m for m in telegram_api.sent(CHAT) if "Backtest" in m["text"]]) == 2


def _payload() -> dict[str, Any]:
    from tests.fixtures.app import payload

    return payload()


# --- Telegram's answers -------------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after_and_delivered_once(
    telegram_api: FakeTelegram,
    smtp_server: SmtpServer,
    broker: dramatiq.Broker,
    pool: ConnectionPool,
    start_notifier: Any,
    db: psycopg.Connection,
) -> None:
    user = make_user(db, chat_id=CHAT)
    job_id = finished_job(db, user, notify_via="telegram")
    telegram_api.script(too_many_requests(1))
    start_notifier(**notifier_env(telegram_api, smtp_server.port))

    deliveries.enqueue(pool, broker, job_id, "telegram")
    wait_for(lambda: settled(db, job_id, "telegram"), what="the Telegram delivery")

    row = delivery(db, job_id, "telegram")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    first, second = telegram_api.attempts()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert len(telegram_api.sent(CHAT)) == 1


def test_a_403_marks_the_link_blocked_and_is_never_retried(
    telegram_api: FakeTelegram,
    smtp_server: SmtpServer,
    broker: dramatiq.Broker,
    pool: ConnectionPool,
    start_notifier: Any,
    db: psycopg.Connection,
) -> None:
    user = make_user(db, chat_id=CHAT)
    never_linked = make_user(db)
    first = finished_job(db, user, notify_via="both")
    telegram_api.script(blocked())
    notifier = start_notifier(**notifier_env(telegram_api, smtp_server.port))

    deliveries.enqueue(pool, broker, first, "both")
    wait_for(lambda: settled(db, first, "telegram") and settled(db, first, "email"), what="first")
    row = delivery(db, first, "telegram")
    assert (row["status"], row["attempts"]) == ("failed", 1) and "blocked" in row["last_error"]
    assert delivery(db, first, "email")["status"] == "sent"
    assert db.execute(
        "SELECT telegram_blocked FROM app_user WHERE id = %s", (user,)
    ).fetchone() == (True,)

    # Later jobs do not try a blocked or never-linked chat at all.
    later = finished_job(db, user, notify_via="telegram")
    unlinked = finished_job(db, never_linked, notify_via="telegram")
    deliveries.enqueue(pool, broker, later, "telegram")
    deliveries.enqueue(pool, broker, unlinked, "telegram")
    wait_for(lambda: settled(db, later, "telegram") and settled(db, unlinked, "telegram"))
    assert "blocked" in delivery(db, later, "telegram")["last_error"]
    assert delivery(db, unlinked, "telegram")["last_error"] == "telegram not linked"
    time.sleep(1.0)  # longer than the longest backoff: a retry would have come by now
    assert len(telegram_api.attempts()) == 1
    assert "event=notification_failed" in notifier.output()
    assert TOKEN not in notifier.output()


# --- SMTP outages --------------------------------------------------------------------------------


def test_smtp_down_then_up_delivers_after_a_retry(
    telegram_api: FakeTelegram,
    smtp_port: SmtpServer,
    broker: dramatiq.Broker,
    pool: ConnectionPool,
    start_notifier: Any,
    db: psycopg.Connection,
) -> None:
    job_id = finished_job(db, make_user(db, email="bob@example.com"), notify_via="email")
    start_notifier(**notifier_env(telegram_api, smtp_port.port, NOTIFY_MAX_ATTEMPTS="20"))

    deliveries.enqueue(pool, broker, job_id, "email")
    wait_for(lambda: delivery(db, job_id, "email").get("attempts", 0) >= 2, what="a retry")
    assert delivery(db, job_id, "email")["status"] in ("pending", "sending")
    smtp_port.start()
    wait_for(lambda: settled(db, job_id, "email"), what="delivery once SMTP is up")

    row = delivery(db, job_id, "email")
    assert row["status"] == "sent" and row["attempts"] >= 2
    assert [m.recipients for m in smtp_port.received] == [["bob@example.com"]]


def test_smtp_down_for_the_whole_retry_window_fails_and_the_result_stays(
    telegram_api: FakeTelegram,
    smtp_port: SmtpServer,
    broker: dramatiq.Broker,
    pool: ConnectionPool,
    start_notifier: Any,
    db: psycopg.Connection,
) -> None:
    job_id = finished_job(db, make_user(db, chat_id=CHAT), notify_via="both")
    start_notifier(**notifier_env(telegram_api, smtp_port.port, NOTIFY_MAX_ATTEMPTS="3"))

    deliveries.enqueue(pool, broker, job_id, "both")
    wait_for(lambda: settled(db, job_id, "email") and settled(db, job_id, "telegram"))

    row = delivery(db, job_id, "email")
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert "cannot reach the mail server" in row["last_error"] and "gave up" in row["last_error"]
    assert delivery(db, job_id, "telegram")["status"] == "sent"
    job = db.execute(
        "SELECT status, result IS NOT NULL FROM backtest_job WHERE id = %s", (job_id,)
    ).fetchone()
    assert job == ("completed", True)


# --- the send-then-crash window, at the service level ------------------------------------------


class Recording:
    """A transport that records what it was asked to send."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def recipient(self, user: transports.Recipient) -> str:
        return user.email

    def send(self, recipient: str, notice: messages.Notice) -> str:
        self.sent.append(recipient)
        if self.fail is not None:
            raise self.fail
        return "ref"


def test_a_send_left_unfinished_is_never_sent_again(
    settings: Settings, pool: ConnectionPool, db: psycopg.Connection
) -> None:
    job_id = finished_job(db, make_user(db), notify_via="email")
    db.execute(
        """INSERT INTO notification_delivery (job_id, channel, status, attempts, sending_at)
           VALUES (%s, 'email', 'sending', 1, now())""",
        (job_id,),
    )
    transport = Recording()

    # The claimant may still be sending: look again after its lease.
    with pytest.raises(deliveries.RetryLater) as later:
        deliveries.deliver(pool, settings, job_id, "email", transport)
    assert later.value.delay_s > settings.sending_lease_s

    # Its lease is over: it died somewhere around the send, so the outcome is unknown.
    db.execute("UPDATE notification_delivery SET sending_at = now() - interval '1 hour'")
    assert deliveries.deliver(pool, settings, job_id, "email", transport) == "failed"
    assert transport.sent == []
    row = delivery(db, job_id, "email")
    assert row["status"] == "failed" and "outcome unknown" in row["last_error"]
    assert deliveries.deliver(pool, settings, job_id, "email", transport) == "failed"
    assert transport.sent == []


def test_an_unanswered_send_is_not_retried(
    settings: Settings, pool: ConnectionPool, db: psycopg.Connection
) -> None:
    job_id = finished_job(db, make_user(db), notify_via="email")
    transport = Recording(fail=UncertainError("no answer after the request was sent"))
    assert deliveries.deliver(pool, settings, job_id, "email", transport) == "failed"
    assert deliveries.deliver(pool, settings, job_id, "email", transport) == "failed"
    assert len(transport.sent) == 1
    assert delivery(db, job_id, "email")["attempts"] == 1


def test_the_sweeper_settles_lost_sends_and_records_forgotten_jobs(
    settings: Settings, pool: ConnectionPool, broker: dramatiq.Broker, db: psycopg.Connection
) -> None:
    user = make_user(db)
    lost = finished_job(db, user, notify_via="email")
    db.execute(
        """INSERT INTO notification_delivery (job_id, channel, status, attempts, sending_at)
           VALUES (%s, 'email', 'sending', 1, now() - interval '1 hour')""",
        (lost,),
    )
    # The worker died between storing the result and recording the deliveries.
    forgotten = finished_job(db, user, notify_via="both")
    db.execute("UPDATE backtest_job SET completed_at = now() - interval '1 minute'")

    deliveries.sweep(pool, broker, settings)

    assert delivery(db, lost, "email")["status"] == "failed"
    for channel in ("email", "telegram"):
        row = delivery(db, forgotten, channel)
        assert row["status"] == "pending" and row["published_at"] is not None


def test_a_message_for_a_channel_the_job_did_not_choose_sends_nothing(
    settings: Settings, pool: ConnectionPool, db: psycopg.Connection
) -> None:
    job_id = finished_job(db, make_user(db), notify_via="telegram")
    transport = Recording()
    assert deliveries.deliver(pool, settings, job_id, "email", transport) == "dropped"
    assert transport.sent == [] and delivery(db, job_id, "email") == {}


# --- the bot: webhook, linking, commands ---------------------------------------------------------


def test_the_webhook_refuses_a_missing_or_wrong_secret(
    bot_api: LiveServer, anonymous: httpx.Client, telegram_api: FakeTelegram
) -> None:
    ann = User(anonymous, "ann@example.com", "correct horse battery")
    token = link_token(ann)
    for secret in (None, "wrong", SECRET + "x", ""):
        update = {"update_id": 1, "message": {"chat": {"id": CHAT}, "text": f"/start {token}"}}
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        r = anonymous.post("/api/telegram/webhook", json=update, headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
    assert ann.client.get("/api/me").json()["telegramLinked"] is False
    assert telegram_api.attempts() == []
    # The token is still good after all that.
    assert webhook(bot_api.url, f"/start {token}") == 200
    assert ann.client.get("/api/me").json()["telegramLinked"] is True


def test_a_link_token_links_once_and_expires(
    bot_api: LiveServer,
    anonymous: httpx.Client,
    telegram_api: FakeTelegram,
    db: psycopg.Connection,
) -> None:
    ann = User(anonymous, "ann@example.com", "correct horse battery")
    r = ann.client.post("/api/me/telegram/link")
    url, expires = r.json()["url"], r.json()["expiresAt"]
    assert url.startswith("https://t.me/AlgotchaTestBot?start=")
    token = url.split("?start=", 1)[1]
    assert 1 <= len(token) <= 64 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    )
    assert expires.endswith("Z")

    assert webhook(bot_api.url, f"/start {token}", chat_id=CHAT) == 200
    assert webhook(bot_api.url, f"/start {token}", chat_id=CHAT + 1) == 200
    replies = [m["text"] for m in telegram_api.sent()]
    assert replies[0].startswith("Linked!") and "already used" in replies[1]
    assert db.execute(
        "SELECT telegram_chat_id FROM app_user WHERE id = %s", (ann.id,)
    ).fetchone() == (CHAT,)

    stale = link_token(ann)
    db.execute("UPDATE telegram_link SET expires_at = now() - interval '1 second'")
    assert webhook(bot_api.url, f"/start {stale}", chat_id=CHAT + 2) == 200
    assert webhook(bot_api.url, "/start not-a-token", chat_id=CHAT + 2) == 200
    assert webhook(bot_api.url, "/start ../../etc/passwd", chat_id=CHAT + 2) == 200
    expired, unknown, bad = [m["text"] for m in telegram_api.sent(CHAT + 2)]
    assert "expired" in expired and "not valid" in unknown and "not valid" in bad
    # getMe was asked once for the bot's name, for both links.
    assert len(telegram_api.attempts("getMe")) == 1

    assert ann.client.delete("/api/me/telegram").status_code == 204
    assert ann.client.get("/api/me").json()["telegramLinked"] is False


def test_bare_start_explains_how_to_link_and_the_rest_is_ignored(
    bot_api: LiveServer, anonymous: httpx.Client, telegram_api: FakeTelegram
) -> None:
    assert webhook(bot_api.url, "/start") == 200
    assert webhook(bot_api.url, "hello there") == 200
    assert webhook(bot_api.url, "/help") == 200
    r = anonymous.post(
        "/api/telegram/webhook",
        content=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    [reply] = telegram_api.sent(CHAT)
    assert "Link Telegram" in reply["text"] and reply["parse_mode"] == "HTML"


def test_status_answers_with_the_users_jobs_and_positions(
    bot_api: LiveServer, anonymous: httpx.Client, telegram_api: FakeTelegram
) -> None:
    ann = User(anonymous, "ann@example.com", "correct horse battery")
    bob = User(anonymous, "bob@example.com", "correct horse battery")
    webhook(bot_api.url, f"/start {link_token(ann)}")
    bob.submit()
    first = ann.submit(strategyName=EVIL).json()["queueId"]
    second = ann.submit().json()["queueId"]

    assert webhook(bot_api.url, "/status") == 200
    reply = telegram_api.sent(CHAT)[-1]["text"]
    shown = messages.visible(reply)
    assert f"#{first} {EVIL}: #2 in line" in shown
    assert f"#{second} SMA cross: #3 in line" in shown
    assert "&lt;b&gt;x&lt;/b&gt;" in reply

    assert webhook(bot_api.url, "/status", chat_id=CHAT + 9) == 200
    assert "Link Telegram" in telegram_api.sent(CHAT + 9)[0]["text"]


# --- long polling and the webhook command --------------------------------------------------------


def test_telegram_poll_deletes_the_webhook_then_links_and_answers(
    bot_settings: Settings,
    bot_api: LiveServer,
    anonymous: httpx.Client,
    telegram_api: FakeTelegram,
    db: psycopg.Connection,
    tmp_path: Any,
) -> None:
    ann = User(anonymous, "ann@example.com", "correct horse battery")
    token = link_token(ann)
    telegram_api.webhook = {"url": "https://old.example/hook", "secret": "x"}
    log = (tmp_path / "poll.log").open("wb")
    poller = subprocess.Popen(
        [sys.executable, "-m", "algotcha", "telegram-poll", "--timeout", "1"],
        env=worker_env(bot_settings, **notifier_env(telegram_api, 1)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        telegram_api.push_update(CHAT, f"/start {token}")
        wait_for(
            lambda: (
                db.execute(
                    "SELECT telegram_chat_id FROM app_user WHERE id = %s", (ann.id,)
                ).fetchone()
                == (CHAT,)
            ),
            what="the chat linked by polling",
        )
        last = telegram_api.push_update(CHAT, "/status")
        wait_for(lambda: len(telegram_api.sent(CHAT)) == 2, what="two replies")
        wait_for(
            lambda: any(
                c.params.get("offset") == last + 1 for c in telegram_api.attempts("getUpdates")
            ),
            what="the last update confirmed",
        )
    finally:
        poller.terminate()
        assert poller.wait(timeout=15) == 0
        log.close()
    output = (tmp_path / "poll.log").read_text()
    assert "event=telegram_webhook_deleted" in output and TOKEN not in output
    assert telegram_api.webhook == {}
    linked, status = [m["text"] for m in telegram_api.sent(CHAT)]
    assert linked.startswith("Linked!") and "No backtests" in status


def test_set_webhook_registers_the_url_with_the_secret(
    bot_settings: Settings, telegram_api: FakeTelegram
) -> None:
    env = worker_env(bot_settings, **notifier_env(telegram_api, 1), TELEGRAM_WEBHOOK_SECRET=SECRET)
    url = "https://algotcha.example.com/api/telegram/webhook"
    done = subprocess.run(
        [sys.executable, "-m", "algotcha", "telegram", "set-webhook", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert telegram_api.webhook == {"url": url, "secret": SECRET}
    assert TOKEN not in done.stdout + done.stderr and SECRET not in done.stdout + done.stderr
