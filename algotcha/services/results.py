"""Completed results: paged trades, exports, comparison of runs, and read-only share links."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db import result_shares as share_db
from algotcha.db import trade_chunks as chunk_db
from algotcha.db.jobs import JobRow
from algotcha.db.pool import connection, transaction
from algotcha.errors import ConflictError, NotFoundError
from algotcha.services import trade_log
from engine import metrics as engine_metrics

logger = logging.getLogger(__name__)

COMPARE_MIN, COMPARE_MAX = 2, 6

# The row of a job with a result, under the name routes know it by (they never import db/).
CompletedJob = JobRow


@dataclass(frozen=True)
class TradePage:
    job_id: int
    count: int
    after: int
    limit: int
    trades: list[dict[str, Any]]

    @property
    def next_after(self) -> int | None:
        end = self.after + len(self.trades)
        return end if end < self.count else None


@dataclass(frozen=True)
class ShareLink:
    url: str
    expires_at: datetime | None


# --- reading a result ------------------------------------------------------------------------


def _completed(job: JobRow | None, job_id: int) -> JobRow:
    if job is None:
        raise NotFoundError(f"no backtest {job_id}")
    if job.status != "completed" or job.result is None:
        raise ConflictError(f"backtest {job_id} has no result: it is {job.status}")
    if job.kind != "backtest":
        # a sweep's result is a ranking of combinations, a walk-forward's its folds and
        # their stitched backtest, which its result holds whole
        walk_forward = job.kind == "walk_forward"
        kind = "walk-forward" if walk_forward else "sweep"
        table = "folds.csv" if walk_forward else "grid.csv"
        raise ConflictError(
            f"job {job_id} is a {kind}: it has no trades or equity curve here; its result "
            f"is GET /api/backtest/queue/{job_id} and its table "
            f"/api/backtest/queue/{job_id}/{table}"
        )
    return job


def completed_for_user(pool: ConnectionPool, user_id: int, job_id: int) -> JobRow:
    with connection(pool) as conn:
        return _completed(job_db.select_job_for_user(conn, job_id, user_id), job_id)


def trade_count(job: JobRow) -> int:
    assert job.result is not None
    count = job.result.get("trade_count")
    # Results stored before trades had their own table hold every trade in the JSON.
    return len(job.result.get("trades") or []) if count is None else int(count)


def trades_page(pool: ConnectionPool, job: JobRow, *, after: int, limit: int) -> TradePage:
    """Trades after+1 .. after+limit of a completed job (numbered from 1, in time order)."""
    assert job.result is not None
    count = trade_count(job)
    if job.result.get("trade_count") is None:
        trades = job.result.get("trades") or []
        return TradePage(job.id, count, after, limit, trades[after : after + limit])
    with connection(pool) as conn:
        chunks = chunk_db.select_trade_chunks_from(conn, job.id, after=after, limit=limit)
    trades = []
    for chunk in chunks:
        rows = trade_log.decode(chunk.trades)
        skip = max(0, after + 1 - chunk.first_trade)
        trades.extend(rows[skip : skip + limit - len(trades)])
    return TradePage(job.id, count, after, limit, trades)


def all_trades(pool: ConnectionPool, job: JobRow) -> Iterator[list[dict[str, Any]]]:
    """Every trade of a completed job, a chunk at a time (for the exports)."""
    assert job.result is not None
    if job.result.get("trade_count") is None:
        yield job.result.get("trades") or []
        return
    with connection(pool) as conn:
        chunks = chunk_db.select_trade_chunks(conn, job.id)
    for chunk in chunks:
        yield trade_log.decode(chunk.trades)


# --- comparing runs --------------------------------------------------------------------------


# Which way is better for each metric that has one (maxDrawdown is negative: higher is better).
HIGHER_IS_BETTER = (
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "calmar",
    "win_rate",
    "profit_factor",
    "expectancy",
    "final_equity",
)
LOWER_IS_BETTER = ("fees_paid",)


@dataclass(frozen=True)
class MetricRow:
    key: str
    values: list[float | int | None]
    best: int | None  # index of the best run; None when the metric has no better side


@dataclass(frozen=True)
class SettingRow:
    key: str
    values: list[Any]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    jobs: list[JobRow]
    metrics: list[MetricRow]
    settings: list[SettingRow]
    times: list[str]  # the union of the runs' equity times, ISO 8601
    equity: list[list[float | None]]  # per run, equity / initial capital at each time


def compare(pool: ConnectionPool, user_id: int, job_ids: list[int]) -> Comparison:
    """The user's completed jobs side by side, in the order asked; another user's id is a
    404 like a missing one, and a run without a result is a 409."""
    with connection(pool) as conn:
        found = {job.id: job for job in job_db.select_jobs_by_ids_for_user(conn, job_ids, user_id)}
    return align([_completed(found.get(job_id), job_id) for job_id in job_ids])


def align(jobs: list[JobRow]) -> Comparison:
    results = [job.result or {} for job in jobs]
    # The engine's order (a stored result's JSONB sorts its keys), then any others.
    stored = dict.fromkeys(k for result in results for k in result.get("metrics", {}))
    keys = [k for k in engine_metrics.KEYS if k in stored] + [
        k for k in stored if k not in engine_metrics.KEYS
    ]
    metrics = [_metric_row(key, [r.get("metrics", {}).get(key) for r in results]) for key in keys]
    fields = list(dict.fromkeys(k for job in jobs for k in job.payload))
    settings = [
        SettingRow(key, values, any(v != values[0] for v in values))
        for key in fields
        for values in [[job.payload.get(key) for job in jobs]]
    ]
    times, equity = _rebased_curves(jobs)
    return Comparison(jobs, metrics, settings, times, equity)


def _metric_row(key: str, values: list[Any]) -> MetricRow:
    scored = [(v, i) for i, v in enumerate(values) if isinstance(v, int | float)]
    best = None
    if scored and key in HIGHER_IS_BETTER:
        best = max(scored)[1] if len({v for v, _ in scored}) > 1 else None
    elif scored and key in LOWER_IS_BETTER:
        best = min(scored)[1] if len({v for v, _ in scored}) > 1 else None
    return MetricRow(key, values, best)


def _rebased_curves(jobs: list[JobRow]) -> tuple[list[str], list[list[float | None]]]:
    """Every run's curve on the union of their times: the last known equity at or before each
    time (None outside the run's first and last point), divided by the run's initial capital."""
    curves = [(job.result or {}).get("equity_curve") or [] for job in jobs]
    # ISO 8601 'Z' times of one format sort as text.
    times = sorted({point["t"] for curve in curves for point in curve})
    series = []
    for job, curve in zip(jobs, curves, strict=True):
        base = float(job.payload.get("initialCapital") or (curve[0]["equity"] if curve else 1))
        values: list[float | None] = []
        at, last = 0, None
        for t in times:
            while at < len(curve) and curve[at]["t"] <= t:
                last = curve[at]["equity"]
                at += 1
            ended = at == len(curve) and bool(curve) and t > curve[-1]["t"]
            values.append(None if last is None or ended else last / base)
        series.append(values)
    return times, series


# --- share links -----------------------------------------------------------------------------


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def share(
    pool: ConnectionPool, settings: Settings, user_id: int, job_id: int, *, ttl_s: float | None
) -> ShareLink:
    """A new read-only link to a completed result; any earlier link of it stops working."""
    token = secrets.token_urlsafe(32)
    with transaction(pool) as conn:
        _completed(job_db.select_job_for_user(conn, job_id, user_id), job_id)
        row = share_db.upsert_share(conn, job_id, token_hash=_hash(token), ttl_s=ttl_s)
    logger.info("event=result_shared job=%s expires=%s", job_id, row.expires_at)
    return ShareLink(f"{settings.public_url.rstrip('/')}/shared/{token}", row.expires_at)


def revoke(pool: ConnectionPool, user_id: int, job_id: int) -> None:
    with transaction(pool) as conn:
        if job_db.select_job_for_user(conn, job_id, user_id) is None:
            raise NotFoundError(f"no backtest {job_id}")
        if not share_db.delete_share(conn, job_id):
            raise NotFoundError(f"backtest {job_id} has no share link")
    logger.info("event=result_share_revoked job=%s", job_id)


def shared(pool: ConnectionPool, token: str) -> JobRow:
    """The result a share token opens; unknown, revoked and expired tokens are all 404."""
    with connection(pool) as conn:
        job_id = share_db.select_shared_job_id(conn, _hash(token))
        job = None if job_id is None else job_db.select_job(conn, job_id)
    if job is None or job.status != "completed" or job.result is None:
        raise NotFoundError("this link does not exist, was revoked, or has expired")
    return job
