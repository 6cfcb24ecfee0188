"""The /metrics of a running API and worker move with the queue (issue: monitoring)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from algotcha.config import Settings
from tests.fixtures.services import ROOT
from tests.fixtures.worker import ApiProcess

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


# What a previous run of the API left in the directory: 1,000 answers to GET /healthz.
PREVIOUS_RUN = """
from monitoring import metrics
metrics.HTTP_REQUESTS.labels(method="GET", route="/healthz", status="200").inc(1000)
"""


def test_api_workers_do_not_sum_the_counters_of_a_previous_run(
    settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", PREVIOUS_RUN], env=env, cwd=ROOT, check=True)
    assert list(directory.glob("counter_*.db"))

    api = ApiProcess(
        settings, tmp_path / "api.log", "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(directory)
    ).start()
    try:
        for _ in range(3):
            assert httpx.get(f"{api.url}/healthz").status_code == 200
        text = scrape(f"{api.url}/metrics")
    finally:
        api.stop()
    healthz = sample(
        text, "algotcha_http_requests_total", method="GET", route="/healthz", status="200"
    )
    assert 3 <= healthz < 1000, api.output()
