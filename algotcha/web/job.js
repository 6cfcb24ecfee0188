// One backtest: its place in line or progress, live, then the result (metrics, chart, trades).
// A sweep shares the live status; sweep.js draws its heatmap, best 20 and verdict. A walk-forward
// shows its stitched out-of-sample backtest here; walkforward.js adds the folds and the verdict.

import { renderActions } from "./actions.js";
import { FINAL, follow, get, request } from "./api.js";
import { drawEquity } from "./chart.js";
import { keepDrawn } from "./plots.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import {
  RULES,
  badge,
  failed,
  flash,
  periodOf,
  refreshStats,
  setSegments,
  showView,
  state,
  toPercent,
} from "./shell.js";
import { renderTearsheet } from "./tearsheet.js";
import { OBJECTIVES } from "./grid.js";
import { startSweep } from "./sweep.js";
import { foldBackdrop, startWalkForward } from "./walkforward.js";

const OBJECTIVE_LABEL = Object.fromEntries(OBJECTIVES);

const TRADES_PER_PAGE = 50;
const RESULT_PARTS = ["job-live", "job-notice", "job-result", "job-details", "trades-card"];

function resetJobView(title) {
  showView("job", title);
  $("job-title").textContent = title;
  $("job-meta").textContent = "";
  $("job-status").textContent = "";
  $("job-status").className = "badge";
  const parts = ["tearsheet", "result-actions", "shared-note", "sweep-result", "wf-verdict", "wf-folds-card", "job-folds"];
  for (const part of [...RESULT_PARTS, ...parts]) show($(part), false);
}

export async function showJob(id, signal) {
  resetJobView(`Backtest #${id}`);
  try {
    let job = await get(`/api/backtest/queue/${id}`, { signal });
    renderJobHead(job);
    renderSettings(job);
    const starts = { sweep: startSweep, walkForward: startWalkForward };
    const kindView = starts[job.kind] ? starts[job.kind](job, signal) : null;
    if (!FINAL.has(job.status)) {
      renderLive(job);
      $("job-cancel").onclick = async () => {
        if (await cancelJob(id)) job = { ...job, cancelRequested: true };
      };
      await follow(
        id,
        (update) => {
          renderLive({ ...job, ...update });
          if (kindView) kindView.update(update);
          refreshStats();
        },
        signal,
      );
      if (signal.aborted) return;
      job = await get(`/api/backtest/queue/${id}`, { signal });
      renderJobHead(job);
      renderSettings(job);
    }
    renderFinal(job, signal);
    if (kindView) await kindView.finish(job);
  } catch (err) {
    if (signal.aborted) return;
    if (err.status === 404) notice(`There is no backtest #${id} in your account.`, "error");
    else failed(err);
  }
}

/** A result someone shared: read-only, opened without signing in. */
export async function showShared(token, signal) {
  resetJobView("Shared backtest");
  show($("shared-note"));
  try {
    const job = await get(`/api/shared/${encodeURIComponent(token)}`, { signal });
    renderJobHead(job);
    renderSettings(job, { shared: true });
    renderResult(job, signal, { shared: true, tradesPath: `/api/shared/${encodeURIComponent(token)}/trades` });
  } catch (err) {
    if (signal.aborted) return;
    show($("shared-note"), false);
    if (err.status === 404) notice("This link does not exist, was revoked, or has expired.", "error");
    else failed(err);
  }
}

const KIND_NAMES = { backtest: "backtest", sweep: "sweep", walkForward: "walk-forward" };
const kindOf = (job) => KIND_NAMES[job.kind] || "backtest";
// A sweep or walk-forward stores its SweepRequest: the backtest payload is inside it.
const payloadOf = (job) => (job.kind && job.kind !== "backtest" ? (job.payload || {}).payload : job.payload);

/** "Backtest", "Sweep of 15 combinations" or "Walk-forward of 5 folds × 15 combinations". */
export function kindText(job) {
  if (job.kind === "sweep") return `Sweep of ${fmt.count(job.combinations)} combinations`;
  if (job.kind === "walkForward") {
    const each = job.combinations ? ` × ${fmt.count(job.combinations)} combinations` : "";
    return `Walk-forward of ${fmt.count(job.folds)} folds${each}`;
  }
  return "Backtest";
}

function renderJobHead(job) {
  $("job-title").textContent = job.strategyName;
  document.title = `${job.strategyName} · Algotcha`;
  setSegments($("job-meta"), [
    job.id ? `#${job.id}` : null,
    kindText(job),
    job.symbol,
    job.timeframe,
    periodOf(payloadOf(job)),
  ]);
  badge($("job-status"), job.status);
}

