"""Settings loaded once from the environment; the only module that reads os.environ."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from algotcha.errors import ConfigError

T = TypeVar("T")

MIN_JWT_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    broker_url: str | None = None
    jwt_secret: str | None = dataclasses.field(default=None, repr=False)
    jwt_issuer: str = "algotcha"
    jwt_audience: str = "algotcha-api"
    jwt_ttl_s: int = 12 * 3600
    data_dir: Path = Path("data")
    public_url: str = "http://127.0.0.1:8000"
    max_queued_per_user: int = 5
    max_body_bytes: int = 64 * 1024
    backtest_time_limit_s: float = 30 * 60
    max_attempts: int = 3
    heartbeat_interval_s: float = 1.0
    stale_after_s: float = 30.0
    sweep_interval_s: float = 5.0
    db_pool_max: int = 10
    db_timeout_s: float = 5.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9191
    # Set (by the deployment) when one API runs as several processes; prometheus_client
    # reads the same variable itself, this copy tells the exporter to aggregate.
    metrics_multiproc_dir: str | None = None
    log_level: str = "INFO"
    # Fault injection for tests and drills: the backtest child sleeps this long first, so a
    # job can be caught mid-run (killed, cancelled, timed out). Zero in production.
    debug_backtest_delay_s: float = 0.0

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set (e.g. postgresql://algotcha@127.0.0.1/algotcha)"
            )
        return self.database_url

    def require_jwt_secret(self) -> str:
        if not self.jwt_secret:
            raise ConfigError(
                "JWT_SECRET (or JWT_SECRET_FILE) is not set; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self.jwt_secret


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

    settings = Settings(
        database_url=environ.get("DATABASE_URL") or None,
        broker_url=environ.get("BROKER_URL") or None,
        jwt_secret=jwt_secret,
        jwt_issuer=get("JWT_ISSUER", str, defaults.jwt_issuer),
        jwt_audience=get("JWT_AUDIENCE", str, defaults.jwt_audience),
        jwt_ttl_s=get("JWT_TTL_SECONDS", _positive_int, defaults.jwt_ttl_s),
        data_dir=get("DATA_DIR", Path, defaults.data_dir),
        public_url=get("PUBLIC_URL", _url, defaults.public_url),
        max_queued_per_user=get("MAX_QUEUED_PER_USER", _positive_int, defaults.max_queued_per_user),
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
        db_timeout_s=get("DB_TIMEOUT_SECONDS", _positive_float, defaults.db_timeout_s),
        metrics_host=get("METRICS_HOST", str, defaults.metrics_host),
        metrics_port=get("METRICS_PORT", _port, defaults.metrics_port),
        metrics_multiproc_dir=environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
        log_level=get("LOG_LEVEL", _log_level, defaults.log_level),
        debug_backtest_delay_s=get("DEBUG_BACKTEST_DELAY_SECONDS", float, 0.0),
    )
    for name, url in (("DATABASE_URL", settings.database_url), ("BROKER_URL", settings.broker_url)):
        if url is not None and "://" not in url:
            problems.append(f"{name} must be a URL like scheme://host/...")
    if settings.stale_after_s <= 2 * settings.heartbeat_interval_s:
        problems.append("STALE_AFTER_SECONDS must exceed twice HEARTBEAT_INTERVAL_SECONDS")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


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


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level
