// One walk-forward's page: progress by folds while it runs (re-read as the event stream reports
// progress), then the verdict, the folds table and its CSV, and the windows behind the stitched
// out-of-sample equity curve (job.js draws the curve, the metrics and the trades).

import { download, get } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show, svg } from "./format.js";
import { OBJECTIVES, objectiveFormat } from "./grid.js";
import { flash } from "./shell.js";

const OBJECTIVE_LABEL = Object.fromEntries(OBJECTIVES);
// engine/walkforward.py: robust needs all three of the first row, likely overfit any one of the
// second (docs/api.md "What a walk-forward computes").
export const THRESHOLDS = {
  robustEfficiency: 0.5,
  robustProfitable: 0.6,
  robustStability: 0.7,
  overfitEfficiency: 0.25,
  overfitProfitable: 0.4,
};
// Progress events come every percent; foldsDone changes only when a fold finishes.
const READ_EVERY_MS = 2000;
const NO_VALID = "no valid combination";

/**
 * Starts the walk-forward view of `job` (its stored request in job.payload); returns
 * {update(state), finish(job)} for the live status to call.
 */
export function startWalkForward(job, signal) {
  const view = { job, readAt: 0, timer: 0, reading: false };
  for (const id of ["wf-verdict", "wf-folds-card"]) show($(id), false);
  renderFolds(job);
  const read = async () => {
    if (view.reading || signal.aborted) return;
    view.reading = true;
    view.readAt = Date.now();
    try {
      renderFolds(await get(`/api/backtest/queue/${job.id}`, { signal }));
    } catch {
      // the next progress event reads again; the final state is read by job.js anyway
    } finally {
      view.reading = false;
    }
  };
  return {
    update: (state) => {
      if (state.status !== "processing" || view.timer) return;
      const due = view.readAt + READ_EVERY_MS - Date.now();
      view.timer = setTimeout(() => {
        view.timer = 0;
        read();
      }, Math.max(0, due));
    },
    finish: (final) => {
      clearTimeout(view.timer);
      view.timer = 0;
      show($("job-folds"), false);
      if (final.status === "completed" && final.result) renderDone(final);
    },
  };
}

/** "2 of 5 folds done" and a box per fold, while it waits or runs. */
function renderFolds(job) {
  const total = job.folds || (job.payload && job.payload.walkForward ? job.payload.walkForward.folds : 0);
  const done = job.foldsDone || 0;
  show($("job-folds"), Boolean(total) && (job.status === "queued" || job.status === "processing"));
  if (!total) return;
  $("job-folds-text").textContent =
    job.status === "queued" ? `${total} folds to run` : `${fmt.count(done)} of ${fmt.count(total)} folds done`;
  $("job-fold-boxes").replaceChildren(
    ...Array.from({ length: total }, (_, i) => el("li", { class: i < done ? "done" : "" })),
  );
  $("job-folds").dataset.done = String(done);
}

function renderDone(job) {
  const request = job.payload || {};
  renderVerdict(job.result, request, job.combinations);
  renderTable(job.result, request);
  $("wf-download").onclick = () =>
    download(`/api/backtest/queue/${job.id}/folds.csv`, `walkforward-${job.id}-folds.csv`).catch((err) =>
      flash(err.message, "error"),
    );
  show($("wf-folds-card"));
}

/** A plain reading of each figure against the verdict's thresholds. */
export function figureReadings(result) {
  if (!(result.folds || []).some((f) => f.parameters)) {
    const none = "Undefined: no fold chose a combination, so every window stayed in cash.";
    return { efficiency: none, profitable: "No fold traded: there is nothing to judge.", stability: none };
  }
  const t = THRESHOLDS;
  const e = result.efficiency;
  const p = result.profitableFolds;
  const s = result.parameterStability;
  return {
    efficiency:
      e === null || e === undefined
        ? "Undefined: the chosen combinations did not make money in-sample, so there is nothing to keep."
        : e >= t.robustEfficiency
          ? "Out-of-sample kept at least half of what the chosen combinations earned in-sample: robust."
          : e < t.overfitEfficiency
            ? "Out-of-sample kept under a quarter of the in-sample return: a sign of overfitting."
            : "Out-of-sample kept between a quarter and half of the in-sample return: mixed.",
    profitable:
      p >= t.robustProfitable
        ? "Most windows the choice never saw made money: robust."
        : p < t.overfitProfitable
          ? "Fewer than 40 % of the unseen windows made money: a sign of overfitting."
          : "About half of the unseen windows made money: mixed.",
    stability:
      s === null || s === undefined
        ? "Undefined: fewer than two folds chose a combination."
        : s >= t.robustStability
          ? "The chosen values stay close from fold to fold: the optimum is steady."
          : "The chosen values jump across their ranges from fold to fold: the optimum is not steady.",
  };
}

