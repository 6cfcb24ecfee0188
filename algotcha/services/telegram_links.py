"""Linking a Telegram chat to an account with a one-time deep link, and unlinking it."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg_pool import ConnectionPool

from algotcha.config import Settings
from algotcha.db import telegram_links as link_db
from algotcha.db import users as user_db
from algotcha.db.pool import transaction
from algotcha.errors import UnavailableError
from algotcha.notify import telegram
from algotcha.notify.errors import DeliveryError

logger = logging.getLogger(__name__)

LINK_TTL_S = 15 * 60
# Telegram's start parameter: at most 64 characters of A-Z a-z 0-9 _ -
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Consumed = Literal["linked", "expired", "used", "unknown"]


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create(
    pool: ConnectionPool, settings: Settings, client: telegram.Client | None, user_id: int
) -> Link:
    """A new deep link for the user; their earlier unused ones stop working."""
    username = bot_username(settings, client)
    # 32 random bytes in base64url: 43 characters, all valid in a start parameter.
    token = secrets.token_urlsafe(32)
    with transaction(pool) as conn:
        link_db.delete_expired_links(conn, older_than_s=24 * 3600)
        link_db.delete_unused_links_of_user(conn, user_id)
        row = link_db.insert_link(conn, token_hash=_hash(token), user_id=user_id, ttl_s=LINK_TTL_S)
    logger.info("event=telegram_link_created user=%s", user_id)
    return Link(f"https://t.me/{username}?start={token}", row.expires_at)


def bot_username(settings: Settings, client: telegram.Client | None) -> str:
    if settings.telegram_bot_username:
        return settings.telegram_bot_username
    if client is None:
        # The operator's hint goes to the log; the user only needs to know it is off.
        logger.warning("event=telegram_link_refused reason=no_bot (set TELEGRAM_BOT_TOKEN)")
        raise UnavailableError("Telegram is not set up on this server", retry_after_s=3600)
    try:
        return client.username()
    except DeliveryError as exc:
        logger.warning("event=telegram_get_me_failed reason=%r", exc.reason)
        raise UnavailableError("Telegram cannot be reached right now; try again shortly") from None


def consume(pool: ConnectionPool, token: str, chat_id: int) -> Consumed:
    """Use a token to link the chat to its user: "linked", or why not."""
    if not _TOKEN.match(token):
        return "unknown"
    token_hash = _hash(token)
    with transaction(pool) as conn:
        link = link_db.update_link_used(conn, token_hash)
        if link is None:
            existing = link_db.select_link(conn, token_hash)
            if existing is None:
                return "unknown"
            return "used" if existing.used_at is not None else "expired"
        user_db.update_users_telegram_released(conn, chat_id, keep_user_id=link.user_id)
        user_db.update_user_telegram(conn, link.user_id, chat_id=chat_id)
    logger.info("event=telegram_linked user=%s", link.user_id)
    return "linked"


def unlink(pool: ConnectionPool, user_id: int) -> None:
    with transaction(pool) as conn:
        user_db.update_user_telegram(conn, user_id, chat_id=None)
        link_db.delete_unused_links_of_user(conn, user_id)
    logger.info("event=telegram_unlinked user=%s", user_id)
