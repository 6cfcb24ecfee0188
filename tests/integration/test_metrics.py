"""The /metrics of a running API and worker move with the queue (issue: monitoring)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if match and match.group(1) == name:
            got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if got == wanted:
                return float(match.group(3))
    return 0.0


def scrape(url: str) -> str:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_queue_gauges_and_worker_histograms_move(
    make_user: Any, start_worker: Any, client: httpx.Client, api: Any
) -> None:
    user = make_user()
    for _ in range(3):
        assert user.submit().status_code == 202
    time.sleep(5.1)  # past the collector's cache, so the scrape reads the database again
    before = scrape(f"{api.url}/metrics")
    assert sample(before, "algotcha_queue_jobs", status="queued") == 3
    assert sample(before, "algotcha_queue_estimated_wait_seconds") > 0
    route = "/api/backtest/queue"
    assert (
        sample(before, "algotcha_http_requests_total", method="POST", route=route, status="202")
        >= 3
    )

    worker = start_worker()
    deadline = time.monotonic() + 60
    while client.get("/api/backtest/queue/stats").json()["completed"] < 3:
        assert time.monotonic() < deadline, "jobs did not complete"
        time.sleep(0.2)

    after = scrape(worker.metrics_url)
    assert sample(after, "algotcha_backtests_total", outcome="completed") == 3
    assert sample(after, "algotcha_backtest_duration_seconds_count") == 3
    assert sample(after, "algotcha_backtest_wait_seconds_count") == 3
    assert sample(after, "algotcha_workers_online") >= 1
    assert sample(after, "algotcha_queue_jobs", status="completed") == 3
    assert sample(after, "algotcha_queue_jobs", status="queued") == 0


def test_http_metrics_label_routes_not_ids(make_user: Any, api: Any) -> None:
    user = make_user()
    job_id = user.submit().json()["queueId"]
    user.client.get(f"/api/backtest/queue/{job_id}")
    user.client.get("/api/backtest/queue/999999")
    text = scrape(f"{api.url}/metrics")
    assert str(job_id) not in re.findall(r'route="([^"]*)"', text)
    ok = sample(
        text,
        "algotcha_http_requests_total",
        method="GET",
        route="/api/backtest/queue/{id}",
        status="200",
    )
    missing = sample(
        text,
        "algotcha_http_requests_total",
        method="GET",
        route="/api/backtest/queue/{id}",
        status="404",
    )
    assert ok >= 1 and missing >= 1
