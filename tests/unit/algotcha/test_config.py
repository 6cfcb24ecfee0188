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


def test_notification_settings_default_off_and_to_starttls_on_587() -> None:
    settings = load_settings({})
    assert settings.telegram_bot_token is None and settings.smtp_host is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert (settings.smtp_port, settings.smtp_tls) == (587, "starttls")
    assert load_settings({"SMTP_PORT": "465"}).smtp_tls == "tls"
    assert load_settings({"SMTP_PORT": "2525", "SMTP_TLS": "none"}).smtp_tls == "none"


def test_notification_secrets_come_from_files_and_stay_out_of_repr(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("123:abc\n")
    (tmp_path / "password").write_text("app password\n")
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "token"),
            "TELEGRAM_WEBHOOK_SECRET": "s3cret_-X",
            "SMTP_HOST": "smtp.gmail.com",
            "SMTP_USER": "alerts@example.com",
            "SMTP_PASSWORD_FILE": str(tmp_path / "password"),
        }
    )
    assert settings.telegram_bot_token == "123:abc"
    assert settings.smtp_password == "app password"
    assert settings.smtp_sender == "alerts@example.com"
    for secret in ("123:abc", "app password", "s3cret_-X"):
        assert secret not in repr(settings)


def test_an_empty_secret_file_leaves_the_channel_off(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("")
    assert (
        load_settings({"TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "token")}).telegram_bot_token
        is None
    )


def test_bad_notification_settings_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "TELEGRAM_WEBHOOK_SECRET": "has spaces!",
                "TELEGRAM_BOT_USERNAME": "x",
                "SMTP_TLS": "ssl3",
                "SMTP_USER": "alerts@example.com",
                "NOTIFY_MAX_BACKOFF_SECONDS": "3600",
                "TELEGRAM_API_BASE": "ftp://x",
            }
        )
    message = str(info.value)
    for name in (
        "TELEGRAM_WEBHOOK_SECRET",
        "TELEGRAM_BOT_USERNAME",
        "SMTP_TLS",
        "SMTP_PASSWORD",
        "NOTIFY_MAX_BACKOFF_SECONDS",
        "TELEGRAM_API_BASE",
    ):
        assert name in message
    assert "has spaces" not in message.split("TELEGRAM_WEBHOOK_SECRET")[1][:80]


def test_a_bot_username_may_be_given_with_its_at() -> None:
    assert load_settings({"TELEGRAM_BOT_USERNAME": "@AlgotchaBot"}).telegram_bot_username == (
        "AlgotchaBot"
    )


def test_the_event_streams_safety_poll_is_read_and_checked() -> None:
    assert load_settings({}).events_poll_interval_s == 30
    assert load_settings({"EVENTS_POLL_INTERVAL_SECONDS": "5"}).events_poll_interval_s == 5
    with pytest.raises(ConfigError, match="EVENTS_POLL_INTERVAL_SECONDS"):
        load_settings({"EVENTS_POLL_INTERVAL_SECONDS": "0"})


def test_login_cost_settings_are_read_and_a_budget_under_one_hash_is_refused() -> None:
    settings = load_settings(
        {
            "LOGIN_HASH_MEMORY_MIB": "512",
            "LOGIN_HASH_WAIT_SECONDS": "0.5",
            "LOGIN_FAILURE_WINDOW_SECONDS": "60",
            "LOGIN_FAILURES_PER_ACCOUNT": "3",
            "LOGIN_FAILURES_PER_ADDRESS": "30",
        }
    )
    assert settings.login_hash_memory_mib == 512
    assert settings.login_hash_wait_s == 0.5
    assert settings.login_failure_window_s == 60
    assert (settings.login_failures_per_account, settings.login_failures_per_address) == (3, 30)
    with pytest.raises(ConfigError, match="LOGIN_HASH_MEMORY_MIB must be at least 64"):
        load_settings({"LOGIN_HASH_MEMORY_MIB": "32"})


def test_the_backtest_pretouch_is_read_may_be_off_and_is_bounded() -> None:
    default = load_settings({}).backtest_pretouch_mib
    assert 0 < default <= 1024
    assert load_settings({"BACKTEST_PRETOUCH_MIB": "0"}).backtest_pretouch_mib == 0
    assert load_settings({"BACKTEST_PRETOUCH_MIB": "256"}).backtest_pretouch_mib == 256
    with pytest.raises(ConfigError, match="BACKTEST_PRETOUCH_MIB"):
        load_settings({"BACKTEST_PRETOUCH_MIB": "-1"})
    with pytest.raises(ConfigError, match="BACKTEST_PRETOUCH_MIB must be at most 2047"):
        load_settings({"BACKTEST_PRETOUCH_MIB": "4096"})


def test_the_memory_limit_of_a_cgroup_is_read_in_v2_and_v1(tmp_path: Path) -> None:
    from algotcha.config import _cgroup_limits

    membership = tmp_path / "cgroup"
    unit = tmp_path / "fs" / "system.slice" / "algotcha-worker.service"
    unit.mkdir(parents=True)
    (unit / "memory.max").write_text(f"{4 * 2**30}\n")
    membership.write_text("0::/system.slice/algotcha-worker.service\n")
    assert _cgroup_limits(membership, tmp_path / "fs") == [4 * 2**30]
    (unit / "memory.max").write_text("max\n")  # no limit
    assert _cgroup_limits(membership, tmp_path / "fs") == []

    container = tmp_path / "fs" / "memory"
    container.mkdir()
    (container / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    membership.write_text("4:memory:/docker/abc\n1:cpu:/docker/abc\n")
    assert _cgroup_limits(membership, tmp_path / "fs") == [2**30]
    assert _cgroup_limits(tmp_path / "absent", tmp_path / "fs") == []
