// The backtest form and the run dialog: place in line, wait, channel, then the submit.
// In "Sweep" and "Walk-forward" modes (sweepform.js) the same form's payload is wrapped in a
// SweepRequest.

import { get, request } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import {
  NEEDS_TELEGRAM,
  RULES,
  STOPS,
  channelChoices,
  defaultChannel,
  failed,
  fromPercent,
  lastDay,
  loadMe,
  setSegments,
  showView,
  state,
  toPercent,
} from "./shell.js";
import * as sweepForm from "./sweepform.js";
import { TIMEFRAMES } from "./vocabulary.js";

const form = $("backtest-form");
sweepForm.setup(form);

// The timeframes are the API's (vocabulary.js); only their names on the page are kept here.
const TIMEFRAME_LABEL = {
  "1m": "1 minute",
  "5m": "5 minutes",
  "15m": "15 minutes",
  "30m": "30 minutes",
  "1h": "1 hour",
  "4h": "4 hours",
  "1d": "1 day",
};
$("f-timeframe").replaceChildren(
  ...TIMEFRAMES.map((value) => {
    const option = el("option", { value }, TIMEFRAME_LABEL[value] || value);
    option.selected = value === "1h";
    return option;
  }),
);

export async function showNew() {
  showView("new", "New backtest");
  try {
    await loadDatasets();
  } catch (err) {
    failed(err);
  }
  if (state.rerun) {
    // a sweep's rerun is {sweep: SweepRequest}; a backtest's is its payload
    const sweep = state.rerun.sweep;
    fillForm(sweep ? sweep.payload : state.rerun);
    if (sweep) sweepForm.fill(sweep);
    else sweepForm.useSingle();
    state.rerun = null;
  }
}

async function loadDatasets() {
  if (state.datasets) return;
  const datasets = await get("/api/backtest/datasets");
  state.datasets = datasets;
  const select = $("f-symbol");
  select.replaceChildren(
    ...datasets.map((d) =>
      el(
        "option",
        { value: d.symbol },
        `${d.symbol}${d.synthetic ? " (synthetic)" : ""} · ${fmt.date(d.start)} → ${lastDay(d.end)}`,
      ),
    ),
  );
  $("run-button").disabled = datasets.length === 0;
  if (datasets.length === 0) {
    showFormError("No market data is loaded yet: an operator imports it with `algotcha data`.");
    return;
  }
  onSymbolChange();
}

function dataset() {
  return (state.datasets || []).find((d) => d.symbol === $("f-symbol").value);
}

function onSymbolChange() {
  const d = dataset();
  if (!d) return;
  const first = fmt.date(d.start);
  const last = lastDay(d.end);
  $("symbol-range").textContent =
    `${sourceText(d)} · from ${first} to ${last} UTC · ${fmt.count(d.bars)} one-minute bars`;
  for (const input of [$("f-start"), $("f-end")]) {
    input.min = first;
    input.max = last;
  }
  $("f-start").value = first;
  $("f-end").value = last;
}

// Where the bars came from, so nobody mistakes the synthetic demo data for a market's history.
function sourceText(d) {
  const source = d.source;
  if (!source) return "Source not recorded";
  const updated = source.updatedAt ? `, updated ${fmt.date(source.updatedAt)}` : "";
  if (source.kind === "synthetic") return "Synthetic data, not a market's history";
  if (source.kind === "download") return `Downloaded from ${source.url}${updated}`;
  return `Imported from ${source.files.join(", ")}${updated}`;
}

$("f-symbol").addEventListener("change", onSymbolChange);

function fillForm(payload) {
  const set = (name, value) => {
    form.elements[name].value = value === null || value === undefined ? "" : value;
  };
  if (dataset() && payload.symbol) set("symbol", payload.symbol);
  onSymbolChange();
  for (const name of ["strategyName", "timeframe", "initialCapital", ...RULES]) set(name, payload[name]);
  for (const name of ["feeRate", "slippage", "positionSize", ...STOPS]) {
    set(name, payload[name] === null || payload[name] === undefined ? "" : toPercent(payload[name]));
  }
  if (payload.start) set("start", payload.start.slice(0, 10));
  if (payload.end) set("end", lastDay(payload.end));
}

