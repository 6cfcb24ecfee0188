"""A one-line progress bar for the CLI, drawn on a terminal only (never into a pipe or a log)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TextIO

WIDTH = 30
REDRAW_EVERY_S = 0.1


class ProgressBar:
    """`with ProgressBar(total, "combinations", sys.stderr) as bar: ... bar.update(done)`."""

    def __init__(self, total: int, unit: str, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream
        self.drawn = stream.isatty()
        self.started = time.monotonic()
        self.last_draw = 0.0

    def __enter__(self) -> ProgressBar:
        self.update(0)
        return self

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.drawn or (now - self.last_draw < REDRAW_EVERY_S and done < self.total):
            return
        self.last_draw = now
        filled = WIDTH * done // self.total
        elapsed = now - self.started
        left = elapsed / done * (self.total - done) if done else 0.0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {done:,}/{self.total:,} {self.unit}"
            f"  {elapsed:5.1f} s, about {left:5.1f} s left "
        )
        self.stream.flush()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
