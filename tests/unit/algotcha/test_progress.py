"""The CLI progress bar: drawn on a terminal, silent in a pipe."""

from __future__ import annotations

import io

from algotcha.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_on_a_terminal_and_ends_with_a_newline() -> None:
    stream = Terminal()
    with ProgressBar(4, "combinations", stream) as bar:
        bar.update(4)
    text = stream.getvalue()
    assert "4/4 combinations" in text
    assert "[" + "#" * 30 + "]" in text
    assert text.endswith("\n")


def test_nothing_is_written_into_a_pipe() -> None:
    stream = io.StringIO()
    with ProgressBar(10, "combinations", stream) as bar:
        bar.update(5)
    assert stream.getvalue() == ""
