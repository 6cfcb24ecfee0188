"""Notices and bot replies: content, escaping of user text, and Telegram's 4,096 limit."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from algotcha.db.jobs import JobRow
from algotcha.notify import messages
from algotcha.services.jobs import QueuedJob

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PUBLIC_URL = "https://algotcha.example.com"
EVIL = "<b>x</b> & co"
METRICS = {
    "total_return": 0.1234,
    "max_drawdown": -0.0567,
    "sharpe": 1.234,
    "win_rate": 0.55,
    "trades": 42,
}


def job(**changes: Any) -> JobRow:
    fields: dict[str, Any] = {
        "id": 17,
        "user_id": 1,
        "strategy_name": "SMA cross",
        "payload": {
            "symbol": "BTCUSDT",
            "timeframe": "1h",
            "start": "2022-01-01T00:00:00Z",
            "end": "2022-03-01T00:00:00Z",
        },
        "notify_via": "both",
        "status": "completed",
        "priority": 0,
        "progress": 100,
        "attempt": 1,
        "cancel_requested": False,
        "worker_id": None,
        "heartbeat_at": None,
        "created_at": NOW,
        "started_at": NOW,
        "completed_at": NOW,
        "error": None,
        "result": {"metrics": METRICS},
    }
    fields.update(changes)
    known = JobRow.__dataclass_fields__
    return JobRow(**{k: v for k, v in fields.items() if k in known})


class Tags(HTMLParser):
    """Collects the tags of a Telegram HTML message, to check they are the ones we wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []
        self.closed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.opened.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.closed.append(tag)


