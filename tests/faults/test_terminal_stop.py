"""Stopping the service the way a terminal does: Ctrl-C signals the whole process group.

Each command runs in its own session, as a shell runs a foreground job, so that SIGINT to
the group reaches the command and every process it started (the forkserver, the backtest
processes), exactly as a Ctrl-C in the terminal would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from algotcha.config import Settings
from tests.fixtures.app import free_port, payload
from tests.fixtures.polling import wait_for
from tests.fixtures.telegram_api import TOKEN, FakeTelegram
from tests.fixtures.worker import worker_env
from tests.integration.test_allinone import login

pytestmark = pytest.mark.integration

CTRL_C = (signal.SIGINT,)
CTRL_C_TWICE = (signal.SIGINT, signal.SIGINT)
SIGTERM = (signal.SIGTERM,)


class Terminal:
    """`python -m algotcha ARGS` as the foreground job of a shell: a process group of its own."""

    started: ClassVar[list[Terminal]] = []

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        Terminal.started.append(self)
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "algotcha", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, marker: str, timeout_s: float = 60) -> None:
        wait_for(
            lambda: marker in self.output() or self.process.poll() is not None,
            timeout_s=timeout_s,
            what=marker,
        )
        assert self.process.poll() is None, self.output()

    def press(self, signals: tuple[signal.Signals, ...]) -> None:
        """Send each signal to the whole group, as the terminal does for Ctrl-C; a second one
        once the orderly stop is under way, as an impatient user presses it again."""
        for count, signum in enumerate(signals):
            if count:
                wait_for(lambda: "_stopping" in self.output(), timeout_s=10, what="stopping")
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                return  # it stopped before the next key

    def exited(self, timeout_s: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(autouse=True)
def no_group_left_behind() -> Iterator[None]:
    """A failed test must not leave a service running into the next test's database."""
    yield
    for terminal in Terminal.started:
        if terminal.group_alive():
            os.killpg(terminal.process.pid, signal.SIGKILL)
        terminal.process.wait(timeout=10)
    Terminal.started.clear()


def exit_codes(keys: tuple[signal.Signals, ...]) -> set[int]:
    """0 for an orderly stop; a second signal that arrives before it is done forces 128+n."""
    return {0, 128 + keys[-1]} if len(keys) > 1 else {0}


