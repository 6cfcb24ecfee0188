"""Progress on stderr: a bar redrawn in place on a terminal, plain lines for logs and pipes,
nothing under --json; notes stay visible above the bar."""

from __future__ import annotations

import io
import threading

from algotcha.progress import BAR_WIDTH, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drawings(text: str) -> list[str]:
    """Each state of the bar, as the terminal last showed it."""
    return [part.removesuffix("\x1b[K") for part in text.split("\r") if part]


def test_a_count_is_one_bar_redrawn_on_a_terminal_and_ends_with_a_newline() -> None:
    stream = Terminal()
    with Progress(4, "combinations", stream) as progress:
        progress.update(1)
        progress.update(4)
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    last = drawings(text.removesuffix("\n"))[-1]
    assert last.startswith(f"[{'#' * BAR_WIDTH}] 4/4 combinations  ")
    assert drawings(text)[0].startswith(f"[{'.' * BAR_WIDTH}] 0/4 combinations  0.0 s")


def test_a_count_in_a_pipe_is_a_plain_line_per_tenth() -> None:
    stream = io.StringIO()
    with Progress(1000, "combinations", stream) as progress:
        for done in range(1, 1001):
            progress.update(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("100/1,000 combinations in ")
    assert lines[-1].startswith("1,000/1,000 combinations in ")
    assert "\r" not in stream.getvalue()


def test_quiet_progress_writes_nothing_even_on_a_terminal() -> None:
    for stream in (io.StringIO(), Terminal()):
        with Progress(10, "steps", stream, quiet=True) as progress:
            progress.update(5)
            progress.advance("a.zip", "verified")
        assert stream.getvalue() == ""


def test_named_steps_with_bytes_are_redrawn_with_notes_kept_above() -> None:
    stream = Terminal()
    with Progress(2, "files", stream, label="BTCUSDT") as progress:
        progress.add_bytes(1_500_000)
        progress.advance("BTCUSDT-1m-2024-01.zip", "verified")
        progress.note("BTCUSDT-1m-2024-02.zip: checksum mismatch")
        progress.advance("BTCUSDT-1m-2024-02.zip", "failed")
    text = stream.getvalue()
    assert "\n" not in text.split("checksum mismatch")[0]  # the bar is redrawn, not repeated
    assert "\r\x1b[KBTCUSDT-1m-2024-02.zip: checksum mismatch\n" in text
    last = drawings(text.rstrip("\n"))[-1]
    assert last.startswith(f"BTCUSDT [{'#' * BAR_WIDTH}] 2/2 files 1.5 MB  ")
    assert last.endswith("  BTCUSDT-1m-2024-02.zip failed")


def test_named_steps_in_a_pipe_are_one_plain_line_each() -> None:
    stream = io.StringIO()
    with Progress(2, "files", stream, label="BTCUSDT") as progress:
        progress.add_bytes(10)
        progress.advance("a.zip", "verified")
        progress.add_total(1)
        progress.advance("b.zip", "missing (404)")
        progress.note("b.zip: not in the archive")
    assert stream.getvalue() == (
        "BTCUSDT: 1/2 files: a.zip verified\n"
        "BTCUSDT: 2/3 files: b.zip missing (404)\n"
        "b.zip: not in the archive\n"
    )


def test_notes_are_written_when_quiet() -> None:
    stream = io.StringIO()
    with Progress(1, "files", stream, quiet=True) as progress:
        progress.note("a.zip: checksum mismatch")
    assert stream.getvalue() == "a.zip: checksum mismatch\n"


def test_bytes_counted_from_several_threads_all_arrive() -> None:
    progress = Progress(1, "files", io.StringIO())

    def fetch() -> None:
        for _ in range(10_000):
            progress.add_bytes(1)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.bytes == 40_000