/** The RunBacktestDto from the form, and the mistakes the API would refuse anyway. */
function readForm() {
  const errors = [];
  const text = (name) => form.elements[name].value.trim();
  const number = (name) => (text(name) === "" ? null : Number(text(name)));
  // Percent inputs become the API's fractions; empty takes the fallback.
  const percentOf = (name, fallback, valid, message) => {
    const value = number(name);
    if (value === null) return fallback;
    if (!Number.isFinite(value) || !valid(value)) errors.push({ field: name, message });
    return fromPercent(value);
  };
  const rate = (v) => v >= 0 && v <= 5;
  const stop = (v) => v > 0 && v < 100;
  const start = text("start");
  const end = text("end");
  const payload = {
    strategyName: text("strategyName"),
    symbol: text("symbol"),
    timeframe: text("timeframe"),
    start: start ? `${start}T00:00:00Z` : "",
    // The "to" day is inclusive: the run ends at the next midnight (the API clips to the data).
    end: end ? new Date(Date.parse(`${end}T00:00:00Z`) + 86400e3).toISOString().replace(".000Z", "Z") : "",
    initialCapital: number("initialCapital"),
    feeRate: percentOf("feeRate", 0, rate, "Enter a fee from 0 to 5 %."),
    slippage: percentOf("slippage", 0, rate, "Enter a slippage from 0 to 5 %."),
    positionSize: percentOf(
      "positionSize",
      1,
      (v) => v > 0 && v <= 100,
      "Enter a size above 0 and at most 100 %.",
    ),
    longEntry: text("longEntry") || null,
    longExit: text("longExit") || null,
    shortEntry: text("shortEntry") || null,
    shortExit: text("shortExit") || null,
    stopLoss: percentOf(
      "stopLoss",
      null,
      stop,
      "Enter a stop loss above 0 and below 100 %, or leave it empty.",
    ),
    takeProfit: percentOf(
      "takeProfit",
      null,
      stop,
      "Enter a take profit above 0 and below 100 %, or leave it empty.",
    ),
    trailingStop: percentOf(
      "trailingStop",
      null,
      stop,
      "Enter a trailing stop above 0 and below 100 %, or leave it empty.",
    ),
  };
  if (!payload.strategyName) errors.push({ field: "strategyName", message: "Give the strategy a name." });
  if (!start) errors.push({ field: "start", message: "Choose the first day." });
  if (!end) errors.push({ field: "end", message: "Choose the last day." });
  if (start && end && start > end)
    errors.push({ field: "end", message: "The last day is before the first." });
  if (!(payload.initialCapital > 0))
    errors.push({ field: "initialCapital", message: "Enter a capital above 0." });
  if (!payload.longEntry && !payload.shortEntry) {
    errors.push({ field: "longEntry", message: "Write a long entry or a short entry rule." });
  }
  return { payload, errors };
}

function clearErrors() {
  for (const box of form.querySelectorAll(".field-error")) {
    box.textContent = "";
    show(box, false);
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  sweepForm.clearErrors();
  show($("form-error"), false);
}

function showFormError(text) {
  $("form-error").textContent = text;
  show($("form-error"));
}

/** The error box and input of a field path ("payload.longEntry", "sweep.payload.start",
 * "sweep.parameters.fast.step"), or null when the form has no input for it. */
function locate(field) {
  const swept = sweepForm.locate(field);
  if (swept) return swept;
  const name = String(field).replace(/^(sweep\.)?payload\./, "");
  const box = $(`err-${name}`);
  const input = $(`f-${name}`);
  return box && input ? { box, input } : null;
}

/** Field errors ({field: "payload.longEntry" or "longEntry", message}) next to their inputs. */
function showFieldErrors(errors) {
  clearErrors();
  const general = [];
  let first = null;
  for (const { field, message } of errors) {
    const { box, input } = locate(field) || {};
    if (!box || !input) {
      general.push(field && field !== "payload" ? `${field}: ${message}` : message);
      continue;
    }
    box.textContent = box.hidden ? message : `${box.textContent} ${message}`;
    show(box);
    input.setAttribute("aria-invalid", "true");
    if (!first) first = { input, message };
  }
  if (general.length) showFormError(general.join(" "));
  if (first) {
    first.input.focus();
    first.input.scrollIntoView({ block: "center" });
    selectColumn(first.input, first.message);
  } else if (general.length) {
    $("form-error").scrollIntoView({ block: "center" });
  }
}

/** A rule error names the column of the culprit ("unknown name 'clsoe' at column 5"): select it. */
function selectColumn(input, message) {
  const column = message.match(/column (\d+)/);
  if (input.tagName !== "TEXTAREA" || !column) return;
  const at = Number(column[1]) - 1;
  const token = message.match(/'([^']+)'/);
  const length = token && input.value.slice(at, at + token[1].length) === token[1] ? token[1].length : 1;
  input.setSelectionRange(at, at + length);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  const { payload, errors } = readForm();
  if (!sweepForm.isSweep()) {
    if (errors.length) showFieldErrors(errors);
    else openRunDialog({ payload });
    return;
  }
  const sweep = sweepForm.readSweep(payload);
  const all = [...errors.map((e) => ({ ...e, field: `sweep.payload.${e.field}` })), ...sweep.errors];
  if (all.length) showFieldErrors(all);
  else openRunDialog({ sweep: sweep.sweep });
});

