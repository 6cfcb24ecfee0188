"""Request and response shapes: strict JSON in, camelCase JSON out, field paths on every error."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import engine
from algotcha.db.jobs import JobRow
from algotcha.db.users import UserRow
from algotcha.errors import FieldError, MalformedJSONError, ValidationError
from algotcha.services import results, telegram_links, trade_log
from algotcha.services.job_events import EventId
from algotcha.services.jobs import JobEvent, QueuedJob, QueueStats, ShownJob

T = TypeVar("T")
NOTIFY_CHANNELS = ("email", "telegram", "both", "none")
_MISSING = object()


# --- parsing -------------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """Decode a request body strictly.

    A body that is not JSON at all (not UTF-8, or not starting like a JSON document) is a 400;
    a JSON document with a syntax error is a 422 that says where.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSONError(f"the body is not UTF-8 (byte {exc.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise MalformedJSONError("the body is empty; send a JSON object")
    if stripped[0] not in "{[":
        raise MalformedJSONError("the body is not JSON; send a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            errors=[FieldError("body", f"{exc.msg} at line {exc.lineno} column {exc.colno}")],
        ) from None
    except RecursionError:
        raise ValidationError.for_field("body", "nested too deeply") from None
    except ValueError:
        # Python refuses to read an integer of more than 4,300 digits (CVE-2020-10735).
        raise ValidationError.for_field("body", "holds a number with too many digits") from None
    # Both can only arrive as \u escapes: raw NUL is a JSON syntax error, and UTF-8 cannot
    # encode a surrogate, so a body without a backslash-u needs no walk.
    if "\\u" in text:
        _raise_if(unstorable_strings(value))
    return value


# NUL: PostgreSQL's text and jsonb refuse it. A lone surrogate: UTF-8 cannot encode it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(text: str) -> str | None:
    """Why PostgreSQL (text, jsonb) or any UTF-8 consumer cannot take `text`; None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain U+0000 (NUL)"
    return f"must not contain a lone surrogate (U+{ord(found.group()):04X})"


def unstorable_strings(value: Any, path: str = "") -> list[FieldError]:
    """Every string (object keys too) in a decoded JSON value that cannot be stored, by path."""
    errors: list[FieldError] = []
    # Iterative: nesting is bounded only by json's recursion limit, and the walk must not be.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = unstorable_text(item)
            if problem:
                errors.append(FieldError(where or "body", problem))
        elif isinstance(item, dict):
            for key, child in item.items():
                # The key goes into the path escaped, so the error itself stays printable.
                shown = json.dumps(key)[1:-1]
                child_path = f"{where}.{shown}" if where else shown
                problem = unstorable_text(key)
                if problem:
                    errors.append(FieldError(child_path, f"the key {problem}"))
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where or 'body'}[{i}]", child) for i, child in enumerate(item))
    return sorted(errors, key=lambda e: e.field)


class _Reader:
    """Takes typed fields out of one JSON object and collects every error with its path."""

    def __init__(self, obj: Any, path: str, errors: list[FieldError]) -> None:
        self.path, self.errors = path, errors
        self.obj: Mapping[str, Any] = obj if isinstance(obj, dict) else {}
        if not isinstance(obj, dict):
            errors.append(FieldError(path or "body", "must be a JSON object"))
        self.seen: set[str] = set()

    def field(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(
        self,
        name: str,
        parse: Callable[[Any], T],
        *,
        default: Any = _MISSING,
    ) -> T:
        self.seen.add(name)
        if name not in self.obj or (self.obj[name] is None and default is not _MISSING):
            if default is _MISSING:
                self.errors.append(FieldError(self.field(name), "is required"))
                return None  # type: ignore[return-value]
            return default  # type: ignore[no-any-return]
        try:
            return parse(self.obj[name])
        except ValueError as exc:
            self.errors.append(FieldError(self.field(name), str(exc)))
            return None  # type: ignore[return-value]

    def finish(self) -> None:
        for name in sorted(set(self.obj) - self.seen):
            self.errors.append(FieldError(self.field(name), "is not a known field"))


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise ValidationError(detail, errors=errors)


def _text(max_len: int, *, min_len: int = 0) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not min_len <= len(value) <= max_len:
            raise ValueError(f"must be {min_len} to {max_len} characters")
        return value

    return parse


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond 1.8e308
        raise ValueError("must be a finite number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return parse


def _optional(parse: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else parse(value)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time such as 2024-05-01T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time such as 2024-05-01T00:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address")
    return value.strip()


# --- backtest payload ------------------------------------------------------------------------

# camelCase payload field -> engine.BacktestRequest field, in API.md order
PAYLOAD_FIELDS = {
    "strategyName": "strategy_name",
    "symbol": "symbol",
    "timeframe": "timeframe",
    "start": "start",
    "end": "end",
    "initialCapital": "initial_capital",
    "feeRate": "fee_rate",
    "slippage": "slippage",
    "positionSize": "position_size",
    "longEntry": "long_entry",
    "longExit": "long_exit",
    "shortEntry": "short_entry",
    "shortExit": "short_exit",
    "stopLoss": "stop_loss",
    "takeProfit": "take_profit",
    "trailingStop": "trailing_stop",
}
_CAMEL = {snake: camel for camel, snake in PAYLOAD_FIELDS.items()}


def parse_payload(obj: Any, path: str = "payload") -> engine.BacktestRequest:
    """RunBacktestDto -> BacktestRequest; types here, ranges and rules in the engine."""
    errors: list[FieldError] = []
    r = _Reader(obj, path, errors)
    rule = _optional(_text(2000))
    fields: dict[str, Any] = {
        "strategy_name": r.take("strategyName", _text(100, min_len=1)),
        "symbol": r.take("symbol", _text(30, min_len=1)),
        "timeframe": r.take("timeframe", _choice(*engine.TIMEFRAMES)),
        "start": r.take("start", _timestamp),
        "end": r.take("end", _timestamp),
        "initial_capital": r.take("initialCapital", _number),
        "fee_rate": r.take("feeRate", _number, default=0.0),
        "slippage": r.take("slippage", _number, default=0.0),
        "position_size": r.take("positionSize", _number, default=1.0),
        "long_entry": r.take("longEntry", rule, default=None),
        "long_exit": r.take("longExit", rule, default=None),
        "short_entry": r.take("shortEntry", rule, default=None),
        "short_exit": r.take("shortExit", rule, default=None),
        "stop_loss": r.take("stopLoss", _optional(_number), default=None),
        "take_profit": r.take("takeProfit", _optional(_number), default=None),
        "trailing_stop": r.take("trailingStop", _optional(_number), default=None),
    }
    r.finish()
    _raise_if(errors)
    try:
        return engine.BacktestRequest(**fields)
    except engine.EngineError as exc:
        raise engine_error(exc, path) from None


def engine_error(exc: engine.EngineError, path: str = "payload") -> ValidationError:
    """An engine complaint about the user's input, as a 422 naming the payload field."""
    field = f"{path}.{_CAMEL.get(exc.field, exc.field)}" if exc.field else path
    message = str(exc)
    return ValidationError(f"{field}: {message}", errors=[FieldError(field, message)])


def payload_dict(request: engine.BacktestRequest) -> dict[str, Any]:
    """The canonical RunBacktestDto of a request, as stored with the job."""
    out: dict[str, Any] = {}
    for camel, snake in PAYLOAD_FIELDS.items():
        value = getattr(request, snake)
        out[camel] = iso(value) if isinstance(value, datetime) else value
    return out


@dataclass(frozen=True)
class SweepSubmission:
    """A sweep ready to queue: its JSON as validated (what the job stores and its chunks
    re-read), the engine's request with the payload checked against the data, its size."""

    document: dict[str, Any]
    request: engine.SweepRequest
    combinations: int
    unit_bars: int  # bars each combination runs over (an estimate from the data's metadata)


@dataclass(frozen=True)
class WalkForwardSubmission:
    """A walk-forward ready to plan (plan_walkforward) and queue, as SweepSubmission."""

    document: dict[str, Any]
    request: engine.WalkForwardRequest
    combinations: int


@dataclass(frozen=True)
class SubmitBody:
    """A backtest (`request`), a sweep (`sweep`) or a walk-forward (`walk_forward`, a sweep
    with walkForward): exactly one of them is set."""

    request: engine.BacktestRequest | None
    notify_via: str | None
    sweep: SweepSubmission | None = None
    walk_forward: WalkForwardSubmission | None = None


def parse_submit(
    body: bytes,
    store: engine.BarStore,
    *,
    max_combinations: int = engine.grid.MAX_COMBINATIONS,
) -> SubmitBody:
    """The queue's body, validated fully: types, ranges, rules, and the stored data range;
    `{payload}` queues a backtest, `{sweep}` a parameter sweep."""
    obj = parse_json(body)
    errors: list[FieldError] = []
    r = _Reader(obj, "", errors)
    notify_via = r.take("notifyVia", _choice(*NOTIFY_CHANNELS), default=None)
    raw_payload = r.take("payload", lambda v: v, default=None)
    raw_sweep = r.take("sweep", lambda v: v, default=None)
    r.finish()
    if (raw_payload is None) == (raw_sweep is None) and not errors:
        field = "payload" if raw_payload is None else "sweep"
        message = (
            "give payload (a backtest) or sweep (a parameter sweep)"
            if raw_payload is None
            else "give payload or sweep, not both"
        )
        errors.append(FieldError(field, message))
    _raise_if(errors)
    if isinstance(raw_sweep, dict) and "walkForward" in raw_sweep:
        walk_forward = parse_walkforward_submission(raw_sweep, store, max_combinations)
        return SubmitBody(None, notify_via, walk_forward=walk_forward)
    if raw_sweep is not None:
        return SubmitBody(
            None, notify_via, parse_sweep_submission(raw_sweep, store, max_combinations)
        )
    request = parse_payload(raw_payload)
    try:
        request = engine.check(request, store)
    except engine.EngineError as exc:
        raise engine_error(exc) from None
    return SubmitBody(request, notify_via)


def parse_sweep_submission(
    obj: Any, store: engine.BarStore, max_combinations: int
) -> SweepSubmission:
    """A sweep as the queue takes it: parsed, planned, its payload checked against the data."""
    request = parse_sweep(obj, max_combinations=max_combinations)
    try:
        base = engine.check(request.base, store)
        combinations = len(engine.grid.plan(request).combinations)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    request = dataclasses.replace(request, base=base)
    unit_bars = max(1, int((base.end - base.start) / base.bar_duration))
    return SweepSubmission(dict(obj), request, combinations, unit_bars)


def parse_walkforward_submission(
    obj: dict[str, Any], store: engine.BarStore, max_combinations: int
) -> WalkForwardSubmission:
    """A walk-forward as the queue takes it: parsed, planned, its payload checked against the
    data. Its folds are cut by plan_walkforward, off the event loop (it binds every
    combination's rules: 0.15 s for 1,000)."""
    request = parse_walkforward(obj, "sweep", max_combinations=max_combinations)
    try:
        base = engine.check(request.sweep.base, store)
        combinations = len(engine.grid.plan(request.sweep).combinations)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    request = dataclasses.replace(request, sweep=dataclasses.replace(request.sweep, base=base))
    return WalkForwardSubmission(dict(obj), request, combinations)


def plan_walkforward(submission: WalkForwardSubmission, store: engine.BarStore) -> tuple[int, int]:
    """(units, bars per unit) of a walk-forward over the bars its data should hold. Its units
    are the engine's steps (engine.walkforward.fold_units per fold: each in-sample combination,
    then the out-of-sample backtest), so progress and waits move within a fold; a unit's bars
    are its fold's (combinations x in-sample bars + out-of-sample bars) / fold_units. An
    out-of-sample window too short for the rules is a 422 naming sweep.walkForward.folds here,
    not a failed job later."""
    request = submission.request
    try:
        bars = engine.estimate_bars(request.sweep.base, store)
        folds = engine.walkforward.plan_folds(request, bars)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    in_sample = sum(end - first for first, end in (fold.in_sample for fold in folds))
    out_of_sample = sum(end - first for first, end in (fold.out_of_sample for fold in folds))
    steps = len(folds) * (submission.combinations + 1)
    return steps, max(1, round((submission.combinations * in_sample + out_of_sample) / steps))


def walkforward_folds(job: ShownJob) -> tuple[int, int]:
    """(folds, folds done) of a walk-forward job, whose units are its steps."""
    folds = job.folds or 0
    return folds, job.units_done * folds // (job.units or 1)


# --- auth and profile ------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str
    name: str


def parse_register(body: bytes) -> Credentials:
    errors: list[FieldError] = []
    r = _Reader(parse_json(body), "", errors)
    creds = Credentials(
        email=r.take("email", _email),
        password=r.take("password", _text(1024, min_len=8)),
        name=r.take("name", _text(100), default=""),
    )
    r.finish()
    _raise_if(errors)
    return creds


def parse_login(body: bytes) -> Credentials:
    errors: list[FieldError] = []
    r = _Reader(parse_json(body), "", errors)
    creds = Credentials(
        email=r.take("email", _text(254, min_len=1)),
        password=r.take("password", _text(1024, min_len=1)),
        name="",
    )
    r.finish()
    _raise_if(errors)
    return creds


@dataclass(frozen=True)
class ProfileChange:
    name: str | None
    notify_via: str | None


def parse_profile(body: bytes) -> ProfileChange:
    errors: list[FieldError] = []
    r = _Reader(parse_json(body), "", errors)
    change = ProfileChange(
        name=r.take("name", _text(100), default=None),
        notify_via=r.take("notifyVia", _choice(*NOTIFY_CHANNELS), default=None),
    )
    r.finish()
    _raise_if(errors)
    return change


def parse_page(params: Mapping[str, str], *, max_limit: int = 100) -> tuple[int, int | None]:
    """?limit=&before= of the list routes."""
    errors: list[FieldError] = []
    limit = _query_int(params, "limit", 1, max_limit, errors)
    before = _query_int(params, "before", 1, 2**63 - 1, errors)
    _raise_if(errors)
    return (limit or 20), before


def _query_int(
    params: Mapping[str, str], name: str, low: int, high: int, errors: list[FieldError]
) -> int | None:
    """An optional whole-number query parameter in [low, high]; None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _is_ascii_integer(raw) or not low <= int(raw) <= high:
        errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
        return None
    return int(raw)


def parse_partial(params: Mapping[str, str]) -> bool:
    """?partial=1 of grid.csv (0, 1 or absent)."""
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


def parse_notify_choice(body: bytes) -> str | None:
    """An optional `{notifyVia}` body (empty means the default)."""
    if not body.strip():
        return None
    errors: list[FieldError] = []
    r = _Reader(parse_json(body), "", errors)
    notify_via = r.take("notifyVia", _choice(*NOTIFY_CHANNELS), default=None)
    r.finish()
    _raise_if(errors)
    return notify_via


# --- rendering ---------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Cached: a result repeats a few dozen keys thousands of times (equity points, trades).
@functools.cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(k): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


# Job kinds as the API names them (API.md: kind is backtest, sweep or walkForward).
_KINDS = {"backtest": "backtest", "sweep": "sweep", "walk_forward": "walkForward"}


def render_job(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    """A BacktestQueue of API.md as lists show it (result null); a sweep adds combinations and
    combinationsDone, a walk-forward folds and foldsDone."""
    job = item.job
    out: dict[str, Any] = {
        "id": job.id,
        "kind": _KINDS[job.kind],
        "strategyName": job.strategy_name,
        "symbol": job.symbol,
        "timeframe": job.timeframe,
        "status": job.status,
        "queuePosition": item.position,
        "progress": job.progress,
        "estimatedWait": item.wait_minutes,
        "notifyVia": job.notify_via,
        "attempt": job.attempt,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "completedAt": iso(job.completed_at),
        "error": job.error,
        "result": None,
    }
    if job.kind == "sweep":
        out["combinations"] = job.units
        out["combinationsDone"] = job.units_done
    elif job.kind == "walk_forward":
        out["folds"], out["foldsDone"] = walkforward_folds(job)
    return out


def render_job_with_result(item: QueuedJob[JobRow]) -> dict[str, Any]:
    """A BacktestQueue of API.md with its payload and result."""
    job = item.job
    out = render_job(item)
    out["payload"] = job.payload
    if job.result is not None:
        if job.kind == "backtest":
            out["result"] = render_result(job.result, f"/api/backtest/queue/{job.id}/trades")
        elif job.kind == "walk_forward":
            out["result"] = render_walkforward_document(job.result)
        else:
            out["result"] = render_sweep_document(job.result)
    return out


def render_position(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    return {
        "id": item.job.id,
        "status": item.job.status,
        "queuePosition": item.position,
        "progress": item.job.progress,
        "estimatedWait": item.wait_minutes,
    }


def render_job_event(event: JobEvent) -> dict[str, Any]:
    """The data of an event-stream event: the same fields as the position route."""
    return {
        "id": event.job_id,
        "status": event.status,
        "queuePosition": event.position,
        "progress": event.progress,
        "estimatedWait": event.wait_minutes,
    }


_EVENT_ID = re.compile(r"([0-9]{1,18}):([0-9]{1,18})")


def parse_last_event_id(header: str | None) -> EventId | None:
    """The Last-Event-ID an EventSource sends back when it reconnects.

    None for anything this server did not write (another version, another client): the
    stream then starts afresh, as if no id had been sent, which is never wrong.
    """
    match = _EVENT_ID.fullmatch(header.strip()) if header else None
    return None if match is None else EventId(int(match[1]), int(match[2]))


def render_accepted(item: QueuedJob[ShownJob]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "success": True,
        "queueId": item.job.id,
        "position": item.position,
        "estimatedWait": item.wait_minutes,
    }
    if item.job.kind == "sweep":
        out["combinations"] = item.job.units
    return out


def render_accepted_walkforward(
    item: QueuedJob[ShownJob], submission: WalkForwardSubmission
) -> dict[str, Any]:
    """render_accepted of a walk-forward: its folds, and the combinations each fold sweeps."""
    folds = submission.request.folds
    return {**render_accepted(item), "folds": folds, "combinations": submission.combinations}


def render_stats(stats: QueueStats) -> dict[str, Any]:
    c = stats.counts
    return {
        "queued": c.queued,
        "processing": c.processing,
        "completed": c.completed,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "totalInQueue": c.queued + c.processing,
        "workers": stats.workers,
        "estimatedWaitMinutes": stats.wait_minutes,
        "sweepSecondsPerCombinationBar": stats.unit_bar_s,
    }


def render_user(user: UserRow) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "telegramLinked": user.telegram_chat_id is not None and not user.telegram_blocked,
        "notifyVia": user.notify_via,
    }


def render_dataset(info: engine.DatasetInfo) -> dict[str, Any]:
    source = info.source
    return {
        "symbol": info.symbol,
        "start": iso(info.start),
        "end": iso(info.end),
        "bars": info.bars,
        "synthetic": source is not None and source.kind == "synthetic",
        "source": None
        if source is None
        else {
            "kind": source.kind,
            "files": list(source.files),
            "url": source.url,
            "updatedAt": iso(source.updated_at) if source.updated_at else None,
        },
    }


def render_cancelled(job: JobRow) -> dict[str, Any]:
    return {"id": job.id, "status": job.status, "cancelRequested": job.cancel_requested}


# --- results: trades pages, exports, compare, share links ------------------------------------

TRADES_PAGE_MAX = 1000


def render_result(result: dict[str, Any], trades_path: str) -> dict[str, Any]:
    """A stored result: `trades` is its first page, `tradeCount` the number of trades, and
    `tradesNext` the link to the page after it (None when the first page holds them all)."""
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


def parse_trade_page(params: Mapping[str, str]) -> tuple[int, int]:
    """?after=&limit= of the trades route: (after, limit)."""
    errors: list[FieldError] = []
    after = _query_int(params, "after", 0, 2**31 - 1, errors)
    limit = _query_int(params, "limit", 1, TRADES_PAGE_MAX, errors)
    _raise_if(errors)
    return after or 0, limit or 100


def render_trade_page(page: results.TradePage, trades_path: str) -> dict[str, Any]:
    following = page.next_after
    return {
        "count": page.count,
        "after": page.after,
        "trades": camel_keys(page.trades),
        "next": None
        if following is None
        else f"{trades_path}?after={following}&limit={page.limit}",
    }


def parse_compare_ids(params: Mapping[str, str]) -> list[int]:
    """?ids=1,2,3: two to six distinct backtest ids."""
    raw = params.get("ids", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(_is_ascii_integer(p) and 0 < int(p) < 2**63 for p in parts):
        raise ValidationError.for_field("ids", "must be backtest ids separated by commas")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if not results.COMPARE_MIN <= len(ids) <= results.COMPARE_MAX:
        raise ValidationError.for_field(
            "ids",
            f"must name {results.COMPARE_MIN} to {results.COMPARE_MAX} different backtests "
            f"(got {len(ids)})",
        )
    return ids


def render_comparison(comparison: results.Comparison) -> dict[str, Any]:
    return {
        "runs": [
            {
                "id": job.id,
                "strategyName": job.strategy_name,
                "symbol": job.payload.get("symbol"),
                "timeframe": job.payload.get("timeframe"),
                "completedAt": iso(job.completed_at),
            }
            for job in comparison.jobs
        ],
        "metrics": [
            {"key": camel(row.key), "values": row.values, "best": row.best}
            for row in comparison.metrics
        ],
        "settings": [
            {"key": row.key, "values": row.values, "differs": row.differs}
            for row in sorted(comparison.settings, key=_payload_order)
        ],
        "equity": {"t": comparison.times, "series": comparison.equity},
    }


_PAYLOAD_ORDER = {name: n for n, name in enumerate(PAYLOAD_FIELDS)}


def _payload_order(row: results.SettingRow) -> int:
    """RunBacktestDto fields in API.md's order (a stored payload's JSONB sorts its keys)."""
    return _PAYLOAD_ORDER.get(row.key, len(_PAYLOAD_ORDER))


def parse_share(body: bytes) -> float | None:
    """{expiresInDays?} (1-365; none: the link lasts until revoked) -> seconds or None."""
    if not body.strip():
        return None
    errors: list[FieldError] = []
    r = _Reader(parse_json(body), "", errors)

    def days(value: Any) -> float:
        number = _number(value)
        if not 1 <= number <= 365:
            raise ValueError("must be a number of days from 1 to 365")
        return number

    expires_in_days = r.take("expiresInDays", days, default=None)
    r.finish()
    _raise_if(errors)
    return None if expires_in_days is None else expires_in_days * 86_400


def render_share(link: results.ShareLink) -> dict[str, Any]:
    return {"url": link.url, "expiresAt": iso(link.expires_at)}


def render_shared(job: JobRow, token: str) -> dict[str, Any]:
    """A shared result: the run and its settings, nothing of the account that owns it."""
    assert job.result is not None
    return {
        "strategyName": job.strategy_name,
        "symbol": job.payload.get("symbol"),
        "timeframe": job.payload.get("timeframe"),
        "status": job.status,
        "completedAt": iso(job.completed_at),
        "payload": job.payload,
        "result": render_result(job.result, f"/api/shared/{token}/trades"),
    }


# --- Telegram ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotCommand:
    """A command sent to the bot in a chat: /start <argument>, /status, ..."""

    update_id: int
    chat_id: int
    command: str  # "start", "status", ... lower-case, without the slash and any @botname
    argument: str


def parse_telegram_update(update: Any) -> BotCommand | None:
    """The command in one Telegram Update; None for anything else (never an error).

    Telegram retries updates it could not deliver, so a shape we do not handle is
    acknowledged and dropped, not refused.
    """
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    update_id = update.get("update_id")
    if not isinstance(message, dict) or not isinstance(update_id, int):
        return None
    chat = message.get("chat")
    text = message.get("text")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not isinstance(chat_id, int) or isinstance(chat_id, bool) or not isinstance(text, str):
        return None
    if not text.startswith("/"):
        return None
    head, _, rest = text.strip().partition(" ")
    command = head[1:].split("@", 1)[0].lower()
    return BotCommand(update_id, chat_id, command, rest.strip())


def parse_telegram_webhook(body: bytes) -> BotCommand | None:
    """A webhook body: malformed JSON is ignored like any other update we do not handle."""
    try:
        update = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if unstorable_strings(update):
        return None
    return parse_telegram_update(update)


def render_telegram_link(link: telegram_links.Link) -> dict[str, Any]:
    return {"url": link.url, "expiresAt": iso(link.expires_at)}


# --- sweep request ---------------------------------------------------------------------------

# camelCase objective -> engine objective (a metric key)
SWEEP_OBJECTIVES = {camel(name): name for name in engine.grid.OBJECTIVES}
_RULE_PAYLOAD_FIELDS = ("longEntry", "longExit", "shortEntry", "shortExit")


def parse_sweep(
    obj: Any, path: str = "sweep", *, max_combinations: int = engine.grid.MAX_COMBINATIONS
) -> engine.SweepRequest:
    """SweepRequest JSON -> engine.SweepRequest, its grid planned (so a constraint that leaves
    nothing, or a value that breaks a rule, is a 422 here); types here, meaning in the engine."""
    errors: list[FieldError] = []
    r = _Reader(obj, path, errors)
    payload = r.take("payload", _object)
    raw_parameters = r.take("parameters", _object)
    constraint = r.take("constraint", _optional(_text(1000, min_len=1)), default=None)
    objective = r.take("objective", _choice(*SWEEP_OBJECTIVES), default="sharpe")
    min_trades = r.take("minTrades", _whole, default=10)
    out_of_sample = r.take("outOfSample", _number, default=0.3)
    r.finish()
    _raise_if(errors)
    parameters: dict[str, tuple[float, ...]] = {}
    for name, spec in raw_parameters.items():
        values = _parameter_values(spec, f"{path}.parameters.{name}", errors)
        if values is not None:
            parameters[str(name)] = values
    _raise_if(errors)
    texts = {
        PAYLOAD_FIELDS[key]: payload[key]
        for key in _RULE_PAYLOAD_FIELDS
        if isinstance(payload.get(key), str)
    }
    try:
        engine.grid.check_grid(texts, parameters)
        first = {name: values[0] for name, values in parameters.items()}
        # The payload with each parameter at its first value parses as an ordinary backtest.
        bound = dict(payload)
        for key in _RULE_PAYLOAD_FIELDS:
            if PAYLOAD_FIELDS[key] in texts:
                template = engine.rules.template(texts[PAYLOAD_FIELDS[key]], frozenset(first))
                bound[key] = template.bind(first)
        bound.update({name: first[name] for name in first if name in PAYLOAD_FIELDS})
        base = parse_payload(bound, f"{path}.payload")
        request = engine.SweepRequest(
            base,
            texts,
            parameters,
            constraint,
            SWEEP_OBJECTIVES[objective],
            min_trades,
            out_of_sample,
            max_combinations,
        )
        engine.grid.plan(request)
    except engine.EngineError as exc:
        raise sweep_error(exc, path) from None
    return request


def sweep_error(exc: engine.EngineError, path: str = "sweep") -> ValidationError:
    """An engine complaint about a sweep, as a 422 naming the sweep or payload field."""
    under = f"{path}." if path else ""  # a walk-forward file is read from its root
    if exc.field is None:
        field = path or "body"
    elif exc.field in _CAMEL:
        field = f"{under}payload.{_CAMEL[exc.field]}"
    elif exc.field.startswith("parameters"):
        field = f"{under}{exc.field}"  # parameter names are the user's, never re-cased
    else:
        field = under + ".".join(camel(part) for part in exc.field.split("."))
    message = str(exc)
    return ValidationError(f"{field}: {message}", errors=[FieldError(field, message)])


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


def _parameter_values(spec: Any, field: str, errors: list[FieldError]) -> tuple[float, ...] | None:
    """A parameter's values from a list of numbers or {from, to, step}; None after an error."""
    if isinstance(spec, list):
        if not 1 <= len(spec) <= engine.grid.MAX_VALUES:
            errors.append(FieldError(field, f"must list 1 to {engine.grid.MAX_VALUES:,} numbers"))
            return None
        values = []
        for position, item in enumerate(spec):
            try:
                values.append(_number(item))
            except ValueError as exc:
                errors.append(FieldError(f"{field}[{position}]", str(exc)))
        return tuple(values) if len(values) == len(spec) else None
    if not isinstance(spec, dict):
        errors.append(FieldError(field, "must be {from, to, step} or a list of numbers"))
        return None
    count = len(errors)
    r = _Reader(spec, field, errors)
    start = r.take("from", _number)
    stop = r.take("to", _number)
    step = r.take("step", _number)
    r.finish()
    if len(errors) > count:
        return None
    name = field.rsplit(".parameters.", 1)[-1]
    try:
        return engine.grid.expand(name, start, stop, step)
    except engine.DataError as exc:
        where = field + (exc.field or "").removeprefix(f"parameters.{name}")
        errors.append(FieldError(where, str(exc)))
        return None


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


