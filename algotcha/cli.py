"""The algotcha command: api, worker, notifier, telegram, up, migrate, user, token, data..."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from algotcha import __version__, local
from algotcha.config import Settings, load_settings
from algotcha.errors import AlgotchaError, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    import engine
    from algotcha.notify import telegram
    from algotcha.services import marketdata
    from engine.sweep import SweepResult
    from engine.walkforward import WalkForwardResult

logger = logging.getLogger("algotcha")

EXIT_OK = 0
EXIT_FAILURE = 1  # a bug or an unexpected environment: the log has the traceback
EXIT_USER_ERROR = 2  # bad configuration or input: the message says what to change
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head`)
# After SIGTERM, requests still running after this long are cancelled, so the API always
# stops (and runs its clean-up) well inside systemd's TimeoutStopSec (30 s). Event streams
# end by themselves within about a second; this is the backstop for anything else.
API_SHUTDOWN_TIMEOUT_S = 10
# 20 years of 1-minute bars (10.5M, ~0.5 GB while generated): more would not fit in memory.
MAX_SYNTH_DAYS = 7_300


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    previous = _stop_at_second_interrupt() if args.one_shot else None
    try:
        settings = load_settings(os.environ)
        _configure_logging(settings.log_level)
        _set_engine_threads(settings.engine_threads)
        command: Callable[[argparse.Namespace, Settings], int] = args.command
        return command(args, settings)
    except AlgotchaError as exc:
        print(f"algotcha: {exc.detail}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if not args.one_shot:
            return EXIT_OK  # Ctrl-C is how a service is stopped
        # on a terminal the ^C echo is on the current line
        print("\n" * sys.stderr.isatty() + "algotcha: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): not a failure to report. Python would
        # try to flush stdout again at exit and print that error: point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception:
        logger.exception("event=command_failed")
        return EXIT_FAILURE
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _stop_at_second_interrupt() -> signal.Handlers | Callable[..., Any] | int | None:
    """The first Ctrl-C raises KeyboardInterrupt, so a command can finish what is in flight
    (a download's open files) and say so; the second stops the process at once, whatever it
    is waiting for. The previous handler is returned (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, interrupt)


def _configure_logging(level: str) -> None:
    # stdout is the command's output (JSON, a token, a table) for the next program in a pipe.
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # pika logs every reconnect attempt at INFO with a traceback
    logging.getLogger("pika").setLevel(logging.WARNING)
    # httpx logs each request's URL at INFO, and a Bot API URL holds the bot token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _set_engine_threads(threads: int) -> None:
    """numexpr reads its thread count from the environment when first imported, and logs a
    line when it has to guess: set it before any command imports the engine. Processes
    started later (the forkserver, API workers) inherit it.

    numpy's OpenBLAS gets one thread: the engine's only matrix products are the small ones
    of a sweep's overfitting verdict, between which extra BLAS threads spin and take the
    CPU of the workers running beside it (measured: the verdict of 1,000 combinations used
    0.6-0.7 s of CPU with two threads, 0.25-0.3 s with one, and took longer)."""
    os.environ["NUMEXPR_MAX_THREADS"] = os.environ["NUMEXPR_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    numexpr = sys.modules.get("numexpr")
    if numexpr is not None:
        numexpr.set_num_threads(threads)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="algotcha", description="Queued trading backtests.")
    parser.add_argument("--version", action="version", version=__version__)
    # One-shot commands stop on Ctrl-C with EXIT_INTERRUPTED; services (one_shot=False) stop
    # cleanly on it and handle their signals themselves.
    parser.set_defaults(one_shot=True)
    sub = parser.add_subparsers(required=True, metavar="command")

    api = sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    api.add_argument("--migrate", action="store_true", help="apply migrations first")
    api.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    api.set_defaults(command=_api, one_shot=False)

    worker = sub.add_parser("worker", help="run backtests, one at a time")
    worker.add_argument("--migrate", action="store_true", help="apply migrations first")
    worker.set_defaults(command=_worker, one_shot=False)

    notifier = sub.add_parser("notifier", help="deliver notifications (Telegram, email)")
    notifier.add_argument("--migrate", action="store_true", help="apply migrations first")
    notifier.set_defaults(command=_notifier, one_shot=False)

    poll = sub.add_parser("telegram-poll", help="answer the Telegram bot by long polling")
    poll.add_argument("--timeout", type=int, default=30, help="getUpdates long-poll seconds")
    poll.set_defaults(command=_telegram_poll, one_shot=False)

    tg = sub.add_parser("telegram", help="manage the Telegram bot").add_subparsers(
        required=True, metavar="action"
    )
    hook = tg.add_parser("set-webhook", help="register URL as the bot's webhook, with the secret")
    hook.add_argument("url", help="e.g. https://algotcha.example.com/api/telegram/webhook")
    hook.set_defaults(command=_telegram_set_webhook)

    up = sub.add_parser("up", help="everything in one process (embedded database if none is set)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    up.add_argument("--var", type=Path, default=Path("var"), help="state directory (default ./var)")
    up.set_defaults(command=_up, one_shot=False)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(command=_migrate)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        required=True, metavar="action"
    )
    create = user.add_parser("create", help="create a user (password from stdin or a prompt)")
    create.add_argument("email", help="the new user's email address (their login)")
    create.add_argument("--name", default="", help="display name (default: none)")
    create.set_defaults(command=_user_create)

    token = sub.add_parser("token", help="print a bearer token for a user")
    token.add_argument("email", help="email address of an existing user")
    token.set_defaults(command=_token)

    data = sub.add_parser("data", help="manage bar data").add_subparsers(
        required=True, metavar="action"
    )
    imp = data.add_parser(
        "import", help="import 1-minute bars from CSV or .zip files (Binance or generic)"
    )
    imp.add_argument("symbol", help="dataset name: 1-30 of A-Z 0-9 _ -, e.g. BTCUSDT")
    imp.add_argument("files", nargs="+", type=Path, help="CSV files, or zips holding one CSV each")
    imp.add_argument(
        "--append",
        action="store_true",
        help="add to the stored dataset instead of replacing it (overlapping bars must agree)",
    )
    imp.set_defaults(command=_data_import)
    download = data.add_parser(
        "download", help="download 1-minute bars from the exchange's public archive, verified"
    )
    download.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT")
    download.add_argument(
        "--from",
        dest="first_day",
        required=True,
        type=_first_day,
        help="first month or day, UTC: 2021-01 or 2021-01-15",
    )
    download.add_argument(
        "--to",
        dest="last_day",
        type=_last_day,
        help="last month or day, inclusive, UTC (default: yesterday, the last complete day)",
    )
    download.add_argument(
        "--market", choices=["spot", "um"], default="spot", help="spot or USD-M futures"
    )
    download.set_defaults(command=_data_download)
    update = data.add_parser(
        "update", help="append the archive's new days to downloaded datasets (cron, timers)"
    )
    update.add_argument(
        "symbols", nargs="*", metavar="SYMBOL", help="datasets to update (default: all downloaded)"
    )
    update.set_defaults(command=_data_update)
    synth = data.add_parser("synth", help="write a synthetic (clearly labelled) dataset")
    synth.add_argument("symbol", nargs="?", default="SYNTH", help="dataset name (default SYNTH)")
    synth.add_argument(
        "--days",
        type=_synth_days,
        default=365,
        help=f"days of 1-minute bars, 1 to {MAX_SYNTH_DAYS:,} (default 365)",
    )
    synth.add_argument(
        "--start",
        type=utc_time,
        default="2021-01-01",
        help="first bar, ISO 8601; UTC unless it names a zone (default 2021-01-01)",
    )
    synth.add_argument(
        "--seed", type=int, default=42, help="random seed: the same seed gives the same bars"
    )
    synth.set_defaults(command=_data_synth)
    data.add_parser("list", help="list stored datasets with their range and source").set_defaults(
        command=_data_list
    )

    backtest = sub.add_parser("backtest", help="run backtests locally").add_subparsers(
        required=True, metavar="action"
    )
    run = backtest.add_parser("run", help="run one payload (RunBacktestDto JSON) without the queue")
    run.add_argument("payload", type=Path, help="JSON file holding one backtest payload")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument(
        "--csv",
        type=Path,
        metavar="DIR",
        help="also write trades.csv, equity.csv and result.json into DIR (as the API exports)",
    )
    run.set_defaults(command=_backtest_run)

    sweep = sub.add_parser("sweep", help="run parameter sweeps locally").add_subparsers(
        required=True, metavar="action"
    )
    sweep_run = sweep.add_parser("run", help="run one sweep (SweepRequest JSON) without the queue")
    sweep_run.add_argument("request", type=Path, help="JSON file holding one sweep request")
    sweep_run.add_argument("--json", action="store_true", help="print the SweepResult as JSON")
    sweep_run.add_argument("--grid", type=Path, help="also write every combination here as CSV")
    sweep_run.set_defaults(command=_sweep_run)

    walk = sub.add_parser("walkforward", help="run walk-forward analyses locally")
    walk_actions = walk.add_subparsers(required=True, metavar="action")
    walk_run = walk_actions.add_parser(
        "run", help="run one walk-forward (SweepRequest plus walkForward, JSON) without the queue"
    )
    walk_run.add_argument(
        "request", type=Path, help="JSON file holding one sweep request with walkForward"
    )
    walk_run.add_argument("--json", action="store_true", help="print the result as JSON")
    walk_run.set_defaults(command=_walkforward_run)
    return parser


def utc_time(text: str) -> datetime:
    """An argparse type: ISO 8601 date or time, read as UTC unless it names a zone (a data
    range must not depend on the time zone of the machine that imports it)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time, e.g. 2024-01-01 or 2024-01-01T09:30Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from monitoring import multiprocess

    _prepare_schema(args, settings)
    if settings.metrics_multiproc_dir:
        # Before anything imports our metrics (algotcha.app does): they open their files then.
        multiprocess.prepare_multiproc_dir(settings.metrics_multiproc_dir)
    elif args.workers > 1:
        # Each worker process counts its own requests; /metrics must sum them, which
        # prometheus_client does from files in this directory. Set before any import of it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="algotcha-api-metrics-")

    import uvicorn

    from algotcha.app import create_app

    if args.workers == 1:
        app = create_app(settings)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=API_SHUTDOWN_TIMEOUT_S,
        )
        return EXIT_OK
    uvicorn.run(
        "algotcha.app:create_app_from_environment",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=API_SHUTDOWN_TIMEOUT_S,
    )
    return EXIT_OK


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from actors import worker

    settings.require_broker_url()
    _prepare_schema(args, settings)
    return worker.serve(settings)


def _notifier(args: argparse.Namespace, settings: Settings) -> int:
    from actors import notifier

    settings.require_broker_url()
    _prepare_schema(args, settings)
    return notifier.serve(settings)


def _telegram_client(settings: Settings) -> telegram.Client:
    from algotcha.notify import telegram

    client = telegram.Client.from_settings(settings)
    if client is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) is not set")
    return client


def _telegram_poll(args: argparse.Namespace, settings: Settings) -> int:
    import functools
    import signal
    import threading

    from actors import process
    from algotcha.db import pool as db_pool
    from algotcha.services import bot, jobs
    from monitoring import exporter
    from monitoring.collector import QueueCollector

    stop = threading.Event()

    def on_signal(*_: object) -> None:
        # The long poll in flight ends within --timeout seconds; a second signal does not wait.
        logger.info("event=telegram_poll_stopping")
        stop.set()
        process.exit_on_next_signal(lambda: None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    pool = db_pool.create_pool(settings.require_database_url(), max_size=2, name="algotcha-poll")
    with _telegram_client(settings) as client, pool:
        pool.wait(timeout=30)
        # Scraped on METRICS_PORT like the worker and notifier (9193 in the deployment).
        server, _ = exporter.start_http_exporter(
            exporter.registry(settings.metrics_multiproc_dir),
            settings.metrics_host,
            settings.metrics_port,
            QueueCollector(functools.partial(jobs.queue_sample, pool, settings)),
        )
        try:
            bot.poll(pool, settings, client, stop, timeout_s=args.timeout)
        finally:
            server.shutdown()
            server.server_close()
    return EXIT_OK


def _telegram_set_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from algotcha.notify.errors import DeliveryError

    if not args.url.startswith("https://"):
        raise ConfigError("Telegram only calls https:// webhooks")
    if not settings.telegram_webhook_secret:
        raise ConfigError("TELEGRAM_WEBHOOK_SECRET (or TELEGRAM_WEBHOOK_SECRET_FILE) is not set")
    with _telegram_client(settings) as client:
        try:
            client.set_webhook(args.url, settings.telegram_webhook_secret)
        except DeliveryError as exc:
            print(f"algotcha: setWebhook failed: {exc.reason}", file=sys.stderr)
            return EXIT_FAILURE
    print(f"webhook set: {args.url}")
    return EXIT_OK


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from actors import allinone

    return allinone.serve(settings, host=args.host, port=args.port, var_dir=args.var.resolve())


def _prepare_schema(args: argparse.Namespace, settings: Settings) -> None:
    """Migrate when asked; otherwise refuse to serve a database whose migrations were edited."""
    import psycopg

    from algotcha.db import migrate

    if args.migrate:
        _migrate(args, settings)
        return
    try:
        migrate.check(settings.require_database_url())
    except psycopg.OperationalError:
        # The pool retries once PostgreSQL is back; readiness reports it meanwhile.
        logger.warning("event=migration_check_skipped reason=database_unreachable")


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from algotcha.db import migrate

    applied = migrate.apply(settings.require_database_url())
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return EXIT_OK


def _user_create(args: argparse.Namespace, settings: Settings) -> int:
    from algotcha import auth, models
    from algotcha.db import pool as db_pool
    from algotcha.services import users

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    body = json.dumps({"email": args.email, "password": password, "name": args.name})
    creds = models.read(models.Registration, body.encode())
    with db_pool.create_pool(settings.require_database_url(), max_size=1) as pool:
        slots = auth.HashSlots.for_settings(settings)
        user = users.register(
            pool, slots, email=creds.email, password=creds.password, name=creds.name
        )
    print(f"created user {user.id} <{user.email}>")
    return EXIT_OK


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from algotcha import auth
    from algotcha.db import pool as db_pool
    from algotcha.db import users as user_db
    from algotcha.db.pool import transaction

    with db_pool.create_pool(settings.require_database_url(), max_size=1) as pool:
        with transaction(pool) as conn:
            user = user_db.select_user_by_email(conn, args.email)
    if user is None:
        print(f"algotcha: no user {args.email}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(auth.issue_token(settings, user.id))
    return EXIT_OK


def _first_day(text: str) -> date:
    return _day(text, last=False)


def _last_day(text: str) -> date:
    return _day(text, last=True)


def _day(text: str, *, last: bool) -> date:
    """A day from YYYY-MM-DD, or from YYYY-MM: its first day, or its last with `last`."""
    try:
        if len(text) == len("2021-01"):
            month = datetime.strptime(text, "%Y-%m").date()
            if not last:
                return month
            return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a month (2021-01) or a day (2021-01-15)"
        ) from None


def _data_import(args: argparse.Namespace, settings: Settings) -> int:
    import engine
    from algotcha.progress import Progress
    from algotcha.services import marketdata

    store = engine.BarStore(settings.data_dir)
    try:
        with Progress(len(args.files), "files") as progress:
            info = marketdata.import_files(
                store,
                args.symbol,
                args.files,
                append=args.append,
                on_file=lambda name: progress.advance(name, "read"),
            )
    except engine.EngineError as exc:
        print(f"algotcha: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        return _storage_failed(exc)
    print(f"{info.symbol}: {info.bars} bars from {_span(info)}")
    return EXIT_OK


def _data_download(args: argparse.Namespace, settings: Settings) -> int:
    import engine
    from algotcha.services import marketdata

    store = engine.BarStore(settings.data_dir)
    failed = 0
    for symbol in args.symbols:
        try:
            report = marketdata.download(
                store,
                settings.market_data_url,
                symbol,
                market=args.market,
                first_day=args.first_day,
                last_day=args.last_day,
                today=datetime.now(UTC).date(),
                stream=sys.stderr,
            )
        except AlgotchaError as exc:
            print(f"algotcha: {exc.detail}", file=sys.stderr)
            failed += 1
            continue
        except OSError as exc:
            return _storage_failed(exc)
        _print_report(report)
    return EXIT_USER_ERROR if failed else EXIT_OK


def _data_update(args: argparse.Namespace, settings: Settings) -> int:
    import engine
    from algotcha.services import marketdata

    store = engine.BarStore(settings.data_dir)
    try:
        results = marketdata.update(
            store,
            settings.market_data_url,
            args.symbols,
            today=datetime.now(UTC).date(),
            stream=sys.stderr,
        )
    except OSError as exc:
        return _storage_failed(exc)
    for result in results:
        if isinstance(result, AlgotchaError):
            print(f"algotcha: {result.detail}", file=sys.stderr)
        else:
            _print_report(result)
    return EXIT_USER_ERROR if any(isinstance(r, AlgotchaError) for r in results) else EXIT_OK


def _print_report(report: marketdata.Report) -> None:
    from algotcha.marketdata import archive

    for note in report.notes:
        print(f"{report.symbol}: {note}")
    if report.missing:
        skipped = archive.describe(report.missing)
        print(f"{report.symbol}: not in the archive (404), skipped: {skipped}")
    if report.info is not None:
        print(
            f"{report.symbol}: {report.fetched} file(s) downloaded, {report.resumed} reused; "
            f"{report.info.bars} bars from {_span(report.info)}"
        )


def _storage_failed(exc: OSError) -> int:
    print(
        f"algotcha: cannot write the dataset ({exc.strerror or exc}); the stored data is "
        "unchanged, rerun once there is room",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _span(info: engine.DatasetInfo) -> str:
    return f"{info.start:%Y-%m-%d %H:%M} to {info.end:%Y-%m-%d %H:%M} UTC"


def _synth_days(text: str) -> int:
    """An argparse type: a count of days that fits in memory as 1-minute bars."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_SYNTH_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {MAX_SYNTH_DAYS:,}"
        )
    return days


