"""/api/me: the caller's profile, and linking or unlinking their Telegram chat."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from algotcha import auth, schemas, state
from algotcha.services import telegram_links, users


async def show(request: Request) -> Response:
    user_id = auth.current_user(request)
    user = await run_in_threadpool(users.get, state.of(request).pool, user_id)
    return JSONResponse(schemas.render_user(user))


async def update(request: Request) -> Response:
    user_id = auth.current_user(request)
    change = schemas.parse_profile(await request.body())
    user = await run_in_threadpool(
        users.update_profile,
        state.of(request).pool,
        user_id,
        name=change.name,
        notify_via=change.notify_via,
    )
    return JSONResponse(schemas.render_user(user))


async def link_telegram(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    link = await run_in_threadpool(
        telegram_links.create,
        shared.pool,
        shared.settings,
        shared.telegram,
        user_id,
    )
    return JSONResponse(schemas.render_telegram_link(link))


async def unlink_telegram(request: Request) -> Response:
    user_id = auth.current_user(request)
    await run_in_threadpool(telegram_links.unlink, state.of(request).pool, user_id)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/api/me", show, methods=["GET"]),
    Route("/api/me", update, methods=["PATCH"]),
    Route("/api/me/telegram/link", link_telegram, methods=["POST"]),
    Route("/api/me/telegram", unlink_telegram, methods=["DELETE"]),
]
