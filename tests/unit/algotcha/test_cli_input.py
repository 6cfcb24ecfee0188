"""The local commands given a file they cannot use: one line naming it, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from algotcha import cli
from tests.unit.algotcha.test_cli_sweep import algotcha, data_dir

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
