"""GET /api/backtest/queue/{id}/events: status, position and progress as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from algotcha import auth, schemas, state
from algotcha.services import job_events, jobs
from algotcha.services.job_events import EventId
from algotcha.services.jobs import JobEvent

# How long an EventSource waits before it reconnects after the stream broke off.
RETRY_MS = 3000
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0
# A client that takes this long to accept one event is gone: drop it, free its memory.
SEND_TIMEOUT_S = 30.0
# How long a stream may take to end by itself on shutdown before it is cancelled.
SHUTDOWN_GRACE_S = 1.0


async def stream(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    last_seen = schemas.parse_last_event_id(request.headers.get("last-event-id"))
    pool, settings = shared.pool, shared.settings
    # The first read happens before the stream starts, so a wrong id is a plain 404.
    first = await run_in_threadpool(jobs.read_event_for_user, pool, settings, user_id, job_id)
    if job_events.has_ended_for(first, last_seen):
        # 204 is how a server tells an EventSource to stop reconnecting.
        return Response(status_code=204)
    # Set by sse-starlette when the server begins to shut down: the stream then ends at
    # once and cleanly, instead of holding uvicorn's shutdown until systemd's SIGKILL.
    shutdown = anyio.Event()
    return EventSourceResponse(
        _render(shared.events.follow(first, last_seen, shutdown)),
        ping=KEEPALIVE_S,
        send_timeout=SEND_TIMEOUT_S,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
        headers={"Cache-Control": "no-cache"},
    )


async def _render(events: AsyncIterator[JobEvent]) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        yield ServerSentEvent(
            data=json.dumps(schemas.render_job_event(event)),
            event="status",
            id=str(EventId.of(event)),
            retry=RETRY_MS,
        )


routes: list[BaseRoute] = [
    Route("/api/backtest/queue/{id}/events", stream, methods=["GET"]),
]
