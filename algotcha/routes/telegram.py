"""POST /api/telegram/webhook: updates from Telegram, refused (401) without the secret header."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from algotcha import state
from algotcha.services import bot


async def webhook(request: Request) -> Response:
    shared = state.of(request)
    settings = shared.settings
    bot.verify_secret(settings, request.headers.get("x-telegram-bot-api-secret-token"))
    command = bot.parse_webhook(await request.body())
    await run_in_threadpool(bot.handle, shared.pool, settings, shared.telegram, command)
    # Any 2xx tells Telegram the update arrived; a body would be read as a method call.
    return Response(status_code=200)


routes: list[BaseRoute] = [
    Route("/api/telegram/webhook", webhook, methods=["POST"]),
]
