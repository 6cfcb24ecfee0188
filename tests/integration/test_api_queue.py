"""The queue routes through the live API, real PostgreSQL and real RabbitMQ (no worker)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import JsonbLoader

from algotcha import schemas
from algotcha.config import Settings
from algotcha.db import jobs as job_db
from algotcha.db import workers as worker_db
from algotcha.services import jobs
from tests.fixtures.app import LiveServer, free_port, payload

pytestmark = pytest.mark.integration

# The two monitoring queries of the original deployment guide, to the letter.
RECENT_JOBS = """SELECT id, "userId", "strategyName", status, 
       "createdAt", "startedAt", "completedAt"
FROM "BacktestQueue"
ORDER BY "createdAt" DESC
LIMIT 20;"""
ACTIVE_JOBS = """SELECT * FROM "BacktestQueue"
WHERE status IN ('queued', 'processing')
ORDER BY "createdAt" ASC;"""


def test_submit_answers_202_with_location_and_position(make_user: Any) -> None:
    user = make_user()
    r = user.submit()
    assert r.status_code == 202
    body = r.json()
    assert body["success"] is True and body["position"] == 1
    assert isinstance(body["estimatedWait"], int)
    assert r.headers["location"] == f"/api/backtest/queue/{body['queueId']}"

    job = user.client.get(r.headers["location"]).json()
    assert job["status"] == "queued" and job["queuePosition"] == 1 and job["progress"] == 0
    assert job["strategyName"] == "SMA cross" and job["notifyVia"] == "none"
    assert job["createdAt"].endswith("Z") and job["startedAt"] is None and job["result"] is None


def test_positions_are_one_two_three_across_users(make_user: Any) -> None:
    ann, bob = make_user(), make_user()
    ids = [
        ann.submit().json()["queueId"],
        bob.submit().json()["queueId"],
        ann.submit().json()["queueId"],
    ]
    owners = [ann, bob, ann]
    positions = [
        o.client.get(f"/api/backtest/queue/position/{i}").json()["queuePosition"]
        for o, i in zip(owners, ids, strict=True)
    ]
    assert positions == [1, 2, 3]

    ann.client.delete(f"/api/backtest/queue/{ids[0]}")
    assert bob.client.get(f"/api/backtest/queue/position/{ids[1]}").json()["queuePosition"] == 1
    assert ann.client.get(f"/api/backtest/queue/position/{ids[2]}").json()["queuePosition"] == 2


def test_another_users_job_is_404_on_every_route(make_user: Any) -> None:
    owner, other = make_user(), make_user()
    job_id = owner.submit().json()["queueId"]
    for method, path in [
        ("GET", f"/api/backtest/queue/{job_id}"),
        ("GET", f"/api/backtest/queue/position/{job_id}"),
        ("DELETE", f"/api/backtest/queue/{job_id}"),
        ("GET", f"/api/backtest/queue/{job_id}/events"),
    ]:
        theirs = other.client.request(method, path)
        missing = other.client.request(method, path.replace(str(job_id), "999999"))
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.json()["detail"].replace(str(job_id), "N") == missing.json()[
            "detail"
        ].replace("999999", "N")
    assert owner.client.get(f"/api/backtest/queue/{job_id}").json()["status"] == "queued"


def test_cancel_a_queued_job_then_409(make_user: Any) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    r = user.client.delete(f"/api/backtest/queue/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    job = user.client.get(f"/api/backtest/queue/{job_id}").json()
    assert job["status"] == "cancelled" and job["queuePosition"] is None
    again = user.client.delete(f"/api/backtest/queue/{job_id}")
    assert again.status_code == 409


def test_my_jobs_are_newest_first_and_paginated(make_user: Any) -> None:
    user = make_user()
    ids = []
    for n in range(4):
        ids.append(user.submit(strategyName=f"s{n}").json()["queueId"])
        if n == 1:
            user.client.delete(f"/api/backtest/queue/{ids[0]}")
    page = user.client.get("/api/backtest/queue/my", params={"limit": 2}).json()
    assert [j["id"] for j in page] == [ids[3], ids[2]]
    rest = user.client.get("/api/backtest/queue/my", params={"limit": 2, "before": ids[2]}).json()
    assert [j["id"] for j in rest] == [ids[1], ids[0]]
    assert [j["queuePosition"] for j in page + rest] == [3, 2, 1, None]
    bad = user.client.get("/api/backtest/queue/my", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "limit"


def test_the_list_reads_no_result_or_payload_and_shows_jobs_as_the_full_row_does(
    make_user: Any, db: psycopg.Connection, settings: Settings
) -> None:
    user = make_user()
    done = user.submit(strategyName="done").json()["queueId"]
    sweep = {
        "payload": payload(longEntry="crossover(sma(close, fast), sma(close, 50))"),
        "parameters": {"fast": [10, 20]},
        "minTrades": 1,
    }
    swept = user.client.post("/api/backtest/queue", json={"sweep": sweep, "notifyVia": "none"})
    waiting = user.submit(strategyName="waiting", timeframe="4h").json()["queueId"]
    worker_db.insert_worker(db, "w-list", "host", 1)
    claimed = job_db.claim_next_job(db, "w-list")
    assert claimed is not None and claimed.id == done
    trades = [{"n": n, "note": "x" * 100} for n in range(40_000)]  # about 5 MB of JSON
    job_db.update_job_finished(
        db, done, "w-list", status="completed", result={"trades": trades, "metrics": {}}
    )

    loaded: list[int] = []

    class Recording(JsonbLoader):
        def load(self, data: Any) -> Any:
            loaded.append(len(data))
            return super().load(data)

    with psycopg.connect(settings.require_database_url()) as conn:
        conn.adapters.register_loader("jsonb", Recording)
        rows = job_db.select_jobs_for_user(conn, user.id, limit=50, before=None)
    assert loaded == []  # neither a result nor a payload came over the wire
    ids = [waiting, swept.json()["queueId"], done]
    assert [(r.id, r.symbol, r.timeframe) for r in rows] == [
        (ids[0], "SYNTH", "4h"),
        (ids[1], "SYNTH", "1h"),
        (ids[2], "SYNTH", "1h"),
    ]

    listed = user.client.get("/api/backtest/queue/my").json()
    whole = []
    for job_id in ids:
        row = job_db.select_job(db, job_id)
        assert row is not None
        place = user.client.get(f"/api/backtest/queue/position/{job_id}").json()
        whole.append(
            schemas.render_job(jobs.QueuedJob(row, place["queuePosition"], place["estimatedWait"]))
        )
    assert listed == whole
    assert [(j["kind"], j["status"], j["result"]) for j in listed] == [
        ("backtest", "queued", None),
        ("sweep", "queued", None),
        ("backtest", "completed", None),
    ]
    assert listed[1]["combinations"] == 2 and "payload" not in listed[2]


def test_the_per_user_queue_limit_is_429_with_retry_after(
    make_user: Any, settings: Settings
) -> None:
    user = make_user()
    for _ in range(settings.max_queued_per_user):
        assert user.submit().status_code == 202
    r = user.submit()
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert make_user().submit().status_code == 202  # others are not affected


def test_stats_count_the_queue(make_user: Any, client: httpx.Client) -> None:
    user = make_user()
    for _ in range(3):
        user.submit()
    stats = client.get("/api/backtest/queue/stats").json()
    assert stats["queued"] == 3 and stats["totalInQueue"] == 3 and stats["processing"] == 0
    assert stats["estimatedWaitMinutes"] >= 1


def test_datasets_list_the_store(make_user: Any) -> None:
    datasets = make_user().client.get("/api/backtest/datasets").json()
    assert [d["symbol"] for d in datasets] == ["SYNTH"]
    assert datasets[0]["bars"] == 60 * 24 * 60
    assert datasets[0]["start"] == "2022-01-01T00:00:00Z"
    assert datasets[0]["synthetic"] is True
    assert datasets[0]["source"]["kind"] == "synthetic" and datasets[0]["source"]["files"] == []


def test_the_original_monitoring_queries_run_verbatim(
    make_user: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    user.submit()
    user.submit(strategyName="second")
    recent = db.execute(RECENT_JOBS).fetchall()
    assert [r[2] for r in recent] == ["second", "SMA cross"]
    active = db.execute(ACTIVE_JOBS).fetchall()
    assert len(active) == 2


def test_health_ready_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "broker": True}
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/backtest/queue" in spec["paths"]


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.put("/api/backtest/queue")
    assert r.status_code == 405 and r.json()["success"] is False


def test_submit_with_the_broker_down_is_503_and_leaves_no_row(
    settings: Settings, db: psycopg.Connection, make_user: Any
) -> None:
    make_user("eve@example.com", "long enough")
    down = replace(settings, broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    with LiveServer(down) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.post(
            "/api/auth/login", json={"email": "eve@example.com", "password": "long enough"}
        ).json()["accessToken"]
        r = c.post(
            "/api/backtest/queue",
            json={"payload": payload(), "notifyVia": "none"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) > 0
        assert c.get("/readyz").status_code == 503
    assert db.execute("SELECT count(*) FROM backtest_job").fetchone() == (0,)


def test_the_database_down_is_503(settings: Settings, make_user: Any) -> None:
    user = make_user()
    down = replace(
        settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x", db_timeout_s=1
    )
    with LiveServer(down) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        headers = {"Authorization": f"Bearer {user.token}"}
        r = c.post("/api/backtest/queue", json={"payload": payload()}, headers=headers)
        assert r.status_code == 503 and "retry-after" in r.headers
        assert "postgres" not in r.text.lower()
        assert c.get("/api/backtest/queue/stats").status_code == 503
        assert c.get("/readyz").status_code == 503
