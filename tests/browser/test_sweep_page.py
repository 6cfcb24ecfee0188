"""A sweep through the web page in Debian's Chromium: the form's sweep mode, the heatmap filling
in while a real worker process runs the chunks, the verdict, the CSV and one cell's backtest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

import engine
from tests.browser.test_page import JOB_URL, assert_no_horizontal_scroll, register
from tests.fixtures.app import LiveServer
from tests.fixtures.browser import PageProblems

pytestmark = pytest.mark.integration


def param_row(page: Page, n: int) -> Any:
    return page.locator("#sweep-params tr.param-row").nth(n)


def test_a_trader_sweeps_two_periods_watches_the_heatmap_fill_in_and_opens_a_cell(
    page: Page, start_worker: Any, artifacts: Path, page_problems: PageProblems
) -> None:
    register(page)
    page.get_by_label("Strategy name").fill("SMA grid")
    page.locator("#mode-sweep").check()
    # The default rules become their parameterised versions, with a 5 x 3 grid to start from.
    expect(page.get_by_label("Long entry")).to_have_value(
        "crossover(sma(close, fast), sma(close, slow))"
    )
    count = page.locator("#sweep-combinations")
    expect(count).to_have_text("15 combinations before the constraint")
    expect(page.locator("#sweep-estimate")).to_contain_text("ns per combination per bar")

    # The count follows the table as the engine counts: `to` is included when a step reaches it.
    fast = param_row(page, 0)
    fast.get_by_label("Step").fill("10")
    expect(count).to_have_text("9 combinations before the constraint")
    fast.get_by_label("Step").fill("7")
    expect(count).to_have_text("Complete the parameter table to see the number of combinations.")
    page.get_by_role("button", name="Run sweep").click()
    expect(page.locator("#err-sweep-p1")).to_contain_text("never reaches 30")
    expect(fast.get_by_label("Step")).to_have_attribute("aria-invalid", "true")
    fast.get_by_label("Step").fill("5")

    # A parameter the rules never use: the API's 422 is shown on its row.
    page.get_by_role("button", name="Add parameter").click()
    extra = param_row(page, 2)
    extra.get_by_label("Parameter name").fill("level")
    extra.get_by_label("Values as").select_option("list")
    extra.get_by_label("Values, separated by commas").fill("1, 2")
    expect(count).to_have_text("30 combinations before the constraint")
    page.get_by_label("Fewest trades to rank").fill("1")
    page.get_by_role("button", name="Run sweep").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Queue this sweep")
    dialog.get_by_label("None", exact=True).check()
    dialog.get_by_role("button", name="Queue sweep").click()
    expect(page.locator("#err-sweep-p3")).to_contain_text("never used")
    page.screenshot(path=artifacts / "sweep-form-error.png", full_page=True)
    extra.get_by_role("button", name="Remove parameter").click()
    expect(count).to_have_text("15 combinations before the constraint")
    page.screenshot(path=artifacts / "sweep-form.png", full_page=True)

    page.get_by_role("button", name="Run sweep").click()
    expect(page.locator("#run-summary")).to_contain_text("15 combinations")
    dialog.get_by_label("None", exact=True).check()
    dialog.get_by_role("button", name="Queue sweep").click()
    expect(page).to_have_url(JOB_URL)
    sweep_url = page.url
    expect(page.locator("#job-place")).to_have_text("You are #1 in line")
    expect(page.locator("#heatmap .hm-cell.pending")).to_have_count(15)

    # One worker, a second per chunk of one combination: the cells arrive one after another.
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1")
    heatmap = page.locator("#heatmap")
    expect(heatmap).to_have_attribute("data-rows", re.compile(r"^([3-9]|1[0-2])$"), timeout=60_000)
    expect(page.locator("#heatmap-status")).to_contain_text("of 15 combinations computed")
    filling = int(heatmap.get_attribute("data-rows") or "0")
    assert 0 < filling < 15
    assert page.locator("#heatmap .hm-cell.pending").count() <= 15 - filling
    page.screenshot(path=artifacts / "sweep-filling.png", full_page=True)

    expect(page.locator("#job-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#heatmap .hm-cell.pending")).to_have_count(0)
    expect(page.locator("#heatmap .hm-cell.done")).to_have_count(15)
    expect(page.locator("#sweep-reading")).to_have_text(
        re.compile("likely overfit|looks robust|evidence is mixed")
    )
    top = page.locator("#sweep-top tbody tr")
    expect(top).to_have_count(15)
    expect(page.locator("#sweep-top thead")).to_contain_text("OOS Sharpe ratio")
    page.screenshot(path=artifacts / "sweep-result.png", full_page=True)
    assert_no_horizontal_scroll(page)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = artifacts / "sweep-grid.csv"
    download.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("index,fast,slow,is_totalReturn") and len(lines) == 16

    # The winner's cell (fast, slow of the first row of the best 20) opens its own backtest.
    best_fast, best_slow = (top.first.locator("td").nth(n).inner_text() for n in (1, 2))
    cell = page.get_by_role("button", name=re.compile(f"^fast {best_fast}, slow {best_slow}:"))
    cell.click()
    expect(page).not_to_have_url(sweep_url)
    expect(page).to_have_url(JOB_URL)
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#settings-list")).to_contain_text(
        f"crossover(sma(close, {best_fast}), sma(close, {best_slow}))"
    )
    expect(page.locator("#chart svg path.equity-line")).to_have_attribute("d", re.compile("^M"))
    page.screenshot(path=artifacts / "sweep-cell-backtest.png", full_page=True)

    # "Run again with changes" on the sweep brings back the sweep mode with its grid.
    page.goto(sweep_url)
    page.get_by_role("link", name="Run again with changes").click()
    expect(page.locator("#mode-sweep")).to_be_checked()
    expect(param_row(page, 1).get_by_label("Values, separated by commas")).to_have_value(
        "40, 60, 80"
    )
    expect(count).to_have_text("15 combinations before the constraint")
    assert page_problems.errors == [] and page_problems.dialogs == []


# Ranges where floating point decides whether `to` is reached, and ranges it never reaches.
RANGES = [
    (5, 50, 5),
    (0.1, 0.3, 0.05),
    (0.01, 0.05, 0.01),
    (0.001, 0.01, 0.001),
    (1, 2, 0.1),
    (0, 1, 1 / 3),
    (10, 30, 7),
    (0.1, 0.7, 0.2),
    (2, 2, 1),
    (1e-05, 0.0001, 1e-05),
    (1, 1000, 1),
    (1, 1001, 1),
]


def test_the_page_counts_the_values_of_a_range_as_the_engine_expands_them(page: Page) -> None:
    """grid.js is the browser's copy of engine/grid.py's expand: both count each range alike."""
    page.goto("/")
    counted = page.evaluate(
        """async (ranges) => {
            const { valueCount } = await import("/static/grid.js");
            return ranges.map(([from, to, step]) => valueCount({ from, to, step }));
        }""",
        RANGES,
    )
    for (start, stop, step), browser in zip(RANGES, counted, strict=True):
        try:
            expected = len(engine.grid.expand("p", start, stop, step))
        except engine.DataError:
            assert "error" in browser, f"{start}..{stop} step {step}: the engine refuses it"
        else:
            assert browser == {"count": expected}, f"{start}..{stop} step {step}"


def test_a_heatmap_cell_stands_for_the_other_parameters_at_their_best_or_averaged(
    page: Page,
) -> None:
    page.goto("/")
    rows = [
        {"index": 0, "values": {"a": 1, "b": 1, "c": 1}, "is": {"sharpe": 1, "trades": 5},
         "oos": {"sharpe": 0.5}},
        {"index": 1, "values": {"a": 1, "b": 1, "c": 2}, "is": {"sharpe": 3, "trades": 5},
         "oos": {"sharpe": -1}},
        # too few trades to be ranked (minTrades 1): computed, but no value
        {"index": 2, "values": {"a": 2, "b": 1, "c": 1}, "is": {"sharpe": 9, "trades": 0},
         "oos": {"sharpe": 1}},
    ]  # fmt: skip
    cells = page.evaluate(
        """async (rows) => {
            const { heatmapCells, cellKey } = await import("/static/grid.js");
            const pick = (mode) => {
                const cells = heatmapCells(rows, "a", "b", "sharpe", 1, mode);
                return [cellKey(1, 1), cellKey(2, 1)].map((key) => {
                    const c = cells.get(key);
                    return [c.row.index, c.value, c.oosMean];
                });
            };
            return { best: pick("best"), mean: pick("mean") };
        }""",
        rows,
    )
    assert cells["best"] == [[1, 3, -0.25], [2, None, None]]
    assert cells["mean"] == [[1, 2, -0.25], [2, None, None]]


def test_the_sweep_form_fits_a_375px_screen(
    browser: Browser, api: LiveServer, artifacts: Path
) -> None:
    context = browser.new_context(base_url=api.url, viewport={"width": 375, "height": 812})
    page = context.new_page()
    register(page)
    page.locator("#mode-sweep").check()
    expect(page.locator("#sweep-combinations")).to_have_text(
        "15 combinations before the constraint"
    )
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "mobile-sweep-form.png", full_page=True)
    context.close()
