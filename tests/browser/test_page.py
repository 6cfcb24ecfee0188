"""The web page in Debian's Chromium on the live API, real PostgreSQL, RabbitMQ and a worker."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from algotcha.config import Settings
from tests.fixtures.app import LiveServer
from tests.fixtures.browser import PageProblems

pytestmark = pytest.mark.integration

XSS_NAME = "<img src=x onerror=alert(1)>"
# The page prints negative numbers with a real minus sign and ranges with an en dash.
MINUS, EN_DASH = "\N{MINUS SIGN}", "\N{EN DASH}"
JOB_URL = re.compile(r"#/jobs/(\d+)$")


def register(page: Page, path: str = "/") -> str:
    """Creates an account through the page and leaves it signed in; returns the email."""
    email = f"trader-{secrets.token_hex(4)}@example.com"
    page.goto(path)
    page.get_by_role("button", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#account-email")).to_have_text(email)
    return email


def open_run_dialog(page: Page, name: str, **fields: str) -> None:
    """Fills the form (fields by label) and presses Run."""
    page.get_by_role("link", name="New backtest", exact=True).first.click()
    page.get_by_label("Strategy name").fill(name)
    for label, value in fields.items():
        page.get_by_label(label.replace("_", " ").capitalize()).fill(value)
    page.get_by_role("button", name="Run backtest").click()
    expect(page.get_by_role("dialog")).to_be_visible()


def queue(page: Page, channel: str = "None") -> int:
    """Picks the channel in the open run dialog, queues, and returns the new job's id."""
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(channel, exact=True).check()
    dialog.get_by_role("button", name="Queue backtest").click()
    expect(page).to_have_url(JOB_URL)
    match = JOB_URL.search(page.url)
    assert match is not None
    return int(match.group(1))


