"""What the page's live heatmap and estimate read: grid.csv?partial=1 while a sweep runs, and the
measured cost per combination per bar in the queue stats."""

from __future__ import annotations

import csv
import io
from typing import Any

import psycopg
import pytest

from tests.fixtures.polling import wait_for
from tests.integration.test_sweeps import submit_sweep
from tests.integration.test_worker import status_of

pytestmark = pytest.mark.integration


def grid_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text)))


def test_partial_grid_serves_the_rows_of_finished_chunks_while_the_sweep_runs(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    ann, eve = make_user(), make_user()
    sweep_id = submit_sweep(ann).json()["queueId"]
    url = f"/api/backtest/queue/{sweep_id}/grid.csv"

    # Queued: nothing computed yet, but the header already names the columns.
    queued = grid_rows(ann.client.get(url, params={"partial": "1"}))
    assert queued[0][:3] == ["index", "fast", "slow"] and len(queued) == 1

    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1")
    wait_for(
        lambda: ann.client.get(f"/api/backtest/queue/{sweep_id}").json()["combinationsDone"] >= 4,
        timeout_s=60,
        what="two chunks done",
    )
    assert ann.client.get(url).status_code == 409, "the full grid waits for the sweep"
    partial = grid_rows(ann.client.get(url, params={"partial": "1"}))
    stored = db.execute("SELECT count(*) FROM chunk_row WHERE job_id = %s", (sweep_id,)).fetchone()
    assert stored is not None and 4 <= len(partial) - 1 <= stored[0] < 18
    assert eve.client.get(url, params={"partial": "1"}).status_code == 404
    assert ann.client.get(url, params={"partial": "yes"}).status_code == 422

    wait_for(lambda: status_of(db, sweep_id) == "completed", timeout_s=90, what="the sweep")
    full = grid_rows(ann.client.get(url))
    # Rows of the running sweep are the completed grid's rows, unchanged.
    assert all(row in full for row in partial)
    assert grid_rows(ann.client.get(url, params={"partial": "1"})) == full


def test_stats_give_the_cost_per_combination_per_bar_the_estimate_uses(
    make_user: Any, start_worker: Any, db: psycopg.Connection
) -> None:
    ann = make_user()
    before = ann.client.get("/api/backtest/queue/stats").json()
    assert before["sweepSecondsPerCombinationBar"] == 8e-9, "the default before any chunk"
    start_worker()
    sweep_id = submit_sweep(ann).json()["queueId"]
    wait_for(lambda: status_of(db, sweep_id) == "completed", timeout_s=90, what="the sweep")
    wait_for(
        lambda: (
            ann.client.get("/api/backtest/queue/stats").json()["sweepSecondsPerCombinationBar"]
            != 8e-9
        ),
        timeout_s=5,
        what="the measured cost",
    )
