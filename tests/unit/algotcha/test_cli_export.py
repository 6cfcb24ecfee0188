"""`algotcha backtest run --csv DIR`: the export files of the API, written locally."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import engine
from algotcha import cli
from engine import synth

PAYLOAD = {
    "strategyName": "fast averages",
    "symbol": "SYNTH",
    "timeframe": "15m",
    "start": "2022-01-01T00:00:00Z",
    "end": "2022-02-01T00:00:00Z",
    "initialCapital": 10000,
    "feeRate": 0.001,
    "longEntry": "crossover(sma(close, 3), sma(close, 8))",
    "longExit": "crossunder(sma(close, 3), sma(close, 8))",
}


def test_backtest_run_csv_writes_files_that_read_back_as_the_json_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    engine.BarStore(data).write(
        "SYNTH", synth.synth_bars(datetime(2022, 1, 1, tzinfo=UTC), 31 * 1440)
    )
    monkeypatch.setenv("DATA_DIR", str(data))
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(PAYLOAD))
    out = tmp_path / "export"

    assert cli.main(["backtest", "run", str(payload), "--json", "--csv", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "result.json", "trades.csv"]

    written = json.loads((out / "result.json").read_text())
    assert written.pop("tradeCount") == len(printed["trades"]) > 100
    assert written == printed

    with (out / "trades.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(printed["trades"])
    for row, trade in zip(rows, printed["trades"], strict=True):
        assert row["entry_time"] == trade["entryTime"] and row["exit_reason"] == trade["exitReason"]
        assert float(row["pnl"]) == trade["pnl"] and float(row["quantity"]) == trade["quantity"]
        assert float(row["return_pct"]) == trade["returnPct"]

    with (out / "equity.csv").open(newline="") as f:
        points = list(csv.reader(f))
    assert points[0] == ["time", "equity"]
    assert [(t, float(e)) for t, e in points[1:]] == [
        (p["t"], p["equity"]) for p in printed["equityCurve"]
    ]
