from __future__ import annotations

from pathlib import Path

import pytest

from algotcha.config import load_settings
from algotcha.errors import ConfigError

SECRET = "s" * 40


def test_load_settings_reads_values_and_keeps_defaults() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://x@h/db", "JWT_SECRET": SECRET, "MAX_QUEUED_PER_USER": "7"}
    )
    assert settings.database_url == "postgresql://x@h/db"
    assert settings.max_queued_per_user == 7
    assert settings.backtest_time_limit_s == 1800
    assert settings.max_body_bytes == 65536


def test_load_settings_defaults_no_secret() -> None:
    settings = load_settings({})
    assert settings.jwt_secret is None
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        settings.require_jwt_secret()


def test_load_settings_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings({"JWT_SECRET": "short"})


def test_load_settings_reports_every_bad_variable_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"MAX_QUEUED_PER_USER": "-1", "METRICS_PORT": "70000", "DATABASE_URL": "x"})
    message = str(info.value)
    assert "MAX_QUEUED_PER_USER" in message
    assert "METRICS_PORT" in message
    assert "DATABASE_URL" in message


def test_load_settings_reads_a_secret_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "jwt"
    path.write_text(SECRET + "\n")
    assert load_settings({"JWT_SECRET_FILE": str(path)}).jwt_secret == SECRET


def test_settings_repr_hides_the_secret() -> None:
    assert SECRET not in repr(load_settings({"JWT_SECRET": SECRET}))