function renderVerdict(result, request, combinations) {
  const folds = result.folds || [];
  const chose = folds.filter((f) => f.parameters).length;
  const objective = request.objective || "sharpe";
  $("wf-reading").textContent = result.reading || "";
  $("wf-counts").textContent = [
    `${folds.length} folds`,
    `${chose} chose a combination`,
    combinations ? `${fmt.count(combinations)} combinations each` : "",
    `ranked by ${OBJECTIVE_LABEL[objective] || objective}`,
  ]
    .filter(Boolean)
    .join(" · ");
  const readings = figureReadings(result);
  const profitable = Math.round((result.profitableFolds || 0) * folds.length);
  const items = [
    [
      "Walk-forward efficiency",
      result.efficiency === null || result.efficiency === undefined
        ? "undefined"
        : fmt.percent(result.efficiency, { digits: 0 }),
      `${readings.efficiency} The stitched annualised return ÷ the mean annualised in-sample return of the chosen combinations; 50 % or more is robust, under 25 % likely overfit.`,
    ],
    [
      "Profitable folds",
      `${profitable} of ${folds.length} (${fmt.percent(result.profitableFolds, { digits: 0 })})`,
      `${readings.profitable} 60 % or more is robust, under 40 % likely overfit.`,
    ],
    [
      "Parameter stability",
      result.parameterStability === null || result.parameterStability === undefined
        ? "undefined"
        : fmt.ratio(result.parameterStability),
      `${readings.stability} 1 is the same values every fold, 0 from one end of every range to the other; 0.70 or more is robust.`,
    ],
  ];
  $("wf-figures").replaceChildren(
    ...items.flatMap(([term, value, why]) => [
      el("dt", {}, term),
      el("dd", {}, el("strong", {}, value), " ", el("span", { class: "muted" }, why)),
    ]),
  );
  show($("wf-verdict"));
}

const windowText = (start, end) => `${fmt.dateTime(start)} → ${fmt.dateTime(end)}`;
// start over end: two dates side by side would push the out-of-sample columns off the card
const windowCell = (start, end) =>
  el("td", { class: "time window" }, el("span", {}, fmt.dateTime(start)), el("span", {}, `→ ${fmt.dateTime(end)}`));

function renderTable(result, request) {
  const folds = result.folds || [];
  const names = Object.keys(request.parameters || {});
  const objective = request.objective || "sharpe";
  const label = OBJECTIVE_LABEL[objective] || objective;
  const format = objectiveFormat(objective);
  // Each measure in-sample (where the combination was chosen) beside out-of-sample (after it).
  const measures = [
    [label, (summary, score) => format(score), () => "strong"],
    ["Return", (summary) => fmt.percent(summary.totalReturn, { signed: true }), (summary) => fmt.tone(summary.totalReturn)],
    ["Trades", (summary) => fmt.count(summary.trades), () => ""],
  ];
  const th = (text, attrs = {}) => el("th", { scope: "col", class: "num", ...attrs }, text);
  $("wf-folds").tHead.replaceChildren(
    el(
      "tr",
      {},
      th("Fold", { rowspan: 2 }),
      th("In-sample (UTC)", { rowspan: 2, class: "" }),
      th("Out-of-sample (UTC)", { rowspan: 2, class: "" }),
      ...names.map((n) => th(n, { rowspan: 2 })),
      ...measures.map(([name]) => th(name, { colspan: 2, scope: "colgroup", class: "group" })),
    ),
    el("tr", {}, ...measures.flatMap(() => [th("IS"), th("OOS")])),
  );
  $("wf-folds").tBodies[0].replaceChildren(
    ...folds.map((fold) => {
      const chosen = Boolean(fold.parameters);
      const num = (text, tone = "") => el("td", { class: `num ${tone}` }, text);
      const sides = [
        [fold.inSample, fold.inSampleObjective],
        [fold.outOfSample, fold.outOfSampleObjective],
      ];
      const pair = ([, value, tone]) =>
        sides.map(([summary, score]) => (summary ? num(value(summary, score), tone(summary)) : num("—")));
      return el(
        "tr",
        { "data-fold": fold.index, class: chosen ? "" : "no-valid" },
        num(String(fold.index + 1)),
        windowCell(fold.inSampleStart, fold.inSampleEnd),
        windowCell(fold.outOfSampleStart, fold.outOfSampleEnd),
        chosen
          ? names.map((n) => num(String(fold.parameters[n])))
          : el("td", { colspan: names.length, class: "status" }, NO_VALID),
        ...measures.flatMap(pair),
      );
    }),
  );
  const idle = folds.length - folds.filter((f) => f.parameters).length;
  $("wf-folds-note").textContent = idle
    ? `${idle} ${idle === 1 ? "fold" : "folds"} with ${NO_VALID}: no combination reached ${request.minTrades ?? 10} in-sample trades, so ${idle === 1 ? "it" : "they"} stayed in cash`
    : `Each fold's best in-sample combination by ${label}, run on the window after it`;
}

