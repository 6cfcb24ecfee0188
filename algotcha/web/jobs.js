// "My backtests": newest first, live while any is queued or running, older ones on demand.

import { ACTIVE, get, sleep } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { kindText } from "./job.js";
import { badge, failed, showView } from "./shell.js";

const LIST_PAGE = 20;
const COMPARE_MIN = 2;
const COMPARE_MAX = 6;

// Completed runs ticked for comparison, kept while the list refreshes.
const picked = new Set();

function updateCompareBar() {
  const n = picked.size;
  $("compare-go").disabled = n < COMPARE_MIN || n > COMPARE_MAX;
  $("compare-hint").textContent =
    n === 0
      ? `Tick ${COMPARE_MIN} to ${COMPARE_MAX} completed backtests to compare them.`
      : n > COMPARE_MAX
        ? `${n} selected: compare at most ${COMPARE_MAX}.`
        : `${n} selected${n < COMPARE_MIN ? `: tick at least ${COMPARE_MIN}` : ""}.`;
}

$("compare-go").addEventListener("click", () => {
  location.hash = `#/compare?ids=${[...picked].join(",")}`;
});

export async function showJobs(signal) {
  showView("jobs", "My backtests");
  const list = $("job-list");
  list.replaceChildren();
  show($("jobs-empty"), false);
  show($("jobs-more"), false);
  picked.clear();
  updateCompareBar();
  let items = [];
  const rows = new Map();

  const render = () => {
    const nodes = items.map((item) => {
      const row = rows.get(item.id) || jobRow(item);
      rows.set(item.id, row);
      updateRow(row, item);
      return row;
    });
    // Rows are reused, so a focused link keeps its focus across the live updates.
    if (nodes.some((node, i) => list.children[i] !== node) || list.children.length !== nodes.length) {
      list.replaceChildren(...nodes);
    }
    show($("jobs-empty"), items.length === 0);
  };

  const loadOlder = async () => {
    const before = items.length ? `&before=${items[items.length - 1].id}` : "";
    const batch = await get(`/api/backtest/queue/my?limit=${LIST_PAGE}${before}`, { signal });
    items = items.concat(batch);
    show($("jobs-more"), batch.length === LIST_PAGE);
    render();
  };
  $("jobs-more").onclick = () => loadOlder().catch(failed);

  try {
    await loadOlder();
    while (!signal.aborted) {
      const busy = items.some((item) => ACTIVE.has(item.status));
      await sleep(busy ? 2500 : 15000, signal);
      if (signal.aborted || document.visibilityState !== "visible") continue;
      const fresh = await get(
        `/api/backtest/queue/my?limit=${Math.min(100, Math.max(LIST_PAGE, items.length))}`,
        { signal },
      );
      const byId = new Map(fresh.map((item) => [item.id, item]));
      const newest = items.length ? items[0].id : 0;
      items = [
        ...fresh.filter((item) => item.id > newest),
        ...items.map((item) => byId.get(item.id) || item),
      ];
      render();
    }
  } catch (err) {
    failed(err);
  }
}

function jobRow(item) {
  const link = el("a", { class: "job-name", href: `#/jobs/${item.id}` });
  const pick = el("input", { type: "checkbox", class: "job-pick", "aria-label": `Compare #${item.id}` });
  pick.addEventListener("change", () => {
    if (pick.checked) picked.add(item.id);
    else picked.delete(item.id);
    updateCompareBar();
  });
  return el(
    "li",
    { class: "job-row", "data-id": item.id },
    el("div", { class: "job-pick-box" }, pick),
    el("div", { class: "job-main" }, link, el("p", { class: "job-sub" })),
    el("div", { class: "job-state" }),
  );
}

function updateRow(row, item) {
  const [pickBox, main, stateBox] = row.children;
  const pick = pickBox.firstChild;
  // sweeps and walk-forwards have no single equity curve to set beside another
  pick.disabled = item.status !== "completed" || (item.kind || "backtest") !== "backtest";
  pick.title = pick.disabled ? "Only completed backtests can be compared" : "Select to compare";
  pick.setAttribute("aria-label", `Compare ${item.strategyName} (#${item.id})`);
  main.firstChild.textContent = item.strategyName;
  main.lastChild.textContent = [
    `#${item.id}`,
    kindText(item),
    item.symbol,
    item.timeframe,
    fmt.ago(item.createdAt),
  ]
    .filter(Boolean)
    .join(" · ");
  const status = el("span", {}, "");
  badge(status, item.status);
  let detail = null;
  if (item.status === "queued") {
    detail = el("span", { class: "job-detail" }, `#${item.queuePosition} in line`);
  } else if (item.status === "processing") {
    detail = el(
      "span",
      { class: "job-detail" },
      el("progress", {
        max: 100,
        value: item.progress || 0,
        "aria-label": `Progress of ${item.strategyName}`,
      }),
      ` ${item.progress || 0} %`,
    );
  } else if (item.status === "completed") {
    detail = el("a", { class: "job-detail", href: `#/jobs/${item.id}` }, "View result");
  } else if (item.status === "failed") {
    detail = el("a", { class: "job-detail error-text", href: `#/jobs/${item.id}` }, "See why");
  }
  stateBox.replaceChildren(status, detail || "");
  row.className = `job-row ${item.status}`;
}
