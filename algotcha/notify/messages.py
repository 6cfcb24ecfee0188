"""What the user is told: completed and failed notices for Telegram and email, and bot replies.

User text (strategy names, error messages) is clipped, then escaped with html.escape, so it can
neither break the HTML nor push a Telegram message past its 4,096 characters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

#: Telegram's limit (4,096) less a margin; counted like Telegram, in UTF-16 code units.
TELEGRAM_BUDGET = 4000
MAX_NAME = 200
MAX_ERROR = 1500
MAX_SHORT = 40

_TAG = re.compile(r"<[^>]*>")


class Job(Protocol):
    """What a message shows of a job. Notify sits below services and beside db, so it names
    the fields it reads instead of importing db.jobs.JobRow, which has them."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def strategy_name(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def progress(self) -> int: ...
    @property
    def result(self) -> dict[str, Any] | None: ...
    @property
    def error(self) -> str | None: ...


class PlacedJob(Protocol):
    """A job with its place in line (services.jobs.QueuedJob)."""

    @property
    def job(self) -> Job: ...
    @property
    def position(self) -> int | None: ...
    @property
    def wait_minutes(self) -> int | None: ...


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str  # email, text/plain
    html: str  # email, text/html
    telegram: str  # Telegram, parse_mode HTML


def result_url(public_url: str, job_id: int) -> str:
    """The web page's result route for one job."""
    return f"{public_url.rstrip('/')}/#/jobs/{job_id}"


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units, cut on a character boundary and marked with an ellipsis."""
    if units(text) <= limit:
        return text
    out, used = [], 0
    for char in text:
        size = units(char)
        if used + size > limit - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"


def visible(telegram_html: str) -> str:
    """The text Telegram shows for an HTML message: tags removed, entities decoded."""
    return html.unescape(_TAG.sub("", telegram_html))


_WHAT = {"backtest": "Backtest", "sweep": "Sweep", "walk_forward": "Walk-forward"}


def render(job: Job, public_url: str) -> Notice:
    """The notice for a job that ended completed or failed."""
    # a sweep or walk-forward stores its SweepRequest, whose payload names the data
    payload = job.payload if job.kind == "backtest" else job.payload.get("payload") or {}
    name = clip(job.strategy_name, MAX_NAME)
    market = f"{_short(payload.get('symbol'))} {_short(payload.get('timeframe'))}"
    period = f"{_day(payload.get('start'))} → {_day(payload.get('end'))}"
    url = result_url(public_url, job.id)
    what = _WHAT[job.kind]
    if job.status == "completed":
        headline, subject = f"{what} completed", f"{what} completed: {name}"
        result = job.result or {}
        if job.kind == "sweep":
            rows = _sweep_rows(result)
        elif job.kind == "walk_forward":
            rows = _walkforward_rows(result)
        else:
            rows = _metric_rows(result.get("metrics") or {})
    else:
        headline, subject = f"{what} failed", f"{what} failed: {name}"
        rows = [("Error", clip(job.error or "unknown error", MAX_ERROR))]
    facts = [("Strategy", name), ("Market", market), ("Period", period), *rows]
    return Notice(
        subject=subject,
        text=_text(headline, job.id, facts, url),
        html=_email_html(headline, job.id, facts, url),
        telegram=_telegram(headline, job.id, facts, url),
    )


def _sweep_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A finished sweep: the winner, its objective in and out of sample, the overfitting
    figures and their one-line reading (a stored SweepResult.as_dict())."""
    objective = str(result.get("objective", "sharpe"))
    top = result.get("top") or []
    verdict = result.get("overfitting") or {}
    rows = [
        (
            "Combinations",
            f"{result.get('combinations', 0):,} ({result.get('evaluated', 0):,} ranked)",
        )
    ]
    if not top:
        return [*rows, ("Winner", "none: no combination reached the minimum of trades")]
    best = top[0]
    values = ", ".join(f"{k}={_number(v)}" for k, v in best["parameters"].items())
    outside = best.get("out_of_sample") or {}
    rows += [
        ("Winner", clip(values, 300)),
        (f"In-sample {objective}", _number(best["in_sample"].get(objective))),
        (f"Out-of-sample {objective}", _number(outside.get(objective))),
        ("Deflated Sharpe", _share(verdict.get("deflated_sharpe"))),
        ("PBO", _share(verdict.get("pbo"))),
        ("Reading", clip(str(verdict.get("reading", "")), 600)),
    ]
    return rows


