"""What problems.py writes to the log about a request's path."""

from __future__ import annotations

import secrets

from algotcha import problems


def test_a_share_token_never_reaches_the_log() -> None:
    token = secrets.token_urlsafe(32)
    assert problems.loggable_path(f"/api/shared/{token}/trades") == "/api/shared/<token>/trades"
    assert problems.loggable_path(f"/shared/{token}") == "/shared/<token>"
    assert problems.loggable_path("/api/backtest/queue/7") == "/api/backtest/queue/7"
