"""The HTTP boundary: bodies and query strings in, models' JSON out (shapes in models.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import engine
from algotcha import engine_requests, models
from algotcha.engine_requests import PAYLOAD_FIELDS
from algotcha.errors import FieldError, ValidationError
from algotcha.models import camel, camel_keys
from algotcha.vocabulary import KIND_NAMES, NotifyChannel

if TYPE_CHECKING:
    # Imported where used: the local commands render results without psycopg or httpx.
    from algotcha.db.jobs import JobRow
    from algotcha.db.users import UserRow
    from algotcha.services import results, telegram_links
    from algotcha.services.job_events import EventId
    from algotcha.services.jobs import JobEvent, QueuedJob, QueueStats, ShownJob

TRADES_PAGE_MAX = models.TRADES_PAGE_MAX

# --- bodies and query strings --------------------------------------------------------------


def parse_register(body: bytes) -> models.Registration:
    return models.read(models.Registration, body)


def parse_login(body: bytes) -> models.Login:
    return models.read(models.Login, body)


def parse_profile(body: bytes) -> models.ProfileChange:
    return models.read(models.ProfileChange, body)


def parse_notify_choice(body: bytes) -> NotifyChannel | None:
    """An optional `{notifyVia}` body (empty means the default)."""
    if not body.strip():
        return None
    return models.read(models.NotifyChoice, body).notify_via


def parse_share(body: bytes) -> float | None:
    """{expiresInDays?} (1-365; none: the link lasts until revoked) -> seconds or None."""
    if not body.strip():
        return None
    days = models.read(models.ShareRequest, body).expires_in_days
    return None if days is None else days * 86_400


def parse_page(params: Mapping[str, str], *, max_limit: int = 100) -> tuple[int, int | None]:
    """?limit=&before= of the list routes."""
    errors = _unknown(params, "limit", "before")
    limit = _query_int(params, "limit", 1, max_limit, errors)
    before = _query_int(params, "before", 1, 2**63 - 1, errors)
    models.raise_if(errors)
    return (limit or 20), before


def _query_int(
    params: Mapping[str, str], name: str, low: int, high: int, errors: list[FieldError]
) -> int | None:
    """An optional whole-number query parameter in [low, high]; None when absent."""
    raw = params.get(name)
    if raw is None:
        return None
    if not _is_ascii_integer(raw) or not low <= int(raw) <= high:
        errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
        return None
    return int(raw)


def _unknown(params: Mapping[str, str], *known: str) -> list[FieldError]:
    """A parameter the route does not take is refused, as an unknown body field is: a
    misspelt `?limt=5` would otherwise be silently ignored."""
    return [
        FieldError(json.dumps(name)[1:-1], "is not a known parameter")
        for name in sorted(set(params) - set(known))
    ]


def parse_partial(params: Mapping[str, str]) -> bool:
    """?partial=1 of grid.csv (0, 1 or absent)."""
    models.raise_if(_unknown(params, "partial"))
    raw = params.get("partial", "0")
    if raw not in ("0", "1"):
        raise ValidationError.for_field("partial", "must be 0 or 1")
    return raw == "1"


def parse_id(raw: str) -> int:
    if not _is_ascii_integer(raw) or not 0 < int(raw) < 2**63:
        raise ValidationError.for_field("id", "must be a positive integer")
    return int(raw)


def _is_ascii_integer(raw: str) -> bool:
    # str.isdigit() is also true for "²" and "٣", which int() then refuses or reads otherwise;
    # the length cap keeps int() off a ten-thousand-digit string.
    return raw.isascii() and raw.isdigit() and len(raw) <= 20


def parse_index(raw: str) -> int:
    """A combination's index in a sweep: 0 or more."""
    if not _is_ascii_integer(raw) or int(raw) >= 2**31:
        raise ValidationError.for_field("index", "must be a whole number from 0")
    return int(raw)


