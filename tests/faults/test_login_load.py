"""A crowd of logins: the API's memory stays under its MemoryMax and every answer is expected."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from algotcha.config import Settings
from tests.fixtures.worker import ApiProcess

pytestmark = pytest.mark.integration

# deploy/systemd/algotcha-api.service: MemoryMax=1G
MEMORY_MAX_BYTES = 1024**3
CONCURRENT_LOGINS = 100
PASSWORD = "correct horse battery"  # pragma: allowlist secret


def peak_rss_bytes(pid: int) -> int:
    """The process's resident high-water mark (VmHWM), which the kernel keeps for us."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_a_hundred_concurrent_logins_stay_under_the_memory_limit(
    settings: Settings, tmp_path: Path
) -> None:
    api = ApiProcess(settings, tmp_path / "api.log").start()
    try:
        emails = [f"crowd{n}@example.com" for n in range(10)]
        for email in emails:
            r = httpx.post(
                f"{api.url}/api/auth/register",
                json={"email": email, "password": PASSWORD},
                timeout=60,
            )
            assert r.status_code == 201, r.text
        # Six in ten are the right password; the rest guess at accounts that may not exist.
        attempts = [
            (emails[n % 10], PASSWORD) if n % 10 < 6 else (f"guess{n}@example.com", "wrong")
            for n in range(CONCURRENT_LOGINS)
        ]

        def login(n: int) -> int:
            email, password = attempts[n]
            return httpx.post(
                f"{api.url}/api/auth/login",
                json={"email": email, "password": password},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
                timeout=120,
            ).status_code

        with ThreadPoolExecutor(CONCURRENT_LOGINS) as pool:
            statuses = Counter(pool.map(login, range(CONCURRENT_LOGINS)))
        peak = peak_rss_bytes(api.pid)
    finally:
        api.stop()
    print(f"login crowd: {dict(statuses)}; API peak RSS {peak / 2**20:.0f} MiB (limit 1024 MiB)")
    assert set(statuses) <= {200, 401, 429, 503}, statuses
    assert statuses[200] >= 1, statuses
    assert peak < MEMORY_MAX_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
