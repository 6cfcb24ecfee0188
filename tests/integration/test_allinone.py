"""`algotcha up` from a clean directory: embedded PostgreSQL, in-process broker, restarts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.app import free_port, payload

pytestmark = pytest.mark.integration

SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "JWT_SECRET", "JWT_SECRET_FILE", "DATA_DIR")


class Up:
    """One `algotcha up` process in `workdir`."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir, self.port = workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
        self.env = {**clean, "METRICS_PORT": str(free_port()), "PYTHONUNBUFFERED": "1", **env}

    def __enter__(self) -> Up:
        self.log = (self.workdir / "up.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "algotcha", "up", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.workdir / "up.log").read_text())
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        self.log.close()


def login(url: str, email: str, password: str, *, register: bool) -> httpx.Client:
    with httpx.Client(base_url=url, timeout=30) as c:
        creds = {"email": email, "password": password}
        if register:
            assert c.post("/api/auth/register", json=creds).status_code == 201
        token = c.post("/api/auth/login", json=creds).json()["accessToken"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def wait_status(client: httpx.Client, job_id: int, status: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while (job := client.get(f"/api/backtest/queue/{job_id}").json())["status"] != status:
        assert time.monotonic() < deadline, f"job {job_id} stuck at {job['status']}"
        time.sleep(0.2)
    return job


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A clean directory the embedded PostgreSQL's own user can enter.

    Run as root, pgserver starts PostgreSQL as an unprivileged user, which cannot reach
    into pytest's private (0700) temporary directories.
    """
    path = Path(tempfile.mkdtemp(prefix="algotcha-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_up_keeps_jobs_and_results_across_restarts(workdir: Path) -> None:
    tmp_path = workdir
    body = {"payload": payload(timeframe="4h", start="2022-01-01T00:00:00Z"), "notifyVia": "none"}
    with Up(tmp_path) as up:
        demo_password = (tmp_path / "var" / "demo_password").read_text().strip()
        demo = login(up.url, "demo@algotcha.local", demo_password, register=False)
        assert demo.get("/api/backtest/datasets").json()[0]["symbol"] == "SYNTH"
        user = login(up.url, "ann@example.com", "long enough", register=True)
        first = user.post("/api/backtest/queue", json=body).json()["queueId"]
        done = wait_status(user, first, "completed")
        assert done["result"]["metrics"]["finalEquity"] > 0

    # Slow backtests now, so that one is running and one queued when it stops.
    with Up(tmp_path, DEBUG_BACKTEST_DELAY_SECONDS="3") as up:
        user = login(up.url, "ann@example.com", "long enough", register=False)
        assert user.get(f"/api/backtest/queue/{first}").json()["result"] == done["result"]
        running = user.post("/api/backtest/queue", json=body).json()["queueId"]
        queued = user.post("/api/backtest/queue", json=body).json()["queueId"]
        wait_status(user, running, "processing")

    with Up(tmp_path) as up:
        user = login(up.url, "ann@example.com", "long enough", register=False)
        for job_id in (running, queued):
            assert wait_status(user, job_id, "completed")["result"]["bars"] > 0
