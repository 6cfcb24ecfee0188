// The "Sweep" and "Walk-forward" modes of the new-backtest form: the parameter table, the live
// count of combinations (times folds) and the estimated time, the objective and the out-of-sample
// share, or the folds; then the SweepRequest (with walkForward).

import { get } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { MAX_FOLDS, MAX_IN_SAMPLE, MIN_FOLDS, MIN_IN_SAMPLE, windows, workOf } from "./folds.js";
import { OBJECTIVES, gridSize, valueCount } from "./grid.js";
import { state } from "./shell.js";
import { DEFAULT_OBJECTIVE, MAX_PARAMETERS, TIMEFRAME_MINUTES } from "./vocabulary.js";

// The form's starting rules, and the same rules with their periods as parameters.
const DEFAULT_RULES = {
  longEntry: ["crossover(sma(close, 20), sma(close, 50))", "crossover(sma(close, fast), sma(close, slow))"],
  longExit: ["crossunder(sma(close, 20), sma(close, 50))", "crossunder(sma(close, fast), sma(close, slow))"],
};
const STATS_TTL_MS = 10_000;

let rowSerial = 0;
let stats = null; // {at, value} of GET /stats: what the estimate is based on

/** Sweep and walk-forward share the parameter table: both send a SweepRequest. */
export const isSweep = () => $("mode-sweep").checked || isWalkForward();
export const isWalkForward = () => $("mode-walkforward").checked;

export function setup(form) {
  $("f-sweep-objective").replaceChildren(
    ...OBJECTIVES.map(([value, label]) => el("option", { value }, label)),
  );
  for (const radio of form.querySelectorAll("input[name=mode]")) radio.addEventListener("change", onMode);
  $("sweep-add").addEventListener("click", () => {
    addRow({ name: "", kind: "range" });
    rows().at(-1).querySelector("input").focus();
  });
  // Any change of the period, timeframe or grid changes the count or the estimate.
  form.addEventListener("input", () => isSweep() && recount());
  form.addEventListener("change", () => isSweep() && recount());
}

function onMode() {
  const sweep = isSweep();
  const walkForward = isWalkForward();
  show($("sweep-card"), sweep);
  show($("wf-fields"), walkForward);
  // each fold holds its own out-of-sample window: the sweep's share is not sent
  show($("sweep-outOfSample-field"), !walkForward);
  $("sweep-legend").textContent = walkForward ? "Walk-forward" : "Sweep";
  $("run-button").textContent = walkForward ? "Run walk-forward" : sweep ? "Run sweep" : "Run backtest";
  if (!sweep) return;
  if (!$("sweep-params").tBodies[0].rows.length) {
    // First time in sweep mode: untouched default rules become their parameterised versions.
    const form = $("backtest-form");
    for (const [name, [plain, swept]] of Object.entries(DEFAULT_RULES)) {
      if (form.elements[name].value.trim() === plain) form.elements[name].value = swept;
    }
    addRow({ name: "fast", kind: "range", from: 10, to: 30, step: 5 });
    addRow({ name: "slow", kind: "list", list: "40, 60, 80" });
    $("f-sweep-constraint").value = "fast < slow";
  }
  recount();
}

function addRow({ name, kind, from = "", to = "", step = "", list = "" }) {
  const id = `sweep-p${(rowSerial += 1)}`;
  const input = (part, value, attrs = {}) =>
    el("input", { id: `${id}-${part}`, "data-part": part, value, "aria-describedby": `err-${id}`, ...attrs });
  const number = (part, value, label) =>
    input(part, value, { type: "number", step: "any", inputmode: "decimal", "aria-label": `${label}` });
  const kindSelect = el(
    "select",
    { id: `${id}-kind`, "data-part": "kind", "aria-label": "Values as" },
    el("option", { value: "range" }, "Range"),
    el("option", { value: "list" }, "List"),
  );
  kindSelect.value = kind;
  const remove = el("button", { type: "button", class: "ghost small", "aria-label": "Remove parameter" }, "×");
  const row = el(
    "tr",
    { id, class: "param-row" },
    el("td", {}, input("name", name, { type: "text", spellcheck: "false", autocapitalize: "off",
      "aria-label": "Parameter name", placeholder: "e.g. fast", class: "param-name" })),
    el("td", {}, kindSelect),
    el("td", {}, number("from", from, "From")),
    el("td", {}, number("to", to, "To")),
    el("td", {}, number("step", step, "Step")),
    el("td", {}, input("list", list, { type: "text", "aria-label": "Values, separated by commas", placeholder: "e.g. 40, 60, 80" })),
    el("td", { class: "num count", "data-part": "count" }),
    el("td", {}, remove),
  );
  const errorRow = el(
    "tr",
    { class: "param-error", id: `${id}-error-row`, hidden: true },
    el("td", { colspan: 8 }, el("p", { class: "field-error", id: `err-${id}` })),
  );
  remove.addEventListener("click", () => {
    row.remove();
    errorRow.remove();
    recount();
  });
  kindSelect.addEventListener("change", () => setKind(row));
  $("sweep-params").tBodies[0].append(row, errorRow);
  setKind(row);
}

