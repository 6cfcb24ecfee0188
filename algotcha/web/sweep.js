// One sweep's page: the heatmap filling in from the rows of finished chunks as the event stream
// reports progress, then the best 20, the overfitting verdict and the grid as CSV.

import { ApiError, request, session } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { OBJECTIVES, axisValues, heatmapCells, objectiveFormat, parseGrid } from "./grid.js";
import { drawHeatmap, drawScale } from "./heatmap.js";
import { failed, flash } from "./shell.js";

const OBJECTIVE_LABEL = Object.fromEntries(OBJECTIVES);
// Progress events come every percent, but rows only change when a chunk (1/16 of the sweep or
// more) finishes: the partial grid is read at most this often while the sweep runs.
const PARTIAL_EVERY_MS = 2000;
const SUMMARY_COLUMNS = [
  ["totalReturn", "Return", (v) => fmt.percent(v, { signed: true })],
  ["sharpe", "Sharpe", fmt.ratio],
  ["trades", "Trades", fmt.count],
];

/**
 * Starts the sweep view of `job` (its stored SweepRequest in job.payload); returns
 * {update(progress), finish(job)} for the live status to call.
 */
export function startSweep(job, signal) {
  const sweep = job.payload || {};
  const names = Object.keys(sweep.parameters || {});
  const objective = sweep.objective || "sharpe";
  const minTrades = sweep.minTrades ?? 10;
  const view = { job, rows: [], loading: null, again: false, done: false, readAt: 0, timer: 0 };

  $("heatmap-title").textContent = `Heatmap of the in-sample ${OBJECTIVE_LABEL[objective] || objective}`;
  fillAxes(names);
  $("heatmap-metric").replaceChildren(
    el("option", { value: "is" }, "In-sample objective"),
    el("option", { value: "oos" }, "Out-of-sample objective"),
  );
  $("heatmap-others").replaceChildren(
    el("option", { value: "best" }, "At their best"),
    el("option", { value: "mean" }, "Averaged"),
  );
  show($("heatmap-others-field"), names.length > 2);
  $("heatmap-hint").textContent =
    names.length > 2
      ? "A cell stands for every value of the other parameters. Click it to run the backtest of its best combination."
      : "Click a cell to run that combination's backtest.";
  for (const id of ["heatmap-x", "heatmap-y", "heatmap-metric", "heatmap-others"])
    $(id).onchange = () => draw(view);
  show($("sweep-verdict"), false);
  show($("sweep-top-card"), false);
  show($("sweep-download"), false);
  show($("sweep-result"));

  view.draw = () => draw(view);
  view.names = names;
  view.axes = Object.fromEntries(names.map((n) => [n, axisValues(sweep.parameters[n])]));
  view.objective = objective;
  view.minTrades = minTrades;
  view.signal = signal;

  let width = $("heatmap").clientWidth;
  window.addEventListener(
    "resize",
    () => {
      if ($("heatmap").clientWidth !== width) {
        width = $("heatmap").clientWidth;
        draw(view);
      }
    },
    { signal },
  );
  draw(view);
  if (job.status !== "queued") load(view, true);
  return {
    update: (state) => {
      if (state.status === "queued" || view.timer) return;
      const due = view.readAt + PARTIAL_EVERY_MS - Date.now();
      view.timer = setTimeout(() => {
        view.timer = 0;
        if (!view.done && !signal.aborted) load(view, true);
      }, Math.max(0, due));
    },
    finish: (final) => {
      clearTimeout(view.timer);
      view.timer = 0;
      return finish(view, final);
    },
  };
}

function fillAxes(names) {
  const options = (extra) => [...extra, ...names.map((n) => el("option", { value: n }, n))];
  $("heatmap-x").replaceChildren(...options([]));
  $("heatmap-y").replaceChildren(...options([el("option", { value: "" }, "—")]));
  $("heatmap-x").value = names[0] || "";
  $("heatmap-y").value = names[1] || "";
  $("heatmap-y").disabled = names.length < 2;
}

/** Fetches the rows stored so far (partial) or the whole grid; one request at a time. */
async function load(view, partial) {
  if (view.loading) {
    view.again = true; // progress moved while a request was out: read once more after it
    return view.loading;
  }
  view.loading = (async () => {
    try {
      view.readAt = Date.now();
      const text = await fetchGrid(view.job.id, partial, view.signal);
      view.rows = parseGrid(text, view.names);
      draw(view);
    } catch (err) {
      if (!view.signal.aborted) failed(err);
    } finally {
      view.loading = null;
    }
    if (view.again && !view.signal.aborted) {
      view.again = false;
      await load(view, partial && !view.done);
    }
  })();
  return view.loading;
}

async function fetchGrid(id, partial, signal) {
  const response = await fetch(`/api/backtest/queue/${id}/grid.csv${partial ? "?partial=1" : ""}`, {
    headers: { Authorization: `Bearer ${session.token}`, Accept: "text/csv" },
    cache: "no-store",
    signal,
  });
  if (!response.ok) {
    const type = response.headers.get("content-type") || "";
    throw new ApiError(response.status, type.includes("json") ? await response.json() : null);
  }
  return response.text();
}