// --- the run dialog ------------------------------------------------------------------------------

const dialog = $("run-dialog");
let pending = null; // the body the dialog would queue: {payload} or {sweep}

async function openRunDialog(body) {
  pending = body;
  const payload = body.payload || body.sweep.payload;
  const what = !body.sweep ? "backtest" : body.sweep.walkForward ? "walk-forward" : "sweep";
  $("run-title").textContent = `Queue this ${what}`;
  $("run-confirm").textContent = `Queue ${what}`;
  setSegments($("run-summary"), [
    payload.strategyName,
    payload.symbol,
    payload.timeframe,
    `${payload.start.slice(0, 10)} → ${lastDay(payload.end)}`,
    body.sweep ? $("sweep-combinations").dataset.summary : "",
  ]);
  $("run-place").textContent = "Checking the queue…";
  $("run-workers").textContent = "";
  show($("run-error"), false);
  channelChoices(
    $("run-choices"),
    "run-channel",
    defaultChannel(state.me),
    Boolean(state.me && state.me.telegramLinked),
  );
  show($("run-telegram-note"), !(state.me && state.me.telegramLinked));
  $("run-confirm").disabled = false;
  dialog.showModal();
  const [stats, me] = await Promise.allSettled([get("/api/backtest/queue/stats"), loadMe()]);
  if (me.status === "fulfilled") {
    const linked = me.value.telegramLinked;
    const chosen = dialog.querySelector("input[name=run-channel]:checked");
    const keep =
      chosen && (linked || !NEEDS_TELEGRAM.has(chosen.value)) ? chosen.value : defaultChannel(me.value);
    channelChoices($("run-choices"), "run-channel", keep, linked);
    show($("run-telegram-note"), !linked);
  }
  if (stats.status === "fulfilled") {
    const s = stats.value;
    // "starting right away" would be wrong with no worker online; a positive estimate still holds.
    const wait = s.workers || s.estimatedWaitMinutes > 0 ? fmt.minutes(s.estimatedWaitMinutes) : "";
    $("run-place").textContent = [`You will be #${s.queued + 1} in line`, wait].filter(Boolean).join(", ");
    $("run-workers").textContent =
      s.workers === 0
        ? "No worker is online right now: your backtest starts as soon as one is."
        : `${s.processing} running now on ${s.workers === 1 ? "1 worker" : `${s.workers} workers`}.`;
  } else {
    $("run-place").textContent = "The queue cannot be read right now; you can still queue the backtest.";
  }
}

$("run-back").addEventListener("click", () => dialog.close());
$("run-connect").addEventListener("click", () => dialog.close());

$("run-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const channel = dialog.querySelector("input[name=run-channel]:checked");
  $("run-confirm").disabled = true;
  try {
    const body = { ...pending, notifyVia: channel ? channel.value : "none" };
    const accepted = await request("POST", "/api/backtest/queue", body);
    dialog.close();
    location.hash = `#/jobs/${accepted.queueId}`;
  } catch (err) {
    if (err.status === 422 && err.fieldErrors && err.fieldErrors.length) {
      dialog.close();
      showFieldErrors(err.fieldErrors);
      return;
    }
    $("run-error").textContent =
      err.status === 429
        ? `${err.message} Wait for one of your queued jobs to start, or cancel one.`
        : err.message;
    show($("run-error"));
    $("run-confirm").disabled = false;
  }
});
