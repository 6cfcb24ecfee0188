"""Results through the live API: paged trades, exports, compare, share links and rerun."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import httpx
import psycopg
import pytest

from tests.fixtures.app import LiveServer

pytestmark = pytest.mark.integration

# Fast averages on 15-minute bars: a few hundred trades, so trades span several pages.
BUSY = {
    "timeframe": "15m",
    "longEntry": "crossover(sma(close, 3), sma(close, 8))",
    "longExit": "crossunder(sma(close, 3), sma(close, 8))",
}


def all_pages(client: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    trades: list[dict[str, Any]] = []
    url: str | None = f"{path}?limit={limit}"
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["after"] == len(trades)
        trades.extend(body["trades"])
        url = body["next"]
    return trades


def test_job_document_carries_a_first_page_a_count_and_a_link_to_the_rest(
    make_user: Any, completed: Any
) -> None:
    user = make_user()
    job_id = completed(user, **BUSY)
    result = user.client.get(f"/api/backtest/queue/{job_id}").json()["result"]
    count = result["tradeCount"]
    assert count > 250, count
    assert len(result["trades"]) == 100
    assert result["tradesNext"] == f"/api/backtest/queue/{job_id}/trades?after=100&limit=1000"

    paged = all_pages(user.client, f"/api/backtest/queue/{job_id}/trades", limit=37)
    assert len(paged) == count
    assert paged[:100] == result["trades"]
    following = user.client.get(result["tradesNext"]).json()
    assert following["trades"] == paged[100:1100] and following["next"] is None
    entries = [t["entryTime"] for t in paged]
    assert entries == sorted(entries)


def test_trades_pages_refuse_bad_parameters_and_runs_without_a_result(make_user: Any) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    for query in ("limit=0", "limit=1001", "after=-1", "after=x"):
        r = user.client.get(f"/api/backtest/queue/{job_id}/trades?{query}")
        assert r.status_code == 422, query
        assert r.json()["errors"][0]["field"] in ("limit", "after")
    queued = user.client.get(f"/api/backtest/queue/{job_id}/trades")
    assert queued.status_code == 409 and "queued" in queued.json()["detail"]


def test_csv_files_parse_back_equal_to_the_json_result(make_user: Any, completed: Any) -> None:
    user = make_user()
    job_id = completed(user, **BUSY)
    whole = user.client.get(f"/api/backtest/queue/{job_id}/result.json")
    assert whole.status_code == 200
    result = whole.json()
    assert result["tradeCount"] == len(result["trades"]) > 250
    assert result["trades"] == all_pages(
        user.client, f"/api/backtest/queue/{job_id}/trades", limit=1000
    )

    trades_csv = user.client.get(f"/api/backtest/queue/{job_id}/trades.csv")
    assert trades_csv.status_code == 200
    assert trades_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in trades_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(trades_csv.text)))
    assert len(rows) == len(result["trades"])
    for number, (row, trade) in enumerate(zip(rows, result["trades"], strict=True), start=1):
        assert int(row["number"]) == number
        assert row["side"] == trade["side"] and row["exit_reason"] == trade["exitReason"]
        assert row["entry_time"] == trade["entryTime"] and row["exit_time"] == trade["exitTime"]
        assert row["entry_time"].endswith("Z")
        for column, key in [
            ("entry_price", "entryPrice"),
            ("exit_price", "exitPrice"),
            ("quantity", "quantity"),
            ("pnl", "pnl"),
            ("return_pct", "returnPct"),
        ]:
            assert "e" not in row[column].lower(), row[column]
            assert float(row[column]) == trade[key], (number, column)

    equity_csv = user.client.get(f"/api/backtest/queue/{job_id}/equity.csv")
    assert equity_csv.headers["content-type"] == "text/csv; charset=utf-8"
    points = list(csv.reader(io.StringIO(equity_csv.text)))
    assert points[0] == ["time", "equity"]
    assert [(t, float(e)) for t, e in points[1:]] == [
        (p["t"], p["equity"]) for p in result["equityCurve"]
    ]


def test_exports_of_another_users_run_are_404(make_user: Any, completed: Any) -> None:
    owner, other = make_user(), make_user()
    job_id = completed(owner)
    for suffix in ("trades", "trades.csv", "equity.csv", "result.json"):
        assert other.client.get(f"/api/backtest/queue/{job_id}/{suffix}").status_code == 404


def test_compare_aligns_settings_metrics_and_rebased_equity_of_own_runs(
    make_user: Any, completed: Any
) -> None:
    user = make_user()
    ids = [
        completed(user, strategyName="plain"),
        completed(user, strategyName="with stop", stopLoss=0.01),
        completed(user, strategyName="half size", positionSize=0.5, initialCapital=5000),
    ]
    r = user.client.get(f"/api/backtest/compare?ids={','.join(map(str, ids))}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [run["id"] for run in body["runs"]] == ids
    assert [run["strategyName"] for run in body["runs"]] == ["plain", "with stop", "half size"]

    settings = {row["key"]: row for row in body["settings"]}
    assert settings["stopLoss"]["values"] == [None, 0.01, None]
    assert settings["stopLoss"]["differs"] and settings["positionSize"]["differs"]
    assert not settings["symbol"]["differs"] and not settings["longEntry"]["differs"]

    jobs = [user.client.get(f"/api/backtest/queue/{i}").json() for i in ids]
    metrics = {row["key"]: row for row in body["metrics"]}
    returns = [job["result"]["metrics"]["totalReturn"] for job in jobs]
    assert metrics["totalReturn"]["values"] == returns
    assert metrics["totalReturn"]["best"] == returns.index(max(returns))
    drawdowns = metrics["maxDrawdown"]["values"]
    assert metrics["maxDrawdown"]["best"] == drawdowns.index(max(drawdowns))
    assert metrics["trades"]["best"] is None

    times, series = body["equity"]["t"], body["equity"]["series"]
    assert times == sorted(set(times)) and len(series) == 3
    for job, values in zip(jobs, series, strict=True):
        curve = {p["t"]: p["equity"] for p in job["result"]["equityCurve"]}
        capital = job["payload"]["initialCapital"]
        assert len(values) == len(times)
        for t, value in zip(times, values, strict=True):
            if t in curve:
                assert value == pytest.approx(curve[t] / capital, rel=1e-12)
        assert values[-1] == pytest.approx(job["result"]["metrics"]["finalEquity"] / capital)


def test_compare_takes_two_to_six_of_the_users_own_completed_runs(
    make_user: Any, completed: Any
) -> None:
    user, other = make_user(), make_user()
    mine = [completed(user), completed(user)]
    theirs = completed(other)

    r = user.client.get(f"/api/backtest/compare?ids={mine[0]},{theirs}")
    assert r.status_code == 404 and str(theirs) in r.json()["detail"]
    for ids in ([mine[0]], [mine[0], mine[0]], [*mine, 91, 92, 93, 94, 95], []):
        r = user.client.get(f"/api/backtest/compare?ids={','.join(map(str, ids))}")
        assert r.status_code == 422, ids
        assert r.json()["errors"][0]["field"] == "ids"
    assert user.client.get("/api/backtest/compare?ids=1,abc").status_code == 422
    assert user.client.get("/api/backtest/compare?ids=\u00b2,\u00b3").status_code == 422
    queued = user.submit().json()["queueId"]
    assert user.client.get(f"/api/backtest/compare?ids={mine[0]},{queued}").status_code == 409
    assert httpx.get(f"{user.client.base_url}/api/backtest/compare?ids=1,2").status_code == 401


def test_a_share_link_works_signed_out_shows_no_account_and_dies_when_revoked(
    make_user: Any, completed: Any, api: LiveServer, db: psycopg.Connection
) -> None:
    user = make_user()
    job_id = completed(user, **BUSY)
    r = user.client.post(f"/api/backtest/queue/{job_id}/share")
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["expiresAt"] is None
    token = link["url"].rsplit("/shared/", 1)[1]
    assert len(token) >= 40

    anonymous = httpx.Client(base_url=api.url, timeout=30)
    page = anonymous.get(f"/shared/{token}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "noindex" in page.headers["x-robots-tag"]
    shared = anonymous.get(f"/api/shared/{token}")
    assert shared.status_code == 200
    assert "noindex" in shared.headers["x-robots-tag"]
    text = shared.text
    assert user.email not in text and "userId" not in text and '"id"' not in text
    own = user.client.get(f"/api/backtest/queue/{job_id}").json()
    assert shared.json()["result"]["metrics"] == own["result"]["metrics"]
    rest = all_pages(anonymous, f"/api/shared/{token}/trades", limit=500)
    assert len(rest) == own["result"]["tradeCount"]

    stored = db.execute("SELECT token_hash FROM result_share WHERE job_id = %s", (job_id,))
    hashes = [bytes(row[0]) for row in stored.fetchall()]
    assert hashes == [hashlib.sha256(token.encode()).digest()]
    dump = json.dumps([list(r) for r in db.execute("SELECT * FROM result_share")], default=str)
    assert token not in dump

    assert user.client.delete(f"/api/backtest/queue/{job_id}/share").status_code == 204
    assert anonymous.get(f"/api/shared/{token}").status_code == 404
    assert anonymous.get(f"/api/shared/{token}/trades").status_code == 404
    assert user.client.delete(f"/api/backtest/queue/{job_id}/share").status_code == 404
    anonymous.close()


def test_an_expired_or_replaced_share_link_is_404(
    make_user: Any, completed: Any, api: LiveServer, db: psycopg.Connection
) -> None:
    user, other = make_user(), make_user()
    job_id = completed(user)
    assert other.client.post(f"/api/backtest/queue/{job_id}/share").status_code == 404
    bad = user.client.post(f"/api/backtest/queue/{job_id}/share", json={"expiresInDays": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "expiresInDays"

    first = user.client.post(f"/api/backtest/queue/{job_id}/share", json={"expiresInDays": 7})
    expires = first.json()["expiresAt"]
    assert first.status_code == 201 and expires.endswith("Z")
    first_token = first.json()["url"].rsplit("/", 1)[1]
    second = user.client.post(f"/api/backtest/queue/{job_id}/share").json()
    second_token = second["url"].rsplit("/", 1)[1]
    assert httpx.get(f"{api.url}/api/shared/{first_token}").status_code == 404
    assert httpx.get(f"{api.url}/api/shared/{second_token}").status_code == 200

    # Time passes: the link's expiry moves into the past.
    db.execute(
        "UPDATE result_share SET expires_at = now() - interval '1 second' WHERE job_id = %s",
        (job_id,),
    )
    assert httpx.get(f"{api.url}/api/shared/{second_token}").status_code == 404
    assert httpx.get(f"{api.url}/api/shared/not-a-token").status_code == 404


def test_rerun_submits_the_stored_settings_with_one_change(make_user: Any, completed: Any) -> None:
    user = make_user()
    job_id = completed(user)
    payload = user.client.get(f"/api/backtest/queue/{job_id}").json()["payload"]
    changed = {**payload, "takeProfit": 0.05}
    r = user.client.post("/api/backtest/queue", json={"payload": changed, "notifyVia": "none"})
    assert r.status_code == 202, r.text
    again = user.client.get(r.headers["location"]).json()["payload"]
    assert again == changed
    assert {k for k in payload if payload[k] != again[k]} == {"takeProfit"}


def test_a_result_stored_before_trades_had_their_own_table_is_served_the_same_way(
    make_user: Any, completed: Any, db: psycopg.Connection
) -> None:
    user = make_user()
    job_id = completed(user, **BUSY)
    whole = user.client.get(f"/api/backtest/queue/{job_id}/result.json").json()
    snake = [
        {
            "side": t["side"],
            "entry_time": t["entryTime"],
            "entry_price": t["entryPrice"],
            "exit_time": t["exitTime"],
            "exit_price": t["exitPrice"],
            "quantity": t["quantity"],
            "pnl": t["pnl"],
            "return_pct": t["returnPct"],
            "exit_reason": t["exitReason"],
        }
        for t in whole["trades"]
    ]
    # The former layout: every trade in the job's JSON, no count, no chunks, no tearsheet.
    db.execute("DELETE FROM backtest_trade_chunk WHERE job_id = %s", (job_id,))
    db.execute(
        """
        UPDATE backtest_job
        SET result = (result - 'trade_count' - 'tearsheet')
                     || jsonb_build_object('trades', %s::jsonb)
        WHERE id = %s
        """,
        (json.dumps(snake), job_id),
    )
    result = user.client.get(f"/api/backtest/queue/{job_id}").json()["result"]
    assert result["tradeCount"] == len(snake) > 100
    assert result["trades"] == whole["trades"][:100]
    assert result["tradesNext"] == f"/api/backtest/queue/{job_id}/trades?after=100&limit=1000"
    paged = all_pages(user.client, f"/api/backtest/queue/{job_id}/trades", limit=77)
    assert paged == whole["trades"]
    rows = list(
        csv.DictReader(
            io.StringIO(user.client.get(f"/api/backtest/queue/{job_id}/trades.csv").text)
        )
    )
    assert [float(r["pnl"]) for r in rows] == [t["pnl"] for t in whole["trades"]]
    again = user.client.get(f"/api/backtest/queue/{job_id}/result.json").json()
    assert again["trades"] == whole["trades"]
