"""Runs one backtest in a child process that can really be stopped.

Dramatiq's TimeLimit raises an exception in the worker thread, which cannot interrupt
C code such as numexpr or pandas, and a crash in native code would take the worker
down with it. So the engine runs in a child process (forked from a single-threaded
forkserver that has pandas and the engine imported already, so starting one is cheap),
reports progress over a pipe, and is killed on a time limit, a cancel, or a shutdown.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import engine

logger = logging.getLogger(__name__)

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(
    [
        "engine",
        "engine.tradeloop",
        "engine.smoothing",
        "algotcha.schemas",
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


@dataclass(frozen=True)
class BacktestTask:
    """What a child runs for a backtest job: its stored payload (a RunBacktestDto)."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class SweepChunkTask:
    """What a child runs for one chunk of a sweep: the stored SweepRequest JSON and the
    combinations [first, end) of its plan."""

    job_id: int
    sweep: dict[str, Any]
    first: int
    end: int
    max_combinations: int


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
# The process that ran the last chunk of a sweep, kept for the next chunk of the same job.
_chunk_child: _Child | None = None
_chunk_job: int | None = None


def warm_up() -> None:
    """Start the forkserver and the first child now, so the first job does not wait for them."""
    global _ready
    # A waiting child never writes, so a readable pipe means it died (is_alive() can lag,
    # since the forkserver, not this process, reaps it).
    if _ready is None or not _ready.process.is_alive() or _ready.conn.poll():
        if _ready is not None:
            _ready.stop()
        _ready = _Child()


def run(
    payload: dict[str, Any],
    data_dir: Path,
    *,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float = 0.0,
) -> Finished | Outcome:
    """Run the backtest of `payload` (a stored RunBacktestDto) to its end or until stopped.

    on_tick(progress) is called about every tick_interval_s with the latest progress; when
    it returns True the child is killed and Stopped is returned. One child runs one job.
    """
    release_chunk_process()
    child = _take_ready()
    try:
        return _supervise(
            child, BacktestTask(payload), data_dir, time_limit_s, tick_interval_s, on_tick, delay_s
        )
    finally:
        child.stop()


def run_chunk(
    task: SweepChunkTask,
    data_dir: Path,
    *,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float = 0.0,
) -> Finished | Outcome:
    """Run one chunk of a sweep as run() runs a backtest; on_tick gets the combinations done
    in the chunk, and Finished holds engine.sweep.ChunkResult.as_dict().

    Unlike a backtest's, the process outlives a chunk that finished: the next chunk of the
    same sweep on this worker reuses its bars, plan and indicators (loading 2.6 M bars alone
    takes about a second). Any other task, or release_chunk_process(), ends it.
    """
    global _chunk_child, _chunk_job
    if _chunk_child is not None and (_chunk_job != task.job_id or _chunk_child.conn.poll()):
        release_chunk_process()
    if _chunk_child is None:
        _chunk_child, _chunk_job = _take_ready(), task.job_id
    outcome = _supervise(
        _chunk_child, task, data_dir, time_limit_s, tick_interval_s, on_tick, delay_s
    )
    if not isinstance(outcome, Finished):
        release_chunk_process()
    return outcome


def release_chunk_process() -> None:
    """End the process kept for the chunks of a sweep (and the memory its bars hold)."""
    global _chunk_child, _chunk_job
    if _chunk_child is not None:
        _chunk_child.stop()
    _chunk_child, _chunk_job = None, None


def _take_ready() -> _Child:
    """The waiting child, with the next one started in its place: back-to-back jobs never
    wait for a fork and pyarrow's set-up (~100 ms)."""
    global _ready
    warm_up()
    assert _ready is not None
    child, _ready = _ready, _Child()
    return child


def _supervise(
    child: _Child,
    task: BacktestTask | SweepChunkTask,
    data_dir: Path,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float,
) -> Finished | Outcome:
    started = time.monotonic()
    try:
        child.conn.send((task, str(data_dir), delay_s))
        return _follow(child, started, time_limit_s, tick_interval_s, on_tick)
    except (EOFError, OSError):
        # The child died: a closed pipe reads as EOF, or as a reset (ConnectionResetError)
        # when it died with our payload still unread; sending to it is a BrokenPipeError.
        child.process.join(timeout=5)
        return Crashed(_describe_exit(child.process.exitcode))


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
    for name in list(os.environ):
        if name not in _CHILD_ENV:
            del os.environ[name]
    from engine.store import warm_up

    # The wait for a job is free time: spend it on pyarrow's first-use set-up.
    warm_up()
    # Imported here: the parent never needs the engine, and the forkserver has it loaded.
    import engine
    from algotcha.errors import ValidationError

    sweep: _LoadedSweep | None = None
    while True:  # one backtest, or the chunks of one sweep
        try:
            task, data_dir, delay_s = conn.recv()
        except EOFError:
            return  # no (further) task: the worker stopped or moved on
        progress = _ProgressSender(conn)
        try:
            time.sleep(delay_s)
            store = engine.BarStore(Path(data_dir))
            if not isinstance(task, SweepChunkTask):
                conn.send(("result", _backtest(task, store, progress.send)))
                return
            if sweep is None:
                sweep = _LoadedSweep(task, store)
            indices = range(task.first, task.end)
            chunk = sweep.run(indices, progress.send)
            conn.send(("result", chunk.as_dict()))
        except engine.EngineError as exc:
            conn.send(("rejected", str(exc)))
            return
        except ValidationError as exc:
            conn.send(("rejected", exc.detail))
            return
        except Exception as exc:
            logger.exception("event=backtest_crashed")
            conn.send(("crashed", f"internal error in the backtest engine ({type(exc).__name__})"))
            return


class _ProgressSender:
    """Progress to the parent, each value once."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.last = conn, -1

    def send(self, value: int) -> None:
        if value != self.last:
            self.conn.send(("progress", value))
            self.last = value


def _backtest(
    task: BacktestTask, store: engine.BarStore, on_progress: Callable[[int], None]
) -> dict[str, Any]:
    import engine
    from algotcha import schemas

    request = engine.check(schemas.parse_payload(task.payload), store)
    bars = store.load(request.symbol, request.timeframe, request.start, request.end)
    return engine.run(request, bars, on_progress=on_progress).as_dict()


class _LoadedSweep:
    """A sweep's request, bars and engine workspace, read once for all its chunks here."""

    def __init__(self, task: SweepChunkTask, store: engine.BarStore) -> None:
        import engine
        from algotcha import schemas

        request = schemas.parse_sweep(task.sweep, max_combinations=task.max_combinations)
        try:
            request = dataclasses.replace(request, base=engine.check(request.base, store))
        except engine.EngineError as exc:
            raise schemas.sweep_error(exc) from None
        base = request.base
        self.request = request
        self.bars = store.load(base.symbol, base.timeframe, base.start, base.end)
        self.workspace = engine.sweep.Workspace(request, self.bars)

    def run(self, indices: range, on_progress: Callable[[int], None]) -> engine.sweep.ChunkResult:
        import engine

        return engine.sweep.run_chunk(
            self.request, self.bars, indices, on_progress=on_progress, workspace=self.workspace
        )
