"""Real answers of every kind (not only errors) match the schemas /openapi.json gives them."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import checks

from algotcha import openapi
from tests.fixtures.app import payload

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_dict(openapi.document("http://127.0.0.1"))
CONFORMANCE = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
SWEEP = {
    "payload": payload(longEntry="crossover(sma(close, fast), sma(close, 50))"),
    "parameters": {"fast": {"from": 5, "to": 20, "step": 5}},
}


def conforms(response: httpx.Response, method: str, template: str) -> Any:
    """The response, checked against the operation `method template` of the document."""
    assert response.status_code < 400, response.text
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    matched = re.fullmatch(pattern, response.request.url.path)
    assert matched is not None, (template, response.request.url.path)
    case = schema[template][method].Case(path_parameters=matched.groupdict())
    case.validate_response(response, checks=CONFORMANCE)
    return response.json() if "json" in response.headers.get("content-type", "") else None


def test_a_users_answers_conform(make_user: Any, completed: Any, client: httpx.Client) -> None:
    user = make_user()
    api = user.client
    conforms(api.get("/api/me"), "GET", "/api/me")
    conforms(api.patch("/api/me", json={"name": "N", "notifyVia": "none"}), "PATCH", "/api/me")
    conforms(api.get("/api/backtest/datasets"), "GET", "/api/backtest/datasets")
    finished = [completed(user), completed(user, strategyName="second")]
    queued = conforms(user.submit(), "POST", "/api/backtest/queue")["queueId"]
    sweep = api.post("/api/backtest/queue", json={"sweep": SWEEP, "notifyVia": "none"})
    assert conforms(sweep, "POST", "/api/backtest/queue")["combinations"] == 4
    conforms(api.get(f"/api/backtest/queue/{queued}"), "GET", "/api/backtest/queue/{id}")
    job = conforms(api.get(f"/api/backtest/queue/{finished[0]}"), "GET", "/api/backtest/queue/{id}")
    assert job["status"] == "completed" and job["result"]["tradeCount"] >= 0
    listed = conforms(api.get("/api/backtest/queue/my"), "GET", "/api/backtest/queue/my")
    assert {item["kind"] for item in listed} == {"backtest", "sweep"}
    path = "/api/backtest/queue/position/{id}"
    conforms(api.get(f"/api/backtest/queue/position/{queued}"), "GET", path)
    conforms(client.get("/api/backtest/queue/stats"), "GET", "/api/backtest/queue/stats")
    trades = f"/api/backtest/queue/{finished[0]}/trades?limit=2"
    conforms(api.get(trades), "GET", "/api/backtest/queue/{id}/trades")
    ids = ",".join(map(str, finished))
    conforms(api.get(f"/api/backtest/compare?ids={ids}"), "GET", "/api/backtest/compare")
    share = api.post(f"/api/backtest/queue/{finished[0]}/share", json={"expiresInDays": 2})
    token = conforms(share, "POST", "/api/backtest/queue/{id}/share")["url"].rsplit("/", 1)[-1]
    conforms(client.get(f"/api/shared/{token}"), "GET", "/api/shared/{token}")
    conforms(client.get(f"/api/shared/{token}/trades"), "GET", "/api/shared/{token}/trades")
    cancelled = api.delete(f"/api/backtest/queue/{queued}")
    assert conforms(cancelled, "DELETE", "/api/backtest/queue/{id}")["status"] == "cancelled"
    conforms(client.get("/healthz"), "GET", "/healthz")
    conforms(client.get("/readyz"), "GET", "/readyz")
