"""The only place exceptions become HTTP responses: RFC 9457 problem+json."""

from __future__ import annotations

import logging
import re
import uuid
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from algotcha.errors import AlgotchaError, PayloadTooLargeError

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "success": False,
    }
    if errors:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


# A share link's token opens its result: a log line must not carry it.
_SHARE_TOKEN = re.compile(r"(/shared/)[^/]+")


def loggable_path(path: str) -> str:
    return _SHARE_TOKEN.sub(r"\1<token>", path)


async def handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AlgotchaError)
    if exc.status >= 500:
        logger.warning(
            "event=request_unavailable method=%s path=%s detail=%r",
            request.method,
            loggable_path(request.url.path),
            exc.detail,
        )
    return problem(
        exc.status,
        exc.detail,
        title=exc.title,
        errors=[{"field": e.field, "message": e.message} for e in exc.errors],
        headers=exc.headers,
    )


async def handle_http(request: Request, exc: Exception) -> Response:
    """Routing's own 404/405 answered in the same shape as ours."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 else f"no route for {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path; a path served by
        # several routes (GET and PATCH /api/me) allows all of theirs.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return problem(exc.status_code, detail, headers=headers)


def _allowed_methods(request: Request) -> set[str]:
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            allowed |= route.methods or set()
    return allowed


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log it in full with an id, and tell the client only the id."""
    incident = uuid.uuid4().hex[:12]
    logger.exception(
        "event=unhandled_error incident=%s method=%s path=%s",
        incident,
        request.method,
        loggable_path(request.url.path),
    )
    return problem(500, f"an internal error occurred (incident {incident})")


class BodyLimitMiddleware:
    """Refuses request bodies over the limit, chunked ones included, before they are read.

    The error is raised from receive(), so it reaches the route's `await request.body()`
    and is rendered by `handle` like every other error.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLargeError(f"the request body is over {limit} bytes")
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLargeError(f"the request body is over {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
