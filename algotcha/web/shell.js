// What the views share: session state, the current view's lifetime, the header, small renderers.

import { get, sleep } from "./api.js";
import * as fmt from "./format.js";
import { $, el, show } from "./format.js";
import { NOTIFY_CHANNELS } from "./vocabulary.js";

// The channels are the API's (vocabulary.js); only their names on the page are kept here.
const CHANNEL_LABEL = { email: "Email", telegram: "Telegram", both: "Both", none: "None" };
const CHANNELS = NOTIFY_CHANNELS.map((value) => [value, CHANNEL_LABEL[value] || value]);

export const NEEDS_TELEGRAM = new Set(["telegram", "both"]);
export const RULES = ["longEntry", "longExit", "shortEntry", "shortExit"];
export const STOPS = ["stopLoss", "takeProfit", "trailingStop"];

const STATUS_TEXT = {
  queued: "Queued",
  processing: "Running",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

export const state = { me: null, datasets: null, returnTo: "#/", rerun: null, authMode: "signin" };

// Aborted when the view changes: that stops the old view's streams, polls and listeners.
let page = new AbortController();

/** Ends the current view's work and returns the signal of the next one. */
export function nextPage() {
  page.abort();
  page = new AbortController();
  return page.signal;
}

export const pageSignal = () => page.signal;

export function showView(name, title) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${title} · Algotcha`;
  const heading = document.querySelector(`#view-${name} h1`);
  if (heading && document.activeElement !== heading) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

export function flash(text, kind = "info") {
  const box = $("flash");
  box.textContent = text;
  box.className = `flash ${kind}`;
  show(box, Boolean(text));
}

/** Shows an error, unless it only says the view was left. */
export function failed(err) {
  if (err.name === "AbortError" || page.signal.aborted) return;
  flash(err.message, "error");
}

export async function loadMe(signal) {
  state.me = await get("/api/me", { signal });
  $("account-email").textContent = state.me.email;
  return state.me;
}

export async function refreshStats() {
  try {
    const s = await get("/api/backtest/queue/stats");
    const workers = s.workers === 1 ? "1 worker" : `${s.workers} workers`;
    $("queue-chip").textContent = `Queue: ${s.queued} waiting · ${s.processing} running · ${workers}`;
  } catch {
    $("queue-chip").textContent = "";
  }
}

export async function pollStats() {
  for (;;) {
    if (document.visibilityState === "visible") await refreshStats();
    await sleep(5000);
  }
}

/** The dataset's end is exclusive (the last bar's close): its last calendar day. */
export function lastDay(iso) {
  return new Date(Date.parse(iso) - 1).toISOString().slice(0, 10);
}

export const toPercent = (fraction) => Number((fraction * 100).toPrecision(10));
export const fromPercent = (value) => Number((value / 100).toPrecision(10));

export function channelChoices(container, name, selected, linked) {
  container.replaceChildren(
    ...CHANNELS.map(([value, label]) => {
      const disabled = !linked && NEEDS_TELEGRAM.has(value);
      const input = el("input", { type: "radio", name, value, id: `${name}-${value}`, disabled });
      input.checked = value === selected;
      return el(
        "label",
        { class: disabled ? "choice disabled" : "choice", for: `${name}-${value}` },
        input,
        label,
      );
    }),
  );
}

export function defaultChannel(me) {
  const linked = Boolean(me && me.telegramLinked);
  const preferred = (me && me.notifyVia) || "email";
  return !linked && NEEDS_TELEGRAM.has(preferred) ? "email" : preferred;
}

/** "a · b · c" where each part wraps as a whole. */
export function setSegments(node, parts) {
  const segments = parts.filter(Boolean).map((part) => el("span", { class: "segment" }, part));
  node.replaceChildren(...segments.flatMap((segment, i) => (i ? [" · ", segment] : [segment])));
}

export function badge(node, status) {
  node.textContent = STATUS_TEXT[status] || status;
  node.className = `badge ${status}`;
}

export function periodOf(payload) {
  return payload && payload.start ? `${fmt.date(payload.start)} → ${lastDay(payload.end)}` : "";
}