function setKind(row) {
  const list = row.querySelector("[data-part=kind]").value === "list";
  for (const part of ["from", "to", "step"]) row.querySelector(`[data-part=${part}]`).disabled = list;
  row.querySelector("[data-part=list]").disabled = !list;
  recount();
}

const rows = () => [...$("sweep-params").tBodies[0].querySelectorAll("tr.param-row")];

/** {name, spec} of a row as the API takes it: {from, to, step} or a list of numbers. */
function readRow(row) {
  const value = (part) => row.querySelector(`[data-part=${part}]`).value.trim();
  const name = value("name");
  if (row.querySelector("[data-part=kind]").value === "list") {
    const items = value("list").split(/[\s,;]+/).filter(Boolean);
    return { name, spec: items.map(Number), part: "list" };
  }
  const num = (part) => (value(part) === "" ? NaN : Number(value(part)));
  return { name, spec: { from: num("from"), to: num("to"), step: num("step") }, part: "step" };
}

/** The live count under the table, each row's own count, and the time it would take. */
function recount() {
  $("sweep-add").disabled = rows().length >= MAX_PARAMETERS;
  const parameters = {};
  for (const row of rows()) {
    const { name, spec } = readRow(row);
    const { count, error } = valueCount(spec);
    row.querySelector("[data-part=count]").textContent = count === undefined ? "—" : fmt.count(count);
    row.querySelector("[data-part=count]").title = error || "";
    if (name) parameters[name] = spec;
  }
  const size = rows().length ? gridSize(parameters) : null;
  const combos = $("sweep-combinations");
  if (size === null) {
    combos.textContent = rows().length
      ? "Complete the parameter table to see the number of combinations."
      : "Add a parameter to sweep.";
    $("sweep-estimate").textContent = "";
    return;
  }
  const plural = `${fmt.count(size)} ${size === 1 ? "combination" : "combinations"}`;
  const wf = isWalkForward() ? readWalkForward().walkForward : null;
  combos.dataset.combinations = String(size);
  if (!wf) {
    combos.textContent = `${plural} before the constraint`;
    combos.dataset.summary = `${size} combinations before the constraint`;
    estimate(size, null);
    return;
  }
  if (!Number.isInteger(wf.folds) || wf.folds < MIN_FOLDS || wf.folds > MAX_FOLDS) {
    combos.textContent = `${plural} before the constraint; choose ${MIN_FOLDS} to ${MAX_FOLDS} folds.`;
    $("sweep-estimate").textContent = "";
    return;
  }
  combos.textContent =
    `${plural} × ${wf.folds} folds = ${fmt.count(size * wf.folds)} in-sample runs before the constraint`;
  combos.dataset.summary = `${size} combinations × ${wf.folds} folds`;
  estimate(size, wf);
}

/** Bars each combination runs over, as the API counts them: the period clipped to the data. */
function barsOfPeriod() {
  const form = $("backtest-form");
  const d = (state.datasets || []).find((x) => x.symbol === form.elements.symbol.value);
  const start = Date.parse(`${form.elements.start.value}T00:00:00Z`);
  const end = Date.parse(`${form.elements.end.value}T00:00:00Z`) + 86400e3;
  if (!d || !Number.isFinite(start) || !Number.isFinite(end)) return null;
  const from = Math.max(start, Date.parse(d.start));
  const to = Math.min(end, Date.parse(d.end));
  const minutes = TIMEFRAME_MINUTES[form.elements.timeframe.value] || 1;
  return to > from ? Math.max(1, Math.floor((to - from) / 60e3 / minutes)) : null;
}

