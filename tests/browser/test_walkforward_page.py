"""A walk-forward through the web page in Debian's Chromium: the form's walk-forward mode, the
folds done rising while a real worker process runs them, then the verdict, the folds table held
to the API's result, the windows drawn behind the stitched curve, and the folds CSV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from algotcha import engine_requests
from engine import walkforward
from tests.browser.test_page import EN_DASH, JOB_URL, assert_no_horizontal_scroll, register
from tests.fixtures.app import LiveServer
from tests.fixtures.browser import PageProblems

pytestmark = pytest.mark.integration

# The page multiplies with a real times sign and writes ranges with an en dash.
TIMES = "\N{MULTIPLICATION SIGN}"
VERDICT = re.compile(r"^(Looks robust|Likely overfit|Mixed|Nothing to judge)")


def token_of(page: Page) -> str:
    saved = page.evaluate("JSON.parse(sessionStorage.getItem('algotcha.token')).token")
    assert isinstance(saved, str)
    return saved


def queue_walk_forward(page: Page, summary: str = "") -> None:
    """Presses Run, checks the dialog names a walk-forward (and its summary), queues it with
    no notification."""
    page.get_by_role("button", name="Run walk-forward").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Queue this walk-forward")
    expect(dialog.locator("#run-summary")).to_contain_text(summary)
    dialog.get_by_label("None", exact=True).check()
    dialog.get_by_role("button", name="Queue walk-forward").click()


def window_text(start: str, end: str) -> str:
    """The page's "2022-01-01 00:00" over "→ 2022-01-23 04:00" of two ISO times."""
    return f"{start[:16].replace('T', ' ')}\n→ {end[:16].replace('T', ' ')}"


