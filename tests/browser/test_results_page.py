"""The result page's tearsheet, exports, share links and rerun, and the comparison view."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from algotcha.config import Settings
from tests.browser.test_page import assert_no_horizontal_scroll, register
from tests.fixtures.app import LiveServer, payload
from tests.fixtures.browser import PageProblems
from tests.fixtures.results import run_queued

pytestmark = pytest.mark.integration

EN_DASH, MINUS = "\N{EN DASH}", "\N{MINUS SIGN}"
BUSY = {
    "timeframe": "15m",
    "longEntry": "crossover(sma(close, 3), sma(close, 8))",
    "longExit": "crossunder(sma(close, 3), sma(close, 8))",
}


def completed_runs(
    page: Page, api: LiveServer, settings: Settings, *changes: dict[str, Any]
) -> list[int]:
    """Queues one backtest per `changes` as the signed-in user of `page` and runs them all."""
    token = page.evaluate("JSON.parse(sessionStorage.getItem('algotcha.token')).token")
    ids = []
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for change in changes:
            body = {"payload": payload(**change), "notifyVia": "none"}
            r = client.post("/api/backtest/queue", json=body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["queueId"])
    assert sorted(run_queued(settings)) == sorted(ids)
    return ids


def test_three_runs_side_by_side(
    page: Page, api: LiveServer, settings: Settings, artifacts: Path, page_problems: PageProblems
) -> None:
    register(page)
    ids = completed_runs(
        page,
        api,
        settings,
        {"strategyName": "SMA 20/50"},
        {"strategyName": "SMA 20/50, 2 % stop", "stopLoss": 0.02},
        {"strategyName": "SMA 10/30", "longEntry": "crossover(sma(close, 10), sma(close, 30))",
         "longExit": "crossunder(sma(close, 10), sma(close, 30))"},
    )  # fmt: skip
    page.get_by_role("link", name="My backtests").click()
    go = page.get_by_role("button", name="Compare selected")
    expect(go).to_be_disabled()
    for job_id in ids:
        page.locator(f"#job-list li[data-id='{job_id}'] input[type=checkbox]").check()
    expect(page.locator("#compare-hint")).to_have_text("3 selected.")
    go.click()

    expect(page).to_have_url(re.compile(rf"#/compare\?ids={ids[0]},{ids[1]},{ids[2]}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare backtests")
    lines = page.locator("#compare-chart svg path.plot-line")
    expect(lines).to_have_count(3)
    for n in range(3):
        expect(lines.nth(n)).to_have_attribute("d", re.compile("^M"))
    metrics = page.locator("#compare-metrics")
    expect(metrics.locator("thead th a")).to_have_text(
        ["SMA 20/50", "SMA 20/50, 2 % stop", "SMA 10/30"]
    )
    total = metrics.get_by_role("row", name=re.compile("^Total return"))
    expect(total.locator("td.best")).to_have_count(1)
    expect(total.locator("td.best")).to_contain_text("★")
    expect(metrics.get_by_role("row", name=re.compile("^Trades")).locator("td.best")).to_have_count(
        0
    )
    differs = page.locator("#compare-settings tr.differs th")
    expect(differs).to_have_text([
        re.compile("^Strategy name"), re.compile("^Long entry"), re.compile("^Long exit"),
        re.compile("^Stop loss"),
    ])  # fmt: skip
    page.screenshot(path=artifacts / "compare.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    expect(page.locator("#compare-chart svg")).to_have_attribute("width", re.compile(r"^[23]\d\d$"))
    expect(lines).to_have_count(3)
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "compare-mobile.png", full_page=True)
    assert page_problems.errors == []


def test_the_tearsheet_exports_share_link_and_rerun_of_a_result(
    page: Page,
    browser: Browser,
    api: LiveServer,
    settings: Settings,
    artifacts: Path,
    page_problems: PageProblems,
) -> None:
    email = register(page)
    (job_id,) = completed_runs(
        page, api, settings, {**BUSY, "strategyName": "Busy", "stopLoss": 0.03, "feeRate": 0}
    )
    page.goto(f"/#/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("Completed")

    # The tearsheet sections.
    monthly = page.locator("#monthly-table tbody tr")
    expect(monthly).to_have_count(1)
    expect(monthly.first.locator("th")).to_have_text("2022")
    expect(monthly.first.locator("td").nth(0)).to_have_text(re.compile(rf"^[+{MINUS}]\d+\.\d %$"))
    expect(monthly.first.locator("td").nth(2)).to_have_text("")  # no March data
    drawdowns = page.locator("#drawdowns-table tbody tr")
    expect(drawdowns.first.locator("td").first).to_have_text(re.compile(rf"^{MINUS}\d+\.\d\d %$"))
    assert 1 <= drawdowns.count() <= 5
    expect(page.locator("#sharpe-chart svg path.plot-line")).to_have_attribute(
        "d", re.compile("^M")
    )
    expect(page.locator("#returns-chart svg rect.bar")).to_have_count(20)
    expect(page.locator("#trade-stats")).to_contain_text(
        re.compile(r"Longest winning streak\d+ trades")
    )
    expect(page.locator("#trade-stats")).to_contain_text(
        re.compile(r"Average trade duration[\d.]+ (min|h)")
    )
    page.locator("#tearsheet").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "tearsheet.png", full_page=True)

    # Trades beyond the first page of the job document come from the trades route.
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/trades?" in r.url else None)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#trades-range")).to_have_text(re.compile(rf"^101{EN_DASH}150 of \d+$"))
    expect(page.locator("#trades-table tbody tr").first.locator("td").first).to_have_text("101")
    assert any("after=100&limit=50" in url for url in fetched)

    # Export: the CSV the button saves is the API's, with its header row.
    with page.expect_download() as caught:
        page.get_by_role("button", name="Trades CSV").click()
    saved = Path(caught.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(saved)))
    assert caught.value.suggested_filename == f"backtest-{job_id}-trades.csv"
    assert rows[100]["number"] == "101" and rows[0]["entry_time"].endswith("Z")

    # Share: the link opens in a fresh browser (no token), without the owner's email.
    page.get_by_label("Link expires").select_option("7")
    page.get_by_role("button", name="Create share link").click()
    url_box = page.get_by_label("Read-only link")
    expect(url_box).to_have_value(re.compile(r"/shared/[A-Za-z0-9_-]{40,}$"))
    expect(page.locator("#share-expiry")).to_have_text(
        re.compile(r"^Works until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$")
    )
    page.screenshot(path=artifacts / "share-link.png")
    page.set_viewport_size({"width": 375, "height": 812})
    expect(page.locator("#sharpe-chart svg")).to_have_attribute("width", re.compile(r"^[23]\d\d$"))
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "result-tearsheet-mobile.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    link = url_box.input_value()
    path = link[link.index("/shared/") :]
    stranger = browser.new_context(base_url=api.url, viewport={"width": 1280, "height": 900})
    try:
        shared = stranger.new_page()
        shared.goto(path)
        expect(shared.get_by_role("heading", level=1)).to_have_text("Busy")
        expect(shared.locator("#shared-note")).to_be_visible()
        expect(shared.locator("#chart svg path.equity-line")).to_be_attached()
        expect(shared.locator("#monthly-table tbody tr")).to_have_count(1)
        expect(shared.locator("meta[name=robots]")).to_have_attribute(
            "content", "noindex, nofollow"
        )
        expect(shared.locator("#result-actions")).to_be_hidden()
        expect(shared.get_by_role("link", name="Run again with changes")).to_be_hidden()
        expect(shared.locator("#account")).to_be_hidden()
        assert email not in shared.content()
        assert shared.evaluate("sessionStorage.length") == 0
        shared.get_by_role("button", name="Next").click()
        shared.get_by_role("button", name="Next").click()
        expect(shared.locator("#trades-range")).to_have_text(re.compile(rf"^101{EN_DASH}150"))
        shared.screenshot(path=artifacts / "shared-page.png", full_page=True)

        page.get_by_role("button", name="Revoke link").click()
        expect(page.locator("#flash")).to_contain_text("revoked")
        shared.reload()
        expect(shared.locator("#job-notice")).to_have_text(
            "This link does not exist, was revoked, or has expired."
        )
    finally:
        stranger.close()

    # Rerun: the form opens filled with this run's settings.
    page.get_by_role("link", name="Run again with changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New backtest")
    expect(page.get_by_label("Strategy name")).to_have_value("Busy")
    expect(page.get_by_label("Long entry")).to_have_value(BUSY["longEntry"])
    expect(page.get_by_label("Timeframe")).to_have_value("15m")
    expect(page.get_by_label("Stop loss")).to_have_value("3")
    page.screenshot(path=artifacts / "rerun-form.png")
    assert page_problems.errors == [] and page_problems.dialogs == []