function renderLive(job) {
  show($("job-live"));
  badge($("job-status"), job.status);
  const queued = job.status === "queued";
  const processing = job.status === "processing";
  if (queued) {
    $("job-place").textContent = `You are #${job.queuePosition} in line`;
    $("job-wait").textContent = job.estimatedWait
      ? `Expected to start in ${fmt.minutes(job.estimatedWait)}.`
      : job.queuePosition === 1
        ? "Next up: it starts as soon as a worker is free."
        : "Waiting for the backtests ahead of it.";
  } else if (processing) {
    $("job-place").textContent = `Running your ${kindOf(job)}`;
    $("job-wait").textContent = job.cancelRequested ? "Cancelling at the next step…" : "";
  }
  $("job-cancel").disabled = Boolean(job.cancelRequested);
  show($("job-progress-row"), processing);
  $("job-progress").value = job.progress || 0;
  $("job-progress-text").textContent = `${job.progress || 0} %`;
  $("job-progress").setAttribute("aria-valuetext", `${job.progress || 0} percent`);
  show($("job-cancel"), queued || processing);
  $("job-cancel").textContent = `Cancel ${kindOf(job)}`;
}

/** True when the cancel was accepted; the live status then shows it ending. */
async function cancelJob(id) {
  const button = $("job-cancel");
  button.disabled = true;
  try {
    const answer = await request("DELETE", `/api/backtest/queue/${id}`);
    if (answer.status === "processing") $("job-wait").textContent = "Cancelling at the next step…";
    return true;
  } catch (err) {
    if (err.status !== 409) flash(err.message, "error"); // 409: it finished meanwhile
    button.disabled = false;
    return false;
  }
}

function notice(text, kind) {
  const box = $("job-notice");
  box.textContent = text;
  box.className = `card notice ${kind}`;
  show(box);
}

function renderFinal(job, signal) {
  show($("job-live"), false);
  if (job.status === "failed")
    notice(`This ${kindOf(job)} failed: ${job.error || "no reason was recorded."}`, "error");
  else if (job.status === "cancelled") notice(`This ${kindOf(job)} was cancelled.`, "info");
  if (job.status !== "completed" || !job.result || job.kind === "sweep") return;
  const tradesPath = `/api/backtest/queue/${job.id}/trades`;
  if (job.kind === "walkForward")
    renderResult(job, signal, { shared: false, tradesPath, walkForward: job.result });
  else renderResult(job, signal, { shared: false, tradesPath });
}

export const METRICS = [
  ["totalReturn", "Total return", "percent"],
  ["cagr", "CAGR", "percent"],
  ["buyAndHoldReturn", "Buy and hold return", "percent"],
  ["maxDrawdown", "Max drawdown", "percent"],
  ["sharpe", "Sharpe ratio", "ratio"],
  ["sortino", "Sortino ratio", "ratio"],
  ["calmar", "Calmar ratio", "ratio"],
  ["winRate", "Win rate", "share"],
  ["profitFactor", "Profit factor", "ratio"],
  ["expectancy", "Average trade return", "percent"],
  ["trades", "Trades", "count"],
  ["exposure", "Time in market", "share"],
  ["finalEquity", "Final equity", "money"],
  ["feesPaid", "Fees paid", "money"],
];

export function metricText(value, kind) {
  if (kind === "percent") return fmt.percent(value, { signed: true });
  if (kind === "share") return fmt.percent(value);
  if (kind === "money") return fmt.money(value);
  if (kind === "count") return fmt.count(value);
  return fmt.ratio(value);
}

/** A backtest's result; for a walk-forward (its result), the stitched out-of-sample backtest over
 * the folds' windows, without download or share (those routes are a backtest's). */
function renderResult(job, signal, { shared, tradesPath, walkForward = null }) {
  const { metrics, trades, equityCurve, tradeCount, tearsheet } = walkForward ? walkForward.stitched : job.result;
  renderKpis(metrics);
  renderMetrics(metrics);
  show($("job-result"));
  show($("metrics-card"));
  $("job-details").classList.remove("single");
  show($("trades-card"));
  const initial = (payloadOf(job) || {}).initialCapital || (equityCurve[0] && equityCurve[0].equity);
  for (const key of document.querySelectorAll(".wf-key")) show(key, Boolean(walkForward));
  $("chart-title").textContent = walkForward ? "Stitched out-of-sample equity" : "Equity";
  const options = walkForward ? foldBackdrop(walkForward.folds) : {};
  renderChart(equityCurve, initial || 0, signal, options);
  renderTrades(trades, tradeCount ?? trades.length, tradesPath, signal);
  renderTearsheet(tearsheet, signal);
  if (walkForward) show($("result-actions"), false);
  else renderActions(job.id, shared);
}