def _walkforward_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A finished walk-forward: its verdict line, efficiency and profitable folds (a stored
    WalkForwardResult.as_dict())."""
    folds = result.get("folds") or []
    profitable = result.get("profitable_folds")
    share = (
        f"{round(profitable * len(folds))} of {len(folds)}"
        if isinstance(profitable, int | float) and folds
        else "n/a"
    )
    return [
        ("Verdict", clip(str(result.get("reading", "")), 600)),
        ("Efficiency", _share(result.get("efficiency"))),
        ("Profitable folds", share),
    ]


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}" if float(value).is_integer() else f"{value:.4g}"
    return "n/a"


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "n/a"


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    formats: list[tuple[str, str, Callable[[float], str]]] = [
        ("Total return", "total_return", lambda v: f"{v:+.2%}"),
        ("Max drawdown", "max_drawdown", lambda v: f"{v:.2%}"),
        ("Sharpe", "sharpe", lambda v: f"{v:.2f}"),
        ("Win rate", "win_rate", lambda v: f"{v:.1%}"),
        ("Trades", "trades", lambda v: f"{int(v)}"),
    ]
    rows = []
    for label, key, show in formats:
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((label, show(float(value))))
        else:
            rows.append((label, "n/a"))
    return rows


def _short(value: Any) -> str:
    return clip(str(value), MAX_SHORT) if value is not None else "?"


def _day(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d")
    except ValueError:
        return _short(value)


def _text(headline: str, job_id: int, facts: list[tuple[str, str]], url: str) -> str:
    lines = [f"{headline} (#{job_id})", ""]
    lines += [f"{label}: {value}" for label, value in facts]
    return "\n".join([*lines, "", f"Result: {url}", ""])


def _email_html(headline: str, job_id: int, facts: list[tuple[str, str]], url: str) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(label)}</th>'
        f"<td>{e(value)}</td></tr>"
        for label, value in facts
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{e(headline)} (#{job_id})</h2><table>{rows}</table>"
        f'<p><a href="{e(url)}">Open the result</a></p></body></html>'
    )


def _telegram(headline: str, job_id: int, facts: list[tuple[str, str]], url: str) -> str:
    e = html.escape
    lines = [f"<b>{e(headline)}</b> (#{job_id})", ""]
    lines += [f"<b>{e(label)}:</b> {e(value)}" for label, value in facts]
    lines += ["", f'<a href="{e(url)}">Open the result</a>']
    message = "\n".join(lines)
    # Clipped fields keep this far below the limit; the check guards future edits.
    assert units(visible(message)) <= TELEGRAM_BUDGET, "a notice outgrew Telegram's limit"
    return message


# --- bot replies -------------------------------------------------------------------------------


def status_reply(items: Sequence[PlacedJob], public_url: str) -> str:
    """/status: the user's queued and running backtests with their place in line."""
    active = [i for i in items if i.job.status in ("queued", "processing")]
    if not active:
        return "No backtests are queued or running."
    lines = ["<b>Your backtests</b>"]
    for item in active:
        job = item.job
        name = html.escape(clip(job.strategy_name, 60))
        if job.status == "processing":
            where = f"running, {job.progress} %"
        else:
            wait = "" if item.wait_minutes is None else f", about {item.wait_minutes} min"
            where = f"#{item.position} in line{wait}"
        url = html.escape(result_url(public_url, job.id))
        lines.append(f'• <a href="{url}">#{job.id}</a> {name}: {where}')
    return clip_lines(lines)


def clip_lines(lines: list[str]) -> str:
    """Join lines, dropping the tail (whole lines, never half a tag) past Telegram's budget."""
    kept: list[str] = []
    for line in lines:
        if units(visible("\n".join([*kept, line, "…"]))) > TELEGRAM_BUDGET:
            kept.append("…")
            break
        kept.append(line)
    return "\n".join(kept)
