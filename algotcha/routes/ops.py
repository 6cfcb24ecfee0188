"""Operations: liveness, readiness, Prometheus metrics, and the OpenAPI document."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from algotcha import openapi, state
from algotcha.services import health
from monitoring import exporter


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    shared = state.of(request)
    checks = await run_in_threadpool(health.check, shared.pool, shared.broker)
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


async def metrics(request: Request) -> Response:
    shared = state.of(request)
    return await exporter.metrics_response(request, shared.registry, shared.collector)


async def spec(request: Request) -> Response:
    return JSONResponse(openapi.document(str(request.base_url).rstrip("/")))


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", spec, methods=["GET"]),
]