def test_a_trader_runs_a_walk_forward_watches_its_folds_and_reads_the_verdict(
    page: Page, api: LiveServer, start_worker: Any, artifacts: Path, page_problems: PageProblems
) -> None:
    register(page)
    page.get_by_label("Strategy name").fill("SMA walk-forward")
    page.locator("#mode-walkforward").check()
    expect(page.get_by_label("Long entry")).to_have_value(
        "crossover(sma(close, fast), sma(close, slow))"
    )
    expect(page.get_by_label("Out-of-sample share")).to_be_hidden()
    count = page.locator("#sweep-combinations")
    expect(count).to_have_text(
        f"15 combinations {TIMES} 5 folds = 75 in-sample runs before the constraint"
    )
    # 60 days of 1-hour bars: 1,440 bars, cut as engine/walkforward.py cuts them.
    first = walkforward.windows(wf_request(5, 0.7), 1440)[0]
    expect(page.locator("#sweep-estimate")).to_contain_text(
        f"Each fold: {first.in_sample[1] - first.in_sample[0]:,} in-sample bars, then "
        f"{first.out_of_sample[1] - first.out_of_sample[0]:,} out-of-sample bars."
    )

    # The browser refuses what the API would: folds outside 2-20, a share outside 50-90 %.
    folds = page.get_by_label("Folds", exact=True)
    folds.fill("25")
    expect(count).to_contain_text("choose 2 to 20 folds")
    page.get_by_label("In-sample share").fill("95")
    page.get_by_role("button", name="Run walk-forward").click()
    expect(page.locator("#err-wf-folds")).to_have_text(
        "Enter a whole number of folds from 2 to 20."
    )
    expect(folds).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-wf-inSample")).to_contain_text("from 50 to 90 %")

    # Only the server knows the rules' look-back: 20 folds leave 49-bar windows for an 80-bar SMA.
    folds.fill("20")
    page.get_by_label("In-sample share").fill("90")
    page.get_by_label("Fewest trades to rank").fill("1")
    queue_walk_forward(page)
    expect(page.locator("#err-wf-folds")).to_contain_text("out-of-sample windows of 49 bars")
    expect(folds).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=artifacts / "walkforward-form-error.png", full_page=True)

    folds.fill("4")
    page.get_by_label("In-sample share").fill("70")
    expect(count).to_have_text(
        f"15 combinations {TIMES} 4 folds = 60 in-sample runs before the constraint"
    )
    page.screenshot(path=artifacts / "walkforward-form.png", full_page=True)
    queue_walk_forward(page, f"15 combinations {TIMES} 4 folds")
    expect(page).to_have_url(JOB_URL)
    wf_url = page.url
    match = JOB_URL.search(wf_url)
    assert match is not None
    job_id = int(match.group(1))
    expect(page.locator("#job-meta")).to_contain_text("Walk-forward of 4 folds")
    expect(page.locator("#job-folds-text")).to_have_text("4 folds to run")

    # One worker, a second per fold: the folds done rise one by one over the event stream.
    start_worker(DEBUG_BACKTEST_DELAY_SECONDS="1")
    strip = page.locator("#job-folds")
    expect(strip).to_have_attribute("data-done", re.compile("^[1-3]$"), timeout=60_000)
    expect(page.locator("#job-folds-text")).to_have_text(re.compile(r"^[1-3] of 4 folds done$"))
    page.screenshot(path=artifacts / "walkforward-running.png", full_page=True)

    expect(page.locator("#job-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#wf-reading")).to_have_text(VERDICT)
    job = httpx.get(
        f"{api.url}/api/backtest/queue/{job_id}",
        headers={"Authorization": f"Bearer {token_of(page)}"},
    ).json()
    result = job["result"]
    expect(page.locator("#wf-reading")).to_have_text(result["reading"])

    # The folds table says what the API's result says, fold by fold.
    rows = page.locator("#wf-folds tbody tr")
    expect(rows).to_have_count(4)
    for n, fold in enumerate(result["folds"]):
        cells = rows.nth(n).locator("td")
        assert cells.nth(0).inner_text() == str(fold["index"] + 1)
        assert cells.nth(1).inner_text() == window_text(fold["inSampleStart"], fold["inSampleEnd"])
        assert cells.nth(2).inner_text() == window_text(
            fold["outOfSampleStart"], fold["outOfSampleEnd"]
        )
        if fold["parameters"] is None:
            assert cells.nth(3).inner_text() == "no valid combination"
            assert cells.last.inner_text() == str(fold["outOfSample"]["trades"])
        else:
            shown = [cells.nth(3).inner_text(), cells.nth(4).inner_text()]
            assert shown == [str(fold["parameters"]["fast"]), str(fold["parameters"]["slow"])]
            assert cells.last.inner_text() == str(fold["outOfSample"]["trades"])
    profitable = round(result["profitableFolds"] * 4)
    expect(page.locator("#wf-figures")).to_contain_text(f"{profitable} of 4")

    # Behind the stitched curve: each out-of-sample window shaded where its fold's in-sample
    # window ends (rolling windows), and one lane per fold marking its in-sample window.
    bands = page.locator("#chart .oos-band rect")
    lanes = page.locator("#chart .is-window")
    expect(bands).to_have_count(4)
    expect(lanes).to_have_count(4)
    for n in range(4):
        band_x = float(bands.nth(n).get_attribute("x") or "nan")
        lane_x = float(lanes.nth(n).get_attribute("x") or "nan")
        lane_end = lane_x + float(lanes.nth(n).get_attribute("width") or "nan")
        assert abs(band_x - lane_end) < 0.01, (
            f"fold {n + 1}: in-sample ends where out-of-sample starts"
        )
    expect(page.locator("#chart svg path.equity-line")).to_have_attribute("d", re.compile("^M"))
    expect(page.locator("#chart-title")).to_have_text("Stitched out-of-sample equity")
    expect(page.locator("#chart svg.equity-chart")).to_have_attribute(
        "aria-label", re.compile("; 4 folds, each out-of-sample window shaded")
    )

    # The stitched trades in the trade table, as many as the stitched metrics count.
    trades = result["stitched"]["metrics"]["trades"]
    if trades:
        expect(page.locator("#trades-range")).to_have_text(
            f"1{EN_DASH}{min(trades, 50)} of {trades}"
        )
    page.screenshot(path=artifacts / "walkforward-result.png", full_page=True)
    assert_no_horizontal_scroll(page)
    page.set_viewport_size({"width": 375, "height": 812})
    # drawn again at the narrower width, with its bands and lanes
    expect(page.locator("#chart svg.equity-chart")).to_have_attribute(
        "width", re.compile(r"^[23]\d\d$")
    )
    expect(page.locator("#chart .oos-band rect")).to_have_count(4)
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "mobile-walkforward-result.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = artifacts / "walkforward-folds.csv"
    download.value.save_as(csv_path)
    assert len(csv_path.read_text().splitlines()) == 5

    # My backtests names the kind; "Run again with changes" restores the walk-forward mode.
    page.get_by_role("link", name="My backtests").click()
    expect(page.locator(f".job-row[data-id='{job_id}'] .job-sub")).to_contain_text(
        "Walk-forward of 4 folds"
    )
    page.goto(wf_url)
    page.get_by_role("link", name="Run again with changes").click()
    expect(page.locator("#mode-walkforward")).to_be_checked()
    expect(page.get_by_label("Folds", exact=True)).to_have_value("4")
    expect(count).to_have_text(
        f"15 combinations {TIMES} 4 folds = 60 in-sample runs before the constraint"
    )

    # Again, asking more trades than any window holds: every fold a "no valid combination" row,
    # its window shaded as one that stayed in cash, and nothing to judge.
    page.get_by_label("Fewest trades to rank").fill("1000")
    queue_walk_forward(page)
    expect(page).to_have_url(JOB_URL)
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#wf-reading")).to_have_text(re.compile("^Nothing to judge"))
    expect(page.locator("#wf-folds tbody tr.no-valid td.status")).to_have_count(4)
    expect(page.locator("#wf-folds tbody tr.no-valid td.status").first).to_have_text(
        "no valid combination"
    )
    expect(page.locator("#chart .oos-band.no-valid")).to_have_count(4)
    expect(page.locator("#wf-figures")).to_contain_text("Undefined: no fold chose a combination")
    page.screenshot(path=artifacts / "walkforward-no-valid.png", full_page=True)
    assert page_problems.errors == [] and page_problems.dialogs == []