/** What the folds hold over `bars`: the out-of-sample window's length, or why they cannot run. */
function windowsText(bars, wf) {
  if (!(wf.inSample >= MIN_IN_SAMPLE && wf.inSample <= MAX_IN_SAMPLE)) return "";
  const [first] = windows(bars, wf.folds, wf.inSample, wf.anchored);
  const oos = first.outOfSample[1] - first.outOfSample[0];
  if (oos < 1) return `${wf.folds} folds of ${fmt.count(bars)} bars leave no out-of-sample bars: use fewer folds or a longer period. `;
  return (
    `Each fold: ${fmt.count(first.inSample[1] - first.inSample[0])} in-sample bars` +
    `${wf.anchored ? " or more" : ""}, then ${fmt.count(oos)} out-of-sample bars. `
  );
}

async function estimate(size, wf) {
  const box = $("sweep-estimate");
  const bars = barsOfPeriod();
  if (!stats || Date.now() - stats.at > STATS_TTL_MS) {
    try {
      stats = { at: Date.now(), value: await get("/api/backtest/queue/stats") };
    } catch {
      box.textContent = "The queue cannot be read right now, so there is no time estimate.";
      return;
    }
  }
  const s = stats.value;
  if (!bars || !s.sweepSecondsPerCombinationBar) {
    box.textContent = "";
    return;
  }
  // A walk-forward runs fold by fold as chunks: no more workers help than there are folds.
  const workers = Math.max(1, wf ? Math.min(s.workers, wf.folds) : s.workers);
  const inSampleOk = wf && wf.inSample >= MIN_IN_SAMPLE && wf.inSample <= MAX_IN_SAMPLE;
  if (wf && !inSampleOk) {
    box.textContent = "";
    return;
  }
  const work = wf ? workOf(bars, size, wf) : size * bars;
  const seconds = (work * s.sweepSecondsPerCombinationBar) / workers;
  const computing = seconds < 60 ? "under a minute" : fmt.minutes(Math.ceil(seconds / 60));
  const line = s.estimatedWaitMinutes > 0 ? `, after ${fmt.minutes(s.estimatedWaitMinutes)} in line` : "";
  const nanos = (s.sweepSecondsPerCombinationBar * 1e9).toPrecision(2);
  const basis = wf
    ? `${windowsText(bars, wf)}Based on ${fmt.count(work)} combination-bars over the folds`
    : `Based on ${fmt.count(bars)} bars per combination`;
  box.textContent =
    `Estimated ${computing} of computing on ${workers === 1 ? "1 worker" : `${workers} workers`}${line}. ` +
    `${basis} × ${nanos} ns per combination per bar ` +
    "(the service's measure over its recent sweeps), before the constraint removes any." +
    (s.workers ? "" : " No worker is online right now.");
}

export function useSingle() {
  $("mode-single").checked = true;
  onMode();
}

/** Sweep mode with the parameters and ranking of a stored SweepRequest ("Run again with changes"). */
export function fill(sweep) {
  $("sweep-params").tBodies[0].replaceChildren();
  for (const [name, spec] of Object.entries(sweep.parameters || {})) {
    if (Array.isArray(spec)) addRow({ name, kind: "list", list: spec.join(", ") });
    else addRow({ name, kind: "range", ...spec });
  }
  $("f-sweep-constraint").value = sweep.constraint || "";
  $("f-sweep-objective").value = sweep.objective || DEFAULT_OBJECTIVE;
  $("f-sweep-minTrades").value = String(sweep.minTrades ?? 10);
  $("f-sweep-outOfSample").value = String(Number(((sweep.outOfSample ?? 0.3) * 100).toPrecision(10)));
  const wf = sweep.walkForward;
  if (wf) {
    $("f-wf-folds").value = String(wf.folds);
    $("f-wf-inSample").value = String(Number((wf.inSample * 100).toPrecision(10)));
    $("f-wf-anchored").checked = Boolean(wf.anchored);
  }
  $(wf ? "mode-walkforward" : "mode-sweep").checked = true;
  onMode();
}

