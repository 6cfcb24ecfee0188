"""The local commands given a file they cannot use (to read a request from or to write
output to): one line naming it, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from algotcha import cli
from tests.unit.algotcha.test_cli_sweep import algotcha, data_dir, sweep_file

__all__ = ["data_dir"]  # the sweep CLI tests' bars

COMMANDS = [("backtest", "run"), ("sweep", "run"), ("walkforward", "run")]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read (No such file or directory)"),
        (b"", "the body is empty"),
        (b"garbage", "the body is not JSON"),
        (b"\xff\xfe{}", "the body is not UTF-8 (byte 0)"),
    ],
    ids=["missing", "empty", "garbage", "not-utf8"],
)
def test_an_unusable_request_file_is_named_in_one_line(
    data_dir: Path, tmp_path: Path, command: tuple[str, str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "request.json"
    if content is not None:
        path.write_bytes(content)

    done = algotcha(data_dir, *command, str(path))

    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr.startswith(f"algotcha: {path}: {message}")
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""


def test_a_directory_given_as_the_request_file_is_named(data_dir: Path, tmp_path: Path) -> None:
    done = algotcha(data_dir, "backtest", "run", str(tmp_path))

    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr == f"algotcha: {tmp_path}: cannot be read (Is a directory)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "run", "REQUEST", "--grid", "TMP/missing/grid.csv"],
         "--grid: the folder TMP/missing does not exist"),
        (["sweep", "run", "REQUEST", "--grid", "TMP"], "--grid: TMP is a folder; give a file name"),
        (["backtest", "run", "PAYLOAD", "--csv", "TMP/sweep.json"],
         "--csv: TMP/sweep.json is a file; give a folder"),
    ],
    ids=["grid-folder-missing", "grid-is-a-folder", "csv-is-a-file"],
)  # fmt: skip
def test_an_output_path_that_cannot_be_written_is_refused_before_the_run(
    data_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    request = sweep_file(tmp_path)
    payload = tmp_path / "payload.json"
    rules = {"longEntry": "close > open", "longExit": "close < open"}
    payload.write_text(json.dumps(json.loads(request.read_text())["payload"] | rules))
    names = {"REQUEST": str(request), "PAYLOAD": str(payload)}
    argv = [names.get(arg, arg.replace("TMP", str(tmp_path))) for arg in args]

    done = algotcha(data_dir, *argv)

    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr.endswith(f"algotcha: {message.replace('TMP', str(tmp_path))}\n")
    assert "started" not in done.stderr  # refused before any work
