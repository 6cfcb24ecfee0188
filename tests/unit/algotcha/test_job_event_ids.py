"""Event ids of the job event stream: what Last-Event-ID tells the server on a reconnect."""

from __future__ import annotations

from dataclasses import replace

import pytest

from algotcha import schemas
from algotcha.services.job_events import EventId, has_ended_for, is_news
from algotcha.services.jobs import JobEvent

QUEUED = JobEvent(
    job_id=7,
    user_id=1,
    status="queued",
    progress=0,
    position=3,
    wait_minutes=4,
    revision=0,
    queue_tick=41,
)
PROCESSING = replace(QUEUED, status="processing", position=0, wait_minutes=0, revision=1)
CANCELLED = replace(QUEUED, status="cancelled", position=None, wait_minutes=None, revision=1)


def test_event_id_round_trips_through_last_event_id() -> None:
    written = str(EventId.of(QUEUED))
    assert written == "0:41"
    assert schemas.parse_last_event_id(written) == EventId(0, 41)
    assert schemas.parse_last_event_id(f"  {written} ") == EventId(0, 41)


@pytest.mark.parametrize(
    "header", [None, "", "7", "1:2:3", "a:1", "-1:2", "\uff11:2", "²:1", "1:" + "9" * 19, "1 :2"]
)
def test_a_last_event_id_this_server_did_not_write_is_ignored(header: str | None) -> None:
    assert schemas.parse_last_event_id(header) is None


def test_a_client_without_an_id_needs_the_current_state() -> None:
    assert is_news(QUEUED, None)
    assert not has_ended_for(CANCELLED, None)


def test_a_client_that_saw_this_state_needs_nothing() -> None:
    assert not is_news(QUEUED, EventId(0, 41))
    # The queue moved on but a processing job has no position to change.
    assert not is_news(PROCESSING, EventId(1, 40))


def test_a_queue_change_is_news_for_a_queued_job_only() -> None:
    assert is_news(QUEUED, EventId(0, 40))
    assert not is_news(CANCELLED, EventId(1, 40))


def test_a_job_change_is_news() -> None:
    assert is_news(PROCESSING, EventId(0, 41))


def test_the_stream_has_ended_once_the_final_state_was_seen() -> None:
    assert has_ended_for(CANCELLED, EventId(1, 41))
    assert not has_ended_for(CANCELLED, EventId(0, 41))
    assert not has_ended_for(PROCESSING, EventId(1, 41))


def test_event_data_is_the_position_routes_fields() -> None:
    assert schemas.render_job_event(QUEUED) == {
        "id": 7,
        "status": "queued",
        "queuePosition": 3,
        "progress": 0,
        "estimatedWait": 4,
    }
