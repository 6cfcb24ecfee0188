// DOM building (text only, never HTML) and number/date formatting.

export const SVG_NS = "http://www.w3.org/2000/svg";

// el("td", {class: "num"}, "12.3"): strings become text nodes, so user text is never parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

export const $ = (id) => document.getElementById(id);

export function show(node, visible = true) {
  node.hidden = !visible;
}

const fixed2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

const missing = (v) => v === null || v === undefined || Number.isNaN(v);

/** 0.1234 -> "+12.34 %"; `signed` adds the plus sign. */
export function percent(fraction, { signed = false, digits = 2 } = {}) {
  if (missing(fraction)) return "—";
  const value = fraction * 100;
  const text = value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  const sign = value < 0 ? "−" : signed && value > 0 ? "+" : "";
  return `${sign}${text.replace("-", "")} %`;
}

export function ratio(value) {
  if (missing(value)) return "—";
  return value < 0 ? `−${fixed2.format(-value)}` : fixed2.format(value);
}

export function money(value, { signed = false } = {}) {
  if (missing(value)) return "—";
  const sign = value < 0 ? "−" : signed && value > 0 ? "+" : "";
  return sign + fixed2.format(Math.abs(value));
}

export function count(value) {
  return missing(value) ? "—" : integer.format(value);
}

/** Prices keep about six significant digits whatever their size. */
export function price(value) {
  if (missing(value)) return "—";
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : 6;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: Math.min(2, digits),
    maximumFractionDigits: digits,
  });
}

export function quantity(value) {
  if (missing(value)) return "—";
  return value.toLocaleString("en-US", { minimumSignificantDigits: 6, maximumSignificantDigits: 6 });
}

/** Compact axis labels: 12,500 -> "12.5k". */
export function compact(value) {
  return new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 }).format(value);
}

/** "2022-01-03 14:00" in UTC. */
export function dateTime(iso) {
  if (!iso) return "—";
  return iso.slice(0, 16).replace("T", " ");
}

export function date(iso) {
  return iso ? iso.slice(0, 10) : "—";
}

/** "3 min ago" style for a past ISO time, or the date when older than a day. */
export function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return dateTime(iso);
}

export function minutes(value) {
  if (missing(value)) return "";
  if (value <= 0) return "starting right away";
  if (value < 60) return `about ${value} min`;
  const hours = Math.floor(value / 60);
  const rest = value % 60;
  return `about ${hours} h${rest ? ` ${rest} min` : ""}`;
}

/** A signed number's tone for colouring: "up", "down" or "". */
export function tone(value) {
  if (missing(value) || value === 0) return "";
  return value > 0 ? "up" : "down";
}