def parse_compare_ids(params: Mapping[str, str]) -> list[int]:
    """?ids=1,2,3: two to six distinct backtest ids."""
    models.raise_if(_unknown(params, "ids"))
    raw = params.get("ids", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(_is_ascii_integer(p) and 0 < int(p) < 2**63 for p in parts):
        raise ValidationError.for_field("ids", "must be backtest ids separated by commas")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if not models.COMPARE_MIN <= len(ids) <= models.COMPARE_MAX:
        raise ValidationError.for_field(
            "ids",
            f"must name {models.COMPARE_MIN} to {models.COMPARE_MAX} different backtests "
            f"(got {len(ids)})",
        )
    return ids


def parse_trade_page(params: Mapping[str, str]) -> tuple[int, int]:
    """?after=&limit= of the trades route: (after, limit)."""
    errors = _unknown(params, "after", "limit")
    after = _query_int(params, "after", 0, 2**31 - 1, errors)
    limit = _query_int(params, "limit", 1, TRADES_PAGE_MAX, errors)
    models.raise_if(errors)
    return after or 0, limit or 100


_EVENT_ID = re.compile(r"([0-9]{1,18}):([0-9]{1,18})")


def parse_last_event_id(header: str | None) -> EventId | None:
    """The Last-Event-ID an EventSource sends back when it reconnects.

    None for anything this server did not write (another version, another client): the
    stream then starts afresh, as if no id had been sent, which is never wrong.
    """
    from algotcha.services.job_events import EventId

    match = _EVENT_ID.fullmatch(header.strip()) if header else None
    return None if match is None else EventId(int(match[1]), int(match[2]))


# --- rendering ---------------------------------------------------------------------------------


def render_job(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    """A BacktestQueue of API.md as lists show it (result null); a sweep adds combinations and
    combinationsDone, a walk-forward folds and foldsDone."""
    return _job_model(item, result=None).dump()


def render_job_with_result(item: QueuedJob[JobRow]) -> dict[str, Any]:
    """A BacktestQueue of API.md with its payload and result."""
    job = item.job
    result: dict[str, Any] | None
    if job.result is None:
        result = None
    elif job.kind == "backtest":
        result = render_result(job.result, f"/api/backtest/queue/{job.id}/trades")
    elif job.kind == "walk_forward":
        result = render_walkforward_document(job.result)
    else:
        result = render_sweep_document(job.result)
    return _job_model(item, payload=job.payload, result=result).dump()


def _job_model(item: QueuedJob[ShownJob], **detail: Any) -> models.BacktestQueue:
    job = item.job
    fields: dict[str, Any] = {}
    if job.kind == "sweep":
        fields.update(combinations=job.units, combinations_done=job.units_done)
    elif job.kind == "walk_forward":
        fields["folds"], fields["folds_done"] = walkforward_folds(job)
    return models.BacktestQueue(
        id=job.id,
        kind=KIND_NAMES[job.kind],
        strategy_name=job.strategy_name,
        symbol=job.symbol,
        timeframe=job.timeframe,
        status=job.status,
        queue_position=item.position,
        progress=job.progress,
        estimated_wait=item.wait_minutes,
        notify_via=job.notify_via,
        attempt=job.attempt,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        error=job.error,
        **fields,
        **detail,
    )


def render_position(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    return models.Position(
        id=item.job.id,
        status=item.job.status,
        queue_position=item.position,
        progress=item.job.progress,
        estimated_wait=item.wait_minutes,
    ).dump()


def render_job_event(event: JobEvent) -> dict[str, Any]:
    """The data of an event-stream event: the same fields as the position route."""
    return models.Position(
        id=event.job_id,
        status=event.status,
        queue_position=event.position,
        progress=event.progress,
        estimated_wait=event.wait_minutes,
    ).dump()


def render_accepted(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    job = item.job
    if job.kind == "sweep":
        return models.Accepted(
            queue_id=job.id,
            position=item.position,
            estimated_wait=item.wait_minutes,
            combinations=job.units,
        ).dump()
    return models.Accepted(
        queue_id=job.id, position=item.position, estimated_wait=item.wait_minutes
    ).dump()


def render_accepted_walkforward(
    item: QueuedJob[ShownJob], submission: engine_requests.WalkForwardSubmission
) -> dict[str, Any]:
    """render_accepted of a walk-forward: its folds, and the combinations each fold sweeps."""
    return models.Accepted(
        queue_id=item.job.id,
        position=item.position,
        estimated_wait=item.wait_minutes,
        combinations=submission.combinations,
        folds=submission.request.folds,
    ).dump()


def walkforward_folds(job: ShownJob) -> tuple[int, int]:
    """(folds, folds done) of a walk-forward job, whose units are its steps."""
    folds = job.folds or 0
    return folds, job.units_done * folds // (job.units or 1)


def render_stats(stats: QueueStats) -> dict[str, Any]:
    c = stats.counts
    return models.Stats(
        queued=c.queued,
        processing=c.processing,
        completed=c.completed,
        failed=c.failed,
        cancelled=c.cancelled,
        total_in_queue=c.queued + c.processing,
        workers=stats.workers,
        estimated_wait_minutes=stats.wait_minutes,
        sweep_seconds_per_combination_bar=stats.unit_bar_s,
    ).dump()


def render_registered(user: UserRow) -> dict[str, Any]:
    return models.Registered(id=user.id, email=user.email, name=user.name).dump()


def render_token(token: str, expires_in_s: int) -> dict[str, Any]:
    return models.Token(access_token=token, expires_in=expires_in_s).dump()


def render_user(user: UserRow) -> dict[str, Any]:
    return models.User(
        id=user.id,
        email=user.email,
        name=user.name,
        telegram_linked=user.telegram_chat_id is not None and not user.telegram_blocked,
        notify_via=user.notify_via,
    ).dump()


def render_dataset(info: engine.DatasetInfo) -> dict[str, Any]:
    source = info.source
    return models.Dataset(
        symbol=info.symbol,
        start=info.start,
        end=info.end,
        bars=info.bars,
        synthetic=source is not None and source.kind == "synthetic",
        source=None
        if source is None
        else models.DatasetSource(
            kind=source.kind,  # type: ignore[arg-type]
            files=list(source.files),
            url=source.url,
            updated_at=source.updated_at or None,
        ),
    ).dump()


def render_cancelled(job: JobRow) -> dict[str, Any]:
    return models.Cancelled(
        id=job.id, status=job.status, cancel_requested=job.cancel_requested
    ).dump()


# --- results: trades pages, exports, compare, share links ------------------------------------


def render_result(result: dict[str, Any], trades_path: str) -> dict[str, Any]:
    """A stored result: `trades` is its first page, `tradeCount` the number of trades, and
    `tradesNext` the link to the page after it (None when the first page holds them all)."""
    from algotcha.services import trade_log

    out: dict[str, Any] = camel_keys(result)
    if "trades" not in out:  # a result of another kind (a sweep's) has no trades to page
        return out
    trades = out["trades"] or []
    count = out.get("tradeCount")
    if count is None:  # stored before trades had their own table: the JSON holds them all
        count = out["tradeCount"] = len(trades)
        trades = out["trades"] = trades[: trade_log.FIRST_PAGE]
    shown = len(trades)
    following = f"{trades_path}?after={shown}&limit={TRADES_PAGE_MAX}"
    out["tradesNext"] = following if shown < count else None
    return out


def render_trade_page(page: results.TradePage, trades_path: str) -> dict[str, Any]:
    following = page.next_after
    return models.TradePage(
        count=page.count,
        after=page.after,
        trades=camel_keys(page.trades),
        next=None if following is None else f"{trades_path}?after={following}&limit={page.limit}",
    ).dump()


def render_comparison(comparison: results.Comparison) -> dict[str, Any]:
    return models.Comparison(
        runs=[
            models.ComparedRun(
                id=job.id,
                strategy_name=job.strategy_name,
                symbol=job.payload.get("symbol"),
                timeframe=job.payload.get("timeframe"),
                completed_at=job.completed_at,
            )
            for job in comparison.jobs
        ],
        metrics=[
            models.MetricRow(key=camel(row.key), values=row.values, best=row.best)
            for row in comparison.metrics
        ],
        settings=[
            models.SettingRow(key=row.key, values=row.values, differs=row.differs)
            for row in sorted(comparison.settings, key=_payload_order)
        ],
        equity=models.EquitySeries(t=comparison.times, series=comparison.equity),
    ).dump()


_PAYLOAD_ORDER = {name: n for n, name in enumerate(PAYLOAD_FIELDS)}


def _payload_order(row: results.SettingRow) -> int:
    """RunBacktestDto fields in API.md's order (a stored payload's JSONB sorts its keys)."""
    return _PAYLOAD_ORDER.get(row.key, len(_PAYLOAD_ORDER))


def render_share(link: results.ShareLink) -> dict[str, Any]:
    return models.Link(url=link.url, expires_at=link.expires_at).dump()


def render_shared(job: JobRow, token: str) -> dict[str, Any]:
    """A shared result: the run and its settings, nothing of the account that owns it."""
    assert job.result is not None
    return models.SharedResult(
        strategy_name=job.strategy_name,
        symbol=job.payload.get("symbol"),
        timeframe=job.payload.get("timeframe"),
        status=job.status,
        completed_at=job.completed_at,
        payload=job.payload,
        result=render_result(job.result, f"/api/shared/{token}/trades"),
    ).dump()


def render_telegram_link(link: telegram_links.Link) -> dict[str, Any]:
    return models.Link(url=link.url, expires_at=link.expires_at).dump()


def render_sweep(result: engine.SweepResult) -> dict[str, Any]:
    """A SweepResult of API.md: camelCase keys, parameter names as the user gave them."""
    return render_sweep_document(result.as_dict())


def render_sweep_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """render_sweep of a stored SweepResult.as_dict()."""
    out: dict[str, Any] = camel_keys({k: v for k, v in document.items() if k != "top"})
    out["objective"] = camel(document["objective"])
    out["top"] = [
        {
            "index": row["index"],
            "parameters": {name: _plain(value) for name, value in row["parameters"].items()},
            "inSample": camel_keys(row["in_sample"]),
            "outOfSample": camel_keys(row["out_of_sample"]),
        }
        for row in document["top"]
    ]
    return out


def _plain(value: float) -> float | int:
    """20.0 -> 20: grid values read as the user wrote them."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def render_walkforward(result: engine.walkforward.WalkForwardResult) -> dict[str, Any]:
    """API.md's walk-forward result: camelCase keys, parameter names as the user gave them."""
    return render_walkforward_document(result.as_dict())


def render_walkforward_document(stored: Mapping[str, Any]) -> dict[str, Any]:
    """render_walkforward of a stored WalkForwardResult.as_dict()."""
    document = dict(stored)
    folds = [dict(fold) for fold in document.pop("folds")]
    out: dict[str, Any] = camel_keys(document)
    out["folds"] = []
    for fold in folds:
        parameters = fold.pop("parameters")
        rendered = camel_keys(fold)
        rendered["parameters"] = (
            None
            if parameters is None
            else {name: _plain(value) for name, value in parameters.items()}
        )
        out["folds"].append(rendered)
    return out
