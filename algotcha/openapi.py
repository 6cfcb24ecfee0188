"""The OpenAPI 3.1 document served at /openapi.json: the machine-readable copy of API.md."""

from __future__ import annotations

from typing import Any

import algotcha

_STATUS = ["queued", "processing", "completed", "failed", "cancelled"]
_NOTIFY = ["email", "telegram", "both", "none"]
_TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {
    "description": "Problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": _ref("Problem")}},
}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _PROBLEM for code in codes}


def _rule() -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": 1000}


def _fraction(
    exclusive_min: float = 0, maximum: float = 1, exclusive_max: bool = True
) -> dict[str, Any]:
    bound = "exclusiveMaximum" if exclusive_max else "maximum"
    return {"type": ["number", "null"], "exclusiveMinimum": exclusive_min, bound: maximum}


SCHEMAS: dict[str, Any] = {
    "Dataset": {
        "type": "object",
        "required": ["symbol", "start", "end", "bars", "synthetic", "source"],
        "properties": {
            "symbol": {"type": "string"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "bars": {"type": "integer", "minimum": 0},
            "synthetic": {"type": "boolean"},
            "source": {
                "type": ["object", "null"],
                "required": ["kind", "files", "url", "updatedAt"],
                "properties": {
                    "kind": {"enum": ["synthetic", "import", "download"]},
                    "files": {"type": "array", "items": {"type": "string"}},
                    "url": {"type": ["string", "null"]},
                    "updatedAt": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        },
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail", "success"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "success": {"const": False},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "RunBacktestDto": {
        "type": "object",
        "additionalProperties": False,
        "required": ["strategyName", "symbol", "timeframe", "start", "end", "initialCapital"],
        "properties": {
            "strategyName": {"type": "string", "minLength": 1, "maxLength": 100},
            "symbol": {"type": "string", "minLength": 1, "maxLength": 30},
            "timeframe": {"enum": _TIMEFRAMES},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "initialCapital": {"type": "number", "exclusiveMinimum": 0},
            "feeRate": {"type": "number", "minimum": 0, "maximum": 0.05},
            "slippage": {"type": "number", "minimum": 0, "maximum": 0.05},
            "positionSize": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "longEntry": _rule(),
            "longExit": _rule(),
            "shortEntry": _rule(),
            "shortExit": _rule(),
            "stopLoss": _fraction(),
            "takeProfit": _fraction(),
            "trailingStop": _fraction(),
        },
    },
    "SubmitRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "exactly one of payload (a backtest) and sweep (a parameter sweep; "
        "a walk-forward when it holds walkForward)",
        "properties": {
            "payload": _ref("RunBacktestDto"),
            "sweep": _ref("SweepRequest"),
            "notifyVia": {"enum": _NOTIFY, "description": "defaults to the profile's choice"},
        },
    },
    "SweepRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["payload", "parameters"],
        "properties": {
            "payload": {
                "type": "object",
                "description": "a RunBacktestDto whose rules may name the parameters",
            },
            "parameters": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 4,
                "additionalProperties": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["from", "to", "step"],
                            "properties": {
                                "from": {"type": "number"},
                                "to": {"type": "number"},
                                "step": {"type": "number", "exclusiveMinimum": 0},
                            },
                        },
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {"type": "number"},
                        },
                    ]
                },
            },
            "constraint": {"type": ["string", "null"], "maxLength": 1000},
            "objective": {
                "enum": ["totalReturn", "sharpe", "sortino", "calmar", "profitFactor", "expectancy"]
            },
            "minTrades": {"type": "integer", "minimum": 0},
            "outOfSample": {"type": "number", "minimum": 0, "maximum": 0.5},
            "walkForward": {
                "type": "object",
                "additionalProperties": False,
                "required": ["folds", "inSample"],
                "description": "makes the sweep a walk-forward (outOfSample is then ignored)",
                "properties": {
                    "folds": {"type": "integer", "minimum": 2, "maximum": 20},
                    "inSample": {"type": "number", "minimum": 0.5, "maximum": 0.9},
                    "anchored": {"type": "boolean", "default": False},
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "queueId": {"type": "integer"},
            "position": {"type": "integer", "minimum": 1},
            "estimatedWait": {"type": "integer", "minimum": 0, "description": "minutes"},
            "combinations": {
                "type": "integer",
                "description": "a sweep's (a walk-forward's per fold), after its constraint",
            },
            "folds": {"type": "integer", "description": "walk-forwards only"},
        },
    },
    "Position": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": _STATUS},
            "queuePosition": {"type": ["integer", "null"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "estimatedWait": {"type": ["integer", "null"]},
        },
    },
    "BacktestQueue": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": ["backtest", "sweep", "walkForward"]},
            "combinations": {"type": "integer", "description": "sweeps only"},
            "combinationsDone": {"type": "integer", "description": "sweeps only"},
            "folds": {"type": "integer", "description": "walk-forwards only"},
            "foldsDone": {"type": "integer", "description": "walk-forwards only"},
            "strategyName": {"type": "string"},
            "status": {"enum": _STATUS},
            "queuePosition": {"type": ["integer", "null"]},
            "progress": {"type": "integer"},
            "estimatedWait": {"type": ["integer", "null"]},
            "notifyVia": {"enum": _NOTIFY},
            "createdAt": {"type": "string", "format": "date-time"},
            "startedAt": {"type": ["string", "null"], "format": "date-time"},
            "completedAt": {"type": ["string", "null"], "format": "date-time"},
            "error": {"type": ["string", "null"]},
            "result": {"type": ["object", "null"]},
        },
    },
    "Stats": {
        "type": "object",
        "properties": {
            name: {"type": "integer"}
            for name in (
                "queued processing completed failed cancelled totalInQueue workers "
                "estimatedWaitMinutes"
            ).split()
        }
        | {"sweepSecondsPerCombinationBar": {"type": "number", "exclusiveMinimum": 0}},
    },
    "Credentials": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 8},
            "name": {"type": "string", "maxLength": 100},
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "telegramLinked": {"type": "boolean"},
            "notifyVia": {"enum": _NOTIFY},
        },
    },
    "TelegramLink": {
        "type": "object",
        "required": ["url", "expiresAt"],
        "properties": {
            "url": {
                "type": "string",
                "description": "one-time deep link https://t.me/<bot>?start=<token>",
            },
            "expiresAt": {"type": "string", "format": "date-time"},
        },
    },
    "ProfileChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "notifyVia": {"enum": _NOTIFY},
        },
    },
}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _paths() -> dict[str, Any]:
    body = _body
    return {
        "/api/auth/register": {
            "post": {
                "requestBody": body("Credentials"),
                "responses": {
                    "201": _json(_ref("User"), "Created"),
                    **_errors(400, 409, 413, 422, 503),
                },
            }
        },
        "/api/auth/login": {
            "post": {
                "requestBody": body("Credentials"),
                "responses": {
                    "200": _json({"type": "object", "required": ["accessToken"]}),
                    **_errors(400, 401, 413, 422, 429, 503),
                },
            }
        },
        "/api/me": {
            "get": {"security": _AUTH, "responses": {"200": _json(_ref("User")), **_errors(401)}},
            "patch": {
                "security": _AUTH,
                "requestBody": body("ProfileChange"),
                "responses": {"200": _json(_ref("User")), **_errors(400, 401, 413, 422)},
            },
        },
        "/api/me/telegram/link": {
            "post": {
                "security": _AUTH,
                "responses": {"200": _json(_ref("TelegramLink")), **_errors(401, 503)},
            }
        },
        "/api/me/telegram": {
            "delete": {
                "security": _AUTH,
                "responses": {"204": {"description": "Unlinked"}, **_errors(401)},
            }
        },
        "/api/telegram/webhook": {
            "post": {
                "description": "Telegram updates; needs X-Telegram-Bot-Api-Secret-Token",
                "parameters": [
                    {
                        "name": "X-Telegram-Bot-Api-Secret-Token",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {"description": "Handled or ignored"},
                    **_errors(401, 413, 503),
                },
            }
        },
        "/api/backtest/queue": {
            "post": {
                "security": _AUTH,
                "requestBody": body("SubmitRequest"),
                "responses": {
                    "202": _json(_ref("Accepted"), "Accepted"),
                    **_errors(400, 401, 413, 422, 429, 503),
                },
            }
        },
        "/api/backtest/queue/stats": {
            "get": {"responses": {"200": _json(_ref("Stats")), **_errors(503)}}
        },
        "/api/backtest/queue/my": {
            "get": {
                "security": _AUTH,
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("BacktestQueue")}),
                    **_errors(401, 422),
                },
            }
        },
        "/api/backtest/queue/position/{id}": {
            "get": {
                "security": _AUTH,
                "parameters": _ID,
                "responses": {"200": _json(_ref("Position")), **_errors(401, 404, 422)},
            }
        },
        "/api/backtest/queue/{id}": {
            "get": {
                "security": _AUTH,
                "parameters": _ID,
                "responses": {"200": _json(_ref("BacktestQueue")), **_errors(401, 404, 422)},
            },
            "delete": {
                "security": _AUTH,
                "parameters": _ID,
                "responses": {
                    "200": _json({"type": "object"}, "Cancelled"),
                    "202": _json({"type": "object"}, "The running job will stop"),
                    **_errors(401, 404, 409, 422),
                },
            },
        },
        "/api/backtest/queue/{id}/grid.csv": {
            "get": {
                "security": _AUTH,
                "parameters": [
                    *_ID,
                    {
                        "name": "partial",
                        "in": "query",
                        "required": False,
                        "description": "1: the rows of the chunks finished so far, at any status",
                        "schema": {"enum": ["0", "1"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "every combination of a completed sweep, streamed",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404, 409, 422),
                },
            }
        },
        "/api/backtest/queue/{id}/folds.csv": {
            "get": {
                "security": _AUTH,
                "parameters": _ID,
                "responses": {
                    "200": {
                        "description": "the folds table of a completed walk-forward",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404, 409, 422),
                },
            }
        },
        "/api/backtest/queue/{id}/combinations/{index}/backtest": {
            "post": {
                "security": _AUTH,
                "parameters": [
                    *_ID,
                    {
                        "name": "index",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"notifyVia": {"enum": _NOTIFY}},
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(_ref("Accepted"), "Accepted"),
                    **_errors(400, 401, 404, 413, 422, 429, 503),
                },
            }
        },
        "/api/backtest/queue/{id}/events": {
            "get": {
                "security": _AUTH,
                "parameters": [
                    *_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "the id of the last event seen (`<revision>:<queueTick>`)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Server-sent events named `status`, each with an id and "
                        "a retry hint, one per change, until a final status",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "204": {"description": "Last-Event-ID names the final state: nothing to send"},
                    **_errors(401, 404, 422),
                },
            }
        },
        "/api/backtest/datasets": {
            "get": {
                "security": _AUTH,
                "responses": {
                    "200": _json(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Dataset"}}
                    ),
                    **_errors(401),
                },
            }
        },
        "/healthz": {"get": {"responses": {"200": _json({"type": "object"})}}},
        "/readyz": {"get": {"responses": {"200": _json({"type": "object"}), **_errors(503)}}},
    }


_TRADE_PAGE = [
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
]
_TOKEN = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]


