"""Register, login, profile and token checks through the live API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from algotcha.config import Settings
from tests.fixtures.app import token_for

pytestmark = pytest.mark.integration


def test_register_login_and_profile(client: httpx.Client) -> None:
    r = client.post(
        "/api/auth/register",
        json={"email": "ann@example.com", "password": "long enough", "name": "Ann"},
    )
    assert r.status_code == 201
    assert r.json() == {"id": r.json()["id"], "email": "ann@example.com", "name": "Ann"}

    login = client.post(
        "/api/auth/login", json={"email": "ANN@example.com", "password": "long enough"}
    )
    assert login.status_code == 200
    body = login.json()
    assert body["tokenType"] == "bearer" and body["expiresIn"] > 0

    headers = {"Authorization": f"Bearer {body['accessToken']}"}
    me = client.get("/api/me", headers=headers).json()
    assert me == {
        "id": r.json()["id"],
        "email": "ann@example.com",
        "name": "Ann",
        "telegramLinked": False,
        "notifyVia": "email",
    }
    patched = client.patch("/api/me", headers=headers, json={"notifyVia": "none", "name": "Annie"})
    assert patched.status_code == 200
    assert patched.json()["notifyVia"] == "none" and patched.json()["name"] == "Annie"


def test_register_refuses_a_taken_email_case_insensitively(client: httpx.Client) -> None:
    creds = {"email": "bob@example.com", "password": "long enough"}
    assert client.post("/api/auth/register", json=creds).status_code == 201
    again = client.post("/api/auth/register", json={**creds, "email": "Bob@Example.com"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "email"),
        ({"email": "c@example.com", "password": "short"}, "password"),
        ({"email": "c@example.com"}, "password"),
        ({"email": "c@example.com", "password": "long enough", "admin": True}, "admin"),
        ({"email": "c@example.com", "password": 12345678}, "password"),
    ],
)
def test_register_names_the_bad_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    r = client.post("/api/auth/register", json=body)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert r.json()["success"] is False


def test_login_with_a_wrong_password_is_401(client: httpx.Client, make_user: Any) -> None:
    make_user("dan@example.com")
    r = client.post("/api/auth/login", json={"email": "dan@example.com", "password": "wrong pass"})
    assert r.status_code == 401
    unknown = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 9}
    )
    assert unknown.status_code == 401
    assert r.json()["detail"] == unknown.json()["detail"]


def test_every_protected_route_wants_a_bearer_token(client: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/me"),
        ("PATCH", "/api/me"),
        ("POST", "/api/backtest/queue"),
        ("GET", "/api/backtest/queue/my"),
        ("GET", "/api/backtest/queue/1"),
        ("DELETE", "/api/backtest/queue/1"),
        ("GET", "/api/backtest/queue/position/1"),
        ("GET", "/api/backtest/queue/1/events"),
        ("GET", "/api/backtest/datasets"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"] == "application/problem+json"


def test_expired_and_foreign_tokens_are_401(
    client: httpx.Client, settings: Settings, make_user: Any
) -> None:
    user = make_user()
    expired = token_for(settings, user.id, jwt_ttl_s=-120)
    foreign = token_for(settings, user.id, jwt_secret="another secret that is long enough!!")
    for token in (expired, foreign, "not.a.token"):
        r = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


def test_stats_needs_no_token(client: httpx.Client) -> None:
    r = client.get("/api/backtest/queue/stats")
    assert r.status_code == 200
    assert set(r.json()) >= {
        "queued",
        "processing",
        "completed",
        "failed",
        "totalInQueue",
        "workers",
        "estimatedWaitMinutes",
    }
