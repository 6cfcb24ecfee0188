"""Job event streams: one LISTEN connection per process fans job changes out to its streams.

PostgreSQL notifies on every change a stream can show (migration 0005_job_events). The listener only
marks jobs as changed; one refresh task reads every changed job in one statement and hands
each stream its newest state, so a queue change seen by a thousand streams costs one query,
and a burst of changes arriving during a read is folded into the next one. A slow poll of
every watched job is the safety net for anything a notification could miss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.errors import UnavailableError
from algotcha.services import jobs
from algotcha.services.jobs import JobEvent

logger = logging.getLogger(__name__)

# Waits after a failed read, and before re-opening a lost listener connection (doubling up
# to the maximum while the database stays away, so an outage logs a line now and then).
RECONNECT_DELAY_S = 1.0
MAX_RECONNECT_DELAY_S = 30.0
# A check that the listener's connection still answers must not hang on a dead peer.
PING_TIMEOUT_S = 5.0


class Stop(Protocol):
    """An event to wait for, such as the anyio.Event sse-starlette sets on shutdown."""

    async def wait(self) -> Any: ...


@dataclass(frozen=True)
class EventId:
    """The `id:` of an event: the job's revision and the queue tick of the same snapshot.

    Both only grow, and every event changes at least one of them, so the pair increases
    along a stream and names the state a client last saw (see migration 0005_job_events).
    """

    revision: int
    queue_tick: int

    @classmethod
    def of(cls, event: JobEvent) -> EventId:
        return cls(event.revision, event.queue_tick)

    def __str__(self) -> str:
        return f"{self.revision}:{self.queue_tick}"


def is_news(event: JobEvent, last_seen: EventId | None) -> bool:
    """Whether a client that last saw `last_seen` has not seen this state yet."""
    if last_seen is None or last_seen.revision != event.revision:
        return True
    # Only a queued job's position moves with the queue.
    return event.status == "queued" and last_seen.queue_tick != event.queue_tick


def has_ended_for(event: JobEvent, last_seen: EventId | None) -> bool:
    """The client already saw this job's final state: there is nothing left to stream."""
    return last_seen is not None and event.final and not is_news(event, last_seen)


class _Watch:
    """One stream's view of its job: the newest state read, and a flag that it moved."""

    def __init__(self, first: JobEvent) -> None:
        self.latest = first
        self.gone = False
        self.changed = asyncio.Event()

    def stop(self) -> None:
        """End the stream at its next step (the server is shutting down)."""
        self.gone = True
        self.changed.set()

    def offer(self, event: JobEvent | None) -> None:
        if event is None:
            self.gone = True
        elif event.revision < self.latest.revision or event.queue_tick < self.latest.queue_tick:
            return  # a read that started before the one this stream already has
        else:
            self.latest = event
        self.changed.set()


class EventHub:
    """The process's one listener and the streams it feeds. Start it in the app lifespan."""

    def __init__(self, pool: ConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._database_url = settings.require_database_url()
        self._poll_interval_s = settings.events_poll_interval_s
        self._watches: dict[int, set[_Watch]] = {}
        self._changed_ids: set[int] = set()
        self._queue_changed = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="algotcha-events-listen"),
            asyncio.create_task(self._refresh(), name="algotcha-events-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def stream_count(self) -> int:
        return sum(len(watches) for watches in self._watches.values())

    async def follow(
        self, first: JobEvent, last_seen: EventId | None, stop: Stop
    ) -> AsyncIterator[JobEvent]:
        """The states of one job a client has not seen, from `first` until a final one, or
        until `stop` is set (the server is shutting down: end cleanly, the client reconnects).
        """
        if first.final:
            if is_news(first, last_seen):
                yield first
            return
        watch = _Watch(first)
        self._watches.setdefault(first.job_id, set()).add(watch)
        # A change between the caller's first read and now would otherwise go unnoticed.
        self._mark([first.job_id])
        # One waiter for the stream's whole life, not one per event: with a thousand streams
        # woken by one queue change, per-event tasks would be most of the fan-out's cost.
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: watch.stop())
        try:
            shown = first.shown
            if is_news(first, last_seen):
                yield first
            while not watch.latest.final:
                await watch.changed.wait()
                watch.changed.clear()
                if watch.gone:
                    return
                if watch.latest.shown != shown:
                    shown = watch.latest.shown
                    yield watch.latest
        finally:
            stopping.cancel()
            watches = self._watches.get(first.job_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[first.job_id]

    def _mark(self, job_ids: list[int], *, queue: bool = False) -> None:
        self._changed_ids.update(job_ids)
        self._queue_changed = self._queue_changed or queue
        self._wake.set()

    def _mark_all(self) -> None:
        self._mark(list(self._watches))

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == job_db.QUEUE_CHANGED_CHANNEL:
            self._mark([], queue=True)
        elif payload.isascii() and payload.isdigit() and int(payload) in self._watches:
            self._mark([int(payload)])

    async def _listen(self) -> None:
        delay_s = RECONNECT_DELAY_S
        while True:
            started = time.monotonic()
            try:
                await self._listen_once()
            except (psycopg.OperationalError, TimeoutError) as exc:
                logger.warning(
                    "event=events_listener_lost error=%s retry_in_s=%s",
                    type(exc).__name__,
                    delay_s,
                )
            except Exception:
                # Whatever went wrong, the streams of this process depend on this loop.
                logger.exception("event=events_listener_failed retry_in_s=%s", delay_s)
            # A connection that lasted a while was a good one: start the backoff afresh.
            if time.monotonic() - started > MAX_RECONNECT_DELAY_S:
                delay_s = RECONNECT_DELAY_S
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, MAX_RECONNECT_DELAY_S)

    async def _listen_once(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._database_url,
            autocommit=True,
            application_name="algotcha-api-events",
            connect_timeout=max(2, round(self._settings.db_timeout_s)),
        ) as conn:
            await job_db.listen_job_changes(conn)
            logger.info("event=events_listening streams=%s", self.stream_count)
            # Whatever changed while nobody listened is read again now.
            self._mark_all()
            while True:
                async for note in conn.notifies(timeout=self._poll_interval_s):
                    self._on_notify(note.channel, note.payload)
                # A quiet interval: the safety net. Check the connection (a peer that
                # vanished without a word never ends notifies()) and re-read every stream.
                await asyncio.wait_for(conn.execute("SELECT 1"), PING_TIMEOUT_S)
                self._mark_all()

    async def _refresh(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            job_ids = self._take_changed()
            if not job_ids:
                continue
            try:
                events = await asyncio.to_thread(
                    jobs.read_events, self._pool, self._settings, sorted(job_ids)
                )
            except Exception as exc:
                # Kept for the next try rather than lost; a bug is logged with its traceback.
                if isinstance(exc, UnavailableError):
                    logger.warning("event=events_refresh_failed jobs=%s", len(job_ids))
                else:
                    logger.exception("event=events_refresh_failed jobs=%s", len(job_ids))
                self._mark(list(job_ids))
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            for job_id in job_ids:
                for watch in self._watches.get(job_id, ()):
                    watch.offer(events.get(job_id))

    def _take_changed(self) -> set[int]:
        job_ids = {job_id for job_id in self._changed_ids if job_id in self._watches}
        if self._queue_changed:
            # A job entering or leaving the queue moves every queued job behind it.
            job_ids.update(
                job_id
                for job_id, watches in self._watches.items()
                if any(watch.latest.status == "queued" for watch in watches)
            )
        self._changed_ids.clear()
        self._queue_changed = False
        return job_ids
