// The tearsheet of a result: monthly returns, worst drawdowns, rolling Sharpe, trade returns.

import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { drawBars, drawLines, keepDrawn } from "./plots.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Renders `sheet` (result.tearsheet); hides the section for results stored without one. */
export function renderTearsheet(sheet, signal) {
  show($("tearsheet"), Boolean(sheet && sheet.monthlyReturns));
  if (!sheet || !sheet.monthlyReturns) return;
  renderMonthly(sheet.monthlyReturns);
  renderDrawdowns(sheet.drawdowns);
  renderTradeStats(sheet);
  const rolling = sheet.rollingSharpe || [];
  const sharpe = {
    times: rolling.map((p) => p.t),
    series: [{ values: rolling.map((p) => p.sharpe), cls: "series-0", label: "Rolling 30-day Sharpe" }],
    format: (v) => fmt.ratio(v),
    reference: 0,
    label: "Rolling 30-day Sharpe ratio over time",
  };
  keepDrawn($("sharpe-chart"), () => drawLines($("sharpe-chart"), sharpe), signal);
  const hist = sheet.tradeReturns || { edges: [], counts: [] };
  const bars = {
    edges: hist.edges,
    counts: hist.counts,
    format: (v) => fmt.percent(v, { digits: 1 }),
    label: "Distribution of trade returns",
  };
  keepDrawn($("returns-chart"), () => drawBars($("returns-chart"), bars), signal);
}

function cell(value, tag = "td") {
  return el(tag, { class: `num ${fmt.tone(value)}` }, value === null ? "" : fmt.percent(value, { signed: true, digits: 1 }));
}

function renderMonthly(rows) {
  const head = el(
    "thead",
    {},
    el("tr", {}, el("th", { scope: "col" }, "Year"), ...MONTHS.map((m) => el("th", { scope: "col", class: "num" }, m)), el("th", { scope: "col", class: "num" }, "Total")),
  );
  const body = el(
    "tbody",
    {},
    ...rows.map((row) =>
      el("tr", {}, el("th", { scope: "row" }, String(row.year)), ...row.months.map((v) => cell(v)), cell(row.total, "td")),
    ),
  );
  $("monthly-table").replaceChildren(head, body);
}

function renderDrawdowns(periods) {
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      ...["Depth", "Start", "Trough", "Recovered", "Days"].map((text, i) =>
        el("th", { scope: "col", class: i === 0 || i === 4 ? "num" : "" }, text),
      ),
    ),
  );
  const rows = periods.length
    ? periods.map((p) =>
        el(
          "tr",
          {},
          el("td", { class: "num down" }, fmt.percent(p.depth)),
          el("td", {}, fmt.date(p.start)),
          el("td", {}, fmt.date(p.trough)),
          el("td", { class: p.recovery ? "" : "muted" }, p.recovery ? fmt.date(p.recovery) : "not recovered"),
          el("td", { class: "num" }, fmt.count(p.days)),
        ),
      )
    : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Equity never closed a day below its peak."))];
  $("drawdowns-table").replaceChildren(head, el("tbody", {}, ...rows));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 3600) return `${fmt.count(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function renderTradeStats(sheet) {
  const items = [
    ["Longest winning streak", `${fmt.count(sheet.longestWinningStreak)} trades`],
    ["Longest losing streak", `${fmt.count(sheet.longestLosingStreak)} trades`],
    ["Average trade duration", duration(sheet.averageTradeDurationS)],
  ];
  $("trade-stats").replaceChildren(...items.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}
