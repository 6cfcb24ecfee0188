"""The algotcha command as a user runs it: output alone on stdout, help, clear refusals."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from algotcha import cli

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


@pytest.mark.parametrize("command", ["worker", "notifier"])
def test_consumers_refuse_to_start_without_broker_url(command: str) -> None:
    """Only `algotcha up` may use an in-process broker: a worker on one would look online
    and consume nothing."""
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "METRICS_PORT": "19191"}
    done = algotcha(command, env=env)
    assert done.returncode == cli.EXIT_USER_ERROR
    assert done.stderr.startswith("algotcha: BROKER_URL is not set")
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