def statuses(db: psycopg.Connection, ids: list[int]) -> dict[int, tuple[str, int]]:
    rows = db.execute(
        "SELECT id, status, attempt FROM backtest_job WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    return {job_id: (status, attempt) for job_id, status, attempt in rows}


def processing(db: psycopg.Connection) -> int | None:
    row = db.execute("SELECT id FROM backtest_job WHERE status = 'processing'").fetchone()
    return None if row is None else int(row[0])


def signal_at(db: psycopg.Connection, moment: str, terminal: Terminal, keys: Any) -> None:
    """Wait for `moment` (a job mid-run, or one claimed a moment ago), then press `keys`."""
    wait_for(lambda: processing(db), timeout_s=60, what="a job claimed", every_s=0.005)
    if moment == "mid-run":
        time.sleep(1.0)
    terminal.press(keys)


def assert_each_completed_once(
    db: psycopg.Connection, ids: list[int], output: Callable[[], str], *, attempts: int | None
) -> None:
    wait_for(
        lambda: all(status == "completed" for status, _ in statuses(db, ids).values()),
        timeout_s=90,
        what="both jobs completed",
    )
    # The line is logged just after the commit the database shows.
    done = [f"event=job_completed job={job_id} " for job_id in ids]

    def logged() -> str:
        text = output()
        return text if all(line in text for line in done) else ""

    logs = wait_for(logged, timeout_s=10, what="the completions logged")
    for job_id in ids:
        assert logs.count(f"event=job_completed job={job_id} ") == 1, job_id
    assert "event=job_failed" not in logs
    if attempts is not None:
        assert {attempt for _, attempt in statuses(db, ids).values()} == {attempts}


@pytest.mark.parametrize(
    ("keys", "moment"),
    [
        (CTRL_C, "mid-run"),
        (CTRL_C, "just claimed"),
        (CTRL_C_TWICE, "mid-run"),
        (SIGTERM, "mid-run"),
    ],
    ids=["ctrl-c", "ctrl-c-after-claim", "ctrl-c-twice", "sigterm-to-group"],
)
def test_ctrl_c_on_algotcha_up_keeps_both_jobs(
    keys: tuple[signal.Signals, ...],
    moment: str,
    settings: Settings,
    db: psycopg.Connection,
    tmp_path: Path,
) -> None:
    """Given `algotcha up` (in-process broker) in a terminal with a job running, when Ctrl-C
    reaches its whole process group, then it stops, nothing is failed, and after a restart
    both jobs complete once; once, without an attempt counted against them. A second Ctrl-C
    stops it at once, however far the orderly stop had come."""
    port = free_port()
    env = worker_env(settings, DEBUG_BACKTEST_DELAY_SECONDS="2")
    del env["BROKER_URL"]  # the all-in-one mode of `make run`
    env["JWT_SECRET"] = settings.jwt_secret or ""
    args = ["up", "--port", str(port), "--var", str(tmp_path / "var")]
    first = Terminal(args, env, tmp_path / "up-1.log")
    first.wait_ready("Uvicorn running on")  # listening ("Algotcha is up" comes just before)
    # Its own API only: an API on RabbitMQ would take the wake-ups its sweeper owes.
    url = f"http://127.0.0.1:{port}"
    with login(url, "ctrl-c@example.com", "correct horse battery", register=True) as client:
        body = {"payload": payload(), "notifyVia": "none"}
        ids = [client.post("/api/backtest/queue", json=body).json()["queueId"] for _ in range(2)]
    signal_at(db, moment, first, keys)
    assert first.exited() in exit_codes(keys), first.output()
    wait_for(lambda: not first.group_alive(), timeout_s=10, what="every process of the group")
    assert "failed" not in {status for status, _ in statuses(db, ids).values()}

    env["DEBUG_BACKTEST_DELAY_SECONDS"] = "0"
    second = Terminal(args, env, tmp_path / "up-2.log")
    second.wait_ready("Uvicorn running on")
    try:
        assert_each_completed_once(
            db,
            ids,
            lambda: first.output() + second.output(),
            attempts=None if keys == CTRL_C_TWICE else 1,
        )
    finally:
        second.press(CTRL_C)
        assert second.exited() == 0, second.output()


@pytest.mark.parametrize(
    ("keys", "moment"),
    [
        (CTRL_C, "mid-run"),
        (CTRL_C, "just claimed"),
        (CTRL_C_TWICE, "mid-run"),
        (SIGTERM, "mid-run"),
    ],
    ids=["ctrl-c", "ctrl-c-after-claim", "ctrl-c-twice", "sigterm-to-group"],
)
def test_stopping_algotcha_worker_from_a_terminal_keeps_both_jobs(
    keys: tuple[signal.Signals, ...],
    moment: str,
    make_user: Any,
    settings: Settings,
    db: psycopg.Connection,
    tmp_path: Path,
) -> None:
    """Given `algotcha worker` in a terminal with a job running, when its process group gets
    Ctrl-C (once or twice) or SIGTERM, then no job fails and a restarted worker completes
    both once. A second Ctrl-C does not wait for the orderly hand-back, so the restarted
    worker recovers the job as its dead predecessor's, counting that attempt."""
    user = make_user()
    ids = [user.submit().json()["queueId"] for _ in range(2)]
    env = worker_env(settings, DEBUG_BACKTEST_DELAY_SECONDS="2")
    first = Terminal(["worker"], env, tmp_path / "worker-1.log")
    first.wait_ready("event=worker_ready")
    signal_at(db, moment, first, keys)
    assert first.exited() in exit_codes(keys), first.output()
    wait_for(lambda: not first.group_alive(), timeout_s=10, what="every process of the group")
    assert "failed" not in {status for status, _ in statuses(db, ids).values()}

    env["DEBUG_BACKTEST_DELAY_SECONDS"] = "0"
    second = Terminal(["worker"], env, tmp_path / "worker-2.log")
    second.wait_ready("event=worker_ready")
    try:
        assert_each_completed_once(
            db,
            ids,
            lambda: first.output() + second.output(),
            attempts=None if keys == CTRL_C_TWICE else 1,
        )
    finally:
        second.press(SIGTERM)
        assert second.exited() == 0, second.output()


@pytest.mark.parametrize("keys", [CTRL_C, CTRL_C_TWICE, SIGTERM], ids=["ctrl-c", "twice", "term"])
def test_stopping_algotcha_notifier_from_a_terminal_exits_promptly(
    keys: tuple[signal.Signals, ...], settings: Settings, db: psycopg.Connection, tmp_path: Path
) -> None:
    """Given `algotcha notifier` in a terminal, when its group gets Ctrl-C or SIGTERM, then
    it stops within seconds, without a traceback, and leaves no process behind."""
    notifier = Terminal(["notifier"], worker_env(settings), tmp_path / "notifier.log")
    notifier.wait_ready("event=notifier_ready")
    notifier.press(keys)
    assert notifier.exited(timeout_s=20) in exit_codes(keys), notifier.output()
    wait_for(lambda: not notifier.group_alive(), timeout_s=10, what="every process of the group")
    assert "Traceback" not in notifier.output()


def test_ctrl_c_twice_stops_telegram_poll_without_waiting_for_its_long_poll(
    settings: Settings, telegram_api: FakeTelegram, db: psycopg.Connection, tmp_path: Path
) -> None:
    """Given `algotcha telegram-poll` waiting in getUpdates (the fake holds it 5 s), when
    Ctrl-C comes twice, then the second ends it at once (128+SIGINT) instead of waiting."""
    env = worker_env(settings, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=telegram_api.url)
    poll = Terminal(["telegram-poll", "--timeout", "30"], env, tmp_path / "poll.log")
    poll.wait_ready("event=telegram_poll_ready")
    wait_for(lambda: telegram_api.attempts("getUpdates"), what="a long poll in flight")
    poll.press(CTRL_C_TWICE)
    assert poll.exited(timeout_s=20) == 128 + signal.SIGINT, poll.output()
    wait_for(lambda: not poll.group_alive(), timeout_s=10, what="every process of the group")
