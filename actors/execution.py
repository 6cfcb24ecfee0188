"""Runs one backtest in a child process that can really be stopped.

Dramatiq's TimeLimit raises an exception in the worker thread, which cannot interrupt
C code such as numexpr or pandas, and a crash in native code would take the worker
down with it. So the engine runs in a child process (forked from a single-threaded
forkserver that has pandas and the engine imported already, so starting one is cheap),
reports progress over a pipe, and is killed on a time limit, a cancel, or a shutdown.
The worker parses the stored payload; the child gets an engine.BacktestRequest and
imports nothing but the engine.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import engine

logger = logging.getLogger(__name__)

_context = multiprocessing.get_context("forkserver")
# This module too: a backtest process unpickles _child_main from it. The engine's compiled
# loops are imported (and their numba cache read) once, here, not in every process.
_context.set_forkserver_preload(
    [
        "actors.execution",
        "engine.tradeloop",
        "engine.smoothing",
        "pandas",
        "numexpr",
        "pyarrow.parquet",
    ]
)

# Variables the child may see: it runs user-influenced code paths, so no token or password.
_CHILD_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class Outcome:
    """How a run ended, when it did not end with a result."""


@dataclass(frozen=True)
class Rejected(Outcome):
    """The engine refused the input (EngineError): the user's to fix, not retried."""

    message: str


@dataclass(frozen=True)
class Crashed(Outcome):
    message: str


@dataclass(frozen=True)
class TimedOut(Outcome):
    limit_s: float


@dataclass(frozen=True)
class Stopped(Outcome):
    """on_tick asked for the run to stop (a cancel, a shutdown, or the job was taken away)."""


@dataclass(frozen=True)
class Finished:
    result: dict[str, Any]


class _Child:
    """A started backtest process waiting on its pipe for the one job it will run."""

    def __init__(self) -> None:
        self.conn, child_end = _context.Pipe(duplex=True)
        self.process = _context.Process(
            target=_child_main, args=(child_end,), name="algotcha-backtest", daemon=True
        )
        self.process.start()
        child_end.close()

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


# The next child, started ahead of time: a fork through the forkserver takes 20-40 ms,
# which would otherwise be spent between claiming a job and starting it.
_ready: _Child | None = None
# The child running a job, if any: a forced stop kills it rather than leave it orphaned.
_running: _Child | None = None


def warm_up() -> None:
    """Start the forkserver and the first child now, so the first job does not wait for them."""
    global _ready
    # A waiting child never writes, so a readable pipe means it died (is_alive() can lag,
    # since the forkserver, not this process, reaps it).
    if _ready is None or not _ready.process.is_alive() or _ready.conn.poll():
        if _ready is not None:
            _ready.stop()
        _ready = _Child()


def shut_down() -> None:
    """Kill the backtest processes: they ignore SIGTERM, so multiprocessing's exit handler
    (terminate, then join) would wait for them forever."""
    global _ready
    for child in (_ready, _running):
        if child is not None:
            child.stop()
    _ready = None


def run(
    request: engine.BacktestRequest,
    data_dir: Path,
    *,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float = 0.0,
) -> Finished | Outcome:
    """Run the backtest of `request` on the data in data_dir to its end or until stopped.

    on_tick(progress) is called about every tick_interval_s with the latest progress; when
    it returns True the child is killed and Stopped is returned. One child runs one job.
    """
    global _ready, _running
    warm_up()
    assert _ready is not None
    child = _running = _ready
    started = time.monotonic()
    try:
        child.conn.send((request, str(data_dir), delay_s))
        # The next job's process starts now and warms up while this one runs, so that
        # back-to-back jobs never wait for a fork and pyarrow's set-up (~100 ms).
        _ready = _Child()
        return _follow(child, started, time_limit_s, tick_interval_s, on_tick)
    except (EOFError, OSError):
        # The child died: a closed pipe reads as EOF, or as a reset (ConnectionResetError)
        # when it died with our payload still unread; sending to it is a BrokenPipeError.
        child.process.join(timeout=5)
        return Crashed(_describe_exit(child.process.exitcode))
    finally:
        _running = None
        child.stop()


def _follow(
    child: _Child,
    started: float,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
) -> Finished | Outcome:
    # The claim has just written a heartbeat: the first tick can wait an interval.
    progress, next_tick = 0, started + tick_interval_s
    while True:
        now = time.monotonic()
        if now - started > time_limit_s:
            return TimedOut(time_limit_s)
        if now >= next_tick:
            if on_tick(progress):
                return Stopped()
            next_tick = now + tick_interval_s
        wait = min(next_tick, started + time_limit_s) - time.monotonic()
        if not child.conn.poll(max(0.0, wait)):
            continue
        kind, value = child.conn.recv()
        if kind == "progress":
            progress = max(progress, int(value))
        elif kind == "result":
            return Finished(value)
        elif kind == "rejected":
            return Rejected(str(value))
        else:
            return Crashed(str(value))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the backtest process was killed by signal {-code}"
    return f"the backtest process exited unexpectedly (code {code})"


def _child_main(conn: Connection) -> None:
    # Ctrl-C in a terminal signals the whole process group, and a SIGTERM may be sent to it
    # too: the worker decides whether this backtest is handed back, so only it stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name in list(os.environ):
        if name not in _CHILD_ENV:
            del os.environ[name]
    from engine.store import warm_up

    # The wait for a job is free time: spend it on pyarrow's first-use set-up.
    warm_up()
    try:
        request, data_dir, delay_s = conn.recv()
    except EOFError:
        return  # never given a job: the worker stopped

    last = -1

    def on_progress(value: int) -> None:
        nonlocal last
        if value != last:
            conn.send(("progress", value))
            last = value

    try:
        time.sleep(delay_s)
        result = engine.backtest(request, engine.BarStore(Path(data_dir)), on_progress=on_progress)
        conn.send(("result", result.as_dict()))
    except engine.EngineError as exc:
        conn.send(("rejected", str(exc)))
    except Exception as exc:
        logger.exception("event=backtest_crashed")
        conn.send(("crashed", f"internal error in the backtest engine ({type(exc).__name__})"))
    finally:
        conn.close()
