"""GET /api/backtest/queue/{id}/events: status, position and progress as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from algotcha import auth, schemas
from algotcha.db.jobs import FINAL_STATUSES
from algotcha.errors import UnavailableError
from algotcha.services import jobs

POLL_INTERVAL_S = 0.5
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0


async def stream(request: Request) -> Response:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    pool, settings = request.state.pool, request.state.settings
    # The first read happens before the stream starts, so a wrong id is a plain 404.
    first = await run_in_threadpool(jobs.get_for_user, pool, settings, user_id, job_id)

    async def events() -> AsyncIterator[str]:
        item, last, quiet = first, None, 0.0
        while True:
            state = schemas.render_position(item)
            if state != last:
                yield f"event: status\nid: {item.job.id}\ndata: {json.dumps(state)}\n\n"
                last, quiet = state, 0.0
            if item.job.status in FINAL_STATUSES or await request.is_disconnected():
                return
            await asyncio.sleep(POLL_INTERVAL_S)
            quiet += POLL_INTERVAL_S
            if quiet >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0
            try:
                item = await run_in_threadpool(jobs.get_for_user, pool, settings, user_id, job_id)
            except UnavailableError:
                continue

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


routes: list[BaseRoute] = [
    Route("/api/backtest/queue/{id}/events", stream, methods=["GET"]),
]
