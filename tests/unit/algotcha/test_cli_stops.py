"""Local commands stopped from outside: a reader that goes away (`| head`), Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from algotcha import cli
from tests.unit.algotcha.test_cli_sweep import data_dir, sweep_file

__all__ = ["data_dir"]  # the sweep CLI tests' bars


def payload_file(directory: Path) -> Path:
    payload = json.loads(sweep_file(directory).read_text())["payload"]
    payload["longEntry"] = "crossover(ema(close, 3), ema(close, 8))"
    payload["shortEntry"] = "crossunder(ema(close, 3), ema(close, 8))"
    del payload["longExit"]
    path = directory / "payload.json"
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.parametrize(
    "args",
    [["backtest", "run", "PAYLOAD", "--json"], ["backtest", "run", "PAYLOAD"], ["data", "list"]],
    ids=["json", "text", "list"],
)
def test_a_closed_stdout_ends_the_command_quietly(
    data_dir: Path, tmp_path: Path, args: list[str]
) -> None:
    path = payload_file(tmp_path)
    reading, writing = os.pipe()
    os.close(reading)  # the reader is gone before anything is written, as `| head -c0`
    try:
        done = subprocess.run(
            [sys.executable, "-m", "algotcha", *[str(path) if a == "PAYLOAD" else a for a in args]],
            env={**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"},
            stdout=writing,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writing)
    assert done.returncode == cli.EXIT_BROKEN_PIPE
    assert done.stderr == b""  # no traceback, no "Exception ignored" at exit


def test_ctrl_c_stops_a_sweep_with_the_interrupted_status(data_dir: Path, tmp_path: Path) -> None:
    payload = json.loads(sweep_file(tmp_path).read_text())["payload"] | {"timeframe": "1m"}
    grid = {"fast": {"from": 2, "to": 40, "step": 1}, "slow": {"from": 41, "to": 240, "step": 1}}
    path = sweep_file(tmp_path, payload=payload, parameters=grid)  # 7,800 combinations
    process = subprocess.Popen(
        [sys.executable, "-m", "algotcha", "sweep", "run", str(path)],
        env={**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    line = b"-"
    while line and b" combinations in " not in line:  # the first tenth: the sweep is running
        line = process.stderr.readline()
    assert line.startswith(b"780/7,800 combinations in "), line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert err.decode().endswith("algotcha: interrupted\n") and b"Traceback" not in err
    assert out == b""  # no partial result
