"""Settings loaded once from the environment; the only module that reads os.environ."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from algotcha.errors import ConfigError

T = TypeVar("T")

MIN_JWT_SECRET_BYTES = 32
SMTP_TLS_MODES = ("starttls", "tls", "none")
# Telegram's rule for a webhook secret_token: 1-256 of A-Z a-z 0-9 _ -
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# What one Argon2id hash holds while it runs (argon2-cffi's default memory_cost, 64 MiB).
PASSWORD_HASH_MIB = 64
# glibc keeps freed heap under its trim threshold, an int: what a backtest process touches
# ahead of its job beyond it would be handed back before the job could use it.
PRETOUCH_MAX_MIB = 2047
# A sent-but-unconfirmed delivery is given this many socket timeouts before it is declared lost.
SENDING_LEASE_TIMEOUTS = 12


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    broker_url: str | None = None
    jwt_secret: str | None = dataclasses.field(default=None, repr=False)
    jwt_issuer: str = "algotcha"
    jwt_audience: str = "algotcha-api"
    jwt_ttl_s: int = 12 * 3600
    data_dir: Path = Path("data")
    # Binance's public kline archive, or a mirror of its layout (tests serve one on loopback).
    market_data_url: str = "https://data.binance.vision"
    public_url: str = "http://127.0.0.1:8000"
    max_queued_per_user: int = 5
    max_sweep_combinations: int = 10_000
    max_sweeps_per_user: int = 1
    max_body_bytes: int = 64 * 1024
    backtest_time_limit_s: float = 30 * 60
    max_attempts: int = 3
    heartbeat_interval_s: float = 1.0
    stale_after_s: float = 30.0
    sweep_interval_s: float = 5.0
    db_pool_max: int = 10
    # Event streams are pushed by LISTEN/NOTIFY; this re-read of every open stream is only
    # the safety net for a notification that never came.
    events_poll_interval_s: float = 30.0
    db_timeout_s: float = 5.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9191
    # Set (by the deployment) when one API runs as several processes; prometheus_client
    # reads the same variable itself, this copy tells the exporter to aggregate.
    metrics_multiproc_dir: str | None = None
    log_level: str = "INFO"
    telegram_bot_token: str | None = dataclasses.field(default=None, repr=False)
    telegram_bot_username: str | None = None
    telegram_webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    telegram_api_base: str = "https://api.telegram.org"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = dataclasses.field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_tls: str = "starttls"
    notifier_threads: int = 4
    # Each network step of a send (connect, an SMTP command, the HTTP answer) waits this long.
    notify_timeout_s: float = 15.0
    notify_max_attempts: int = 5
    notify_min_backoff_s: float = 15.0
    # Kept under RabbitMQ's consumer_timeout (30 min): a delayed message is held unacked.
    notify_max_backoff_s: float = 600.0
    # Each Argon2id hash in progress holds 64 MiB: this budget bounds how many run at once
    # (256 MiB: 4), and a login that finds none free waits this long, then gets a 503.
    login_hash_memory_mib: int = 256
    login_hash_wait_s: float = 2.0
    # Failed logins are counted in PostgreSQL over this sliding window, per account (the email
    # as typed, whether or not it exists) and per client address; beyond either limit, 429.
    login_failure_window_s: float = 15 * 60
    login_failures_per_account: int = 10
    login_failures_per_address: int = 100
    # Peers whose X-Forwarded-For names the client (uvicorn's setting): the reverse proxy's
    # address. The per-address login limit counts that client, so this must name the proxy.
    forwarded_allow_ips: str = "127.0.0.1"
    # numexpr threads per backtest; one per CPU this process may use, at most 16 (numexpr's
    # own cap), unless ENGINE_THREADS says otherwise.
    engine_threads: int = dataclasses.field(
        default_factory=lambda: max(1, min(16, len(os.sched_getaffinity(0))))
    )
    # Memory (MiB) an idle worker's waiting backtest process touches ahead of its job, so the
    # job's arrays land on mapped pages instead of faulting fresh ones in (actors/execution.py);
    # 0 turns it off. An eighth of the memory of the machine (or container), 1 GiB at most:
    # about what a sweep of 2.6 M bars allocates, which a worker needs anyway once it runs.
    backtest_pretouch_mib: int = dataclasses.field(
        default_factory=lambda: min(1024, _memory_mib() // 8)
    )
    # Fault injection for tests and drills: the backtest child sleeps this long first, so a
    # job can be caught mid-run (killed, cancelled, timed out). Zero in production.
    debug_backtest_delay_s: float = 0.0

    @property
    def backtest_pretouch_bytes(self) -> int:
        return self.backtest_pretouch_mib * 2**20

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set (e.g. postgresql://algotcha@127.0.0.1/algotcha)"
            )
        return self.database_url

    def require_broker_url(self) -> str:
        if not self.broker_url:
            raise ConfigError(
                "BROKER_URL is not set (e.g. amqp://algotcha:...@127.0.0.1:5672/%2F): this "
                "command consumes from RabbitMQ; only `algotcha up` runs without one"
            )
        return self.broker_url

    def require_jwt_secret(self) -> str:
        if not self.jwt_secret:
            raise ConfigError(
                "JWT_SECRET (or JWT_SECRET_FILE) is not set; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self.jwt_secret

    @property
    def sending_lease_s(self) -> float:
        """How long a claimed send may take before its outcome is declared unknown."""
        return self.notify_timeout_s * SENDING_LEASE_TIMEOUTS

    @property
    def smtp_sender(self) -> str | None:
        return self.smtp_from or self.smtp_user


def load_from_environment() -> Settings:
    """Settings of this process (for factories that run in freshly spawned processes)."""
    return load_settings(os.environ)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read every variable, report every bad one at once, and never default a secret."""
    problems: list[str] = []
    defaults = Settings()

    def get(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            problems.append(f"{name}={raw!r}: {exc}")
            return default

    def secret(name: str) -> str | None:
        value = environ.get(name)
        path = environ.get(f"{name}_FILE")
        if value and path:
            problems.append(f"set {name} or {name}_FILE, not both")
        if path:
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                problems.append(f"{name}_FILE={path!r}: cannot read ({exc.strerror})")
                return None
        return value or None

    jwt_secret = secret("JWT_SECRET")
    if jwt_secret is not None and len(jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
        problems.append(
            f"JWT_SECRET is {len(jwt_secret.encode())} bytes; HS256 needs at least "
            f"{MIN_JWT_SECRET_BYTES} random bytes"
        )

    webhook_secret = secret("TELEGRAM_WEBHOOK_SECRET")
    if webhook_secret is not None and not _TELEGRAM_SECRET.match(webhook_secret):
        problems.append(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ - "
            "(e.g. `openssl rand -hex 32`)"
        )
    smtp_port = get("SMTP_PORT", _port, defaults.smtp_port)

    settings = Settings(
        # URLs may carry passwords, so they can come from files like the other secrets.
        database_url=secret("DATABASE_URL"),
        broker_url=secret("BROKER_URL"),
        jwt_secret=jwt_secret,
        jwt_issuer=get("JWT_ISSUER", str, defaults.jwt_issuer),
        jwt_audience=get("JWT_AUDIENCE", str, defaults.jwt_audience),
        jwt_ttl_s=get("JWT_TTL_SECONDS", _positive_int, defaults.jwt_ttl_s),
        data_dir=get("DATA_DIR", Path, defaults.data_dir),
        market_data_url=get("MARKET_DATA_URL", _url, defaults.market_data_url),
        public_url=get("PUBLIC_URL", _url, defaults.public_url),
        max_queued_per_user=get("MAX_QUEUED_PER_USER", _positive_int, defaults.max_queued_per_user),
        max_sweep_combinations=get(
            "MAX_SWEEP_COMBINATIONS", _positive_int, defaults.max_sweep_combinations
        ),
        max_sweeps_per_user=get("MAX_SWEEPS_PER_USER", _positive_int, defaults.max_sweeps_per_user),
        max_body_bytes=get("MAX_BODY_BYTES", _positive_int, defaults.max_body_bytes),
        backtest_time_limit_s=get(
            "BACKTEST_TIME_LIMIT", _positive_float, defaults.backtest_time_limit_s
        ),
        max_attempts=get("MAX_ATTEMPTS", _positive_int, defaults.max_attempts),
        heartbeat_interval_s=get(
            "HEARTBEAT_INTERVAL_SECONDS", _positive_float, defaults.heartbeat_interval_s
        ),
        stale_after_s=get("STALE_AFTER_SECONDS", _positive_float, defaults.stale_after_s),
        sweep_interval_s=get("SWEEP_INTERVAL_SECONDS", _positive_float, defaults.sweep_interval_s),
        db_pool_max=get("DB_POOL_MAX", _positive_int, defaults.db_pool_max),
        events_poll_interval_s=get(
            "EVENTS_POLL_INTERVAL_SECONDS", _positive_float, defaults.events_poll_interval_s
        ),
        db_timeout_s=get("DB_TIMEOUT_SECONDS", _positive_float, defaults.db_timeout_s),
        metrics_host=get("METRICS_HOST", str, defaults.metrics_host),
        metrics_port=get("METRICS_PORT", _port, defaults.metrics_port),
        metrics_multiproc_dir=environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
        log_level=get("LOG_LEVEL", _log_level, defaults.log_level),
        login_hash_memory_mib=get(
            "LOGIN_HASH_MEMORY_MIB", _positive_int, defaults.login_hash_memory_mib
        ),
        login_hash_wait_s=get(
            "LOGIN_HASH_WAIT_SECONDS", _positive_float, defaults.login_hash_wait_s
        ),
        login_failure_window_s=get(
            "LOGIN_FAILURE_WINDOW_SECONDS", _positive_float, defaults.login_failure_window_s
        ),
        login_failures_per_account=get(
            "LOGIN_FAILURES_PER_ACCOUNT", _positive_int, defaults.login_failures_per_account
        ),
        login_failures_per_address=get(
            "LOGIN_FAILURES_PER_ADDRESS", _positive_int, defaults.login_failures_per_address
        ),
        forwarded_allow_ips=get("FORWARDED_ALLOW_IPS", str, defaults.forwarded_allow_ips),
        engine_threads=get("ENGINE_THREADS", _positive_int, defaults.engine_threads),
        backtest_pretouch_mib=get(
            "BACKTEST_PRETOUCH_MIB", _non_negative_int, defaults.backtest_pretouch_mib
        ),
        debug_backtest_delay_s=get("DEBUG_BACKTEST_DELAY_SECONDS", float, 0.0),
        telegram_bot_token=secret("TELEGRAM_BOT_TOKEN"),
        telegram_bot_username=get("TELEGRAM_BOT_USERNAME", _bot_username, None),
        telegram_webhook_secret=webhook_secret,
        telegram_api_base=get("TELEGRAM_API_BASE", _url, defaults.telegram_api_base),
        smtp_host=environ.get("SMTP_HOST", "").strip() or None,
        smtp_port=smtp_port,
        smtp_user=environ.get("SMTP_USER", "").strip() or None,
        smtp_password=secret("SMTP_PASSWORD"),
        smtp_from=environ.get("SMTP_FROM", "").strip() or None,
        # 465 is TLS from the first byte; every other port (587 above all) upgrades with STARTTLS.
        smtp_tls=get("SMTP_TLS", _smtp_tls, "tls" if smtp_port == 465 else "starttls"),
        notifier_threads=get("NOTIFIER_THREADS", _positive_int, defaults.notifier_threads),
        notify_timeout_s=get("NOTIFY_TIMEOUT_SECONDS", _positive_float, defaults.notify_timeout_s),
        notify_max_attempts=get("NOTIFY_MAX_ATTEMPTS", _positive_int, defaults.notify_max_attempts),
        notify_min_backoff_s=get(
            "NOTIFY_MIN_BACKOFF_SECONDS", _positive_float, defaults.notify_min_backoff_s
        ),
        notify_max_backoff_s=get(
            "NOTIFY_MAX_BACKOFF_SECONDS", _positive_float, defaults.notify_max_backoff_s
        ),
    )
    for name, url in (("DATABASE_URL", settings.database_url), ("BROKER_URL", settings.broker_url)):
        if url is not None and "://" not in url:
            problems.append(f"{name} must be a URL like scheme://host/...")
    if settings.stale_after_s <= 2 * settings.heartbeat_interval_s:
        problems.append("STALE_AFTER_SECONDS must exceed twice HEARTBEAT_INTERVAL_SECONDS")
    if (settings.smtp_user is None) != (settings.smtp_password is None):
        problems.append("set both SMTP_USER and SMTP_PASSWORD (or SMTP_PASSWORD_FILE), or neither")
    if settings.smtp_host and not settings.smtp_sender:
        problems.append("SMTP_HOST is set but SMTP_FROM (or SMTP_USER) is not: mail needs a From")
    if settings.notify_min_backoff_s > settings.notify_max_backoff_s:
        problems.append("NOTIFY_MIN_BACKOFF_SECONDS must not exceed NOTIFY_MAX_BACKOFF_SECONDS")
    if settings.notify_max_backoff_s > 1500:
        problems.append(
            "NOTIFY_MAX_BACKOFF_SECONDS must stay under 1500 (RabbitMQ's consumer_timeout is "
            "30 min and a delayed notification is held unacknowledged)"
        )
    if settings.backtest_pretouch_mib > PRETOUCH_MAX_MIB:
        problems.append(
            f"BACKTEST_PRETOUCH_MIB must be at most {PRETOUCH_MAX_MIB}: malloc keeps no more "
            "than that for the job"
        )
    if settings.login_hash_memory_mib < PASSWORD_HASH_MIB:
        problems.append(
            f"LOGIN_HASH_MEMORY_MIB must be at least {PASSWORD_HASH_MIB} "
            "(one Argon2id hash), or nobody can log in"
        )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def _memory_mib() -> int:
    """The memory this process may use: the machine's, or its cgroup's limit when lower (a
    container's, a systemd unit's MemoryMax), since sysconf reports the whole machine's."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return min(physical, *_cgroup_limits()) // 2**20


def _cgroup_limits(
    membership: Path = Path("/proc/self/cgroup"), mount: Path = Path("/sys/fs/cgroup")
) -> list[int]:
    """The memory limits of this process's cgroup, v2 or v1, where they can be read."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return []
    files = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one hierarchy
            files += [mount / path.lstrip("/") / "memory.max"]
        elif "memory" in controllers.split(","):
            # without a cgroup namespace a container sees its own cgroup at the mount's root
            root = mount / "memory"
            files += [root / path.lstrip("/") / "memory.limit_in_bytes"]
            files += [root / "memory.limit_in_bytes"]
    limits = []
    for file in files:
        try:
            limits.append(int(file.read_text().strip()))
        except (OSError, ValueError):  # absent, or "max"
            continue
    return limits


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port (1-65535)")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw.rstrip("/")


def _smtp_tls(raw: str) -> str:
    mode = raw.lower()
    if mode not in SMTP_TLS_MODES:
        raise ValueError("must be starttls (port 587), tls (port 465) or none (a test server)")
    return mode


def _bot_username(raw: str) -> str:
    name = raw.removeprefix("@")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{4,31}", name):
        raise ValueError("must be the bot's username as BotFather shows it, e.g. AlgotchaBot")
    return name


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level
