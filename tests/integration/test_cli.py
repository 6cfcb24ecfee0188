"""The algotcha command as a user runs it: output alone on stdout, help, clear refusals."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from algotcha import cli
from tests.fixtures.app import payload

CSV_HEADER = "timestamp,open,high,low,close,volume\n"


def algotcha(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Run `python -m algotcha ARGS` to its end; stdout and stderr kept apart."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BROKER_"))}
    streams = kwargs or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run(
        [sys.executable, "-m", "algotcha", *args],
        env={**base, **(env or {})},
        text=True,
        timeout=60,
        check=False,
        **streams,
    )


def minute_bars(path: Path, day: str) -> Path:
    rows = [f"{day}T00:{m:02d}:00Z,1,2,0.5,1.5,10\n" for m in range(60)]
    path.write_text(CSV_HEADER + "".join(rows))
    return path


def arguments(parser: argparse.ArgumentParser, prefix: str = "algotcha") -> list[tuple[str, Any]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += arguments(sub, f"{prefix} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            found.append((f"{prefix} {action.dest}", action))
    return found


def test_every_argument_of_every_command_has_help() -> None:
    listed = arguments(cli._parser())
    assert len(listed) > 20
    assert [name for name, action in listed if not action.help] == []


def test_backtest_run_json_is_alone_on_stdout(data_dir: Path, tmp_path: Path) -> None:
    """`algotcha backtest run p.json --json | jq .` works: nothing but the JSON on stdout,
    even at DEBUG, and numexpr is told its thread count instead of logging a guess."""
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload()))
    env = {"DATA_DIR": str(data_dir), "LOG_LEVEL": "DEBUG"}
    for name in ("NUMEXPR_MAX_THREADS", "NUMEXPR_NUM_THREADS", "OMP_NUM_THREADS"):
        env[name] = ""  # numexpr treats empty as unset: as on a machine that sets none
    done = algotcha("backtest", "run", str(path), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["trades"] > 0
    assert "NumExpr" not in done.stdout + done.stderr


def test_log_lines_go_to_stderr_and_output_to_stdout(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data")}
    done = algotcha("data", "synth", "--days", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["SYNTH: 1440 synthetic bars (seed 42), not market data"]
    assert "INFO engine.store dataset written symbol=SYNTH" in done.stderr
    listed = algotcha("data", "list", env=env)
    assert listed.stdout.split()[:2] == ["SYNTH", "1440"] and listed.stderr == ""


def test_engine_threads_are_set_explicitly() -> None:
    import numexpr

    before = numexpr.get_num_threads()
    try:
        cli._set_engine_threads(1)
        assert numexpr.get_num_threads() == 1
        assert os.environ["NUMEXPR_NUM_THREADS"] == os.environ["NUMEXPR_MAX_THREADS"] == "1"
    finally:
        cli._set_engine_threads(before)


@pytest.mark.parametrize("command", ["worker", "notifier"])
def test_consumers_refuse_to_start_without_broker_url(command: str) -> None:
    """Only `algotcha up` may use an in-process broker: a worker on one would look online
    and consume nothing."""
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "METRICS_PORT": "19191"}
    done = algotcha(command, env=env)
    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr.startswith("algotcha: BROKER_URL is not set")
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    done = algotcha("data", "import", "BTCUSDT", str(tmp_path / "nope.csv"))
    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr.splitlines() == [
        f"algotcha: cannot read nope.csv: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'nope.csv'}'"
    ]


def test_synth_start_without_a_zone_is_utc_whatever_the_machine_zone(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "TZ": "Asia/Tokyo"}
    done = algotcha("data", "synth", "--days", "1", "--start", "2024-01-01", env=env)
    assert done.returncode == 0, done.stderr
    listed = algotcha("data", "list", env=env)
    assert listed.stdout.split()[3:6] == ["2024-01-01", "..", "2024-01-02"], listed.stdout


def test_synth_start_that_is_not_a_date_is_a_usage_error(tmp_path: Path) -> None:
    done = algotcha("data", "synth", "--start", "yesterday", env={"DATA_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "'yesterday' is not an ISO 8601 date or time" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../evil", "--days", "1"], "algotcha: symbol '../evil' is not valid"),
        (["--days", "0"], "argument --days: '0' is not a whole number from 1 to 7,300"),
        (["--days", "9999999"], "argument --days: '9999999' is not a whole number from 1 to 7,300"),
    ],
)
def test_synth_refuses_a_bad_symbol_or_day_count_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = algotcha("data", "synth", *args, env={"DATA_DIR": str(tmp_path)})
    assert done.returncode == cli.EXIT_USER_ERROR
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_import_progress_is_plain_lines_off_a_terminal(tmp_path: Path) -> None:
    files = [minute_bars(tmp_path / f"{day}.csv", day) for day in ("2024-01-01", "2024-01-02")]
    env = {"DATA_DIR": str(tmp_path / "data")}
    done = algotcha("data", "import", "BTCUSDT", *map(str, files), env=env)
    assert done.returncode == 0, done.stderr
    assert "1/2 files: 2024-01-01.csv read\n2/2 files: 2024-01-02.csv read\n" in done.stderr
    assert "\r" not in done.stderr
    assert done.stdout.startswith("BTCUSDT: 120 bars from 2024-01-01 00:00")


def test_import_progress_is_a_bar_on_a_terminal(tmp_path: Path) -> None:
    files = [minute_bars(tmp_path / f"{day}.csv", day) for day in ("2024-01-01", "2024-01-02")]
    controller, terminal = pty.openpty()
    try:
        done = algotcha(
            "data",
            "import",
            "BTCUSDT",
            *map(str, files),
            env={"DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"},
            stderr=terminal,
            stdout=subprocess.PIPE,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert done.returncode == 0
    text = shown.decode()
    half, full = "#" * 15 + "." * 15, "#" * 30
    assert re.search(
        rf"\r\[{half}\] 1/2 files  [0-9.]+ s, about [0-9.]+ s left  2024-01-01.csv read", text
    )
    assert re.search(rf"\r\[{full}\] 2/2 files  [0-9.]+ s  2024-01-02.csv read", text)
