"""What the local commands share: request files read as strictly as API bodies, output paths
checked before the work, the engine run under progress, results written as JSON."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from algotcha.errors import MalformedJSONError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

    import engine
    from algotcha.config import Settings


def check_output(option: str, path: Path, *, folder: bool) -> None:
    """Refuses an output path that cannot be written before the work that fills it runs (a
    sweep may take minutes); a folder for `folder`, else a file."""
    if folder:
        if path.exists() and not path.is_dir():
            raise ValidationError.for_field(option, f"{path} is a file; give a folder")
        return
    if path.is_dir():
        raise ValidationError.for_field(option, f"{path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValidationError.for_field(option, f"the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValidationError.for_field(option, f"the folder {path.parent} is not writable")


def unwritable(option: str, exc: OSError) -> ValidationError:
    """The one-line error for an output `option` whose write failed (a full disk, a folder
    that went away)."""
    where = f"{exc.filename} " if exc.filename else ""
    return ValidationError.for_field(option, f"{where}cannot be written ({exc.strerror or exc})")


def read_request(path: Path) -> Any:
    """The JSON document in a request file, read as strictly as the API reads a body; an
    unreadable or non-JSON file is the user's to fix, named in the message."""
    from algotcha import models

    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ValidationError.for_field(str(path), f"cannot be read ({exc.strerror})") from None
    try:
        return models.parse_json(body)
    except MalformedJSONError as exc:
        raise ValidationError.for_field(str(path), exc.detail) from None


T = TypeVar("T")
# (progress units, their name, run(on_progress, should_cancel) -> result): a sweep or
# walk-forward ready to go
Prepared = tuple[int, str, Callable[[Callable[[int], None], Callable[[], bool]], T]]


def run_with_progress(
    settings: Settings,
    base: engine.BacktestRequest,
    prepare: Callable[[engine.BacktestRequest, pd.DataFrame], Prepared[T]],
    *,
    error_path: str,
    quiet: bool,
) -> T:
    """Checks `base` against the stored data, loads its bars, and runs what `prepare` makes of
    them with progress on stderr (none when `quiet`: --json); engine errors are raised with
    their request field.

    The engine runs in a thread of its own: Python runs signal handlers in the main thread
    only, between bytecodes, so a compiled loop would hold Ctrl-C back for seconds. Here the
    first Ctrl-C is seen at once and asks the engine to stop at its next progress step; a
    second one (main() made it the default action) stops the process without waiting."""
    from concurrent.futures import ThreadPoolExecutor

    import engine
    from algotcha import engine_requests
    from algotcha.progress import Progress

    store = engine.BarStore(settings.data_dir)
    try:
        checked = engine.check(base, store)
        bars = store.load(checked.symbol, checked.timeframe, checked.start, checked.end)
        total, unit, run = prepare(checked, bars)
        stop = threading.Event()
        with (
            Progress(total, unit, quiet=quiet) as progress,
            ThreadPoolExecutor(1, thread_name_prefix="engine") as pool,
        ):
            running = pool.submit(run, progress.update, stop.is_set)
            try:
                return running.result()
            except KeyboardInterrupt:
                stop.set()  # the pool's exit waits for the engine to notice
                raise
    except engine.EngineError as exc:
        raise engine_requests.sweep_error(exc, error_path) from None


def write_json(document: Any, out: BinaryIO) -> None:
    """A command's result as indented JSON on `out` (stdout's buffer), straight from orjson: a
    90,000-trade backtest is ~30 MB, which json.dumps with indent writes in pure Python
    (seconds) and orjson in tens of milliseconds, with the newline appended in place."""
    import orjson

    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    sys.stdout.flush()  # anything printed before stays before
    out.write(data)
    out.flush()
