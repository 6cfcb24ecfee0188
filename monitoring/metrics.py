"""Every Prometheus metric of the service, defined once: algotcha_*, base units, _total."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Terminal and intermediate outcomes of one backtest attempt; `requeued` is not terminal.
BACKTEST_OUTCOMES = ("completed", "failed", "cancelled", "timed_out", "crashed", "requeued")
#: What became of one combination of a sweep run in a chunk: `redone` ones were computed by
#: a chunk that was then lost (its worker died or stopped) and count again when redone.
SWEEP_COMBINATION_OUTCOMES = ("done", "redone", "cancelled")
#: The chunked job kinds whose combinations are counted: a walk-forward's are its units, the
#: combinations its folds sweep in-sample and each fold's one out-of-sample backtest.
SWEEP_KINDS = ("sweep", "walk_forward")
NOTIFICATION_CHANNELS = ("email", "telegram")
NOTIFICATION_OUTCOMES = ("sent", "failed", "retried", "skipped")

#: Backtests take from 50 ms (1 h bars) to the 30 min time limit; the last finite buckets
#: sit past the 1 h mark so a raised BACKTEST_TIME_LIMIT still lands in a finite bucket.
BACKTEST_BUCKETS_S = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    2700.0,
    3600.0,
    5400.0,
    7200.0,
)

HTTP_REQUESTS = Counter(
    "algotcha_http_requests_total",
    "HTTP requests answered by the API, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "algotcha_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response (streams included).",
    ["method", "route"],
)
BACKTEST_WAIT = Histogram(
    "algotcha_backtest_wait_seconds",
    "Time a backtest spent queued before a worker started it; its _count is the jobs started.",
    buckets=BACKTEST_BUCKETS_S,
)
BACKTEST_DURATION = Histogram(
    "algotcha_backtest_duration_seconds",
    "Time from a worker starting a backtest to its final status.",
    buckets=BACKTEST_BUCKETS_S,
)
BACKTESTS = Counter(
    "algotcha_backtests_total",
    "Backtest attempts that ended, by outcome.",
    ["outcome"],
)
SWEEP_COMBINATIONS = Counter(
    "algotcha_sweep_combinations_total",
    "Sweep combinations computed by workers (of sweeps and of walk-forward folds), by job kind "
    "and outcome.",
    ["kind", "outcome"],
)
SWEEP_COMBINATION_SECONDS = Histogram(
    "algotcha_sweep_combination_seconds",
    "Engine time per combination of a sweep or walk-forward fold, observed once per chunk "
    "(chunk time / its combinations).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
NOTIFICATIONS = Counter(
    "algotcha_notifications_total",
    "Notification delivery attempts, by channel and outcome.",
    ["channel", "outcome"],
)


def _create_known_series() -> None:
    # A series that exists at zero lets rate() and increase() see its first event.
    for outcome in BACKTEST_OUTCOMES:
        BACKTESTS.labels(outcome=outcome)
    for kind in SWEEP_KINDS:
        for outcome in SWEEP_COMBINATION_OUTCOMES:
            SWEEP_COMBINATIONS.labels(kind=kind, outcome=outcome)
    for channel in NOTIFICATION_CHANNELS:
        for outcome in NOTIFICATION_OUTCOMES:
            NOTIFICATIONS.labels(channel=channel, outcome=outcome)


_create_known_series()
