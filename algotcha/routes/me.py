"""GET and PATCH /api/me: the caller's profile."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from algotcha import auth, schemas
from algotcha.services import users


async def show(request: Request) -> Response:
    user_id = auth.current_user(request)
    user = await run_in_threadpool(users.get, request.state.pool, user_id)
    return JSONResponse(schemas.render_user(user))


async def update(request: Request) -> Response:
    user_id = auth.current_user(request)
    change = schemas.parse_profile(await request.body())
    user = await run_in_threadpool(
        users.update_profile,
        request.state.pool,
        user_id,
        name=change.name,
        notify_via=change.notify_via,
    )
    return JSONResponse(schemas.render_user(user))


routes: list[BaseRoute] = [
    Route("/api/me", show, methods=["GET"]),
    Route("/api/me", update, methods=["PATCH"]),
]
