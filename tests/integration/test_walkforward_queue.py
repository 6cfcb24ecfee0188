"""Walk-forwards through the real queue: folds fanned out over worker processes, the same
result as the engine alone, a killed worker, a cancel, the per-user limit, bad input."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import psycopg
import pytest

import engine
from algotcha import engine_requests, schemas
from algotcha.config import Settings
from tests.fixtures.app import User
from tests.fixtures.polling import wait_for
from tests.integration.test_events import Stream
from tests.integration.test_sweeps import (
    cancel_with_both_workers_busy,
    chunks_of,
    kill_one_of_two_busy_workers,
    sweep_request,
)
from tests.integration.test_worker import status_of

pytestmark = pytest.mark.integration

FOLDS = 4


def walk_request(**walk_forward: Any) -> dict[str, Any]:
    return {**sweep_request(), "walkForward": {"folds": FOLDS, "inSample": 0.7, **walk_forward}}


def submit_walk(user: User, request: dict[str, Any] | None = None) -> Any:
    body = {"sweep": request or walk_request(), "notifyVia": "none"}
    return user.client.post("/api/backtest/queue", json=body)


def engine_result(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """The same walk-forward run by the engine alone, in this process, as the API renders it."""
    store = engine.BarStore(settings.data_dir)
    walk = engine_requests.parse_walkforward(request, "sweep")
    base = engine.check(walk.sweep.base, store)
    walk = dataclasses.replace(walk, sweep=dataclasses.replace(walk.sweep, base=base))
    bars = store.load(base.symbol, base.timeframe, base.start, base.end)
    return schemas.render_walkforward(engine.walkforward.run(walk, bars))


def without_time(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "elapsedMs"}


def test_two_workers_share_the_folds_and_match_the_engine_alone(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    ann, eve = make_user(), make_user()
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="0.5")
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="0.5")
    accepted = submit_walk(ann)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["folds"] == FOLDS and body["combinations"] == 18
    job_id = body["queueId"]
    stream = Stream(ann, job_id)
    wait_for(lambda: status_of(db, job_id) == "completed", timeout_s=120, what="walk-forward")
    events = []
    while not events or events[-1]["status"] != "completed":
        events.append(stream.next()[1])
    stream.close()
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress) and progress[-1] == 100

    chunks = chunks_of(db, job_id)
    assert [chunk for chunk, *_ in chunks] == list(range(FOLDS)), "not one chunk per fold"
    assert {status for _, status, _, _ in chunks} == {"done"}
    assert len({done_by for _, _, done_by, _ in chunks}) == 2, "one worker did every fold"
    stored = db.execute(
        "SELECT count(*), count(DISTINCT unit), min(unit), max(unit) FROM chunk_row "
        "WHERE job_id = %s",
        (job_id,),
    ).fetchone()
    assert stored == (FOLDS, FOLDS, 0, FOLDS - 1)

    job = ann.client.get(f"/api/backtest/queue/{job_id}").json()
    assert job["kind"] == "walkForward" and job["progress"] == 100
    assert job["folds"] == FOLDS and job["foldsDone"] == FOLDS
    listed = ann.client.get("/api/backtest/queue/my").json()  # read without payload or result
    shown = {key: value for key, value in job.items() if key != "payload"}
    assert listed == [{**shown, "result": None}] and job["symbol"] == "SYNTH"
    expected = engine_result(settings, walk_request())
    assert without_time(job["result"]) == without_time(expected)
    assert [fold["index"] for fold in job["result"]["folds"]] == list(range(FOLDS))
    assert job["result"]["stitched"]["metrics"]["trades"] > 0

    table = ann.client.get(f"/api/backtest/queue/{job_id}/folds.csv")
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0][:7] == [
        "index",
        "inSampleStart",
        "inSampleEnd",
        "outOfSampleStart",
        "outOfSampleEnd",
        "fast",
        "slow",
    ]
    assert rows[0][-1] == "status" and "oos_sharpe" in rows[0]
    assert [int(row[0]) for row in rows[1:]] == list(range(FOLDS))
    first = job["result"]["folds"][0]
    assert rows[1][1] == first["inSampleStart"] and rows[1][-1] == first["status"]
    assert float(rows[1][5]) == first["parameters"]["fast"]
    assert eve.client.get(f"/api/backtest/queue/{job_id}/folds.csv").status_code == 404


def test_a_fold_with_no_valid_combination_is_a_row_not_a_crash(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    ann = make_user()
    start_worker()
    request = {**walk_request(), "minTrades": 100_000}
    job_id = submit_walk(ann, request).json()["queueId"]
    wait_for(lambda: status_of(db, job_id) == "completed", timeout_s=120, what="walk-forward")
    result = ann.client.get(f"/api/backtest/queue/{job_id}").json()["result"]
    assert {fold["status"] for fold in result["folds"]} == {"no valid combination"}
    assert result["reading"].startswith("Nothing to judge")
    assert without_time(result) == without_time(engine_result(settings, request))
    table = ann.client.get(f"/api/backtest/queue/{job_id}/folds.csv").text
    rows = list(csv.reader(io.StringIO(table)))
    assert [row[-1] for row in rows[1:]] == ["no valid combination"] * FOLDS
    assert rows[1][5:7] == ["", ""]


def test_a_worker_killed_mid_walkforward_loses_only_its_fold(
    make_user: Any, start_worker: Any, db: psycopg.Connection, settings: Settings
) -> None:
    """Every fold computed (stored) exactly once, whichever worker finished it."""
    job = kill_one_of_two_busy_workers(make_user(), start_worker, db, submit_walk, FOLDS)
    assert without_time(job["result"]) == without_time(engine_result(settings, walk_request()))


def test_cancel_mid_walkforward_stops_the_folds_of_both_workers(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    cancel_with_both_workers_busy(make_user(), start_worker, db, submit_walk)


def test_a_walkforward_while_a_sweep_runs_is_429_and_bad_ones_are_422(
    make_user: Any, db: psycopg.Connection
) -> None:
    ann, bob = make_user(), make_user()
    sweep = ann.client.post(
        "/api/backtest/queue", json={"sweep": sweep_request(), "notifyVia": "none"}
    )
    assert sweep.status_code == 202
    second = submit_walk(ann)
    assert second.status_code == 429, second.text
    assert int(second.headers["Retry-After"]) > 0
    assert submit_walk(bob).status_code == 202
    assert submit_walk(bob).status_code == 429, "two walk-forwards of one user"
    # its cost for the waits behind it: per fold, the in-sample sweep and one out-of-sample run
    # over the bars two months of 15-minute bars hold
    folds = engine.walkforward.windows(
        engine_requests.parse_walkforward(walk_request(), "sweep"), 59 * 96
    )
    runs = sum(
        18 * (f.in_sample[1] - f.in_sample[0]) + f.out_of_sample[1] - f.out_of_sample[0]
        for f in folds
    )
    steps = FOLDS * (18 + 1)  # a fold's units: its in-sample combinations, its out-of-sample run
    stored = db.execute("SELECT units, unit_bars FROM backtest_job WHERE kind = 'walk_forward'")
    assert stored.fetchone() == (steps, round(runs / steps))

    def field_of(request: dict[str, Any]) -> str:
        answer = submit_walk(ann, request)
        assert answer.status_code == 422, answer.text
        return str(answer.json()["errors"][0]["field"])

    assert field_of(walk_request(folds=1)) == "sweep.walkForward.folds"
    assert field_of(walk_request(folds=21)) == "sweep.walkForward.folds"
    assert field_of(walk_request(folds="²")) == "sweep.walkForward.folds"
    assert field_of(walk_request(inSample=0.95)) == "sweep.walkForward.inSample"
    assert field_of(walk_request(anchored="yes")) == "sweep.walkForward.anchored"
    assert field_of(walk_request(extra=1)) == "sweep.walkForward.extra"
    # 20 folds of two months of 15-minute bars leave out-of-sample windows shorter than a
    # 600-bar moving average needs: known before anything runs
    long_look = walk_request(folds=20, inSample=0.9)
    long_look["parameters"] = {"fast": [5], "slow": [600]}
    assert field_of(long_look) == "sweep.walkForward.folds"
    unknown = walk_request()
    unknown["payload"] = {**unknown["payload"], "symbol": "NOPE"}
    assert field_of(unknown) == "sweep.payload.symbol"
    count = db.execute("SELECT count(*) FROM backtest_job WHERE kind = 'walk_forward'").fetchone()
    assert count == (1,)
