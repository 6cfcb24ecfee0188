"""The Telegram Bot API subset we use, over httpx: sendMessage, getMe, getUpdates, webhooks.

Every failure becomes one of notify.errors, chosen by what it says about delivery: an HTTP
error answer means Telegram did not send the message; a lost answer means it may have.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx

from algotcha.notify.errors import (
    BlockedError,
    PermanentError,
    RateLimitedError,
    TransientError,
    UncertainError,
)

if TYPE_CHECKING:
    from algotcha.config import Settings

logger = logging.getLogger(__name__)

#: sendMessage's text limit, in characters after entity parsing.
MAX_TEXT_LENGTH = 4096
#: getUpdates returns at most 100 updates of at most a few KiB each; anything bigger is wrong.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class Client:
    """One bot token against one API base; safe to share between threads."""

    def __init__(
        self,
        token: str,
        *,
        api_base: str = "https://api.telegram.org",
        timeout_s: float = 15.0,
        username: str | None = None,
    ) -> None:
        self._base = f"{api_base.rstrip('/')}/bot{token}/"
        self._timeout_s = timeout_s
        self._username = username
        self._lock = threading.Lock()
        # The URL holds the token: it must never reach a log line or an error message.
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Client | None:
        """The configured bot; None when no TELEGRAM_BOT_TOKEN is set (Telegram off)."""
        if not settings.telegram_bot_token:
            return None
        return cls(
            settings.telegram_bot_token,
            api_base=settings.telegram_api_base,
            timeout_s=settings.notify_timeout_s,
            username=settings.telegram_bot_username,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self, method: str, params: dict[str, Any], *, read_timeout_s: float | None = None
    ) -> Any:
        """POST one method; its `result`, or a DeliveryError saying whether it may have acted."""
        timeout = httpx.Timeout(self._timeout_s, read=read_timeout_s or self._timeout_s)
        try:
            with self._http.stream("POST", self._base + method, json=params, timeout=timeout) as r:
                body = _read_capped(r)
                status = r.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"cannot reach the Telegram API ({type(exc).__name__})") from None
        except (httpx.WriteError, httpx.WriteTimeout) as exc:
            # The request was not fully sent, so Telegram cannot have acted on it.
            raise TransientError(f"sending to Telegram failed ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            # Sent, but the answer was lost (read timeout, connection reset): it may have acted.
            raise UncertainError(
                f"no answer from Telegram after the request was sent ({type(exc).__name__})"
            ) from None
        return _result(method, status, body)

    def send_message(self, chat_id: int, html: str) -> int:
        """Send HTML-formatted text (already escaped); returns Telegram's message_id."""
        result = self.call(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": html,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            },
        )
        return int(result["message_id"]) if isinstance(result, dict) else 0

    def get_me(self) -> dict[str, Any]:
        result = self.call("getMe", {})
        if not isinstance(result, dict):
            raise PermanentError("getMe answered without a bot")
        return result

    def username(self) -> str:
        """The bot's username: configured, or asked from getMe once and kept."""
        with self._lock:
            if self._username is None:
                name = self.get_me().get("username")
                if not isinstance(name, str) or not name:
                    raise PermanentError("getMe answered without a username")
                self._username = name
            return self._username

    def get_updates(self, offset: int | None, *, timeout_s: int = 30) -> list[dict[str, Any]]:
        """Long-poll for messages; `offset` confirms every update below it."""
        params: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        result = self.call("getUpdates", params, read_timeout_s=timeout_s + self._timeout_s)
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    def set_webhook(self, url: str, secret_token: str) -> None:
        self.call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": ["message"]},
        )

    def webhook_url(self) -> str:
        result = self.call("getWebhookInfo", {})
        return str(result.get("url") or "") if isinstance(result, dict) else ""

    def delete_webhook(self) -> None:
        self.call("deleteWebhook", {"drop_pending_updates": False})


def _read_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise httpx.DecodingError("the Telegram answer is over the size limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _result(method: str, status: int, body: bytes) -> Any:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        if 500 <= status < 600:
            raise TransientError(f"Telegram answered {status} to {method}")
        if status == 200:
            raise UncertainError(f"Telegram answered {method} with something that is not JSON")
        raise PermanentError(f"Telegram answered {status} to {method}")
    if answer.get("ok") is True and status == 200:
        return answer.get("result")
    code = answer.get("error_code", status)
    description = str(answer.get("description") or "")[:200]
    reason = f"Telegram {code}: {description}" if description else f"Telegram {code} to {method}"
    if code == 429:
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        wait = float(retry_after) if isinstance(retry_after, int | float) else 5.0
        raise RateLimitedError(reason, retry_after_s=max(wait, 0.0))
    if code == 403:
        raise BlockedError(reason)
    if isinstance(code, int) and 500 <= code < 600:
        raise TransientError(reason)
    raise PermanentError(reason)
