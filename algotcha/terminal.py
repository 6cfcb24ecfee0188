"""Progress of a long command: a bar redrawn in place on a terminal, one plain line per step
otherwise (a log file or a pipe keeps every line, and no carriage returns)."""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    """Counts `total` steps of `unit` on `stream` (stderr: stdout is the command's output)."""

    def __init__(self, total: int, unit: str, stream: TextIO | None = None) -> None:
        self.total, self.unit, self.done = total, unit, 0
        self.stream = stream if stream is not None else sys.stderr
        self.redraw = self.stream.isatty()

    def advance(self, label: str) -> None:
        self.done += 1
        counted = f"{self.done}/{self.total} {self.unit}"
        if self.redraw:
            filled = BAR_WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            # \x1b[K clears what a longer label left on the line.
            self.stream.write(f"\r[{bar}] {counted}  {label}\x1b[K")
        else:
            self.stream.write(f"{counted}: {label}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.redraw and self.done:
            self.stream.write("\n")
            self.stream.flush()
