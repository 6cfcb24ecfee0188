"""Every scrape target in monitoring/prometheus/prometheus.yml is served by the process it names.

A target names a compose service (`worker:9191`); that service runs one `algotcha` command,
which is started here as it is deployed (its METRICS_PORT, or the API's --port) on a free
port, and must answer the scrape with our metrics.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from algotcha.config import Settings
from tests.fixtures.app import free_port
from tests.fixtures.polling import wait_for
from tests.fixtures.telegram_api import TOKEN, FakeTelegram
from tests.fixtures.worker import worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "monitoring" / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def scrape_targets() -> list[tuple[str, str, int, str]]:
    """(job, service, port, metrics path) of every target of the algotcha-* jobs."""
    targets = []
    for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]:
        name = job["job_name"]
        if not name.startswith("algotcha-"):
            continue
        path = job.get("metrics_path", "/metrics")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((name, host, int(port), path))
        for dns in job.get("dns_sd_configs", []):
            targets.extend((name, host, int(dns["port"]), path) for host in dns["names"])
    return targets


def deployed_command(service: str, port: int) -> list[str]:
    """The service's `algotcha` arguments in compose, after checking it serves on `port`."""
    spec = yaml.safe_load(COMPOSE.read_text())["services"][service]
    command: list[str] = spec["command"]
    if "--port" in command:
        assert int(command[command.index("--port") + 1]) == port, service
    else:
        assert int(spec["environment"]["METRICS_PORT"]) == port, service
    return command


def test_every_algotcha_process_is_a_scrape_target() -> None:
    commands = {deployed_command(service, port)[0] for _, service, port, _ in scrape_targets()}
    assert commands == {"api", "worker", "notifier", "telegram-poll"}


@pytest.mark.parametrize(
    ("service", "port", "path"),
    [target[1:] for target in scrape_targets()],
    ids=[target[0] for target in scrape_targets()],
)
def test_a_scrape_target_is_served_by_its_process(
    service: str,
    port: int,
    path: str,
    settings: Settings,
    telegram_api: FakeTelegram,
    tmp_path: Path,
) -> None:
    command = deployed_command(service, port)
    local_port = free_port()
    env = worker_env(
        settings,
        METRICS_PORT=str(local_port),
        JWT_SECRET=settings.jwt_secret or "",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE=telegram_api.url,
    )
    args = [word if word != str(port) else str(local_port) for word in command]
    args = [word for word in args if word not in ("--migrate",)]
    if "--host" in args:
        args[args.index("--host") + 1] = "127.0.0.1"
    log = tmp_path / f"{service}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "algotcha", *args], env=env, stdout=out, stderr=out
        )
    try:
        response: Any = wait_for(
            lambda: scrape(f"http://127.0.0.1:{local_port}{path}") or process.poll() is not None,
            timeout_s=60,
            what=f"{service} serving {path}",
            every_s=0.2,
        )
        assert process.poll() is None, log.read_text()
        assert response.status_code == 200
        assert "# TYPE algotcha_" in response.text, response.text[:500]
    finally:
        process.terminate()
        process.wait(timeout=60)


def scrape(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
