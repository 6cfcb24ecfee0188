"""Download progress: a bar redrawn in place on a terminal, one plain line per file otherwise."""

from __future__ import annotations

import threading
import time
from typing import TextIO

BAR_WIDTH = 30
_REDRAW_EVERY_S = 0.1


class Progress:
    """Counts files and bytes; `stream` is stderr in the CLI, so stdout keeps the summary."""

    def __init__(self, stream: TextIO, total_files: int, *, label: str) -> None:
        self.stream = stream
        self.total_files = total_files
        self.label = label
        self.terminal = stream.isatty()
        self.files = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._drawn_at = 0.0

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            if self.terminal and time.monotonic() - self._drawn_at >= _REDRAW_EVERY_S:
                self._draw()

    def file_done(self, name: str, outcome: str) -> None:
        """One file finished: `outcome` is a word or two (fetched, already here, missing...)."""
        with self._lock:
            self.files += 1
            if self.terminal:
                self._draw()
            else:
                print(
                    f"{self.label}: {self.files}/{self.total_files} {name} {outcome}",
                    file=self.stream,
                    flush=True,
                )

    def note(self, message: str) -> None:
        """A line that must stay visible (a missing month, a failure), above the bar."""
        with self._lock:
            prefix = "\r\x1b[K" if self.terminal else ""
            print(f"{prefix}{message}", file=self.stream, flush=True)
            if self.terminal:
                self._draw()

    def close(self) -> None:
        if self.terminal:
            with self._lock:
                self._draw()
                print(file=self.stream, flush=True)

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.files // max(self.total_files, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        megabytes = self.bytes / 1e6
        self.stream.write(
            f"\r{self.label} [{bar}] {self.files}/{self.total_files} files {megabytes:.1f} MB"
        )
        self.stream.flush()
        self._drawn_at = time.monotonic()
