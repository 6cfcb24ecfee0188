"""Telegram updates to bot commands: what is handled, and what is quietly ignored."""

from __future__ import annotations

from typing import Any

import pytest

from algotcha.services import bot


def update(text: Any, chat_id: Any = 42) -> dict[str, Any]:
    return {"update_id": 7, "message": {"chat": {"id": chat_id, "type": "private"}, "text": text}}


def test_start_with_a_token() -> None:
    command = bot.parse_update(update("/start abc_DEF-123"))
    assert command == bot.BotCommand(7, 42, "start", "abc_DEF-123")


def test_a_command_addressed_to_the_bot_by_name() -> None:
    command = bot.parse_update(update("/Status@AlgotchaBot"))
    assert command is not None and (command.command, command.argument) == ("status", "")


@pytest.mark.parametrize(
    "thing",
    [
        None,
        [],
        {"update_id": 1},
        {"update_id": 1, "edited_message": {"chat": {"id": 1}, "text": "/start"}},
        update("hello"),
        update(None),
        update("/start", chat_id="42"),
        update("/start", chat_id=True),
        {"update_id": "1", "message": {"chat": {"id": 1}, "text": "/start"}},
    ],
)
def test_anything_else_is_ignored(thing: Any) -> None:
    assert bot.parse_update(thing) is None


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[1, 2]", b"[" * 100_000])
def test_a_malformed_webhook_body_is_ignored(body: bytes) -> None:
    assert bot.parse_webhook(body) is None