def render_grid_csv(result: engine.SweepResult) -> str:
    """Every combination: index, the parameter names, then is_<metric> and oos_<metric>."""
    names = list(result.rows[0].parameters) if result.rows else []
    return "".join(grid_csv_lines(names, (row.as_dict() for row in result.rows)))


def grid_csv_lines(names: list[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The grid CSV line by line from rows shaped as SweepRow.as_dict() (daily returns
    not needed), so a stored grid streams without being held whole."""
    keys = engine.sweep.SUMMARY_KEYS
    header = ["index", *names]
    header += [f"is_{camel(key)}" for key in keys] + [f"oos_{camel(key)}" for key in keys]
    yield ",".join(header) + "\n"
    for row in rows:
        cells = [str(row["index"])] + [f"{row['parameters'][name]:g}" for name in names]
        for summary in (row["in_sample"], row["out_of_sample"]):
            cells += [_csv_number(None if summary is None else summary[k]) for k in keys]
        yield ",".join(cells) + "\n"


def _csv_number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


# --- walk-forward request ----------------------------------------------------------------------


def parse_walkforward(
    obj: Any, path: str = "", *, max_combinations: int = engine.grid.MAX_COMBINATIONS
) -> engine.walkforward.WalkForwardRequest:
    """A SweepRequest plus walkForward {folds, inSample, anchored} -> the engine's request;
    its outOfSample is ignored (each fold holds its own out-of-sample window)."""
    errors: list[FieldError] = []
    sweep_fields = dict(obj) if isinstance(obj, dict) else obj
    spec = sweep_fields.pop("walkForward", None) if isinstance(sweep_fields, dict) else None
    where = f"{path}.walkForward" if path else "walkForward"
    if spec is None:
        raise ValidationError.for_field(where, "is required: {folds, inSample, anchored}")
    r = _Reader(spec, where, errors)
    folds = r.take("folds", _whole)
    in_sample = r.take("inSample", _number)
    anchored = r.take("anchored", _boolean, default=False)
    r.finish()
    _raise_if(errors)
    sweep = parse_sweep(sweep_fields, path, max_combinations=max_combinations)
    try:
        return engine.walkforward.WalkForwardRequest(sweep, folds, in_sample, anchored)
    except engine.EngineError as exc:
        raise sweep_error(exc, path) from None


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


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


def folds_csv_lines(names: list[str], folds: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The folds table line by line from folds shaped as a stored walk-forward result's:
    index, the window bounds, the chosen values (empty for a fold with no valid
    combination), is_<metric> and oos_<metric>, then the fold's status."""
    keys = engine.sweep.SUMMARY_KEYS
    windows = ("in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end")
    header = ["index", *(camel(key) for key in windows), *names]
    header += [f"is_{camel(key)}" for key in keys] + [f"oos_{camel(key)}" for key in keys]
    yield ",".join([*header, "status"]) + "\n"
    for fold in folds:
        chosen = fold["parameters"] or {}
        cells = [str(fold["index"]), *(str(fold[key]) for key in windows)]
        cells += [f"{chosen[name]:g}" if name in chosen else "" for name in names]
        for summary in (fold["in_sample"], fold["out_of_sample"]):
            cells += [_csv_number(None if summary is None else summary[k]) for k in keys]
        yield ",".join([*cells, fold["status"]]) + "\n"
