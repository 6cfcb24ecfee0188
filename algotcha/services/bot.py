"""The Telegram bot's side of a chat: /start <token>, /start, /status (webhook or polling)."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from algotcha import models
from algotcha.config import Settings
from algotcha.db import users as user_db
from algotcha.db.pool import transaction
from algotcha.errors import UnauthorizedError, UnavailableError
from algotcha.notify import messages, telegram
from algotcha.notify.errors import DeliveryError, RateLimitedError
from algotcha.services import jobs, telegram_links

logger = logging.getLogger(__name__)

HOW_TO_LINK = (
    "Hello! This bot tells you when your Algotcha backtests finish.\n\n"
    "To link this chat, sign in to Algotcha, open your profile and choose "
    "<b>Link Telegram</b>, then open the link it gives you."
)
ALREADY_LINKED = "This chat is linked to your Algotcha account. Send /status to see your backtests."
LINKED = "Linked! You will get your backtest results here. Send /status to see your backtests."
REFUSED = {
    "expired": "This link has expired. Ask Algotcha for a new one (profile, Link Telegram).",
    "used": "This link was already used. Ask Algotcha for a new one (profile, Link Telegram).",
    "unknown": "This link is not valid. Ask Algotcha for a new one (profile, Link Telegram).",
}
POLL_TIMEOUT_S = 30


@dataclass(frozen=True)
class BotCommand:
    """A command sent to the bot in a chat: /start <argument>, /status, ..."""

    update_id: int
    chat_id: int
    command: str  # "start", "status", ... lower-case, without the slash and any @botname
    argument: str


def parse_update(update: Any) -> BotCommand | None:
    """The command in one Telegram Update; None for anything else (never an error).

    Telegram retries updates it could not deliver, so a shape we do not handle is
    acknowledged and dropped, not refused.
    """
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    update_id = update.get("update_id")
    if not isinstance(message, dict) or not isinstance(update_id, int):
        return None
    chat = message.get("chat")
    text = message.get("text")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not isinstance(chat_id, int) or isinstance(chat_id, bool) or not isinstance(text, str):
        return None
    if not text.startswith("/"):
        return None
    head, _, rest = text.strip().partition(" ")
    command = head[1:].split("@", 1)[0].lower()
    return BotCommand(update_id, chat_id, command, rest.strip())


def parse_webhook(body: bytes) -> BotCommand | None:
    """A webhook body: malformed JSON is ignored like any other update we do not handle."""
    try:
        update = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if models.unstorable_strings(update):
        return None
    return parse_update(update)


def verify_secret(settings: Settings, header: str | None) -> None:
    """The webhook's X-Telegram-Bot-Api-Secret-Token, compared in constant time."""
    expected = settings.telegram_webhook_secret
    if (
        not expected
        or header is None
        or not hmac.compare_digest(header.encode(), expected.encode())
    ):
        logger.warning("event=telegram_webhook_refused")
        raise UnauthorizedError("the Telegram webhook secret is missing or wrong")


def handle(
    pool: ConnectionPool,
    settings: Settings,
    client: telegram.Client | None,
    command: BotCommand | None,
) -> None:
    """Act on one command and reply; anything else is ignored."""
    if command is None:
        logger.info("event=telegram_update_ignored")
        return
    reply: str | None = None
    if command.command == "start" and command.argument:
        outcome = telegram_links.consume(pool, command.argument, command.chat_id)
        reply = LINKED if outcome == "linked" else REFUSED[outcome]
        logger.info("event=telegram_start update=%s outcome=%s", command.update_id, outcome)
    elif command.command == "start":
        reply = ALREADY_LINKED if _linked_user(pool, command.chat_id) else HOW_TO_LINK
    elif command.command == "status":
        user = _linked_user(pool, command.chat_id)
        if user is None:
            reply = HOW_TO_LINK
        else:
            items = jobs.list_for_user(pool, settings, user.id, limit=50, before=None)
            reply = messages.status_reply(items, settings.public_url)
    else:
        logger.info("event=telegram_command_ignored update=%s", command.update_id)
        return
    _reply(client, command, reply)


def _linked_user(pool: ConnectionPool, chat_id: int) -> user_db.UserRow | None:
    """The account this chat is linked to; a message from it shows the bot is not blocked."""
    with transaction(pool) as conn:
        user = user_db.select_user_by_telegram_chat(conn, chat_id)
        if user is not None and user.telegram_blocked:
            user_db.update_user_telegram_blocked(conn, user.id, chat_id=chat_id, blocked=False)
    return user


def _reply(client: telegram.Client | None, command: BotCommand, html: str) -> None:
    if client is None:
        logger.warning("event=telegram_reply_skipped reason=no TELEGRAM_BOT_TOKEN")
        return
    try:
        client.send_message(command.chat_id, html)
    except DeliveryError as exc:
        # The update is handled either way; Telegram must not send it again.
        logger.warning(
            "event=telegram_reply_failed update=%s reason=%r", command.update_id, exc.reason
        )


def poll(
    pool: ConnectionPool,
    settings: Settings,
    client: telegram.Client,
    stop: threading.Event,
    *,
    timeout_s: int = POLL_TIMEOUT_S,
) -> None:
    """getUpdates long polling until `stop` is set: the webhook's work without a public URL."""
    if client.webhook_url():
        logger.warning(
            "event=telegram_webhook_deleted reason=getUpdates does not work while a webhook is set"
        )
        client.delete_webhook()
    logger.info("event=telegram_poll_ready timeout_s=%s", timeout_s)
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        try:
            updates = client.get_updates(offset, timeout_s=timeout_s)
        except DeliveryError as exc:
            failures += 1
            wait = exc.retry_after_s if isinstance(exc, RateLimitedError) else 2.0**failures
            logger.warning("event=telegram_poll_failed reason=%r wait_s=%g", exc.reason, wait)
            stop.wait(min(wait, 60.0))
            continue
        failures = 0
        for update in updates:
            update_id = update.get("update_id")
            try:
                handle(pool, settings, client, parse_update(update))
            except UnavailableError as exc:
                # Not confirmed: Telegram hands the same update over again next time.
                logger.warning("event=telegram_update_deferred reason=%s", exc.detail)
                stop.wait(5.0)
                break
            except Exception:
                logger.exception("event=telegram_update_failed update=%s", update_id)
            if isinstance(update_id, int):
                offset = max(offset or 0, update_id + 1)
    logger.info("event=telegram_poll_stopped")