/**
 * drawEquity's options for the stitched curve: the time axis from the first in-sample bar, each
 * fold's out-of-sample window shaded and numbered, and under the axis one lane per fold with its
 * in-sample window (outlined) and out-of-sample window (filled).
 */
export function foldBackdrop(folds) {
  const windows = folds.map((f) => ({
    index: f.index,
    chosen: Boolean(f.parameters),
    is: [Date.parse(f.inSampleStart), Date.parse(f.inSampleEnd)],
    oos: [Date.parse(f.outOfSampleStart), Date.parse(f.outOfSampleEnd)],
  }));
  const lane = folds.length > 8 ? 6 : 10;
  const gap = 3;
  return {
    caption: `; ${windows.length} folds, each out-of-sample window shaded, each in-sample window on its lane below`,
    span: [Math.min(...windows.map((w) => w.is[0])), Math.max(...windows.map((w) => w.oos[1]))],
    backdropHeight: windows.length * (lane + gap) + 8,
    backdrop: ({ x, top, plotH, left, right, below }) => {
      const wide = (a, b) => Math.max(1, x(b) - x(a));
      const bands = windows.map((w) =>
        svg(
          "g",
          { class: `oos-band ${w.index % 2 ? "odd" : "even"}${w.chosen ? "" : " no-valid"}` },
          svg("rect", { x: x(w.oos[0]), y: top, width: wide(...w.oos), height: plotH }),
          wide(...w.oos) >= 22
            ? svg("text", { x: x(w.oos[0]) + 4, y: top + 12 }, `F${w.index + 1}`)
            : null,
          svg("title", {}, `Fold ${w.index + 1} out-of-sample: ${windowText(...w.oos.map(iso))}${w.chosen ? "" : `, ${NO_VALID}: in cash`}`),
        ),
      );
      const lanes = windows.map((w, i) => {
        const y = below + 2 + i * (lane + gap);
        return svg(
          "g",
          { class: "fold-lane" },
          svg("line", { class: "lane-rule", x1: left, x2: right, y1: y + lane / 2, y2: y + lane / 2 }),
          svg(
            "rect",
            { class: "is-window", x: x(w.is[0]), y, width: wide(...w.is), height: lane },
            svg("title", {}, `Fold ${w.index + 1} in-sample: ${windowText(...w.is.map(iso))}`),
          ),
          svg("rect", { class: "oos-window", x: x(w.oos[0]), y, width: wide(...w.oos), height: lane }),
          // narrow lanes: every other label, so they do not overlap
          lane >= 10 || i % 2 === 0
            ? svg("text", { class: "lane-label", x: left - 8, y: y + lane / 2, dy: "0.32em", "text-anchor": "end" },
                `F${w.index + 1}`)
            : null,
        );
      });
      return [...bands, ...lanes];
    },
  };
}

const iso = (t) => new Date(t).toISOString();
