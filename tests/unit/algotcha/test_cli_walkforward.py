"""`algotcha walkforward run`: the result alone on stdout, errors name the walkForward field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.algotcha.test_cli_sweep import algotcha, data_dir, sweep_file

__all__ = ["data_dir"]  # the module's bars, shared with the sweep CLI tests


def walkforward_file(directory: Path, walk_forward: Any, **changes: object) -> Path:
    path = sweep_file(directory, **changes)
    document = json.loads(path.read_text())
    document["walkForward"] = walk_forward
    path.write_text(json.dumps(document))
    return path


def test_walkforward_run_json_prints_only_the_result(data_dir: Path, tmp_path: Path) -> None:
    path = walkforward_file(tmp_path, {"folds": 3, "inSample": 0.7, "anchored": True})
    done = algotcha(data_dir, "walkforward", "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [fold["index"] for fold in result["folds"]] == [0, 1, 2]
    first, last = result["folds"][0], result["folds"][-1]
    assert first["inSampleStart"] == last["inSampleStart"] == "2021-01-01T00:00:00Z"  # anchored
    assert first["outOfSampleEnd"] == result["folds"][1]["outOfSampleStart"]
    assert last["outOfSampleEnd"] == "2021-02-10T00:00:00Z"  # the data ends there (40 days)
    assert first["parameters"].keys() == {"fast", "slow"}
    assert set(result["stitched"]) == {"metrics", "trades", "equityCurve"}
    trades = sum(fold["outOfSample"]["trades"] for fold in result["folds"])
    assert result["stitched"]["metrics"]["trades"] == len(result["stitched"]["trades"]) == trades
    assert result["reading"].endswith(".")
    assert "walkforward finished folds=3" in done.stderr
    assert "###" not in done.stderr  # the progress bar is drawn on a terminal only


def test_walkforward_run_prints_the_folds_and_the_verdict(data_dir: Path, tmp_path: Path) -> None:
    path = walkforward_file(tmp_path, {"folds": 2, "inSample": 0.6})
    done = algotcha(data_dir, "walkforward", "run", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("  fold 1  out-of-sample ") and lines[2].startswith("  fold 2 ")
    assert "stitched out-of-sample" in lines[3]
    assert lines[4].split(":")[0].strip() in {"Looks robust", "Mixed", "Likely overfit"}


def test_walkforward_run_refuses_folds_too_short_for_the_rules(
    data_dir: Path, tmp_path: Path
) -> None:
    path = walkforward_file(
        tmp_path,
        {"folds": 20, "inSample": 0.9},
        parameters={"fast": [5, 10], "slow": [30, 400]},
    )
    done = algotcha(data_dir, "walkforward", "run", str(path))
    assert done.returncode == 2
    assert "walkForward.folds: 20 folds of" in done.stderr
    assert "the rules need at least 402" in done.stderr
    assert done.stdout == ""
    assert "walkforward started" not in done.stderr  # refused before anything ran


def test_walkforward_run_names_each_bad_setting(data_dir: Path, tmp_path: Path) -> None:
    path = walkforward_file(tmp_path, {"folds": "five", "inSample": 0.7, "window": 3})
    done = algotcha(data_dir, "walkforward", "run", str(path))
    assert done.returncode == 2
    assert "walkForward.folds: must be a whole number" in done.stderr
    assert "walkForward.window: is not a known field" in done.stderr
    path = walkforward_file(tmp_path, {"folds": 4, "inSample": 0.95})
    done = algotcha(data_dir, "walkforward", "run", str(path))
    assert done.returncode == 2
    assert "walkForward.inSample" in done.stderr