def tags(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    parser.close()
    return parser


def test_a_completed_notice_holds_the_strategy_market_period_metrics_and_link() -> None:
    notice = messages.render(job(), PUBLIC_URL)
    shown = messages.visible(notice.telegram)
    for expected in (
        "Backtest completed",
        "#17",
        "SMA cross",
        "BTCUSDT 1h",
        "2022-01-01 → 2022-03-01",
        "Total return: +12.34%",
        "Max drawdown: -5.67%",
        "Sharpe: 1.23",
        "Win rate: 55.0%",
        "Trades: 42",
    ):
        assert expected in shown, expected
        assert expected in notice.text, expected
    assert f'href="{PUBLIC_URL}/#/jobs/17"' in notice.telegram
    assert f"{PUBLIC_URL}/#/jobs/17" in notice.text
    assert f'href="{PUBLIC_URL}/#/jobs/17"' in notice.html
    assert notice.subject == "Backtest completed: SMA cross"


def test_a_failed_notice_holds_the_error() -> None:
    notice = messages.render(
        job(status="failed", result=None, error="unknown symbol GONE <here>"), PUBLIC_URL
    )
    assert "Backtest failed" in notice.subject
    assert "Error: unknown symbol GONE <here>" in messages.visible(notice.telegram)
    assert "unknown symbol GONE &lt;here&gt;" in notice.html
    assert "Error: unknown symbol GONE <here>" in notice.text
    assert "Total return" not in notice.text


def test_user_text_is_escaped_in_html_and_kept_verbatim_in_plain_text() -> None:
    notice = messages.render(job(strategy_name=EVIL), PUBLIC_URL)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in notice.telegram
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in notice.html
    assert EVIL in messages.visible(notice.telegram)
    assert EVIL in notice.text and EVIL in notice.subject
    parsed = tags(notice.telegram)
    assert set(parsed.opened) == {"b", "a"} and sorted(parsed.opened) == sorted(parsed.closed)


def test_a_huge_name_and_error_stay_under_telegrams_limit() -> None:
    name = ("<b>🚀 & co</b>" * 400)[:5000]
    error = "Überlauf 💥 <script>" * 500
    for row in (job(strategy_name=name), job(status="failed", error=error, result=None)):
        notice = messages.render(row, PUBLIC_URL)
        assert messages.units(messages.visible(notice.telegram)) <= 4096
        assert "<script>" not in notice.telegram and "<script>" not in notice.html
        parsed = tags(notice.telegram)
        assert sorted(parsed.opened) == sorted(parsed.closed)
        # Cut on a character boundary: no lone surrogate, no half entity.
        notice.telegram.encode("utf-8")
        assert "&am…" not in notice.telegram


def test_clip_counts_utf16_units_and_never_splits_a_character() -> None:
    assert messages.units("🚀") == 2
    assert messages.clip("abc", 3) == "abc"
    assert messages.clip("abcd", 3) == "ab…"
    assert messages.clip("🚀🚀🚀", 4) == "🚀…"
    assert messages.units(messages.clip("x" * 10_000, 100)) == 100


def test_missing_metrics_read_not_available() -> None:
    notice = messages.render(job(result={"metrics": {"trades": 0, "sharpe": None}}), PUBLIC_URL)
    assert "Sharpe: n/a" in notice.text and "Trades: 0" in notice.text


def test_status_lists_running_and_queued_jobs_with_positions() -> None:
    items = [
        QueuedJob(job(id=3, status="processing", progress=40, strategy_name=EVIL), 0, 0),
        QueuedJob(job(id=4, status="queued", progress=0), 2, 5),
        QueuedJob(job(id=1, status="completed"), None, None),
    ]
    reply = messages.status_reply(items, PUBLIC_URL)
    shown = messages.visible(reply)
    assert f"#3 {EVIL}: running, 40 %" in shown
    assert "#4 SMA cross: #2 in line, about 5 min" in shown
    assert "#1 " not in shown
    assert html.escape(EVIL) in reply


def test_status_without_active_jobs_says_so() -> None:
    assert "No backtests" in messages.status_reply([], PUBLIC_URL)


def test_a_long_status_drops_whole_lines() -> None:
    items = [
        QueuedJob(job(id=i, status="queued", strategy_name="n" * 60), i, i) for i in range(200)
    ]
    reply = messages.status_reply(items, PUBLIC_URL)
    assert messages.units(messages.visible(reply)) <= 4096
    assert reply.endswith("\n…")
    parsed = tags(reply)
    assert sorted(parsed.opened) == sorted(parsed.closed)


SWEEP_RESULT = {
    "combinations": 18,
    "evaluated": 16,
    "skipped": 2,
    "objective": "sharpe",
    "elapsed_ms": 1234.0,
    "top": [
        {
            "index": 7,
            "parameters": {"fast": 10.0, "slow": 40.0},
            "in_sample": {**METRICS, "sharpe": 1.5},
            "out_of_sample": {**METRICS, "sharpe": 0.42},
        }
    ],
    "overfitting": {
        "trials": 16,
        "deflated_sharpe": 0.31,
        "pbo": 0.6,
        "reading": "Probably luck, so the winner is likely overfit.",
    },
}
SWEEP_REQUEST = {
    "payload": job().payload,
    "parameters": {"fast": [10], "slow": [40]},
}


def test_a_finished_sweep_names_the_winner_its_objectives_and_the_overfitting_reading() -> None:
    notice = messages.render(
        job(kind="sweep", payload=SWEEP_REQUEST, result=SWEEP_RESULT), PUBLIC_URL
    )
    shown = messages.visible(notice.telegram)
    for expected in (
        "Sweep completed",
        "BTCUSDT 1h",
        "Combinations: 18 (16 ranked)",
        "Winner: fast=10, slow=40",
        "In-sample sharpe: 1.5",
        "Out-of-sample sharpe: 0.42",
        "Deflated Sharpe: 31%",
        "PBO: 60%",
        "Reading: Probably luck, so the winner is likely overfit.",
    ):
        assert expected in shown, expected
        assert expected in notice.text, expected
    assert f'href="{PUBLIC_URL}/#/jobs/17"' in notice.telegram
    assert notice.subject == "Sweep completed: SMA cross"


def test_a_failed_sweep_sends_its_error() -> None:
    notice = messages.render(
        job(kind="sweep", payload=SWEEP_REQUEST, status="failed", result=None, error="boom"),
        PUBLIC_URL,
    )
    assert notice.subject == "Sweep failed: SMA cross"
    assert "Error: boom" in notice.text and "Winner" not in notice.text


WALK_RESULT = {
    "folds": [{"index": index} for index in range(5)],
    "efficiency": 0.62,
    "profitable_folds": 0.6,
    "parameter_stability": 0.8,
    "reading": "Looks robust: out-of-sample kept 62% of the in-sample annualised return.",
}


def test_a_finished_walkforward_sends_its_verdict_efficiency_and_profitable_folds() -> None:
    notice = messages.render(
        job(kind="walk_forward", payload=SWEEP_REQUEST, result=WALK_RESULT), PUBLIC_URL
    )
    shown = messages.visible(notice.telegram)
    for expected in (
        "Walk-forward completed",
        "BTCUSDT 1h",
        f"Verdict: {WALK_RESULT['reading']}",
        "Efficiency: 62%",
        "Profitable folds: 3 of 5",
    ):
        assert expected in shown, expected
        assert expected in notice.text, expected
    assert f'href="{PUBLIC_URL}/#/jobs/17"' in notice.telegram
    assert notice.subject == "Walk-forward completed: SMA cross"


def test_a_walkforward_without_efficiency_reads_not_available_and_a_failed_one_its_error() -> None:
    undefined = {**WALK_RESULT, "efficiency": None}
    notice = messages.render(
        job(kind="walk_forward", payload=SWEEP_REQUEST, result=undefined), PUBLIC_URL
    )
    assert "Efficiency: n/a" in notice.text
    failed = messages.render(
        job(kind="walk_forward", payload=SWEEP_REQUEST, status="failed", result=None, error="boom"),
        PUBLIC_URL,
    )
    assert failed.subject == "Walk-forward failed: SMA cross"
    assert "Error: boom" in failed.text and "Verdict" not in failed.text
