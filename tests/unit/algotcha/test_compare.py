"""services.results.align: runs side by side, by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from algotcha.db.jobs import JobRow
from algotcha.services import results


def job(job_id: int, payload: dict[str, Any], metrics: dict[str, Any], curve: list[Any]) -> JobRow:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return JobRow(
        id=job_id, user_id=1, strategy_name=f"run {job_id}", payload=payload, notify_via="none",
        status="completed", priority=0, progress=100, attempt=1, cancel_requested=False,
        worker_id=None, heartbeat_at=None, created_at=now, started_at=now, completed_at=now,
        error=None, result={"metrics": metrics, "equity_curve": curve},
    )  # fmt: skip


def point(t: str, equity: float) -> dict[str, Any]:
    return {"t": f"2024-01-0{t}T00:00:00Z", "equity": equity}


def test_align_rebases_curves_on_one_axis_and_marks_the_best_and_the_differences() -> None:
    a = job(
        1,
        {"initialCapital": 100, "stopLoss": None, "symbol": "X"},
        {"total_return": 0.2, "max_drawdown": -0.3, "fees_paid": 5.0, "trades": 3},
        [point("1", 100), point("3", 120)],
    )
    b = job(
        2,
        {"initialCapital": 200, "stopLoss": 0.02, "symbol": "X"},
        {"total_return": 0.1, "max_drawdown": -0.1, "fees_paid": 2.0, "trades": 9},
        [point("2", 200), point("3", 220), point("4", 180)],
    )
    c = results.align([a, b])
    assert c.times == [f"2024-01-0{d}T00:00:00Z" for d in "1234"]
    assert c.equity == [[1.0, 1.0, 1.2, None], [None, 1.0, 1.1, 0.9]]
    rows = {row.key: row for row in c.metrics}
    assert [row.key for row in c.metrics] == ["total_return", "max_drawdown", "trades", "fees_paid"]
    assert rows["total_return"].best == 0 and rows["max_drawdown"].best == 1
    assert rows["fees_paid"].best == 1 and rows["trades"].best is None
    settings = {row.key: row for row in c.settings}
    assert settings["stopLoss"].differs and settings["initialCapital"].differs
    assert not settings["symbol"].differs and settings["stopLoss"].values == [None, 0.02]


def test_equal_values_have_no_best() -> None:
    runs = [job(n, {}, {"sharpe": 1.5}, []) for n in (1, 2)]
    assert results.align(runs).metrics[0].best is None
