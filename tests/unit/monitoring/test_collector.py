"""QueueCollector: gauges at scrape time, a TTL cache, a scrape that survives a failing fetch."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitoring.collector import QUEUE_STATUSES, QueueCollector, QueueSample

SAMPLE = QueueSample(
    jobs_by_status={"queued": 3, "processing": 1},
    estimated_wait_s=240.0,
    workers_online=2,
    oldest_processing_s=12.5,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetch:
    def __init__(self, sample: QueueSample = SAMPLE) -> None:
        self.calls = 0
        self.sample = sample
        self.error: Exception | None = None

    def __call__(self) -> QueueSample:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.sample


def registry_with(collector: QueueCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_collect_exports_every_gauge_with_every_status() -> None:
    registry = registry_with(QueueCollector(Fetch()))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("algotcha_queue_jobs", status="queued") == 3
    assert value("algotcha_queue_jobs", status="processing") == 1
    for status in set(QUEUE_STATUSES) - {"queued", "processing"}:
        assert value("algotcha_queue_jobs", status=status) == 0
    assert value("algotcha_queue_estimated_wait_seconds") == 240.0
    assert value("algotcha_workers_online") == 2
    assert value("algotcha_queue_oldest_processing_seconds") == 12.5
    assert value("algotcha_queue_collector_up") == 1


def test_registering_the_collector_does_not_fetch() -> None:
    fetch = Fetch()
    registry_with(QueueCollector(fetch))
    assert fetch.calls == 0


def test_collect_reuses_the_sample_within_the_ttl_and_refreshes_after_it() -> None:
    clock, fetch = Clock(), Fetch()
    collector = QueueCollector(fetch, ttl_s=5.0, clock=clock)

    list(collector.collect())
    clock.now += 4.9
    list(collector.collect())
    assert fetch.calls == 1

    clock.now += 0.1
    fetch.sample = QueueSample({"queued": 7}, 0.0, 1, 0.0)
    registry = registry_with(collector)
    assert registry.get_sample_value("algotcha_queue_jobs", {"status": "queued"}) == 7
    assert fetch.calls == 2


def test_concurrent_scrapes_share_one_fetch() -> None:
    calls = 0

    def slow_fetch() -> QueueSample:
        nonlocal calls
        calls += 1
        time.sleep(0.05)
        return SAMPLE

    collector = QueueCollector(slow_fetch, ttl_s=60.0)
    threads = [threading.Thread(target=lambda: list(collector.collect())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == 1


def test_a_failing_fetch_leaves_the_scrape_working(caplog: pytest.LogCaptureFixture) -> None:
    clock, fetch = Clock(), Fetch()
    fetch.error = ConnectionError("connection refused\nsecond line")
    registry = registry_with(QueueCollector(fetch, ttl_s=5.0, clock=clock))

    with caplog.at_level(logging.WARNING, logger="monitoring.collector"):
        text = generate_latest(registry).decode()

    assert "algotcha_queue_collector_up 0.0" in text
    assert "algotcha_queue_jobs{" not in text
    assert "algotcha_workers_online " not in text
    [record] = caplog.records
    assert record.getMessage() == (
        "event=queue_sample_failed error=ConnectionError detail='connection refused'"
    )


def test_a_failure_is_cached_for_the_ttl_and_recovery_follows_it() -> None:
    clock, fetch = Clock(), Fetch()
    fetch.error = TimeoutError()
    registry = registry_with(QueueCollector(fetch, ttl_s=5.0, clock=clock))

    assert registry.get_sample_value("algotcha_queue_collector_up") == 0
    assert registry.get_sample_value("algotcha_queue_collector_up") == 0
    assert fetch.calls == 1

    fetch.error = None
    clock.now += 5.0
    assert registry.get_sample_value("algotcha_queue_collector_up") == 1
    assert registry.get_sample_value("algotcha_workers_online") == 2
