"""GET /api/backtest/datasets: the symbols and ranges a backtest can use."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from algotcha import auth, schemas, state


async def index(request: Request) -> Response:
    auth.current_user(request)
    datasets = await run_in_threadpool(state.of(request).store.datasets)
    return JSONResponse([schemas.render_dataset(d) for d in datasets])


routes: list[BaseRoute] = [Route("/api/backtest/datasets", index, methods=["GET"])]
