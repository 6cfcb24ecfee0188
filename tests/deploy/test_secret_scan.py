"""detect-secrets over every file of the repository finds nothing beyond the reviewed baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / ".secrets.baseline"


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in listed if f != BASELINE.name and (ROOT / f).is_file()]


def findings(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    """What was found, by file, kind and hash: line numbers move with every edit."""
    return {
        (path, item["type"], item["hashed_secret"])
        for path, items in report["results"].items()
        for item in items
    }


def test_no_secret_is_committed() -> None:
    """Every finding in .secrets.baseline was reviewed (test placeholders, loopback guest);
    a new one fails here until it is removed, or reviewed and added with
    `detect-secrets scan --baseline .secrets.baseline`."""
    scanner = Path(sys.executable).with_name("detect-secrets")
    scan = subprocess.run(
        [str(scanner), "scan", *repository_files()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    new = findings(json.loads(scan.stdout)) - findings(json.loads(BASELINE.read_text()))
    assert not new, f"possible secrets (file, kind, hash): {sorted(new)}"