function renderKpis(metrics) {
  const m = (key) => metrics[key];
  const kpi = (label, value, toneOf, sub) =>
    el(
      "div",
      { class: "kpi" },
      el("p", { class: "kpi-label" }, label),
      el("p", { class: `kpi-value ${toneOf}` }, value),
      sub ? el("p", { class: "kpi-sub" }, sub) : null,
    );
  $("kpis").replaceChildren(
    kpi(
      "Total return",
      fmt.percent(m("totalReturn"), { signed: true }),
      fmt.tone(m("totalReturn")),
      `Buy & hold ${fmt.percent(m("buyAndHoldReturn"), { signed: true })}`,
    ),
    kpi(
      "Max drawdown",
      fmt.percent(m("maxDrawdown")),
      m("maxDrawdown") ? "down" : "",
      `Calmar ${fmt.ratio(m("calmar"))}`,
    ),
    kpi("Sharpe", fmt.ratio(m("sharpe")), "", `Sortino ${fmt.ratio(m("sortino"))}`),
    kpi("Win rate", fmt.percent(m("winRate")), "", `Profit factor ${fmt.ratio(m("profitFactor"))}`),
    kpi("Trades", fmt.count(m("trades")), "", `In market ${fmt.percent(m("exposure"), { digits: 1 })}`),
    kpi(
      "Final equity",
      fmt.money(m("finalEquity")),
      fmt.tone(m("totalReturn")),
      `CAGR ${fmt.percent(m("cagr"), { signed: true })}`,
    ),
  );
}

function renderMetrics(metrics) {
  const known = new Set(METRICS.map(([key]) => key));
  const rows = [
    ...METRICS.filter(([key]) => key in metrics),
    ...Object.keys(metrics)
      .filter((key) => !known.has(key))
      .map((key) => [key, key, "ratio"]),
  ];
  $("metrics-table").tBodies[0].replaceChildren(
    ...rows.map(([key, label, kind]) => {
      const tone = kind === "percent" || key === "maxDrawdown" ? fmt.tone(metrics[key]) : "";
      return el(
        "tr",
        {},
        el("th", { scope: "row" }, label),
        el("td", { class: `num ${tone}` }, metricText(metrics[key], kind)),
      );
    }),
  );
}

/** The chart is drawn at the container's width, so it is drawn again when the window resizes. */
function renderChart(equityCurve, initial, signal, options) {
  keepDrawn($("chart"), () => drawEquity($("chart"), equityCurve, initial, options), signal);
}

/**
 * The trades table, 50 to a page: the job document carries the first page of trades, the
 * rest is read from `tradesPath` (?after=&limit=) when a page needs it.
 */
function renderTrades(firstPage, total, tradesPath, signal) {
  let pageIndex = 0;
  const pages = Math.max(1, Math.ceil(total / TRADES_PER_PAGE));
  const slice = async (from) => {
    if (from + TRADES_PER_PAGE <= firstPage.length || firstPage.length >= total)
      return firstPage.slice(from, from + TRADES_PER_PAGE);
    const page = await get(`${tradesPath}?after=${from}&limit=${TRADES_PER_PAGE}`, { signal });
    return page.trades;
  };
  const render = async () => {
    const from = pageIndex * TRADES_PER_PAGE;
    let rows;
    try {
      rows = await slice(from);
    } catch (err) {
      failed(err);
      return;
    }
    $("trades-table").tBodies[0].replaceChildren(
      ...rows.map((t, i) =>
        el(
          "tr",
          {},
          el("td", { class: "num muted" }, String(from + i + 1)),
          el("td", {}, el("span", { class: `side ${t.side}` }, t.side)),
          el("td", { class: "time" }, fmt.dateTime(t.entryTime)),
          el("td", { class: "num" }, fmt.price(t.entryPrice)),
          el("td", { class: "time" }, fmt.dateTime(t.exitTime)),
          el("td", { class: "num" }, fmt.price(t.exitPrice)),
          el("td", { class: "num" }, fmt.quantity(t.quantity)),
          el("td", { class: `num ${fmt.tone(t.pnl)}` }, fmt.money(t.pnl, { signed: true })),
          el("td", { class: `num ${fmt.tone(t.returnPct)}` }, fmt.percent(t.returnPct, { signed: true })),
          el("td", { class: "reason" }, String(t.exitReason).replaceAll("_", " ")),
        ),
      ),
    );
    if (!total) {
      $("trades-table").tBodies[0].append(
        el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No trades: the rules never fired.")),
      );
    }
    $("trades-range").textContent = total
      ? `${fmt.count(from + 1)}–${fmt.count(from + rows.length)} of ${fmt.count(total)}`
      : "";
    $("trades-page").textContent = `Page ${pageIndex + 1} of ${fmt.count(pages)}`;
    $("trades-prev").disabled = pageIndex === 0;
    $("trades-next").disabled = pageIndex >= pages - 1;
  };
  $("trades-prev").onclick = () => {
    pageIndex -= 1;
    render();
  };
  $("trades-next").onclick = () => {
    pageIndex += 1;
    render();
  };
  show($("trades-pager"), pages > 1);
  render();
}

