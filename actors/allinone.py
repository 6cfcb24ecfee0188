"""`algotcha up`: API, backtest worker and notifier in one process, for a laptop or small server.

Without DATABASE_URL it starts an embedded PostgreSQL under the var directory; without
BROKER_URL, Dramatiq's in-process broker carries the messages between threads. The
database stays the truth either way, so a restart loses no job: queued ones get a fresh
message at start-up, and a job the previous process was running is handed back.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import signal
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dramatiq
import uvicorn
from dramatiq.brokers.stub import StubBroker

import engine
from actors import execution, process
from actors.notifier import Notifier
from actors.worker import BacktestWorker
from algotcha import auth, queues
from algotcha.app import create_app
from algotcha.config import Settings
from algotcha.db import migrate
from algotcha.db import pool as db_pool
from algotcha.db.embedded import EmbeddedPostgres
from algotcha.errors import EmailTakenError
from algotcha.services import outbox, users

logger = logging.getLogger(__name__)

DEMO_EMAIL = "demo@algotcha.local"
DEMO_SYMBOL = "SYNTH"
DEMO_DAYS = 365


def serve(settings: Settings, *, host: str, port: int, var_dir: Path) -> int:
    var_dir.mkdir(parents=True, exist_ok=True)
    database = None if settings.database_url else EmbeddedPostgres(var_dir / "postgres")

    def force_stop() -> None:
        execution.shut_down()
        if database is not None:
            database.stop()

    try:
        settings = _complete(settings, var_dir, database)
        migrate.apply(settings.require_database_url())
        _seed_demo_data(settings)
        password = _seed_demo_user(settings, var_dir)
        _run(settings, host=host, port=port, password=password, force_stop=force_stop)
    finally:
        if database is not None:
            database.stop()
    return 0


def _complete(settings: Settings, var_dir: Path, database: EmbeddedPostgres | None) -> Settings:
    """Fill in what a laptop has no reason to configure, from files under var_dir."""
    changes: dict[str, object] = {}
    if database is not None:
        changes["database_url"] = database.start()
    if settings.jwt_secret is None:
        # Generated once per installation and kept private: not a default in code.
        changes["jwt_secret"] = _private_file(var_dir / "jwt_secret", secrets.token_urlsafe(48))
    if settings.data_dir == Settings().data_dir:
        changes["data_dir"] = var_dir / "data"
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _private_file(path: Path, make: str) -> str:
    if not path.exists():
        path.write_text(make)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path.read_text().strip()


def _seed_demo_data(settings: Settings) -> None:
    from engine.synth import synth_bars, synthetic_source

    store = engine.BarStore(settings.data_dir)
    if store.datasets():
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    bars = synth_bars(start, DEMO_DAYS * 24 * 60, seed=42)
    info = store.write(DEMO_SYMBOL, bars, source=synthetic_source())
    logger.info("event=demo_data_written symbol=%s bars=%s synthetic=true", info.symbol, info.bars)


def _seed_demo_user(settings: Settings, var_dir: Path) -> str:
    """The demo login's password (created with the user at the first start)."""
    password = _private_file(var_dir / "demo_password", secrets.token_urlsafe(12))
    with db_pool.create_pool(settings.require_database_url(), max_size=1) as pool:
        try:
            slots = auth.HashSlots.for_settings(settings)
            users.register(pool, slots, email=DEMO_EMAIL, password=password, name="Demo")
        except EmailTakenError:
            pass
    return password


def _run(
    settings: Settings, *, host: str, port: int, password: str, force_stop: Callable[[], None]
) -> None:
    pool = db_pool.create_pool(settings.require_database_url(), max_size=4, name="algotcha-up")
    pool.open(wait=True, timeout=30)
    broker: dramatiq.Broker | None = None
    if not settings.broker_url:
        broker = StubBroker()
        for queue in (queues.BACKTEST_QUEUE, queues.NOTIFICATION_QUEUE):
            broker.declare_queue(queue)
        # The in-process queue died with the last process: every queued job needs a new message.
        outbox.forget_published(pool)
    backtests = BacktestWorker(settings, pool, broker)
    backtests.start()
    notifier = Notifier(settings, pool, backtests.rt.broker)
    notifier.start()
    # The worker above already runs a sweeper for this process.
    app = create_app(settings, broker=backtests.rt.broker, sweep=False)
    print(f"\nAlgotcha is up: http://{host}:{port}/", flush=True)
    print(f"Demo login: {DEMO_EMAIL} / {password}", flush=True)
    print("Ctrl-C stops it; queued jobs are kept.\n", flush=True)
    # uvicorn gives a SIGTERM it caught back to the previous handler when it returns; the
    # default one would end the process on the spot, with the running job still claimed and
    # the embedded database left running. Stop on SIGTERM as on Ctrl-C instead.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    finally:
        # uvicorn has taken the first Ctrl-C; a second one must not interrupt the stop
        # half-way (that left threads running and the process hanging).
        process.exit_on_next_signal(force_stop)
        backtests.stop()
        notifier.stop()
        backtests.rt.broker.close()
        pool.close()