def assert_no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_a_trader_queues_two_backtests_watches_the_second_to_its_result_and_cancels_a_third(
    page: Page, start_worker: Any, artifacts: Path, page_problems: PageProblems
) -> None:
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if "/position/" in r.url else None)
    register(page)

    open_run_dialog(page, "SMA cross, first")
    expect(page.locator("#run-place")).to_have_text(re.compile(r"^You will be #1 in line"))
    first = queue(page)
    expect(page.locator("#job-place")).to_have_text("You are #1 in line")

    # Fast averages: over 50 trades, so the trades table has two pages.
    open_run_dialog(
        page,
        "SMA cross, second",
        long_entry="crossover(sma(close, 3), sma(close, 8))",
        long_exit="crossunder(sma(close, 3), sma(close, 8))",
    )
    dialog = page.get_by_role("dialog")
    expect(page.locator("#run-place")).to_have_text(re.compile(r"^You will be #2 in line, "))
    expect(dialog.get_by_label("Telegram", exact=True)).to_be_disabled()
    expect(dialog.get_by_role("link", name="Connect Telegram")).to_be_visible()
    page.screenshot(path=artifacts / "dialog.png")
    second = queue(page, "Email")
    expect(page.locator("#job-place")).to_have_text("You are #2 in line")
    page.screenshot(path=artifacts / "queued.png")

    # The worker starts now, so both jobs were queued: each then takes at least 3 s.
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="3")
    expect(page.locator("#job-place")).to_have_text("You are #1 in line", timeout=20_000)
    expect(page.get_by_role("progressbar", name="Backtest progress")).to_be_visible(timeout=20_000)
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=30_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("SMA cross, second")
    expect(page.locator("#chart svg path.equity-line")).to_have_attribute("d", re.compile("^M"))
    expect(page.locator("#chart svg path.drawdown")).to_be_attached()
    metrics = page.locator("#metrics-table")
    expect(metrics.get_by_role("row", name=re.compile("Total return"))).to_contain_text(
        re.compile(rf"[+{MINUS}]?\d+\.\d\d %")
    )
    expect(metrics.get_by_role("row", name=re.compile("Sharpe ratio"))).to_contain_text(
        re.compile(rf"^Sharpe ratio{MINUS}?\d+\.\d\d$")
    )
    trades = page.locator("#trades-table tbody tr")
    expect(trades).to_have_count(50)
    expect(trades.first).to_contain_text(re.compile("long|short"))
    expect(page.locator("#trades-range")).to_have_text(re.compile(rf"^1{EN_DASH}50 of \d+$"))
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#trades-range")).to_have_text(re.compile(f"^51{EN_DASH}"))
    expect(trades.first.locator("td").first).to_have_text("51")
    page.get_by_role("button", name="Previous").click()
    page.evaluate("window.scrollTo(0, 0)")
    chart = page.locator("#chart svg")
    box = chart.bounding_box()
    assert box is not None
    chart.hover(position={"x": box["width"] * 0.6, "y": box["height"] / 2})
    expect(chart.locator(".tip-text")).to_contain_text(re.compile(r"2022-0[12]-\d\d \d\d:\d\d"))
    page.screenshot(path=artifacts / "result.png")
    page.screenshot(path=artifacts / "result-full.png", full_page=True)

    page.set_viewport_size({"width": 375, "height": 812})
    expect(page.locator("#chart svg")).to_have_attribute("width", re.compile(r"^[23]\d\d$"))
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "result-mobile.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="My backtests").click()
    rows = page.locator("#job-list li")
    expect(rows).to_have_count(2)
    for job_id in (first, second):
        row = page.locator(f"#job-list li[data-id='{job_id}']")
        expect(row.locator(".badge")).to_have_text("Completed", timeout=20_000)
        expect(row.get_by_role("link", name="View result")).to_have_attribute(
            "href", f"#/jobs/{job_id}"
        )
    page.screenshot(path=artifacts / "my-backtests.png")

    page.locator(f"#job-list li[data-id='{second}']").get_by_role(
        "link", name="View result"
    ).click()
    page.get_by_role("link", name="Run again with changes").click()
    expect(page.get_by_label("Strategy name")).to_have_value("SMA cross, second")
    expect(page.get_by_label("Long entry")).to_have_value("crossover(sma(close, 3), sma(close, 8))")

    open_run_dialog(page, "to be cancelled")
    queue(page)
    page.get_by_role("button", name="Cancel backtest").click()
    expect(page.locator("#job-status")).to_have_text("Cancelled", timeout=20_000)
    expect(page.locator("#job-notice")).to_have_text("This backtest was cancelled.")
    assert page_problems.errors == [] and page_problems.dialogs == []
    assert polled == [], "the event stream should have carried every update"


def test_a_strategy_named_like_html_is_shown_as_text(
    page: Page, page_problems: PageProblems
) -> None:
    register(page)
    open_run_dialog(page, XSS_NAME)
    expect(page.locator("#run-summary")).to_contain_text(XSS_NAME)
    queue(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    page.get_by_role("link", name="My backtests").click()
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    expect(page.locator("img[src='x']")).to_have_count(0)
    assert page_problems.dialogs == [] and page_problems.errors == []


def test_a_rule_error_from_the_api_is_shown_next_to_its_field(page: Page, artifacts: Path) -> None:
    register(page)
    open_run_dialog(page, "typo", long_entry="clsoe > 1")
    page.get_by_role("dialog").get_by_role("button", name="Queue backtest").click()

    expect(page.get_by_role("dialog")).to_be_hidden()
    field = page.locator(".field").filter(has=page.get_by_label("Long entry"))
    expect(field.locator(".field-error")).to_contain_text(re.compile(r"clsoe.*column \d+"))
    rule = page.get_by_label("Long entry")
    expect(rule).to_have_attribute("aria-invalid", "true")
    expect(rule).to_be_focused()
    expect(page.get_by_label("Long exit")).not_to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/") or page.url.endswith("#/")
    page.screenshot(path=artifacts / "rule-error.png", full_page=True)


def test_the_status_is_polled_when_the_event_stream_cannot_be_read(
    page: Page, browser: Browser, api: LiveServer
) -> None:
    page.route("**/events", lambda route: route.abort())
    register(page)
    open_run_dialog(page, "polled")
    job_id = queue(page)
    expect(page.locator("#job-place")).to_have_text("You are #1 in line")
    page.get_by_role("button", name="Cancel backtest").click()
    expect(page.locator("#job-status")).to_have_text("Cancelled", timeout=10_000)

    # The link sent in notifications asks a signed-out visitor to sign in, then shows the job.
    email = page.locator("#account-email").inner_text()
    context = browser.new_context(base_url=api.url)
    other = context.new_page()
    other.goto(f"/#/jobs/{job_id}")
    other.get_by_label("Email").fill(email)
    other.get_by_label("Password").fill("correct horse battery")
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("polled")
    expect(other.locator("#job-status")).to_have_text("Cancelled")
    context.close()


def test_the_form_and_the_dialog_fit_a_375px_screen(
    browser: Browser, api: LiveServer, artifacts: Path
) -> None:
    context = browser.new_context(base_url=api.url, viewport={"width": 375, "height": 812})
    page = context.new_page()
    register(page)
    expect(page.get_by_label("Dataset")).to_contain_text("SYNTH (synthetic)")
    expect(page.locator("#symbol-range")).to_contain_text("Synthetic data, not a market's history")
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "mobile-form.png", full_page=True)
    page.get_by_role("button", name="Run backtest").click()
    expect(page.locator("#run-place")).to_have_text(re.compile("in line"))
    box = page.get_by_role("dialog").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    page.screenshot(path=artifacts / "mobile-dialog.png")
    context.close()


