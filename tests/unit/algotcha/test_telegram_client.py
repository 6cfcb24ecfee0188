"""The Bot API client against a local Telegram API over real HTTP: every answer's error class."""

from __future__ import annotations

import pytest

from algotcha.config import Settings
from algotcha.notify import telegram
from algotcha.notify.errors import (
    BlockedError,
    PermanentError,
    RateLimitedError,
    TransientError,
    UncertainError,
)
from tests.fixtures.app import free_port
from tests.fixtures.telegram_api import (
    TOKEN,
    Answer,
    FakeTelegram,
    blocked,
    error,
    too_many_requests,
)


def client_for(fake: FakeTelegram, **options: object) -> telegram.Client:
    return telegram.Client(TOKEN, api_base=fake.url, timeout_s=2.0, **options)  # type: ignore[arg-type]


def test_send_message_posts_html_and_returns_the_message_id(telegram_api: FakeTelegram) -> None:
    with client_for(telegram_api) as client:
        first = client.send_message(42, "<b>done</b> &amp; dusted")
        second = client.send_message(42, "again")
    assert (first, second) == (1, 2)
    params = telegram_api.sent(42)[0]
    assert params["text"] == "<b>done</b> &amp; dusted"
    assert params["parse_mode"] == "HTML"


def test_a_429_carries_retry_after(telegram_api: FakeTelegram) -> None:
    telegram_api.script(too_many_requests(7))
    with client_for(telegram_api) as client, pytest.raises(RateLimitedError) as info:
        client.send_message(42, "x")
    assert info.value.retry_after_s == 7
    assert isinstance(info.value, TransientError)


def test_a_403_means_blocked(telegram_api: FakeTelegram) -> None:
    telegram_api.script(blocked())
    with client_for(telegram_api) as client, pytest.raises(BlockedError, match="blocked"):
        client.send_message(42, "x")


def test_a_400_is_permanent(telegram_api: FakeTelegram) -> None:
    telegram_api.script(error(400, "Bad Request: chat not found"))
    with client_for(telegram_api) as client, pytest.raises(PermanentError, match="chat not found"):
        client.send_message(42, "x")


@pytest.mark.parametrize("status", [500, 502])
def test_a_5xx_is_transient(telegram_api: FakeTelegram, status: int) -> None:
    telegram_api.script(error(status, "Internal Server Error"))
    with client_for(telegram_api) as client, pytest.raises(TransientError):
        client.send_message(42, "x")


def test_a_5xx_without_json_is_transient(telegram_api: FakeTelegram) -> None:
    telegram_api.script(Answer(502, {}))
    with client_for(telegram_api) as client, pytest.raises(TransientError):
        client.send_message(42, "x")


def test_a_refused_connection_is_transient_and_hides_the_token() -> None:
    client = telegram.Client(TOKEN, api_base=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with client, pytest.raises(TransientError) as info:
        client.send_message(42, "x")
    assert TOKEN not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_answer_that_never_comes_is_uncertain(telegram_api: FakeTelegram) -> None:
    """The request left; without an answer it may have been delivered, so it is not retried."""
    telegram_api.script(Answer(200, {"ok": True, "result": {"message_id": 9}}, delay_s=1.5))
    client = telegram.Client(TOKEN, api_base=telegram_api.url, timeout_s=0.5)
    with client, pytest.raises(UncertainError):
        client.send_message(42, "x")


def test_a_wrong_token_is_permanent(telegram_api: FakeTelegram) -> None:
    client = telegram.Client("1:wrong", api_base=telegram_api.url, timeout_s=2)
    with client, pytest.raises(PermanentError, match="401"):
        client.send_message(42, "x")


def test_username_asks_get_me_once(telegram_api: FakeTelegram) -> None:
    with client_for(telegram_api) as client:
        assert client.username() == client.username() == "AlgotchaTestBot"
    assert len(telegram_api.attempts("getMe")) == 1


def test_a_configured_username_never_asks(telegram_api: FakeTelegram) -> None:
    with client_for(telegram_api, username="SetBot") as client:
        assert client.username() == "SetBot"
    assert telegram_api.attempts("getMe") == []


def test_from_settings_is_none_without_a_token() -> None:
    assert telegram.Client.from_settings(Settings(telegram_bot_token=None)) is None


def test_from_settings_uses_the_configured_base_and_username(telegram_api: FakeTelegram) -> None:
    settings = Settings(
        telegram_bot_token=TOKEN, telegram_api_base=telegram_api.url, telegram_bot_username="SetBot"
    )
    client = telegram.Client.from_settings(settings)
    assert client is not None
    with client:
        assert client.send_message(42, "hello") == 1
        assert client.username() == "SetBot"
    assert telegram_api.sent(42)[0]["text"] == "hello"
    assert telegram_api.attempts("getMe") == []


def test_webhook_set_read_and_deleted(telegram_api: FakeTelegram) -> None:
    with client_for(telegram_api) as client:
        client.set_webhook("https://example.test/api/telegram/webhook", "s3cret_-")
        assert client.webhook_url() == "https://example.test/api/telegram/webhook"
        assert telegram_api.webhook["secret"] == "s3cret_-"
        client.delete_webhook()
        assert client.webhook_url() == ""


def test_get_updates_confirms_with_the_offset(telegram_api: FakeTelegram) -> None:
    first = telegram_api.push_update(7, "/status")
    second = telegram_api.push_update(7, "/start")
    with client_for(telegram_api) as client:
        assert [u["update_id"] for u in client.get_updates(None, timeout_s=0)] == [first, second]
        assert [u["update_id"] for u in client.get_updates(second, timeout_s=0)] == [second]
        assert client.get_updates(second + 1, timeout_s=0) == []
    assert telegram_api.attempts("getUpdates")[0].params["allowed_updates"] == ["message"]
