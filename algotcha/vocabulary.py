"""The words the API, the database and the services share, each list written once.

The database's CHECK constraints (migrations 0001, 0007) and engine.TIMEFRAMES /
engine.grid.OBJECTIVES hold the same lists; tests/unit/algotcha/test_vocabulary.py ties them.
Nothing here imports more than `typing`, so the CLI and the models load it for free.
"""

from __future__ import annotations

from typing import Literal, get_args

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
NotifyChannel = Literal["email", "telegram", "both", "none"]
# As stored (backtest_job.kind); the API spells the last one walkForward (JobKindName).
JobKind = Literal["backtest", "sweep", "walk_forward"]
JobKindName = Literal["backtest", "sweep", "walkForward"]
Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
# A sweep's objective as the API names it; the engine's key is its snake_case.
Objective = Literal["totalReturn", "sharpe", "sortino", "calmar", "profitFactor", "expectancy"]

JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "processing")
FINAL_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "cancelled")
NOTIFY_CHANNELS: tuple[NotifyChannel, ...] = get_args(NotifyChannel)
TIMEFRAMES: tuple[Timeframe, ...] = get_args(Timeframe)
OBJECTIVES: tuple[Objective, ...] = get_args(Objective)
KIND_NAMES: dict[JobKind, JobKindName] = {
    "backtest": "backtest",
    "sweep": "sweep",
    "walk_forward": "walkForward",
}
