"""The backtest queue: submit, position, my jobs, one job, cancel, stats."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from algotcha import auth, engine_requests, schemas, state
from algotcha.services import jobs, sweeps, walkforwards


class JobIdConvertor(StringConvertor):
    """A job's id segment, which parse_id judges; never the name of a sibling route, so that
    DELETE /api/backtest/queue/stats is a 405 rather than a 422 about an id."""

    regex = "(?!(?:stats|my)$)[^/]+"


register_url_convertor("job_id", JobIdConvertor())


async def submit(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    settings = shared.settings
    # Parsing is a fraction of a millisecond of CPU: a thread hop would cost more.
    body = engine_requests.parse_submit(
        await request.body(), shared.store, max_combinations=settings.max_sweep_combinations
    )
    if body.walk_forward is not None:
        item = await run_in_threadpool(
            walkforwards.submit,
            shared.pool,
            shared.broker,
            settings,
            shared.store,
            user_id=user_id,
            walk_forward=body.walk_forward,
            notify_via=body.notify_via,
        )
        return _accepted(item, schemas.render_accepted_walkforward(item, body.walk_forward))
    if body.sweep is not None:
        item = await run_in_threadpool(
            sweeps.submit,
            shared.pool,
            shared.broker,
            settings,
            user_id=user_id,
            sweep=body.sweep,
            notify_via=body.notify_via,
        )
        return _accepted(item)
    assert body.request is not None
    item = await run_in_threadpool(
        jobs.submit,
        shared.pool,
        shared.broker,
        settings,
        user_id=user_id,
        strategy_name=body.request.strategy_name,
        payload=engine_requests.payload_dict(body.request),
        notify_via=body.notify_via,
    )
    return _accepted(item)


def _accepted(item: jobs.QueuedJob[jobs.ShownJob], body: dict[str, Any] | None = None) -> Response:
    return JSONResponse(
        body or schemas.render_accepted(item),
        status_code=202,
        headers={"Location": f"/api/backtest/queue/{item.job.id}"},
    )


async def grid_csv(request: Request) -> Response:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    partial = schemas.parse_partial(request.query_params)
    lines = await run_in_threadpool(
        sweeps.grid_csv, state.of(request).pool, user_id, job_id, partial=partial
    )
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="sweep-{job_id}-grid.csv"'},
    )


async def folds_csv(request: Request) -> Response:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    lines = await run_in_threadpool(walkforwards.folds_csv, state.of(request).pool, user_id, job_id)
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="walkforward-{job_id}-folds.csv"'},
    )


async def backtest_combination(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    index = schemas.parse_index(request.path_params["index"])
    notify_via = schemas.parse_notify_choice(await request.body())
    item = await run_in_threadpool(
        sweeps.backtest_combination,
        shared.pool,
        shared.broker,
        shared.settings,
        shared.store,
        user_id=user_id,
        job_id=job_id,
        index=index,
        notify_via=notify_via,
    )
    return _accepted(item)


async def position(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    item = await run_in_threadpool(jobs.get_for_user, shared.pool, shared.settings, user_id, job_id)
    return JSONResponse(schemas.render_position(item))


async def mine(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    limit, before = schemas.parse_page(request.query_params)
    items = await run_in_threadpool(
        jobs.list_for_user,
        shared.pool,
        shared.settings,
        user_id,
        limit=limit,
        before=before,
    )
    return JSONResponse([schemas.render_job(item) for item in items])


async def show(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    item = await run_in_threadpool(jobs.get_for_user, shared.pool, shared.settings, user_id, job_id)
    return JSONResponse(schemas.render_job_with_result(item))


async def cancel(request: Request) -> Response:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    job = await run_in_threadpool(jobs.cancel, state.of(request).pool, user_id, job_id)
    return JSONResponse(
        schemas.render_cancelled(job), status_code=202 if job.status == "processing" else 200
    )


async def stats(request: Request) -> Response:
    shared = state.of(request)
    result = await run_in_threadpool(jobs.stats, shared.pool, shared.settings)
    return JSONResponse(schemas.render_stats(result))


routes: list[BaseRoute] = [
    Route("/api/backtest/queue", submit, methods=["POST"]),
    Route("/api/backtest/queue/stats", stats, methods=["GET"]),
    Route("/api/backtest/queue/my", mine, methods=["GET"]),
    Route("/api/backtest/queue/position/{id}", position, methods=["GET"]),
    Route("/api/backtest/queue/{id:job_id}", show, methods=["GET"]),
    Route("/api/backtest/queue/{id:job_id}", cancel, methods=["DELETE"]),
    Route("/api/backtest/queue/{id}/grid.csv", grid_csv, methods=["GET"]),
    Route("/api/backtest/queue/{id}/folds.csv", folds_csv, methods=["GET"]),
    Route(
        "/api/backtest/queue/{id}/combinations/{index}/backtest",
        backtest_combination,
        methods=["POST"],
    ),
]
