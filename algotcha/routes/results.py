"""Completed results: paged trades, CSV and JSON exports, compare, share links, shared pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from algotcha import auth, exports, models, schemas, state
from algotcha.routes import pages
from algotcha.services import results

NOINDEX = {"X-Robots-Tag": "noindex, nofollow"}


async def _own_result(request: Request) -> results.CompletedJob:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    return await run_in_threadpool(
        results.completed_for_user, state.of(request).pool, user_id, job_id
    )


async def trades(request: Request) -> Response:
    after, limit = schemas.parse_trade_page(request.query_params)
    job = await _own_result(request)
    page = await run_in_threadpool(
        results.trades_page, state.of(request).pool, job, after=after, limit=limit
    )
    return JSONResponse(schemas.render_trade_page(page, f"/api/backtest/queue/{job.id}/trades"))


def _download(pieces: Iterator[str], media_type: str, name: str) -> Response:
    return StreamingResponse(
        (piece.encode() for piece in pieces),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _all_trades(request: Request, job: results.CompletedJob) -> Iterator[list[dict[str, Any]]]:
    return results.all_trades(state.of(request).pool, job)


async def trades_csv(request: Request) -> Response:
    job = await _own_result(request)
    chunks = _all_trades(request, job)
    return _download(exports.trades_csv(chunks), "text/csv; charset=utf-8", f"trades-{job.id}.csv")


async def equity_csv(request: Request) -> Response:
    job = await _own_result(request)
    curve = (job.result or {}).get("equity_curve") or []
    return _download(exports.equity_csv(curve), "text/csv; charset=utf-8", f"equity-{job.id}.csv")


async def result_json(request: Request) -> Response:
    job = await _own_result(request)
    head = schemas.render_result(job.result or {}, "")
    for key in ("trades", "tradesNext"):
        head.pop(key, None)
    chunks = (models.camel_keys(chunk) for chunk in _all_trades(request, job))
    return _download(exports.result_json(head, chunks), "application/json", f"result-{job.id}.json")


async def compare(request: Request) -> Response:
    user_id = auth.current_user(request)
    ids = schemas.parse_compare_ids(request.query_params)
    comparison = await run_in_threadpool(results.compare, state.of(request).pool, user_id, ids)
    return JSONResponse(schemas.render_comparison(comparison))


async def share(request: Request) -> Response:
    shared = state.of(request)
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    ttl_s = schemas.parse_share(await request.body())
    link = await run_in_threadpool(
        results.share, shared.pool, shared.settings, user_id, job_id, ttl_s=ttl_s
    )
    return JSONResponse(schemas.render_share(link), status_code=201)


async def unshare(request: Request) -> Response:
    user_id = auth.current_user(request)
    job_id = schemas.parse_id(request.path_params["id"])
    await run_in_threadpool(results.revoke, state.of(request).pool, user_id, job_id)
    return Response(status_code=204)


async def shared(request: Request) -> Response:
    token = request.path_params["token"]
    job = await run_in_threadpool(results.shared, state.of(request).pool, token)
    return JSONResponse(schemas.render_shared(job, token), headers=NOINDEX)


async def shared_trades(request: Request) -> Response:
    shared = state.of(request)
    token = request.path_params["token"]
    after, limit = schemas.parse_trade_page(request.query_params)
    job = await run_in_threadpool(results.shared, shared.pool, token)
    page = await run_in_threadpool(results.trades_page, shared.pool, job, after=after, limit=limit)
    body = schemas.render_trade_page(page, f"/api/shared/{token}/trades")
    return JSONResponse(body, headers=NOINDEX)


async def shared_page(request: Request) -> Response:
    """The page itself: the token is checked by the API call the page makes."""
    response = pages.serve(request, "index.html")
    response.headers.update(NOINDEX)
    return response


routes: list[BaseRoute] = [
    Route("/api/backtest/compare", compare, methods=["GET"]),
    Route("/api/backtest/queue/{id}/trades", trades, methods=["GET"]),
    Route("/api/backtest/queue/{id}/trades.csv", trades_csv, methods=["GET"]),
    Route("/api/backtest/queue/{id}/equity.csv", equity_csv, methods=["GET"]),
    Route("/api/backtest/queue/{id}/result.json", result_json, methods=["GET"]),
    Route("/api/backtest/queue/{id}/share", share, methods=["POST"]),
    Route("/api/backtest/queue/{id}/share", unshare, methods=["DELETE"]),
    Route("/api/shared/{token}", shared, methods=["GET"]),
    Route("/api/shared/{token}/trades", shared_trades, methods=["GET"]),
    Route("/shared/{token}", shared_page, methods=["GET", "HEAD"]),
]