/** The run's settings (its stored payload), shown while it waits and beside the result. */
function renderSettings(job, { shared = false } = {}) {
  const payload = payloadOf(job) || {};
  const sweep = job.kind === "sweep" || job.kind === "walkForward" ? job.payload || {} : null;
  const pct = (v) => (v === null || v === undefined ? "none" : `${toPercent(v)} %`);
  const items = [
    ["Dataset", `${payload.symbol || job.symbol} · ${payload.timeframe || job.timeframe}`],
    ["Period", periodOf(payload)],
    ["Initial capital", fmt.money(payload.initialCapital)],
    ["Position size", pct(payload.positionSize)],
    ["Fee / slippage", `${pct(payload.feeRate)} / ${pct(payload.slippage)} per side`],
    ["Stop loss / take profit", `${pct(payload.stopLoss)} / ${pct(payload.takeProfit)}`],
    ["Trailing stop", pct(payload.trailingStop)],
    ...(sweep ? sweepSettings(sweep) : []),
    ...RULES.filter((rule) => payload[rule]).map((rule) => [
      $(`f-${rule}`).labels[0].firstChild.textContent.trim(),
      payload[rule],
      "code",
    ]),
    job.createdAt ? ["Submitted", `${fmt.dateTime(job.createdAt)} UTC`] : null,
    job.completedAt ? ["Finished", `${fmt.dateTime(job.completedAt)} UTC`] : null,
    job.result && !sweep
      ? ["Bars", `${fmt.count(job.result.bars)} · computed in ${fmt.count(job.result.elapsedMs)} ms`]
      : null,
    job.result && sweep ? ["Engine time", `${fmt.count(job.result.elapsedMs)} ms over every ${sweep.walkForward ? "fold" : "chunk"}`] : null,
  ].filter(Boolean);
  $("settings-list").replaceChildren(
    ...items.flatMap(([term, value, kind]) => [
      el("dt", {}, term),
      el("dd", {}, kind === "code" ? el("code", {}, value) : value),
    ]),
  );
  $("job-rerun").onclick = () => {
    state.rerun = sweep ? { sweep } : payload;
  };
  show($("job-rerun"), Boolean(job.payload) && !shared);
  show($("metrics-card"), false);
  $("job-details").classList.add("single");
  show($("job-details"));
}

/** A sweep's parameters and ranking, in the words of the form. */
function sweepSettings(sweep) {
  const values = (spec) =>
    Array.isArray(spec) ? spec.join(", ") : `${spec.from} to ${spec.to} step ${spec.step}`;
  return [
    ...Object.entries(sweep.parameters || {}).map(([name, spec]) => [`Parameter ${name}`, values(spec), "code"]),
    sweep.constraint ? ["Constraint", sweep.constraint, "code"] : null,
    [
      "Objective",
      `${OBJECTIVE_LABEL[sweep.objective || "sharpe"]}, ranked from ${sweep.minTrades ?? 10} in-sample trades`,
    ],
    ...(sweep.walkForward
      ? [
          ["Folds", `${sweep.walkForward.folds}, ${sweep.walkForward.anchored ? "anchored at the first bar" : "rolling"}`],
          ["In-sample share", `${toPercent(sweep.walkForward.inSample)} % of each window`],
        ]
      : [["Held out", fmt.percent(sweep.outOfSample ?? 0.3, { digits: 0 })]]),
  ].filter(Boolean);
}
