// The equity curve as inline SVG: equity line, drawdown from the running peak shaded, a cursor.

import { compact, el, money, percent, svg } from "./format.js";

const MARGIN = { top: 14, right: 14, bottom: 28, left: 54 };

/**
 * Draws into `container` (emptied first) at its current width. Options: `span` [t0, t1] (ms)
 * widens the time axis beyond the curve; `backdrop(frame)` returns SVG nodes drawn under the
 * curve, given {x(t), top, plotH, left, right, below}, and `backdropHeight` px is added under the
 * axis for what it draws there (below: the first free y); `caption` ends the chart's label.
 */
export function drawEquity(container, curve, initialCapital, { span, backdrop, backdropHeight = 0, caption = "" } = {}) {
  container.replaceChildren();
  const points = curve
    .filter((p) => p.equity !== null && p.equity !== undefined)
    .map((p) => ({ t: Date.parse(p.t), v: p.equity }));
  if (points.length < 2) {
    container.append(el("p", { class: "muted", text: "Not enough data for a chart." }));
    return;
  }
  let peak = -Infinity;
  for (const p of points) {
    peak = Math.max(peak, p.v);
    p.peak = peak;
    p.dd = peak > 0 ? p.v / peak - 1 : 0;
  }

  const width = Math.max(280, container.clientWidth || 800);
  const height = (width < 560 ? 220 : 320) + backdropHeight;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - backdropHeight - MARGIN.top - MARGIN.bottom;
  const first = points[0].t;
  const end = points[points.length - 1].t;
  const t0 = span ? Math.min(span[0], first) : first;
  const t1 = span ? Math.max(span[1], end) : end;
  const values = points.map((p) => p.v);
  const ticks = niceTicks(
    Math.min(...values, initialCapital),
    Math.max(...values, initialCapital),
    height < 300 ? 4 : 5,
  );
  const lo = ticks[0];
  const hi = ticks[ticks.length - 1];
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0 || 1)) * plotW;
  const y = (v) => MARGIN.top + (1 - (v - lo) / (hi - lo || 1)) * plotH;
  const line = (key) =>
    points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");

  const worst = points.reduce((a, b) => (b.dd < a.dd ? b : a));
  const last = points[points.length - 1];
  const label =
    `Equity curve from ${money(points[0].v)} to ${money(last.v)}; ` +
    `deepest drawdown ${percent(worst.dd)} on ${new Date(worst.t).toISOString().slice(0, 10)}${caption}`;

  const gradientId = `eq-fill-${Math.random().toString(36).slice(2, 8)}`;
  const grid = ticks.map((v) =>
    svg(
      "g",
      { class: "tick" },
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }),
      svg("text", { x: MARGIN.left - 8, y: y(v), dy: "0.32em", "text-anchor": "end" }, compact(v)),
    ),
  );
  const axisY = MARGIN.top + plotH + MARGIN.bottom;
  const xTicks = timeTicks(t0, t1, Math.max(2, Math.floor(plotW / 110))).map((t) =>
    svg("text", { class: "xtick", x: x(t), y: axisY - 8, "text-anchor": "middle" }, timeLabel(t, t1 - t0)),
  );
  const behind = backdrop
    ? backdrop({ x, top: MARGIN.top, plotH, left: MARGIN.left, right: width - MARGIN.right, below: axisY })
    : [];
  const drawdown = `${line("peak")}${points
    .slice()
    .reverse()
    .map((p) => `L${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`)
    .join("")}Z`;
  const area = `${line("v")}L${x(end).toFixed(1)},${y(lo).toFixed(1)}L${x(first).toFixed(1)},${y(lo).toFixed(1)}Z`;

  const cursor = svg(
    "g",
    { class: "cursor", visibility: "hidden" },
    svg("line", { class: "cursor-line", y1: MARGIN.top, y2: MARGIN.top + plotH }),
    svg("circle", { class: "cursor-dot", r: 4 }),
  );
  const tipText = svg("text", { class: "tip-text" });
  const tip = svg(
    "g",
    { class: "tip", visibility: "hidden" },
    svg("rect", { class: "tip-box", rx: 6 }),
    tipText,
  );

  const chart = svg(
    "svg",
    {
      class: "equity-chart",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": label,
      tabindex: 0,
    },
    svg("title", {}, label),
    svg(
      "defs",
      {},
      svg(
        "linearGradient",
        { id: gradientId, x1: 0, x2: 0, y1: 0, y2: 1 },
        svg("stop", { offset: "0%", class: "fill-top" }),
        svg("stop", { offset: "100%", class: "fill-bottom" }),
      ),
    ),
    ...behind,
    ...grid,
    ...xTicks,
    svg("path", { class: "equity-area", d: area, fill: `url(#${gradientId})` }),
    svg("path", { class: "drawdown", d: drawdown }),
    svg("line", {
      class: "baseline",
      x1: MARGIN.left,
      x2: width - MARGIN.right,
      y1: y(initialCapital),
      y2: y(initialCapital),
    }),
    svg("path", { class: "equity-line", d: line("v") }),
    cursor,
    tip,
  );
  const readout = el("p", { class: "sr-only", "aria-live": "polite" });
  container.append(chart, readout);

  let index = points.length - 1;
  function moveTo(i, announce) {
    index = Math.max(0, Math.min(points.length - 1, i));
    const p = points[index];
    const px = x(p.t);
    const py = y(p.v);
    cursor.setAttribute("visibility", "visible");
    tip.setAttribute("visibility", "visible");
    cursor.firstChild.setAttribute("x1", px);
    cursor.firstChild.setAttribute("x2", px);
    cursor.lastChild.setAttribute("cx", px);
    cursor.lastChild.setAttribute("cy", py);
    const lines = [
      new Date(p.t).toISOString().slice(0, 16).replace("T", " "),
      money(p.v),
      `DD ${percent(p.dd)}`,
    ];
    tipText.replaceChildren(
      ...lines.map((text, n) => svg("tspan", { x: 10, dy: n ? "1.3em" : "1.1em" }, text)),
    );
    const box = tipText.getBBox();
    const boxW = box.width + 20;
    const boxH = box.height + 12;
    const left = px + 12 + boxW > width - MARGIN.right ? px - 12 - boxW : px + 12;
    const top = Math.min(Math.max(MARGIN.top, py - boxH / 2), MARGIN.top + plotH - boxH);
    tip.setAttribute("transform", `translate(${left.toFixed(1)},${top.toFixed(1)})`);
    tip.firstChild.setAttribute("width", boxW.toFixed(1));
    tip.firstChild.setAttribute("height", boxH.toFixed(1));
    if (announce) readout.textContent = lines.join(", ");
  }
  function hide() {
    cursor.setAttribute("visibility", "hidden");
    tip.setAttribute("visibility", "hidden");
  }
  chart.addEventListener("pointermove", (event) => {
    const rect = chart.getBoundingClientRect();
    const t = t0 + (((event.clientX - rect.left) * (width / rect.width) - MARGIN.left) / plotW) * (t1 - t0);
    moveTo(nearest(points, t), false);
  });
  chart.addEventListener("pointerleave", hide);
  chart.addEventListener("blur", hide);
  chart.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? Math.ceil(points.length / 20) : 1;
    const moves = { ArrowLeft: index - step, ArrowRight: index + step, Home: 0, End: points.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    moveTo(moves[event.key], true);
  });
}

function nearest(points, t) {
  let low = 0;
  let high = points.length - 1;
  while (high - low > 1) {
    const mid = (low + high) >> 1;
    if (points[mid].t < t) low = mid;
    else high = mid;
  }
  return t - points[low].t < points[high].t - t ? low : high;
}

/** Round axis values (1, 2, 2.5, 5 × 10^k steps) covering [min, max]. */
export function niceTicks(min, max, count) {
  if (min === max) {
    const pad = Math.abs(min) * 0.05 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 0.999; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function timeTicks(t0, t1, count) {
  return Array.from({ length: count }, (_, i) => t0 + ((t1 - t0) * (i + 0.5)) / count);
}

function timeLabel(t, span) {
  const options =
    span > 400 * 86400e3
      ? { month: "short", year: "numeric" }
      : span > 2 * 86400e3
        ? { month: "short", day: "numeric" }
        : { hour: "2-digit", minute: "2-digit", hour12: false };
  return new Date(t).toLocaleString("en-US", { ...options, timeZone: "UTC" });
}
