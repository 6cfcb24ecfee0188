// "My backtests": newest first, live while any is queued or running, older ones on demand.

import { ACTIVE, get, sleep } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { badge, failed, showView } from "./shell.js";

const LIST_PAGE = 20;

export async function showJobs(signal) {
  showView("jobs", "My backtests");
  const list = $("job-list");
  list.replaceChildren();
  show($("jobs-empty"), false);
  show($("jobs-more"), false);
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
  return el(
    "li",
    { class: "job-row", "data-id": item.id },
    el("div", { class: "job-main" }, link, el("p", { class: "job-sub" })),
    el("div", { class: "job-state" }),
  );
}

function updateRow(row, item) {
  const [main, stateBox] = row.children;
  main.firstChild.textContent = item.strategyName;
  main.lastChild.textContent = [`#${item.id}`, item.symbol, item.timeframe, fmt.ago(item.createdAt)]
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
