"""QueueCollector: queue gauges computed at scrape time from an injected fetch, with a cache."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

#: Every status a job can have; each is exported (0 when the database has none).
QUEUE_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class QueueSample:
    """What the database says about the queue at one moment."""

    jobs_by_status: Mapping[str, int]
    estimated_wait_s: float
    workers_online: int
    #: Age of the oldest job still `processing` (now - started_at), 0 when none is.
    oldest_processing_s: float
    #: Chunks of sweeps being run by workers now (a sweep counts as one job above).
    sweep_chunks_in_flight: int = 0


class QueueCollector(Collector):
    """Queue gauges read from `fetch()` at most once per `ttl_s`, whatever the number of scrapes.

    When `fetch` raises, the collector logs one warning line and exports no queue gauge for
    that scrape (the series go stale in Prometheus rather than repeating an old value as if it
    were current) while `algotcha_queue_collector_up` drops to 0. A failure is cached like a
    success, so a database outage under a scrape storm is still tried only once per `ttl_s`.
    """

    def __init__(
        self,
        fetch: Callable[[], QueueSample],
        ttl_s: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._fetched_at: float | None = None
        self._sample: QueueSample | None = None

    def describe(self) -> Iterator[Metric]:
        """The families without samples, so registering the collector does not call `fetch`."""
        families = _Families()
        yield from families.queue()
        yield families.up

    def collect(self) -> Iterator[Metric]:
        sample = self._current()
        families = _Families()
        if sample is not None:
            families.fill(sample)
            yield from families.queue()
        families.up.add_metric([], 0.0 if sample is None else 1.0)
        yield families.up

    def _current(self) -> QueueSample | None:
        # Held across fetch(): concurrent scrapes wait for the one query instead of each running it.
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._ttl_s:
                self._fetched_at = now
                try:
                    self._sample = self._fetch()
                except Exception as exc:
                    self._sample = None
                    detail = str(exc).splitlines()[0] if str(exc) else ""
                    logger.warning(
                        "event=queue_sample_failed error=%s detail=%r", type(exc).__name__, detail
                    )
            return self._sample


class _Families:
    """The collector's gauge families, without samples until filled."""

    def __init__(self) -> None:
        self.jobs = GaugeMetricFamily(
            "algotcha_queue_jobs", "Backtest jobs in the database, by status.", labels=["status"]
        )
        self.wait = GaugeMetricFamily(
            "algotcha_queue_estimated_wait_seconds",
            "Estimated wait for a job submitted now, before it starts.",
        )
        self.workers = GaugeMetricFamily(
            "algotcha_workers_online", "Backtest workers whose heartbeat is recent."
        )
        self.oldest = GaugeMetricFamily(
            "algotcha_queue_oldest_processing_seconds",
            "Age of the oldest job still processing (0 when none is); past the time limit, stuck.",
        )
        self.chunks = GaugeMetricFamily(
            "algotcha_sweep_chunks_in_flight",
            "Chunks of sweeps that workers are running now.",
        )
        self.up = GaugeMetricFamily(
            "algotcha_queue_collector_up",
            "1 when the last queue sample was read, 0 when reading it failed.",
        )

    def queue(self) -> tuple[Metric, ...]:
        return (self.jobs, self.wait, self.workers, self.oldest, self.chunks)

    def fill(self, sample: QueueSample) -> None:
        counts = dict.fromkeys(QUEUE_STATUSES, 0)
        counts.update(sample.jobs_by_status)
        for status, count in counts.items():
            self.jobs.add_metric([status], count)
        self.wait.add_metric([], sample.estimated_wait_s)
        self.workers.add_metric([], sample.workers_online)
        self.oldest.add_metric([], sample.oldest_processing_s)
        self.chunks.add_metric([], sample.sweep_chunks_in_flight)
