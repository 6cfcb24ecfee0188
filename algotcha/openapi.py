"""The OpenAPI 3.1 document at /openapi.json, generated from algotcha/models.py and one table.

The table names each operation (path, method, operationId, summary, tags, request model,
responses); every schema in it comes from the models that validate and render the bodies.
tests/unit/algotcha/test_openapi.py holds the table to the routes the app mounts.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

import algotcha
from algotcha import models


@dataclass(frozen=True)
class Body:
    """A response body: a model (or a list of it), or another media type."""

    model: type[BaseModel] | None = None
    many: bool = False
    media_type: str = "application/json"
    description: str = "OK"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Body | None]  # None: no body
    errors: tuple[int, ...] = ()  # problem+json answers
    request: type[BaseModel] | None = None
    request_required: bool = True
    parameters: tuple[dict[str, Any], ...] = ()
    auth: bool = True
    description: str | None = None
    # A body whose shape is another's (Telegram's Update): described, not modelled.
    foreign_request: dict[str, Any] | None = None


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    return parameter | ({"description": description} if description else {})


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


# Path ids are ASCII digits below 2**63 (schemas.parse_id).
ID = _path("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
TOKEN = _path("token", {"type": "string"})
PAGE = (
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "20 when absent"),
    _query("before", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
)
TRADE_PAGE = (
    _query("after", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": models.TRADES_PAGE_MAX}),
)
CSV = "text/csv"
ACCEPTED = {202: Body(models.Accepted, description="Accepted")}
RESULT_ERRORS = (401, 404, 409, 422)


def _download(path: str, operation_id: str, summary: str, media_type: str) -> Operation:
    return Operation(
        "get",
        path,
        operation_id,
        summary,
        "results",
        {200: Body(media_type=media_type, description=summary)},
        RESULT_ERRORS,
        parameters=(ID,),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/auth/register",
        "register",
        "Create an account",
        "auth",
        {201: Body(models.Registered, description="Created")},
        (400, 409, 413, 422, 503),
        models.Registration,
        auth=False,
    ),
    Operation(
        "post",
        "/api/auth/login",
        "login",
        "Sign in: a bearer token",
        "auth",
        {200: Body(models.Token)},
        (400, 401, 413, 422, 429, 503),
        models.Login,
        auth=False,
    ),
    Operation(
        "get",
        "/api/me",
        "getProfile",
        "The caller's profile",
        "me",
        {200: Body(models.User)},
        (401,),
    ),
    Operation(
        "patch",
        "/api/me",
        "updateProfile",
        "Change the name or the notification channel",
        "me",
        {200: Body(models.User)},
        (400, 401, 413, 422),
        models.ProfileChange,
    ),
    Operation(
        "post",
        "/api/me/telegram/link",
        "linkTelegram",
        "A one-time link that connects a Telegram chat",
        "me",
        {200: Body(models.Link)},
        (401, 503),
    ),
    Operation(
        "delete",
        "/api/me/telegram",
        "unlinkTelegram",
        "Disconnect the Telegram chat",
        "me",
        {204: None},
        (401,),
    ),
    Operation(
        "post",
        "/api/telegram/webhook",
        "telegramWebhook",
        "Telegram updates (needs X-Telegram-Bot-Api-Secret-Token)",
        "telegram",
        {200: None},
        (401, 413, 503),
        parameters=(
            {
                "name": "X-Telegram-Bot-Api-Secret-Token",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            },
        ),
        auth=False,
        description="A Telegram Update; one this bot does not handle is acknowledged and dropped.",
        foreign_request={"type": "object"},
    ),
    Operation(
        "post",
        "/api/backtest/queue",
        "submitJob",
        "Queue a backtest, a parameter sweep or a walk-forward",
        "queue",
        ACCEPTED,
        (400, 401, 413, 422, 429, 503),
        models.SubmitRequest,
    ),
    Operation(
        "get",
        "/api/backtest/queue/stats",
        "queueStats",
        "Queue counts, workers and the wait estimate",
        "queue",
        {200: Body(models.Stats)},
        (503,),
        auth=False,
    ),
    Operation(
        "get",
        "/api/backtest/queue/my",
        "listMyJobs",
        "The caller's jobs, newest first",
        "queue",
        {200: Body(models.BacktestQueue, many=True)},
        (401, 422),
        parameters=PAGE,
    ),
    Operation(
        "get",
        "/api/backtest/queue/position/{id}",
        "getPosition",
        "A job's status, queue position and progress",
        "queue",
        {200: Body(models.Position)},
        (401, 404, 422),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/backtest/queue/{id}",
        "getJob",
        "One job with its payload and result",
        "queue",
        {200: Body(models.BacktestQueue)},
        (401, 404, 422),
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/backtest/queue/{id}",
        "cancelJob",
        "Cancel a queued job, or ask a running one to stop",
        "queue",
        {
            200: Body(models.Cancelled, description="Cancelled"),
            202: Body(models.Cancelled, description="The running job will stop"),
        },
        (401, 404, 409, 422),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/backtest/queue/{id}/grid.csv",
        "getSweepGrid",
        "Every combination of a sweep as CSV, streamed",
        "sweeps",
        {200: Body(media_type=CSV, description="index, parameters, is_<metric>, oos_<metric>")},
        RESULT_ERRORS,
        parameters=(
            ID,
            _query(
                "partial",
                {"enum": ["0", "1"]},
                "1: the rows of the chunks finished so far, at any status",
            ),
        ),
    ),
    Operation(
        "get",
        "/api/backtest/queue/{id}/folds.csv",
        "getWalkForwardFolds",
        "The folds table of a completed walk-forward",
        "sweeps",
        {200: Body(media_type=CSV, description="index, windows, chosen values, is_ and oos_")},
        RESULT_ERRORS,
        parameters=(ID,),
    ),
    Operation(
        "post",
        "/api/backtest/queue/{id}/combinations/{index}/backtest",
        "backtestCombination",
        "Queue one combination of a sweep as a backtest of its own",
        "sweeps",
        ACCEPTED,
        (400, 401, 404, 413, 422, 429, 503),
        models.NotifyChoice,
        request_required=False,
        parameters=(ID, _path("index", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1})),
    ),
    Operation(
        "get",
        "/api/backtest/queue/{id}/events",
        "followJob",
        "Status, position and progress as server-sent events",
        "queue",
        {
            200: Body(
                media_type="text/event-stream",
                description="Events named `status` (a Position each), one per change, "
                "with an id and a retry hint, until a final status",
            ),
            204: None,
        },
        (401, 404, 422),
        parameters=(
            ID,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "the id of the last event seen (`<revision>:<queueTick>`)",
                "schema": {"type": "string"},
            },
        ),
    ),
    Operation(
        "get",
        "/api/backtest/datasets",
        "listDatasets",
        "The symbols and date ranges a backtest can use",
        "queue",
        {200: Body(models.Dataset, many=True)},
        (401,),
    ),
    Operation(
        "get",
        "/api/backtest/compare",
        "compareResults",
        "Two to six completed backtests side by side",
        "results",
        {200: Body(models.Comparison)},
        RESULT_ERRORS,
        parameters=(
            {
                "name": "ids",
                "in": "query",
                "required": True,
                "description": f"{models.COMPARE_MIN} to {models.COMPARE_MAX} ids of the "
                "caller's completed backtests",
                "style": "form",
                "explode": False,
                "schema": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    "minItems": models.COMPARE_MIN,
                    "maxItems": models.COMPARE_MAX,
                    "uniqueItems": True,
                },
            },
        ),
    ),
    Operation(
        "get",
        "/api/backtest/queue/{id}/trades",
        "listTrades",
        "A page of a completed backtest's trades",
        "results",
        {200: Body(models.TradePage)},
        RESULT_ERRORS,
        parameters=(ID, *TRADE_PAGE),
    ),
    _download("/api/backtest/queue/{id}/trades.csv", "downloadTrades", "trades.csv", CSV),
    _download("/api/backtest/queue/{id}/equity.csv", "downloadEquity", "equity.csv", CSV),
    _download(
        "/api/backtest/queue/{id}/result.json",
        "downloadResult",
        "The result with every trade",
        "application/json",
    ),
    Operation(
        "post",
        "/api/backtest/queue/{id}/share",
        "shareResult",
        "A link that shows the result without signing in",
        "results",
        {201: Body(models.Link, description="Created")},
        (400, 401, 404, 409, 413, 422),
        models.ShareRequest,
        request_required=False,
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/backtest/queue/{id}/share",
        "unshareResult",
        "Revoke the share link",
        "results",
        {204: None},
        (401, 404, 422),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/shared/{token}",
        "getSharedResult",
        "A shared result",
        "results",
        {200: Body(models.SharedResult)},
        (404,),
        parameters=(TOKEN,),
        auth=False,
    ),
    Operation(
        "get",
        "/api/shared/{token}/trades",
        "listSharedTrades",
        "A page of a shared result's trades",
        "results",
        {200: Body(models.TradePage)},
        (404, 422),
        parameters=(TOKEN, *TRADE_PAGE),
        auth=False,
    ),
    Operation(
        "get",
        "/healthz",
        "liveness",
        "The process answers",
        "ops",
        {200: Body(models.Health)},
        auth=False,
    ),
    Operation(
        "get",
        "/readyz",
        "readiness",
        "The database and the broker answer",
        "ops",
        {200: Body(models.Readiness), 503: Body(models.Readiness, description="Not ready")},
        auth=False,
    ),
)


class _Schemas(GenerateJsonSchema):
    """Without pydantic's per-field titles ("Strategyname"): the property names say it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _components() -> tuple[dict[tuple[type[BaseModel], str], Any], dict[str, Any]]:
    inputs = {op.request for op in OPERATIONS if op.request is not None}
    outputs = {
        body.model
        for op in OPERATIONS
        for body in op.responses.values()
        if body is not None and body.model is not None
    }
    pairs = [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
    pairs += [
        (m, "serialization") for m in sorted(outputs | {models.Problem}, key=lambda m: m.__name__)
    ]
    refs, defs = models_json_schema(
        pairs,  # type: ignore[arg-type]
        ref_template="#/components/schemas/{model}",
        schema_generator=_Schemas,
    )
    return refs, defs.get("$defs", {})  # type: ignore[return-value]


def _content(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _operation(op: Operation, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    problem = {
        "description": "Problem (RFC 9457)",
        "content": _content("application/problem+json", refs[(models.Problem, "serialization")]),
    }
    responses: dict[str, Any] = {}
    for status, body in op.responses.items():
        if body is None:
            responses[str(status)] = {"description": "No content" if status == 204 else "OK"}
            continue
        schema: dict[str, Any] = {"type": "string"} if body.media_type != "application/json" else {}
        if body.model is not None:
            schema = refs[(body.model, "serialization")]
            schema = {"type": "array", "items": schema} if body.many else schema
        responses[str(status)] = {
            "description": body.description,
            "content": _content(body.media_type, schema),
        }
    responses |= {str(code): problem for code in op.errors}
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if op.auth:
        out["security"] = [{"bearer": []}]
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.request is not None:
        out["requestBody"] = {
            "required": op.request_required,
            "content": _content("application/json", refs[(op.request, "validation")]),
        }
    elif op.foreign_request is not None:
        out["requestBody"] = {
            "required": True,
            "content": _content("application/json", op.foreign_request),
        }
    return out


@functools.cache
def _paths() -> tuple[dict[str, Any], dict[str, Any]]:
    refs, schemas = _components()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return paths, schemas


def document(server_url: str) -> dict[str, Any]:
    paths, schemas = copy.deepcopy(_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Algotcha backtest queue", "version": algotcha.__version__},
        "servers": [{"url": server_url}],
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
