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

import ctypes
import dataclasses
import gc
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
# loops are imported (and their numba cache read) once, here, not in every process; `engine`
# itself loads its sweep modules only on first use, so they are named.
_context.set_forkserver_preload(
    [
        "actors.execution",
        "engine.tradeloop",
        "engine.sweep",
        "engine.walkforward",
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


@dataclass(frozen=True)
class SweepChunkTask:
    """What a child runs for one chunk of a sweep: the parsed sweep (its payload not yet
    checked against the data) and the combinations [first, end) of its plan."""

    job_id: int
    request: engine.SweepRequest
    first: int
    end: int


@dataclass(frozen=True)
class FoldTask:
    """What a child runs for one fold of a walk-forward: the parsed request (its payload not
    yet checked against the data) and the fold's index."""

    job_id: int
    request: engine.WalkForwardRequest
    fold: int


ChunkTask = SweepChunkTask | FoldTask


@dataclass(frozen=True)
class _Prepare:
    """What a waiting child is told when its worker is idle: touch `size` bytes of memory."""

    size: int


class _Child:
    """A started backtest process waiting on its pipe for the one job it will run."""

    def __init__(self) -> None:
        self.conn, child_end = _context.Pipe(duplex=True)
        self.process = _context.Process(
            target=_child_main, args=(child_end,), name="algotcha-backtest", daemon=True
        )
        self.process.start()
        child_end.close()
        self.prepared = False

    def prepare(self, size: int) -> None:
        if not self.prepared and size > 0:
            self.conn.send(_Prepare(size))
            self.prepared = True

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


def idle(pretouch_bytes: int) -> None:
    """The worker has nothing to run: end a finished sweep's process (and the memory its bars
    hold), and have the waiting child touch `pretouch_bytes` of the memory its job will use.

    As the JVM's AlwaysPreTouch does for its heap: measured on a sweep of 2.6 M bars, page
    faults on fresh memory made its first chunk twice as long as the next one, and every
    chunk about a fifth longer with two workers faulting at once (more on a VM, where the
    host backs each new page). Not when a child is started: one started as a job begins
    would do it beside that job, taking a CPU and the page-fault path from it.
    """
    release_chunk_process()
    warm_up()
    assert _ready is not None
    try:
        _ready.prepare(pretouch_bytes)
    except OSError:  # it died: warm_up() starts another for the next job
        _ready.stop()


def shut_down() -> None:
    """Kill the backtest processes: they ignore SIGTERM, so multiprocessing's exit handler
    (terminate, then join) would wait for them forever."""
    global _ready
    for child in (_ready, _running):
        if child is not None:
            child.stop()
    _ready = None
    release_chunk_process()


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
    release_chunk_process()
    child = _take_ready()
    try:
        return _supervise(child, request, data_dir, time_limit_s, tick_interval_s, on_tick, delay_s)
    finally:
        child.stop()


def run_chunk(
    task: ChunkTask,
    data_dir: Path,
    *,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float = 0.0,
) -> Finished | Outcome:
    """Run one chunk of a sweep or one fold of a walk-forward as run() runs a backtest;
    on_tick gets the units done in the chunk (of a fold: its steps, engine.walkforward's
    fold_units), and Finished holds engine.sweep.ChunkResult.as_dict() (of a fold:
    FoldResult.as_dict(packed=True)).

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
    task: engine.BacktestRequest | ChunkTask,
    data_dir: Path,
    time_limit_s: float,
    tick_interval_s: float,
    on_tick: Callable[[int], bool],
    delay_s: float,
) -> Finished | Outcome:
    global _running
    _running = child
    started = time.monotonic()
    try:
        child.conn.send((task, str(data_dir), delay_s))
        return _follow(child, started, time_limit_s, tick_interval_s, on_tick)
    except (EOFError, OSError):
        # The child died: a closed pipe reads as EOF, or as a reset (ConnectionResetError)
        # when it died with our payload still unread; sending to it is a BrokenPipeError.
        child.process.join(timeout=5)
        return Crashed(_describe_exit(child.process.exitcode))
    finally:
        _running = None


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
    # What the forkserver imported (pandas, numba, the engine) lives as long as this process:
    # out of the collector's sight, a collection no longer walks it, which cost a tenth of
    # a sweep's time and, by writing to pages shared with the forkserver, copied them.
    gc.freeze()
    # Ctrl-C in a terminal signals the whole process group, and a SIGTERM may be sent to it
    # too: the worker decides whether this backtest is handed back, so only it stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name in list(os.environ):
        if name not in _CHILD_ENV:
            del os.environ[name]
    _keep_freed_memory()
    from engine.store import warm_up

    # The wait for a job is free time: spend it on pyarrow's first-use set-up.
    warm_up()
    sweep: _LoadedSweep | None = None
    walk: _LoadedWalkForward | None = None
    while True:  # one backtest, or the chunks of one sweep or walk-forward
        try:
            message = conn.recv()
        except EOFError:
            return  # no (further) task: the worker stopped or moved on
        if isinstance(message, _Prepare):
            _touch_memory(message.size)
            continue
        task, data_dir, delay_s = message
        progress = _ProgressSender(conn)
        try:
            time.sleep(delay_s)
            store = engine.BarStore(Path(data_dir))
            if isinstance(task, FoldTask):
                if walk is None:
                    walk = _LoadedWalkForward(task.request, store)
                conn.send(("result", walk.run(task.fold, progress.send)))
                continue
            if not isinstance(task, SweepChunkTask):
                result = engine.backtest(task, store, on_progress=progress.send)
                conn.send(("result", result.as_dict()))
                return
            if sweep is None:
                sweep = _LoadedSweep(task.request, store)
            chunk = sweep.run(range(task.first, task.end), progress.send)
            conn.send(("result", chunk.as_dict()))
        except engine.EngineError as exc:
            conn.send(("rejected", str(exc)))
            return
        except Exception as exc:
            logger.exception("event=backtest_crashed")
            conn.send(("crashed", f"internal error in the backtest engine ({type(exc).__name__})"))
            return


# glibc's mallopt parameters, and the largest mmap threshold it takes on 64-bit systems.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20
# Under the mmap threshold, so that the pieces come from the heap that malloc keeps.
_TOUCH_PIECE = 16 * 2**20


def _touch_memory(size: int) -> None:
    """Fault in `size` bytes of heap and free them to malloc, which keeps them (see
    _keep_freed_memory): the job's arrays then land on mapped pages."""
    pieces = [bytearray(_TOUCH_PIECE) for _ in range(size // _TOUCH_PIECE)]  # zeroed: written
    del pieces


def _keep_freed_memory() -> None:
    """Have malloc keep and reuse the memory the engine frees, instead of handing it back.

    glibc maps a block of (at first) 128 KiB or more on its own and unmaps it when freed; a
    sweep allocates and frees indicator and signal arrays of megabytes per combination, so
    each came back as fresh pages that the kernel zeroes one fault at a time: measured, a
    third of a sweep chunk's time on this VM, more with two workers faulting at once.
    Served from the heap (blocks up to glibc's 32 MiB ceiling) and not trimmed, the memory
    is reused; it goes back to the system when this process ends with its job. A no-op
    under a C library without mallopt (musl).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
        mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


class _ProgressSender:
    """Progress to the parent, each value once."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.last = conn, -1

    def send(self, value: int) -> None:
        if value != self.last:
            self.conn.send(("progress", value))
            self.last = value


class _LoadedSweep:
    """A sweep's checked request, bars and engine workspace, read once for all its chunks."""

    def __init__(self, request: engine.SweepRequest, store: engine.BarStore) -> None:
        base = engine.check(request.base, store)
        self.request = dataclasses.replace(request, base=base)
        self.bars = store.load(base.symbol, base.timeframe, base.start, base.end)
        self.workspace = engine.sweep.Workspace(self.request, self.bars)

    def run(self, indices: range, on_progress: Callable[[int], None]) -> engine.sweep.ChunkResult:
        return engine.sweep.run_chunk(
            self.request, self.bars, indices, on_progress=on_progress, workspace=self.workspace
        )


class _LoadedWalkForward:
    """A walk-forward's checked request, bars, plan and folds, read once for all its folds
    this process runs."""

    def __init__(self, request: engine.WalkForwardRequest, store: engine.BarStore) -> None:
        base = engine.check(request.sweep.base, store)
        sweep = dataclasses.replace(request.sweep, base=base)
        self.request = dataclasses.replace(request, sweep=sweep)
        self.bars = store.load(base.symbol, base.timeframe, base.start, base.end)
        self.laid_out = engine.grid.plan(sweep)
        # On the bars themselves: the submit could only estimate their count.
        self.folds = engine.walkforward.plan_folds(self.request, self.bars, laid_out=self.laid_out)

    def run(self, index: int, on_progress: Callable[[int], None]) -> dict[str, Any]:
        fold = engine.walkforward.run_fold(
            self.request,
            self.bars,
            self.folds[index],
            on_progress=on_progress,
            laid_out=self.laid_out,
        )
        return fold.as_dict(packed=True)
