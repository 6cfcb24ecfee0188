"""Bad input gets a problem+json naming the field, never a 500 and never a half-written job."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg
import pytest

from tests.fixtures.app import payload

pytestmark = pytest.mark.integration

NAN = float("nan")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"strategyName": ""}, "payload.strategyName"),
        ({"strategyName": "x" * 101}, "payload.strategyName"),
        ({"strategyName": 42}, "payload.strategyName"),
        ({"symbol": "NOPE"}, "payload.symbol"),
        ({"timeframe": "2h"}, "payload.timeframe"),
        ({"start": "yesterday"}, "payload.start"),
        ({"start": "2022-02-01T00:00:00Z", "end": "2022-01-01T00:00:00Z"}, "payload.start"),
        ({"start": "2030-01-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"}, "payload.start"),
        ({"initialCapital": 0}, "payload.initialCapital"),
        ({"initialCapital": -100}, "payload.initialCapital"),
        ({"initialCapital": "10000"}, "payload.initialCapital"),
        ({"initialCapital": True}, "payload.initialCapital"),
        ({"feeRate": 0.06}, "payload.feeRate"),
        ({"feeRate": -0.001}, "payload.feeRate"),
        ({"slippage": 0.5}, "payload.slippage"),
        ({"positionSize": 0}, "payload.positionSize"),
        ({"positionSize": 1.5}, "payload.positionSize"),
        ({"stopLoss": 1}, "payload.stopLoss"),
        ({"takeProfit": 0}, "payload.takeProfit"),
        ({"trailingStop": -0.1}, "payload.trailingStop"),
        ({"longEntry": None, "shortEntry": None}, "payload.longEntry"),
        ({"longEntry": "clsoe > 1"}, "payload.longEntry"),
        ({"longEntry": "close.__class__"}, "payload.longEntry"),
        ({"longExit": "close[0] > 1"}, "payload.longExit"),
        ({"shortEntry": "'a' == 'a'"}, "payload.shortEntry"),
        ({"longEntry": "close > 1 & close < 2"}, "payload.longEntry"),
        ({"longEntry": "sma(close, n=5) > 1"}, "payload.longEntry"),
        ({"longEntry": "1 < close < 2"}, "payload.longEntry"),
        ({"longEntry": "close ** 2 > 1"}, "payload.longEntry"),
        ({"longEntry": "close > " + " + ".join(["close"] * 300)}, "payload.longEntry"),
        ({"unknownField": 1}, "payload.unknownField"),
    ],
)
def test_bad_payload_is_422_naming_the_field(
    make_user: Any, db: psycopg.Connection, changes: dict[str, Any], field: str
) -> None:
    r = make_user().submit(**changes)
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["success"] is False and body["status"] == 422
    assert field in [e["field"] for e in body["errors"]], body
    assert db.execute("SELECT count(*) FROM backtest_job").fetchone() == (0,)


def test_a_rule_error_says_what_and_where(make_user: Any) -> None:
    r = make_user().submit(longEntry="clsoe > 1")
    error = r.json()["errors"][0]
    assert "clsoe" in error["message"] and "column 1" in error["message"]


def test_missing_parentheses_are_explained(make_user: Any) -> None:
    r = make_user().submit(longEntry="close > 1 & close < 2")
    assert "parenthes" in r.json()["errors"][0]["message"]


def test_nan_and_infinity_are_422(make_user: Any) -> None:
    user = make_user()
    for raw in (b"NaN", b"Infinity", b"-Infinity"):
        body = httpx.Request("POST", "/", json={"payload": payload()}).content.replace(
            b'"initialCapital":10000', b'"initialCapital":' + raw
        )
        r = user.client.post(
            "/api/backtest/queue", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, raw
        assert r.json()["errors"][0]["field"] == "payload.initialCapital"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"hello", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b'{"payload": ', 422),
        (b"[1, 2]", 422),
        (b'{"payload": {}, "notifyVia": "pigeon"}', 422),
        (b"{}", 422),
    ],
)
def test_bodies_that_are_not_right(make_user: Any, body: bytes, status: int) -> None:
    r = make_user().client.post(
        "/api/backtest/queue", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["success"] is False


def test_a_huge_body_is_413_declared_or_chunked(make_user: Any) -> None:
    user = make_user()
    big = b'{"payload": {"strategyName": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    r = user.client.post(
        "/api/backtest/queue", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["status"] == 413

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 4096

    chunked = user.client.post("/api/backtest/queue", content=chunks())
    assert chunked.status_code == 413


def test_sql_injection_and_unicode_are_stored_verbatim(
    make_user: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    names = ["'; DROP TABLE backtest_job; --", "Стратегия 🚀 <b>bold</b>", 'quote " and \\ slash']
    for name in names:
        job_id = user.submit(strategyName=name).json()["queueId"]
        assert user.client.get(f"/api/backtest/queue/{job_id}").json()["strategyName"] == name
    assert db.execute("SELECT count(*) FROM backtest_job").fetchone() == (3,)


def test_bad_ids_are_422_not_500(make_user: Any) -> None:
    user = make_user()
    for raw in ("abc", "-1", "0", "99999999999999999999999"):
        r = user.client.get(f"/api/backtest/queue/{raw}")
        assert r.status_code == 422, raw


def test_the_range_is_clipped_to_the_stored_data(make_user: Any) -> None:
    user = make_user()
    r = user.submit(start="2021-06-01T00:00:00Z", end="2030-01-01T00:00:00Z")
    assert r.status_code == 202
    job = user.client.get(r.headers["location"]).json()
    assert job["payload"]["start"] == "2022-01-01T00:00:00Z"


PASSWORD = "long enough"  # pragma: allowlist secret
NUL_AND_SURROGATES = ["a\x00b", "\ud800", "tail\udfff"]


@pytest.mark.parametrize("text", NUL_AND_SURROGATES)
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/api/backtest/queue",
            lambda t: {"payload": payload(strategyName=t)},
            "payload.strategyName",
        ),
        (
            "POST",
            "/api/backtest/queue",
            lambda t: {"payload": payload(longEntry=t)},
            "payload.longEntry",
        ),
        ("POST", "/api/backtest/queue", lambda t: {"payload": payload(symbol=t)}, "payload.symbol"),
        ("PATCH", "/api/me", lambda t: {"name": t}, "name"),
        (
            "POST",
            "/api/auth/register",
            lambda t: {"email": f"{t}@example.com", "password": PASSWORD},
            "email",
        ),
        (
            "POST",
            "/api/auth/login",
            lambda t: {"email": "a@example.com", "password": t},
            "password",
        ),
    ],
)
def test_nul_and_lone_surrogates_are_422_naming_the_field(
    make_user: Any,
    db: psycopg.Connection,
    text: str,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    user = make_user()
    # json.dumps escapes both as \u sequences, exactly as a JavaScript client sends them.
    content = json.dumps(body(text)).encode()
    r = user.client.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert db.execute("SELECT count(*) FROM backtest_job").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM app_user").fetchone() == (1,)


def test_a_key_with_nul_is_422_naming_it_escaped(make_user: Any) -> None:
    body = json.dumps({"payload": {**payload(), "x\x00y": 1}}).encode()
    r = make_user().client.post(
        "/api/backtest/queue", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["payload.x\\u0000y"]


@pytest.mark.parametrize("raw", ["²", "٣", "%C2%B2", "%00", "1%00", "9" * 400])
def test_ids_and_page_parameters_take_ascii_digits_only(make_user: Any, raw: str) -> None:
    user = make_user()
    for path in (
        f"/api/backtest/queue/{raw}",
        f"/api/backtest/queue/position/{raw}",
        f"/api/backtest/queue/{raw}/events",
    ):
        r = user.client.get(path)
        assert r.status_code == 422, (path, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["id"]
    assert user.client.delete(f"/api/backtest/queue/{raw}").status_code == 422
    for name in ("limit", "before"):
        r = user.client.get(f"/api/backtest/queue/my?{name}={raw}")
        assert r.status_code == 422, (name, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [name]