def _download(media_type: str, description: str) -> dict[str, Any]:
    return {
        "security": _AUTH,
        "parameters": _ID,
        "responses": {
            "200": {"description": description, "content": {media_type: {"schema": {}}}},
            **_errors(401, 404, 409, 422),
        },
    }


def _result_paths() -> dict[str, Any]:
    """Compare, trades pages, exports and share links (docs/api.md, "Results")."""
    page = _json({"type": "object", "required": ["count", "after", "trades", "next"]})
    return {
        "/api/backtest/compare": {
            "get": {
                "security": _AUTH,
                "parameters": [
                    {
                        "name": "ids",
                        "in": "query",
                        "required": True,
                        "description": "2 to 6 ids of the caller's completed backtests",
                        "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
                    }
                ],
                "responses": {"200": _json({"type": "object"}), **_errors(401, 404, 409, 422)},
            }
        },
        "/api/backtest/queue/{id}/trades": {
            "get": {
                "security": _AUTH,
                "parameters": _ID + _TRADE_PAGE,
                "responses": {"200": page, **_errors(401, 404, 409, 422)},
            }
        },
        "/api/backtest/queue/{id}/trades.csv": {"get": _download("text/csv", "trades.csv")},
        "/api/backtest/queue/{id}/equity.csv": {"get": _download("text/csv", "equity.csv")},
        "/api/backtest/queue/{id}/result.json": {
            "get": _download("application/json", "the result with every trade")
        },
        "/api/backtest/queue/{id}/share": {
            "post": {
                "security": _AUTH,
                "parameters": _ID,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "expiresInDays": {
                                        "type": "number",
                                        "minimum": 1,
                                        "maximum": 365,
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json({"type": "object", "required": ["url", "expiresAt"]}, "Created"),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
            "delete": {
                "security": _AUTH,
                "parameters": _ID,
                "responses": {"204": {"description": "Revoked"}, **_errors(401, 404, 422)},
            },
        },
        "/api/shared/{token}": {
            "get": {
                "parameters": _TOKEN,
                "responses": {"200": _json({"type": "object"}), **_errors(404)},
            }
        },
        "/api/shared/{token}/trades": {
            "get": {
                "parameters": _TOKEN + _TRADE_PAGE,
                "responses": {"200": page, **_errors(404, 422)},
            }
        },
    }


def document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Algotcha backtest queue", "version": algotcha.__version__},
        "servers": [{"url": server_url}],
        "paths": {**_paths(), **_result_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