/** The walkForward object of the form, and the mistakes the API would refuse anyway. */
function readWalkForward() {
  const errors = [];
  const folds = Number($("f-wf-folds").value.trim() || "NaN");
  if (!Number.isInteger(folds) || folds < MIN_FOLDS || folds > MAX_FOLDS)
    errors.push({ field: "sweep.walkForward.folds", message: `Enter a whole number of folds from ${MIN_FOLDS} to ${MAX_FOLDS}.` });
  const percent = Number($("f-wf-inSample").value.trim() || "NaN");
  const inSample = Number((percent / 100).toPrecision(10));
  if (!(inSample >= MIN_IN_SAMPLE && inSample <= MAX_IN_SAMPLE))
    errors.push({ field: "sweep.walkForward.inSample", message: "Enter an in-sample share from 50 to 90 %." });
  return { walkForward: { folds, inSample, anchored: $("f-wf-anchored").checked }, errors };
}

/** The SweepRequest around the form's payload, and the mistakes the API would refuse anyway. */
export function readSweep(payload) {
  const errors = [];
  const parameters = {};
  for (const row of rows()) {
    const { name, spec, part } = readRow(row);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      errors.push({ field: `sweep.parameters.${row.id}`, message: "Name the parameter (letters, digits, _)." });
      continue;
    }
    if (name in parameters) {
      errors.push({ field: `sweep.parameters.${name}`, message: `Two parameters are named ${name}.` });
      continue;
    }
    const { error } = valueCount(spec);
    if (error) errors.push({ field: `sweep.parameters.${name}.${part}`, message: error });
    parameters[name] = spec;
  }
  if (!rows().length) errors.push({ field: "sweep.parameters", message: "Add a parameter to sweep." });
  const text = (id) => $(id).value.trim();
  const minTrades = Number(text("f-sweep-minTrades") || "0");
  if (!Number.isInteger(minTrades) || minTrades < 0)
    errors.push({ field: "sweep.minTrades", message: "Enter a whole number of trades, 0 or more." });
  const sweep = { payload, parameters, objective: $("f-sweep-objective").value, minTrades };
  if (isWalkForward()) {
    const wf = readWalkForward();
    sweep.walkForward = wf.walkForward;
    errors.push(...wf.errors);
  } else {
    const outOfSample = Number(text("f-sweep-outOfSample") || "0");
    if (!(outOfSample >= 0 && outOfSample <= 50))
      errors.push({ field: "sweep.outOfSample", message: "Enter a share from 0 to 50 %." });
    sweep.outOfSample = Number((outOfSample / 100).toPrecision(10));
  }
  if (text("f-sweep-constraint")) sweep.constraint = text("f-sweep-constraint");
  return { sweep, errors };
}

/** Where a sweep field's error goes ({box, input}), or null when it is not a sweep field. */
export function locate(field) {
  const fold = String(field).match(/^sweep\.walkForward(?:\.(folds|inSample|anchored))?$/);
  if (fold) return { box: $(`err-wf-${fold[1] || "folds"}`), input: $(`f-wf-${fold[1] || "folds"}`) };
  const match = String(field).match(/^sweep\.(parameters|constraint|objective|minTrades|outOfSample)(?:\.([^.]+))?(?:\.(\w+))?$/);
  if (!match) return null;
  const [, area, name, part] = match;
  if (area !== "parameters") return { box: $(`err-sweep-${area}`), input: $(`f-sweep-${area}`) };
  const row = name && rows().find((r) => r.id === name || readRow(r).name === name);
  if (!row) return { box: $("err-sweep-parameters"), input: rows().length ? rows()[0].querySelector("input") : $("sweep-add") };
  const target = { from: "from", to: "to", step: "step" }[part] || (readRow(row).part === "list" ? "list" : "from");
  show($(`${row.id}-error-row`));
  return { box: $(`err-${row.id}`), input: row.querySelector(`[data-part=${part ? target : "name"}]`) };
}

/** Hides the rows' error lines (form.js clears the boxes themselves). */
export function clearErrors() {
  for (const row of $("sweep-params").querySelectorAll("tr.param-error")) show(row, false);
}
