"""The local commands load the engine and the parser only: no database, HTTP or broker client
(their imports cost most of a second, and a user running a backtest on a laptop has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.algotcha.test_cli_sweep import data_dir, sweep_file

__all__ = ["data_dir"]  # the sweep CLI tests' bars

SERVICE_PACKAGES = {"psycopg", "psycopg_pool", "httpx", "dramatiq", "pika", "starlette", "uvicorn"}
# Runs the command as `algotcha` does, then lists every top-level package it had imported.
PROBE = """
import json, sys
from algotcha import cli
status = cli.main(sys.argv[2:])
with open(sys.argv[1], "w") as listing:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), listing)
raise SystemExit(status)
"""


def imported_by(data_dir: Path, tmp_path: Path, *args: str) -> set[str]:
    listing = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), *args],
        env={**os.environ, "DATA_DIR": str(data_dir)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"{")  # it ran to the end and printed its result
    return set(json.loads(listing.read_text()))


def test_backtest_run_imports_no_service_client(data_dir: Path, tmp_path: Path) -> None:
    payload = json.loads(sweep_file(tmp_path).read_text())["payload"]
    payload["longEntry"] = "crossover(sma(close, 10), sma(close, 30))"
    payload["longExit"] = "crossunder(sma(close, 10), sma(close, 30))"
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))

    modules = imported_by(data_dir, tmp_path, "backtest", "run", str(path), "--json")

    assert "engine" in modules and "orjson" in modules
    assert sorted(modules & SERVICE_PACKAGES) == []
    # a signal-only backtest needs none of the sweep's compiled loops (numba's start-up, ~1 s)
    assert "numba" not in modules


@pytest.mark.parametrize("command", ["sweep", "walkforward"])
def test_sweep_and_walkforward_run_import_no_service_client(
    data_dir: Path, tmp_path: Path, command: str
) -> None:
    path = sweep_file(tmp_path)
    if command == "walkforward":
        document = json.loads(path.read_text())
        path.write_text(json.dumps({**document, "walkForward": {"folds": 2, "inSample": 0.6}}))

    modules = imported_by(data_dir, tmp_path, command, "run", str(path), "--json")

    assert "engine" in modules
    assert sorted(modules & SERVICE_PACKAGES) == []
