"""The web page: `/` and its static files from the package data `algotcha/web/`."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import engine
from algotcha import models, vocabulary
from algotcha.errors import NotFoundError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# Everything from our own origin, no inline script or style, no plugins, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@functools.cache
def _assets() -> dict[str, tuple[bytes, str, str]]:
    """Every file of web/ by name: (body, media type, strong ETag), read once.

    A request can only name a key of this table, so nothing outside web/ is reachable,
    whatever the path says. Package data does not change while the process runs.
    """
    table: dict[str, tuple[bytes, str, str]] = {}
    for entry in (resources.files("algotcha") / "web").iterdir():
        media_type = CONTENT_TYPES.get(PurePosixPath(entry.name).suffix)
        if media_type and entry.is_file() and not entry.name.startswith("."):
            body = entry.read_bytes()
            table[entry.name] = (body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    body = vocabulary_js().encode()
    table["vocabulary.js"] = (
        body,
        CONTENT_TYPES[".js"],
        f'"{hashlib.sha256(body).hexdigest()[:32]}"',
    )
    return table


def vocabulary_js() -> str:
    """vocabulary.js: the lists and limits the page needs, written from the Python that the
    API validates with, so that the page keeps no copy of its own."""
    exported = {
        "JOB_STATUSES": vocabulary.JOB_STATUSES,
        "ACTIVE_STATUSES": vocabulary.ACTIVE_STATUSES,
        "FINAL_STATUSES": vocabulary.FINAL_STATUSES,
        "NOTIFY_CHANNELS": vocabulary.NOTIFY_CHANNELS,
        "TIMEFRAMES": vocabulary.TIMEFRAMES,
        "TIMEFRAME_MINUTES": engine.TIMEFRAMES,
        "OBJECTIVES": vocabulary.OBJECTIVES,
        "DEFAULT_OBJECTIVE": models.SweepRequest.model_fields["objective"].default,
        "MAX_PARAMETERS": models.MAX_PARAMETERS,
        "MAX_VALUES": models.MAX_VALUES,
    }
    lines = ["// Written by algotcha/routes/pages.py from algotcha/vocabulary.py and models.py."]
    lines += [f"export const {name} = {json.dumps(value)};" for name, value in exported.items()]
    return "\n".join(lines) + "\n"


def serve(request: Request, name: str) -> Response:
    asset = _assets().get(name)
    if asset is None:
        raise NotFoundError(f"no file named {name!r}")
    body, media_type, etag = asset
    # Names are not fingerprinted, so the browser revalidates each time (a cheap 304).
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


async def index(request: Request) -> Response:
    return serve(request, "index.html")


async def static(request: Request) -> Response:
    return serve(request, request.path_params["name"])


routes: list[BaseRoute] = [
    Route("/", index, methods=["GET", "HEAD"]),
    Route("/static/{name}", static, methods=["GET", "HEAD"]),
]