def _data_synth(args: argparse.Namespace, settings: Settings) -> int:
    import engine
    from engine.synth import synth_bars, synthetic_source

    bars = synth_bars(args.start, args.days * 24 * 60, seed=args.seed)
    try:
        info = engine.BarStore(settings.data_dir).write(
            args.symbol, bars, source=synthetic_source()
        )
    except engine.EngineError as exc:
        print(f"algotcha: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"{info.symbol}: {info.bars} synthetic bars (seed {args.seed}), not market data")
    return EXIT_OK


def _data_list(args: argparse.Namespace, settings: Settings) -> int:
    import engine

    for info in engine.BarStore(settings.data_dir).datasets():
        print(
            f"{info.symbol:<12} {info.bars:>10} bars  {info.start:%Y-%m-%d} .. {info.end:%Y-%m-%d}"
            f"  {_describe(info.source)}"
        )
    return EXIT_OK


def _write_csv(directory: Path, result: dict[str, Any]) -> None:
    """The export files of the web page, written locally; their paths go to stderr so that
    --json output on stdout stays one JSON document."""
    from algotcha import exports

    try:
        for path in exports.write_files(directory, result):
            print(f"wrote {path}", file=sys.stderr)
    except OSError as exc:
        raise local.unwritable("--csv", exc) from None


def _describe(source: engine.DatasetSource | None) -> str:
    if source is None:
        return "source unknown"
    updated = f", updated {source.updated_at:%Y-%m-%d %H:%M} UTC" if source.updated_at else ""
    if source.kind == "synthetic":
        return f"synthetic, not market data{updated}"
    if source.kind == "download":
        return f"downloaded from {source.url}{updated}"
    return f"imported from {', '.join(source.files)}{updated}"


def _backtest_run(args: argparse.Namespace, settings: Settings) -> int:
    import engine
    from algotcha import engine_requests, models

    request = engine_requests.parse_payload(local.read_request(args.payload))
    if args.csv is not None:
        local.check_output("--csv", args.csv, folder=True)
    try:
        result = engine.backtest(request, engine.BarStore(settings.data_dir))
    except engine.EngineError as exc:
        raise engine_requests.engine_error(exc) from None
    if args.csv is not None:
        _write_csv(args.csv, result.as_dict())
    if args.json:
        local.write_json(result.as_dict(keys=models.camel), sys.stdout.buffer)
        return EXIT_OK
    m = result.metrics
    print(f"{request.strategy_name}  {request.symbol} {request.timeframe}")
    print(f"  {result.bars} bars in {result.elapsed_ms:.0f} ms")
    for key in ("total_return", "cagr", "max_drawdown", "win_rate", "buy_and_hold_return"):
        value = m.get(key)
        print(f"  {models.camel(key):<18} {'-' if value is None else f'{value:.2%}'}")
    for key in (
        "sharpe",
        "sortino",
        "calmar",
        "profit_factor",
        "trades",
        "final_equity",
        "fees_paid",
    ):
        value = m.get(key)
        print(f"  {models.camel(key):<18} {'-' if value is None else f'{value:,.2f}'}")
    return EXIT_OK


def _sweep_run(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    import engine
    import engine.sweep  # numba's start-up, before the progress clock starts
    from algotcha import engine_requests, exports, models, schemas

    request = engine_requests.parse_sweep(
        local.read_request(args.request), max_combinations=settings.max_sweep_combinations
    )
    if args.grid:
        local.check_output("--grid", args.grid, folder=False)
    base = request.base

    def prepare(checked: engine.BacktestRequest, bars: pd.DataFrame) -> local.Prepared[SweepResult]:
        sweep = dataclasses.replace(request, base=checked)
        total = len(engine.grid.plan(sweep).combinations)
        logger.info("sweep started combinations=%d bars=%d", total, len(bars))
        return (
            total,
            "combinations",
            lambda tick, stop: engine.sweep.run(sweep, bars, on_progress=tick, should_cancel=stop),
        )

    result = local.run_with_progress(settings, base, prepare, error_path="sweep", quiet=args.json)
    logger.info("sweep finished combinations=%d ms=%.0f", result.combinations, result.elapsed_ms)
    if args.grid:
        try:
            args.grid.write_text(exports.render_grid_csv(result))
        except OSError as exc:
            raise local.unwritable("--grid", exc) from None
    if args.json:
        local.write_json(schemas.render_sweep(result), sys.stdout.buffer)
        return EXIT_OK
    print(f"{base.strategy_name}  {base.symbol} {base.timeframe}  {result.elapsed_ms / 1000:.1f} s")
    print(
        f"  {result.combinations} combinations, {result.evaluated} ranked by "
        f"{models.camel(result.objective)}, {result.skipped} skipped"
    )
    for row in result.top:
        values = " ".join(f"{name}={value:g}" for name, value in row.parameters.items())
        outside = row.out_of_sample or {}
        print(
            f"  #{row.index:<5} {values:<40} in {_figure(row.score)}"
            f"  out {_figure(outside.get(result.objective))}  trades {row.in_sample['trades']}"
        )
    print(f"  {result.overfitting.reading}")
    return EXIT_OK


def _walkforward_run(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    import engine
    from algotcha import engine_requests, models, schemas
    from engine import walkforward

    request = engine_requests.parse_walkforward(
        local.read_request(args.request), max_combinations=settings.max_sweep_combinations
    )
    base = request.sweep.base

    def prepare(
        checked: engine.BacktestRequest, bars: pd.DataFrame
    ) -> local.Prepared[WalkForwardResult]:
        checked_request = dataclasses.replace(
            request, sweep=dataclasses.replace(request.sweep, base=checked)
        )
        laid_out = engine.grid.plan(checked_request.sweep)
        folds = walkforward.plan_folds(checked_request, bars, laid_out=laid_out)  # before logging
        logger.info(
            "walkforward started folds=%d combinations=%d bars=%d",
            request.folds,
            len(laid_out.combinations),
            len(bars),
        )
        return (
            request.folds * walkforward.fold_units(laid_out),
            "steps",
            lambda tick, stop: walkforward.run(
                checked_request,
                bars,
                on_progress=tick,
                should_cancel=stop,
                laid_out=laid_out,
                folds=folds,
            ),
        )

    result = local.run_with_progress(settings, base, prepare, error_path="", quiet=args.json)
    logger.info("walkforward finished folds=%d ms=%.0f", request.folds, result.elapsed_ms)
    if args.json:
        local.write_json(schemas.render_walkforward(result), sys.stdout.buffer)
        return EXIT_OK
    stitched = result.stitched.metrics
    objective = models.camel(request.sweep.objective)
    print(f"{base.strategy_name}  {base.symbol} {base.timeframe}  {result.elapsed_ms / 1000:.1f} s")
    for fold in result.folds:
        start, end = (
            f"{datetime.fromtimestamp(ns / 1e9, UTC):%Y-%m-%d %H:%M}"
            for ns in fold.out_of_sample_window
        )
        window = f"{start} to {end}"
        if fold.parameters is None:
            chosen = f"no valid combination ({request.sweep.min_trades} trades needed)"
        else:
            chosen = " ".join(f"{name}={value:g}" for name, value in fold.parameters.items())
        print(
            f"  fold {fold.index + 1}  out-of-sample {window}  {chosen:<36}"
            f" {objective} in {_figure(fold.in_sample_objective)}"
            f"  out {_figure(fold.out_of_sample_objective)}"
        )
    print(
        f"  stitched out-of-sample: total return {_figure(stitched['total_return'])}"
        f"  sharpe {_figure(stitched['sharpe'])}  trades {stitched['trades']}"
    )
    print(f"  {result.reading}")
    return EXIT_OK


def _figure(value: float | int | None) -> str:
    return "-".rjust(9) if value is None else f"{value:9.3f}"