function draw(view) {
  const x = $("heatmap-x").value;
  const y = $("heatmap-y").value === x ? "" : $("heatmap-y").value;
  if (!x) return;
  const side = $("heatmap-metric").value || "is";
  // Out-of-sample colour: the same cells (chosen in-sample), coloured by their held-out result.
  const others = $("heatmap-others").value || "best";
  const cells = heatmapCells(view.rows, x, y, view.objective, view.minTrades, others);
  if (side === "oos") {
    for (const cell of cells.values()) {
      if (cell.value === null) continue;
      cell.value = others === "mean" ? cell.oosMean : (cell.row.oos[view.objective] ?? null);
    }
  }
  const format = objectiveFormat(view.objective);
  const { lo, hi, ranked } = drawHeatmap($("heatmap"), {
    xs: view.axes[x] || [],
    ys: y ? view.axes[y] : [null],
    xName: x,
    yName: y,
    cells,
    format,
    onOpen: (cell) => openCell(view.job.id, cell.row.index),
  });
  if (ranked) drawScale($("heatmap-scale"), lo, hi, format);
  else $("heatmap-scale").replaceChildren();
  const total = view.job.combinations;
  $("heatmap-status").textContent = view.done
    ? `${fmt.count(view.rows.length)} combinations`
    : `${fmt.count(view.rows.length)} of ${fmt.count(total)} combinations computed`;
  $("heatmap").dataset.rows = String(view.rows.length);
}

/** "Open this cell": queue that combination's backtest and go to it. */
async function openCell(id, index) {
  try {
    const accepted = await request("POST", `/api/backtest/queue/${id}/combinations/${index}/backtest`, {});
    location.hash = `#/jobs/${accepted.queueId}`;
  } catch (err) {
    flash(
      err.status === 429 ? `${err.message} Wait for one of your queued jobs to start, or cancel one.` : err.message,
      "error",
    );
  }
}

async function finish(view, job) {
  view.job = job;
  view.done = job.status === "completed";
  if (job.status !== "completed" || !job.result) {
    await load(view, true); // what was computed before it failed or was cancelled
    return;
  }
  await load(view, false);
  renderVerdict(job.result, view.objective);
  renderTop(job.result, view);
  const download = $("sweep-download");
  download.onclick = () => downloadCsv(job.id);
  show(download);
}

function renderVerdict(result, objective) {
  const o = result.overfitting || {};
  $("sweep-reading").textContent = o.reading || "";
  $("sweep-counts").textContent =
    `${fmt.count(result.combinations)} run · ${fmt.count(result.evaluated)} ranked by ` +
    `${OBJECTIVE_LABEL[objective] || objective} · ${fmt.count(result.skipped)} skipped`;
  const probability = (v) => (v === null || v === undefined ? "not enough ranked combinations" : fmt.percent(v, { digits: 0 }));
  const items = [
    ["Deflated Sharpe ratio", probability(o.deflatedSharpe),
      "The chance that the winner's Sharpe ratio beats the best that luck alone would give over this many trials; above 95 % is convincing."],
    ["Probability of backtest overfitting", probability(o.pbo),
      "How often the best on one half of the days ranks in the worse half on the other; below 20 % is reassuring."],
  ];
  $("sweep-figures").replaceChildren(
    ...items.flatMap(([term, value, why]) => [el("dt", {}, term), el("dd", {}, el("strong", {}, value), " ", el("span", { class: "muted" }, why))]),
  );
  show($("sweep-verdict"));
}

function renderTop(result, view) {
  const rows = result.top || [];
  const objective = view.objective;
  const format = objectiveFormat(objective);
  const head = el(
    "tr",
    {},
    el("th", { scope: "col", class: "num" }, "#"),
    ...view.names.map((n) => el("th", { scope: "col", class: "num" }, n)),
    el("th", { scope: "col", class: "num" }, `IS ${OBJECTIVE_LABEL[objective] || objective}`),
    ...SUMMARY_COLUMNS.filter(([k]) => k !== objective).map(([, label]) => el("th", { scope: "col", class: "num" }, `IS ${label}`)),
    el("th", { scope: "col", class: "num" }, `OOS ${OBJECTIVE_LABEL[objective] || objective}`),
    ...SUMMARY_COLUMNS.filter(([k]) => k !== objective).map(([, label]) => el("th", { scope: "col", class: "num" }, `OOS ${label}`)),
    el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Backtest")),
  );
  const summaryCells = (summary) => [
    el("td", { class: "num strong" }, summary ? format(summary[objective]) : "—"),
    ...SUMMARY_COLUMNS.filter(([k]) => k !== objective).map(([key, , show_]) =>
      el("td", { class: `num ${key === "totalReturn" && summary ? fmt.tone(summary[key]) : ""}` }, summary ? show_(summary[key]) : "—"),
    ),
  ];
  $("sweep-top").tHead.replaceChildren(head);
  $("sweep-top").tBodies[0].replaceChildren(
    ...rows.map((row, rank) => {
      const open = el("button", { type: "button", class: "ghost small" }, "Backtest");
      open.addEventListener("click", () => openCell(view.job.id, row.index));
      return el(
        "tr",
        { "data-index": row.index },
        el("td", { class: "num muted" }, String(rank + 1)),
        ...view.names.map((n) => el("td", { class: "num" }, String(row.parameters[n]))),
        ...summaryCells(row.inSample),
        ...summaryCells(row.outOfSample),
        el("td", { class: "open" }, open),
      );
    }),
  );
  if (!rows.length)
    $("sweep-top").tBodies[0].append(
      el("tr", {}, el("td", { colspan: 99, class: "muted" }, `No combination reached ${view.minTrades} in-sample trades.`)),
    );
  $("sweep-top-note").textContent = "IS: in-sample, ranked on it · OOS: the held-out bars";
  show($("sweep-top-card"));
}

/** The CSV needs the bearer header, so it is fetched and handed to the browser as a file. */
async function downloadCsv(id) {
  try {
    const text = await fetchGrid(id, false);
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const link = el("a", { href: url, download: `sweep-${id}-grid.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    flash(err.message, "error");
  }
}
