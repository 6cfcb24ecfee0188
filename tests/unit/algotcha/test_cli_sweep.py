"""`algotcha sweep run`: the result alone on stdout, logs on stderr, errors name the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import BarStore
from engine.synth import synth_bars

START = datetime(2021, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    BarStore(directory).write("SYN", synth_bars(START, 40 * 1440, seed=5))
    return directory


def sweep_file(directory: Path, **changes: object) -> Path:
    document = {
        "payload": {
            "strategyName": "cli grid",
            "symbol": "SYN",
            "timeframe": "15m",
            "start": "2021-01-01T00:00:00Z",
            "end": "2021-03-01T00:00:00Z",
            "initialCapital": 10000,
            "feeRate": 0.001,
            "longEntry": "crossover(sma(close, fast), sma(close, slow))",
            "longExit": "crossunder(sma(close, fast), sma(close, slow))",
        },
        "parameters": {"fast": {"from": 5, "to": 20, "step": 5}, "slow": [30, 40]},
        "minTrades": 1,
        **changes,
    }
    path = directory / "sweep.json"
    path.write_text(json.dumps(document))
    return path


def algotcha(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "algotcha", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_sweep_run_json_prints_only_the_result(data_dir: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.csv"
    path = sweep_file(tmp_path)
    done = algotcha(data_dir, "sweep", "run", str(path), "--json", "--grid", str(grid))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["combinations"] == 8
    assert result["objective"] == "sharpe"
    assert result["top"][0]["parameters"].keys() == {"fast", "slow"}
    assert "sweep finished combinations=8" in done.stderr
    assert "combinations in" not in done.stderr  # --json: no progress lines either
    lines = grid.read_text().splitlines()
    assert len(lines) == 9 and lines[0].startswith("index,fast,slow,is_totalReturn")


def test_sweep_run_off_a_terminal_prints_plain_progress_lines(
    data_dir: Path, tmp_path: Path
) -> None:
    done = algotcha(data_dir, "sweep", "run", str(sweep_file(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "###" not in done.stderr
    assert [line.split(" in ")[0] for line in done.stderr.splitlines() if " in " in line] == [
        f"{done}/8 combinations" for done in range(1, 9)
    ]
    assert done.stdout.startswith("cli grid  SYN 15m")


def test_sweep_run_refuses_bad_input_with_the_field(data_dir: Path, tmp_path: Path) -> None:
    path = sweep_file(tmp_path, parameters={"fast": [5, 10], "close": [1]})
    done = algotcha(data_dir, "sweep", "run", str(path))
    assert done.returncode == 2
    assert "sweep.parameters.close" in done.stderr
    assert done.stdout == ""
