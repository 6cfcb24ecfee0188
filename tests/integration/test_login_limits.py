"""Failed logins are limited per account and per client address, counted in PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import psycopg
import pytest

from algotcha.config import Settings
from tests.fixtures.app import LiveServer
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"  # pragma: allowlist secret


def login(url: str, email: str, password: str, address: str = "198.51.100.1") -> httpx.Response:
    # The test servers trust 127.0.0.1 as a proxy (uvicorn's default), so this names the client.
    return httpx.post(
        f"{url}/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
        timeout=30,
    )


def register(url: str, email: str) -> None:
    r = httpx.post(f"{url}/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text


def assert_limited(response: httpx.Response, by: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    assert f"for this {by}" in response.json()["detail"]


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return replace(settings, login_failures_per_account=3, login_failures_per_address=5)


def test_an_account_is_locked_after_its_failures_even_for_the_right_password(
    limited: Settings,
) -> None:
    with LiveServer(limited) as api:
        register(api.url, "ann@example.com")
        for n in range(3):
            address = f"198.51.100.{n}"  # spread, so that only the account limit applies
            assert login(api.url, "ann@example.com", "wrong", address).status_code == 401
        assert_limited(login(api.url, "ANN@example.com", "wrong", "198.51.100.9"), "account")
        assert_limited(login(api.url, "ann@example.com", PASSWORD, "198.51.100.9"), "account")
        # Another account from the same address is not locked with it.
        register(api.url, "bob@example.com")
        assert login(api.url, "bob@example.com", PASSWORD, "198.51.100.9").status_code == 200


def test_an_address_is_limited_across_accounts_and_other_addresses_are_not(
    limited: Settings,
) -> None:
    with LiveServer(limited) as api:
        register(api.url, "ann@example.com")
        for n in range(5):
            assert (
                login(api.url, f"guess{n}@example.com", "wrong", "203.0.113.7").status_code == 401
            )
        assert_limited(login(api.url, "ann@example.com", PASSWORD, "203.0.113.7"), "address")
        assert login(api.url, "ann@example.com", PASSWORD, "203.0.113.8").status_code == 200


def test_the_limit_holds_across_api_processes(limited: Settings) -> None:
    with LiveServer(limited) as first, LiveServer(limited) as second:
        register(first.url, "ann@example.com")
        statuses = [
            login(server.url, "ann@example.com", "wrong", f"198.51.100.{n}").status_code
            for n, server in enumerate([first, second, first, second])
        ]
        assert statuses == [401, 401, 401, 429]


def test_a_concurrent_burst_gets_no_more_guesses_than_the_limit(
    limited: Settings, db: psycopg.Connection
) -> None:
    with LiveServer(limited) as api:
        register(api.url, "ann@example.com")
        with ThreadPoolExecutor(20) as pool:
            answers = list(
                pool.map(
                    lambda n: login(api.url, "ann@example.com", "wrong", f"198.51.100.{n}"),
                    range(20),
                )
            )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(401) <= 3, statuses
    assert set(statuses) <= {401, 429, 503}, statuses
    # Refused and busy attempts are not stored as guesses: the lockout does not grow.
    assert db.execute("SELECT count(*) FROM login_failure").fetchone() == (statuses.count(401),)


def test_a_success_clears_the_account_and_the_window_expires(settings: Settings) -> None:
    # Long enough for four hashes on a busy machine, short enough to wait out.
    short = replace(settings, login_failures_per_account=2, login_failure_window_s=8.0)
    with LiveServer(short) as api:
        register(api.url, "ann@example.com")
        assert login(api.url, "ann@example.com", "wrong").status_code == 401
        assert login(api.url, "ann@example.com", PASSWORD).status_code == 200
        assert login(api.url, "ann@example.com", "wrong").status_code == 401
        assert login(api.url, "ann@example.com", "wrong").status_code == 401
        assert_limited(login(api.url, "ann@example.com", PASSWORD), "account")
        wait_for(
            lambda: login(api.url, "ann@example.com", PASSWORD).status_code == 200,
            timeout_s=30,
            every_s=1.0,
            what="the window to pass",
        )
