"""Each channel's way to a user: who to send to, and how (Telegram chat or email address)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from algotcha.config import Settings
from algotcha.notify import email, messages, telegram
from algotcha.notify.errors import PermanentError


class Recipient(Protocol):
    """What a transport reads of a user to address them (db.users.UserRow has it)."""

    @property
    def email(self) -> str: ...
    @property
    def telegram_chat_id(self) -> int | None: ...
    @property
    def telegram_blocked(self) -> bool: ...


class Transport(Protocol):
    """One channel's way to a user."""

    def recipient(self, user: Recipient) -> str:
        """The address to send to; PermanentError when there is none."""
        ...

    def send(self, recipient: str, notice: messages.Notice) -> str:
        """Deliver; the provider's reference (message id). Raises notify.errors."""
        ...


class TelegramTransport:
    def __init__(self, client: telegram.Client | None) -> None:
        self.client = client

    def recipient(self, user: Recipient) -> str:
        if self.client is None:
            raise PermanentError("telegram is not configured on this server (TELEGRAM_BOT_TOKEN)")
        if user.telegram_chat_id is None:
            raise PermanentError("telegram not linked")
        if user.telegram_blocked:
            raise PermanentError("telegram blocked: the user blocked the bot")
        return str(user.telegram_chat_id)

    def send(self, recipient: str, notice: messages.Notice) -> str:
        assert self.client is not None
        return str(self.client.send_message(int(recipient), notice.telegram))


class EmailTransport:
    def __init__(self, mailer: email.Mailer | None) -> None:
        self.mailer = mailer

    def recipient(self, user: Recipient) -> str:
        if self.mailer is None:
            raise PermanentError("email is not configured on this server (SMTP_HOST)")
        return user.email

    def send(self, recipient: str, notice: messages.Notice) -> str:
        assert self.mailer is not None
        return self.mailer.send(email.Email(recipient, notice.subject, notice.text, notice.html))


@contextlib.contextmanager
def open_transport(settings: Settings, channel: str) -> Iterator[Transport]:
    """The channel's transport from the settings; one that says "not configured" when unset."""
    if channel == "telegram":
        client = telegram.Client.from_settings(settings)
        try:
            yield TelegramTransport(client)
        finally:
            if client is not None:
                client.close()
        return
    sender = settings.smtp_sender
    mailer = None
    if settings.smtp_host and sender:
        config = email.SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=sender,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password,
            timeout_s=settings.notify_timeout_s,
        )
        mailer = email.Mailer(config)
    yield EmailTransport(mailer)
