"""Download progress: a bar redrawn in place on a terminal, plain lines for logs and pipes."""

from __future__ import annotations

import io

from algotcha.marketdata.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_bar_redrawn_in_place_with_notes_above_it() -> None:
    stream = Terminal()
    progress = Progress(stream, 2, label="BTCUSDT")
    progress.add_bytes(1_500_000)
    progress.file_done("BTCUSDT-1m-2024-01.zip", "verified")
    progress.note("BTCUSDT-1m-2024-02.zip: checksum mismatch")
    progress.file_done("BTCUSDT-1m-2024-02.zip", "failed")
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text.split("checksum mismatch")[0]  # the bar is redrawn, not repeated
    assert "\r\x1b[KBTCUSDT-1m-2024-02.zip: checksum mismatch\n" in text
    last = text.rstrip("\n").rsplit("\r", 1)[1]
    assert last == f"BTCUSDT [{'#' * 30}] 2/2 files 1.5 MB"


def test_a_pipe_gets_one_plain_line_per_file() -> None:
    stream = io.StringIO()
    progress = Progress(stream, 2, label="BTCUSDT")
    progress.add_bytes(10)
    progress.file_done("a.zip", "verified")
    progress.file_done("b.zip", "missing (404)")
    progress.close()
    assert stream.getvalue() == "BTCUSDT: 1/2 a.zip verified\nBTCUSDT: 2/2 b.zip missing (404)\n"
