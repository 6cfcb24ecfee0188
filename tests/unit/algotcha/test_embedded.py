"""The embedded PostgreSQL is an optional extra: without it, `algotcha up` says what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from algotcha import cli


def test_up_without_a_database_or_pgserver_names_both_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after `pip install algotcha` (no `embedded` extra) with no DATABASE_URL."""
    # None in sys.modules makes `import pgserver...` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "pgserver", None)
    monkeypatch.setitem(sys.modules, "pgserver.postgres_server", None)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BROKER_URL", raising=False)

    assert cli.main(["up", "--var", str(tmp_path / "var"), "--port", "0"]) == cli.EXIT_USER_ERROR

    error = capsys.readouterr().err
    assert "DATABASE_URL is not set" in error
    assert "pip install 'algotcha[embedded]'" in error
    assert not (tmp_path / "var" / "postgres").exists()
