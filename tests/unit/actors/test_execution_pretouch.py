"""An idle worker's waiting backtest process touches the memory its job will use, and the job
then runs on it as on any other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psutil
import pytest

import engine
from actors import execution
from engine.synth import synth_bars
from tests.unit.engine.bartables import START, request

MIB = 2**20


@pytest.fixture
def waiting_child() -> Iterator[None]:
    execution.idle(0)  # the waiting child, not asked to touch anything
    yield
    execution.shut_down()


def private_bytes() -> int:
    assert execution._ready is not None
    return int(psutil.Process(execution._ready.process.pid).memory_full_info().uss)


def wait_for(predicate: object, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_the_waiting_child_touches_what_it_is_asked_to_once(waiting_child: None) -> None:
    before = private_bytes()
    execution.idle(256 * MIB)
    assert wait_for(lambda: private_bytes() - before >= 256 * MIB), (
        f"{(private_bytes() - before) / MIB:.0f} MiB touched, not 256"
    )
    # kept by malloc for the job, not handed back once freed
    time.sleep(0.5)
    touched = private_bytes()
    assert touched - before >= 256 * MIB
    execution.idle(256 * MIB)  # idle again: the same child touches nothing more
    time.sleep(1.0)
    assert private_bytes() - touched < 64 * MIB


def test_a_job_sent_while_the_child_touches_memory_runs_after_it(
    waiting_child: None, tmp_path: Path
) -> None:
    engine.BarStore(tmp_path).write("TEST", synth_bars(START, 60 * 24 * 30))
    job = request(end=START + timedelta(days=30), long_exit="close < open")
    execution.idle(128 * MIB)
    outcome = execution.run(
        job, tmp_path, time_limit_s=120, tick_interval_s=1.0, on_tick=lambda _: False
    )
    assert isinstance(outcome, execution.Finished)
    alone = engine.backtest(job, engine.BarStore(tmp_path)).as_dict()
    assert outcome.result["metrics"]["trades"] > 10
    assert outcome.result["trades"] == alone["trades"]
    # numpy's sums round by the arrays' alignment, which differs between processes
    assert outcome.result["metrics"] == pytest.approx(alone["metrics"], rel=1e-12)
