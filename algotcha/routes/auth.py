"""POST /api/auth/register and /api/auth/login."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from algotcha import schemas, state
from algotcha.services import users


async def register(request: Request) -> Response:
    shared = state.of(request)
    creds = schemas.parse_register(await request.body())
    user = await run_in_threadpool(
        users.register,
        shared.pool,
        shared.hash_slots,
        email=creds.email,
        password=creds.password,
        name=creds.name,
    )
    return JSONResponse(schemas.render_registered(user), status_code=201)


async def login(request: Request) -> Response:
    shared = state.of(request)
    creds = schemas.parse_login(await request.body())
    settings = shared.settings
    token = await run_in_threadpool(
        users.login,
        shared.pool,
        settings,
        shared.hash_slots,
        email=creds.email,
        password=creds.password,
        # The peer, or the client a trusted proxy names (uvicorn's FORWARDED_ALLOW_IPS).
        address=request.client.host if request.client else "unknown",
    )
    return JSONResponse(schemas.render_token(token, settings.jwt_ttl_s))


routes: list[BaseRoute] = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
]