def test_the_profile_sets_the_default_channel_and_says_when_telegram_is_not_configured(
    page: Page,
) -> None:
    register(page)
    page.get_by_role("link", name="Profile").click()
    expect(page.locator("#tg-status")).to_have_text(re.compile("^Not linked"))
    form = page.locator("#notify-form")
    expect(form.get_by_label("Both")).to_be_disabled()
    form.get_by_label("None").check()
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#notify-saved")).to_have_text("Saved.")
    page.reload()
    expect(page.locator("#notify-form").get_by_label("None")).to_be_checked()

    page.get_by_role("button", name="Connect Telegram").click()
    # No bot is configured here: the link route answers 503 (404 where it does not exist).
    expect(page.locator("#tg-status")).to_have_text(
        re.compile("Telegram is not (set up|configured)")
    )


def test_telegram_is_connected_through_the_deep_link_and_disconnected(
    browser: Browser, settings: Settings, db: psycopg.Connection, artifacts: Path
) -> None:
    with LiveServer(replace(settings, telegram_bot_username="algotcha_test_bot")) as server:
        context = browser.new_context(base_url=server.url)
        page = context.new_page()
        email = register(page)
        page.get_by_role("link", name="Profile").click()
        page.get_by_role("button", name="Connect Telegram").click()
        expect(page.get_by_role("link", name="Open Telegram")).to_have_attribute(
            "href", re.compile(r"^https://t\.me/algotcha_test_bot\?start=[\w-]+$")
        )
        # The bot records the chat when the user presses Start in Telegram; here, by hand.
        db.execute("UPDATE app_user SET telegram_chat_id = 4242 WHERE email = %s", (email,))
        expect(page.locator("#tg-status")).to_have_text(re.compile("^Linked"), timeout=10_000)
        form = page.locator("#notify-form")
        form.get_by_label("Both").check()
        form.get_by_role("button", name="Save").click()
        expect(page.locator("#notify-saved")).to_have_text("Saved.")
        page.screenshot(path=artifacts / "profile.png")

        page.get_by_role("link", name="New backtest", exact=True).first.click()
        page.get_by_role("button", name="Run backtest").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_label("Both")).to_be_checked()
        expect(dialog.get_by_label("Telegram", exact=True)).to_be_enabled()
        dialog.get_by_role("button", name="Back to the form").click()

        page.get_by_role("link", name="Profile").click()
        page.get_by_role("button", name="Disconnect Telegram").click()
        expect(page.locator("#tg-status")).to_have_text(re.compile("^Not linked"))
        expect(page.get_by_role("button", name="Connect Telegram")).to_be_visible()
        context.close()
