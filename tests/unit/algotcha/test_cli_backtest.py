"""`algotcha backtest run --json`: the printed document is the engine's result in camelCase."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import engine
from algotcha import cli, schemas
from engine.synth import synth_bars

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_backtest_run_json_prints_the_result_in_camel_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
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
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    assert cli.main(["backtest", "run", str(path), "--json"]) == cli.EXIT_OK

    printed = json.loads(capsysbinary.readouterr().out)
    request = schemas.parse_payload(payload)
    bars = store.load("CLITEST", "1m", START, START + timedelta(days=4))
    expected = schemas.camel_keys(engine.run(request, bars).as_dict())
    assert printed.pop("elapsedMs") > 0
    expected.pop("elapsedMs")
    assert len(printed["trades"]) > 100
    assert printed == expected
