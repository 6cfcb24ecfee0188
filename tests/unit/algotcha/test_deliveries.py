"""The delivery policy that needs no database: channels per choice and the retry backoff."""

from __future__ import annotations

from algotcha.config import Settings
from algotcha.services import deliveries


def test_each_choice_names_its_channels() -> None:
    assert deliveries.CHANNELS == {
        "email": ("email",),
        "telegram": ("telegram",),
        "both": ("email", "telegram"),
        "none": (),
    }


def test_backoff_doubles_from_the_minimum_and_stops_at_the_maximum() -> None:
    settings = Settings(notify_min_backoff_s=10, notify_max_backoff_s=60)
    for attempt, base in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delay = deliveries.backoff_s(settings, attempt)
        assert base <= delay <= base * 1.25


def test_the_sending_lease_outlasts_every_step_of_a_send() -> None:
    settings = Settings(notify_timeout_s=15)
    assert settings.sending_lease_s >= 10 * settings.notify_timeout_s