def wf_request(folds: int, in_sample: float, anchored: bool = False) -> Any:
    """The engine's request of the page's default grid, cut in `folds`."""
    document = {
        "payload": {
            "strategyName": "SMA grid", "symbol": "SYNTH", "timeframe": "1h",
            "start": "2022-01-01T00:00:00Z", "end": "2022-03-02T00:00:00Z",
            "initialCapital": 10000,
            "longEntry": "crossover(sma(close, fast), sma(close, slow))",
        },
        "parameters": {"fast": {"from": 10, "to": 30, "step": 5}, "slow": [40, 60, 80]},
        "walkForward": {"folds": folds, "inSample": in_sample, "anchored": anchored},
    }  # fmt: skip
    return engine_requests.parse_walkforward(document)


@pytest.mark.parametrize("anchored", [False, True])
def test_the_page_cuts_folds_as_the_engine_cuts_them(page: Page, anchored: bool) -> None:
    """folds.js is the browser's copy of engine/walkforward.py's windows()."""
    cases = [
        (size, folds, share)
        for size in (100, 1_439, 1_440, 2_628_000)
        for folds in (2, 3, 7, 20)
        for share in (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)
    ]
    page.goto("/")
    cut = page.evaluate(
        """async ([cases, anchored]) => {
            const { windows } = await import("/static/folds.js");
            return cases.map(([size, folds, share]) =>
                windows(size, folds, share, anchored).map((f) => [f.inSample, f.outOfSample]));
        }""",
        [cases, anchored],
    )
    for (size, folds, share), browser in zip(cases, cut, strict=True):
        expected = [
            [list(f.in_sample), list(f.out_of_sample)]
            for f in walkforward.windows(wf_request(folds, share, anchored), size)
        ]
        assert browser == expected, f"{size} bars, {folds} folds, {share}"


def test_the_verdict_readings_use_the_engines_thresholds(page: Page) -> None:
    page.goto("/")
    thresholds = page.evaluate("async () => (await import('/static/walkforward.js')).THRESHOLDS")
    assert thresholds == {
        "robustEfficiency": walkforward.ROBUST_EFFICIENCY,
        "robustProfitable": walkforward.ROBUST_PROFITABLE,
        "robustStability": walkforward.ROBUST_STABILITY,
        "overfitEfficiency": walkforward.OVERFIT_EFFICIENCY,
        "overfitProfitable": walkforward.OVERFIT_PROFITABLE,
    }


def test_the_walk_forward_form_fits_a_375px_screen(
    browser: Browser, api: LiveServer, artifacts: Path
) -> None:
    context = browser.new_context(base_url=api.url, viewport={"width": 375, "height": 812})
    page = context.new_page()
    register(page)
    page.locator("#mode-walkforward").check()
    expect(page.locator("#sweep-combinations")).to_contain_text(f"{TIMES} 5 folds")
    assert_no_horizontal_scroll(page)
    page.screenshot(path=artifacts / "mobile-walkforward-form.png", full_page=True)
    context.close()
