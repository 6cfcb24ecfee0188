"""Progress of a long command on stderr: a bar redrawn in place on a terminal, plain lines
otherwise (a log or a pipe keeps every line and no carriage return), nothing when quiet."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30
REDRAW_EVERY_S = 0.1
# A count that names no step (combinations) gets a plain line per tenth, not one per step:
# a 10,000-combination sweep would otherwise write 10,000 lines into its log.
PLAIN_LINES = 10


class Progress:
    """`done` of `total` `unit` (files, combinations...), optionally with bytes and a label.

    Steps are counted either by name, `advance("a.zip", "verified")` (a plain line each), or by
    number, `update(done)` as the engine reports it. `note()` writes a line that must stay
    visible (a failure, a missing month), also when quiet. Safe to call from several threads.
    """

    def __init__(
        self,
        total: int,
        unit: str,
        stream: TextIO | None = None,
        *,
        label: str = "",
        quiet: bool = False,
    ) -> None:
        self.total, self.unit, self.label = total, unit, label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.terminal = not quiet and self.stream.isatty()
        self.done = 0
        self.bytes = 0
        self._item = ""
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False
        self._plain_tenth = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        with self._lock:
            if self.terminal:
                self._draw()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int) -> None:
        """`done` steps so far: the bar is redrawn at most every REDRAW_EVERY_S (and at the
        end); off a terminal, a line at each tenth of the total."""
        with self._lock:
            self.done = done
            if self.terminal:
                if done >= self.total or self._due():
                    self._draw()
            elif not self.quiet:
                tenth = PLAIN_LINES * done // max(self.total, 1)
                if tenth > self._plain_tenth:
                    self._plain_tenth = tenth
                    elapsed = time.monotonic() - self._started
                    self._line(f"{self._counted()} in {elapsed:.1f} s")

    def advance(self, item: str, outcome: str = "") -> None:
        """One more step, named: `item` (a file) and what became of it."""
        with self._lock:
            self.done += 1
            self._item = f"{item} {outcome}".strip()
            if self.terminal:
                self._draw()
            elif not self.quiet:
                self._line(f"{self._counted()}: {self._item}")

    def add_total(self, count: int) -> None:
        """More steps than first planned (a month not yet published is fetched by days)."""
        with self._lock:
            self.total += count

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            if self.terminal and self._due():
                self._draw()

    def note(self, message: str) -> None:
        """A line above the bar that stays when the bar moves on."""
        with self._lock:
            prefix = "\r\x1b[K" if self._drawn else ""
            self.stream.write(f"{prefix}{message}\n")
            self.stream.flush()
            if self._drawn:
                self._draw()

    def close(self) -> None:
        """The bar in its final state, and the line ended (so what follows starts afresh)."""
        with self._lock:
            if self._drawn:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False
                self.terminal = False

    def _due(self) -> bool:
        return time.monotonic() - self._drawn_at >= REDRAW_EVERY_S

    def _counted(self) -> str:
        prefix = f"{self.label}: " if self.label else ""
        return f"{prefix}{self.done:,}/{self.total:,} {self.unit}"

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        filled = BAR_WIDTH * min(self.done, self.total) // max(self.total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        label = f"{self.label} " if self.label else ""
        size = f" {self.bytes / 1e6:.1f} MB" if self.bytes else ""
        elapsed = time.monotonic() - self._started
        timing = f"  {elapsed:.1f} s"
        if 0 < self.done < self.total:
            timing += f", about {elapsed / self.done * (self.total - self.done):.1f} s left"
        item = f"  {self._item}" if self._item else ""
        # \x1b[K clears what a longer previous drawing left at the end of the line.
        self.stream.write(
            f"\r{label}[{bar}] {self.done:,}/{self.total:,} {self.unit}{size}{timing}{item}\x1b[K"
        )
        self.stream.flush()
        self._drawn_at = time.monotonic()
        self._drawn = True
