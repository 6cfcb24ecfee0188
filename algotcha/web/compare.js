// Runs side by side: one equity chart (rebased to 1.0), metrics with the best marked, settings.

import { get } from "./api.js";
import { $, el } from "./format.js";
import { drawLines, keepDrawn } from "./plots.js";
import { METRICS, metricText } from "./job.js";
import { failed, showView } from "./shell.js";

const LABELS = new Map(METRICS.map(([key, label, kind]) => [key, [label, kind]]));

// The form's own words for the payload fields (RunBacktestDto, API.md order).
const SETTING_LABELS = {
  strategyName: "Strategy name",
  symbol: "Dataset",
  timeframe: "Timeframe",
  start: "From",
  end: "To",
  initialCapital: "Initial capital",
  feeRate: "Fee per side",
  slippage: "Slippage per side",
  positionSize: "Position size",
  longEntry: "Long entry",
  longExit: "Long exit",
  shortEntry: "Short entry",
  shortExit: "Short exit",
  stopLoss: "Stop loss",
  takeProfit: "Take profit",
  trailingStop: "Trailing stop",
};

function settingText(value) {
  return value === null || value === undefined ? "none" : String(value);
}

export async function showCompare(ids, signal) {
  showView("compare", "Compare backtests");
  for (const id of ["compare-chart", "compare-legend", "compare-metrics", "compare-settings"]) $(id).replaceChildren();
  try {
    const body = await get(`/api/backtest/compare?ids=${ids.join(",")}`, { signal });
    renderCompare(body, signal);
  } catch (err) {
    failed(err);
  }
}

function runHeader(run, i) {
  return el(
    "th",
    { scope: "col", class: `num run-head series-${i}` },
    el("a", { href: `#/jobs/${run.id}` }, run.strategyName),
    el("span", { class: "run-sub" }, `#${run.id} · ${run.symbol} ${run.timeframe}`),
  );
}

function renderCompare(body, signal) {
  const { runs, metrics, settings, equity } = body;
  $("compare-legend").replaceChildren(
    ...runs.map((run, i) =>
      el("span", {}, el("span", { class: `key key-line series-${i}` }), `${run.strategyName} (#${run.id})`),
    ),
  );
  const chart = {
    times: equity.t,
    series: equity.series.map((values, i) => ({
      values,
      cls: `series-${i}`,
      label: `${runs[i].strategyName} (#${runs[i].id})`,
    })),
    format: (v) => v.toFixed(2),
    reference: 1,
    label: `Equity of ${runs.length} backtests, each divided by its initial capital`,
    height: 320,
  };
  keepDrawn($("compare-chart"), () => drawLines($("compare-chart"), chart), signal);
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""), ...runs.map(runHeader)));
  $("compare-metrics").replaceChildren(
    head,
    el(
      "tbody",
      {},
      ...metrics.map((row) => {
        const [label, kind] = LABELS.get(row.key) || [row.key, "ratio"];
        return el(
          "tr",
          {},
          el("th", { scope: "row" }, label),
          ...row.values.map((value, i) =>
            el(
              "td",
              { class: i === row.best ? "num best" : "num", title: i === row.best ? "best of this row" : null },
              i === row.best ? "★ " : "",
              metricText(value, kind),
            ),
          ),
        );
      }),
    ),
  );
  $("compare-settings").replaceChildren(
    head.cloneNode(true),
    el(
      "tbody",
      {},
      ...settings.map((row) =>
        el(
          "tr",
          { class: row.differs ? "differs" : "" },
          el(
            "th",
            { scope: "row" },
            SETTING_LABELS[row.key] || row.key,
            row.differs ? el("span", { class: "sr-only" }, " (differs)") : null,
          ),
          ...row.values.map((value) => el("td", { class: "num setting" }, settingText(value))),
        ),
      ),
    ),
  );
}
