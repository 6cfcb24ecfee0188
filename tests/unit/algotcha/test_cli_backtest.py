"""`algotcha backtest run --json`: the printed document is the engine's result in camelCase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import engine
from algotcha import cli, engine_requests, models
from engine.synth import synth_bars

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_backtest_run_json_prints_only_the_result_in_camel_case_on_stdout(tmp_path: Path) -> None:
    store = engine.BarStore(tmp_path)
    store.write("CLITEST", synth_bars(START, 5000, seed=5))
    payload = {
        "strategyName": "reversal",
        "symbol": "CLITEST",
        "timeframe": "1m",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-05T00:00:00Z",
        "initialCapital": 1000,
        "feeRate": 0.001,
        "longEntry": "crossover(ema(close, 3), ema(close, 8))",
        "shortEntry": "crossunder(ema(close, 3), ema(close, 8))",
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(payload))
    environ = {**os.environ, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"}

    # a fresh process, so numexpr's first-use log line is emitted (it must go to stderr)
    done = subprocess.run(
        [sys.executable, "-m", "algotcha", "backtest", "run", str(path), "--json"],
        env=environ,
        capture_output=True,
        check=False,
    )

    assert done.returncode == cli.EXIT_OK, done.stderr
    printed = json.loads(done.stdout)
    request = engine_requests.parse_payload(payload)
    bars = store.load("CLITEST", "1m", START, START + timedelta(days=4))
    expected = models.camel_keys(engine.run(request, bars).as_dict())
    assert printed.pop("elapsedMs") > 0
    expected.pop("elapsedMs")
    assert len(printed["trades"]) > 100
    assert printed == expected


def test_the_engine_gets_one_blas_thread_whatever_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cli._set_engine_threads(4)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["NUMEXPR_NUM_THREADS"] == "4"
    # OpenBLAS reads it once, when numpy is first imported: not before cli.main has set it
    code = "import sys, algotcha.cli; print(sorted({'numpy', 'numexpr'} & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert imported.stdout.strip() == "[]", imported.stderr
