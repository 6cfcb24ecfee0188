// Small inline-SVG charts: several lines on one time axis, and bars over numeric bins.

import { niceTicks } from "./chart.js";
import { el, svg } from "./format.js";

const MARGIN = { top: 12, right: 12, bottom: 26, left: 48 };

/** Calls draw() now and again whenever the container's width changes, until `signal` aborts. */
export function keepDrawn(container, draw, signal) {
  let width = container.clientWidth;
  draw();
  let timer = 0;
  window.addEventListener(
    "resize",
    () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (container.clientWidth === width) return;
        width = container.clientWidth;
        draw();
      }, 150);
    },
    { signal },
  );
}

function frame(container, height) {
  const width = Math.max(280, container.clientWidth || 600);
  return { width, height, plotW: width - MARGIN.left - MARGIN.right, plotH: height - MARGIN.top - MARGIN.bottom };
}

function yAxis(box, ticks, y, format) {
  return ticks.map((v) =>
    svg(
      "g",
      { class: "tick" },
      svg("line", { x1: MARGIN.left, x2: box.width - MARGIN.right, y1: y(v), y2: y(v) }),
      svg("text", { x: MARGIN.left - 6, y: y(v), dy: "0.32em", "text-anchor": "end" }, format(v)),
    ),
  );
}

/**
 * Lines over time: times are ISO strings, each series {values (null = no value), cls, label};
 * `reference` draws a dashed level (1.0 for rebased equity, 0 for a ratio).
 */
export function drawLines(container, { times, series, format, reference, label, height = 240 }) {
  container.replaceChildren();
  const stamps = times.map((t) => Date.parse(t));
  const finite = series.flatMap((s) => s.values.filter((v) => v !== null && Number.isFinite(v)));
  if (stamps.length < 2 || finite.length < 2) {
    container.append(el("p", { class: "muted", text: "Not enough data for a chart." }));
    return;
  }
  const box = frame(container, height);
  const ticks = niceTicks(
    Math.min(...finite, reference ?? Infinity),
    Math.max(...finite, reference ?? -Infinity),
    4,
  );
  const lo = ticks[0];
  const hi = ticks[ticks.length - 1];
  const t0 = stamps[0];
  const t1 = stamps[stamps.length - 1];
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0 || 1)) * box.plotW;
  const y = (v) => MARGIN.top + (1 - (v - lo) / (hi - lo || 1)) * box.plotH;
  const paths = series.map((s) => {
    let d = "";
    let pen = "M";
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        pen = "M";
        return;
      }
      d += `${pen}${x(stamps[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = "L";
    });
    return svg("path", { class: `plot-line ${s.cls}`, d }, svg("title", {}, s.label));
  });
  const xLabels = [0.1, 0.5, 0.9].map((share) => {
    const t = t0 + (t1 - t0) * share;
    return svg(
      "text",
      { class: "xtick", x: x(t), y: box.height - 8, "text-anchor": "middle" },
      new Date(t).toISOString().slice(0, 10),
    );
  });
  const level =
    reference === undefined
      ? null
      : svg("line", {
          class: "baseline",
          x1: MARGIN.left,
          x2: box.width - MARGIN.right,
          y1: y(reference),
          y2: y(reference),
        });
  container.append(
    svg(
      "svg",
      { class: "plot", viewBox: `0 0 ${box.width} ${box.height}`, width: box.width, height: box.height, role: "img", "aria-label": label },
      svg("title", {}, label),
      ...yAxis(box, ticks, y, format),
      ...xLabels,
      level,
      ...paths,
    ),
  );
}

/** Bars over bins: edges has counts.length + 1 values; bars below zero are drawn as losses. */
export function drawBars(container, { edges, counts, format, label, height = 240 }) {
  container.replaceChildren();
  if (!counts.length) {
    container.append(el("p", { class: "muted", text: "No trades." }));
    return;
  }
  const box = frame(container, height);
  const ticks = niceTicks(0, Math.max(...counts), 4);
  const hi = ticks[ticks.length - 1];
  const y = (v) => MARGIN.top + (1 - v / (hi || 1)) * box.plotH;
  const slot = box.plotW / counts.length;
  const bars = counts.map((n, i) => {
    const mid = (edges[i] + edges[i + 1]) / 2;
    const text = `${format(edges[i])} to ${format(edges[i + 1])}: ${n} trades`;
    return svg(
      "rect",
      {
        class: `bar ${mid < 0 ? "loss" : "gain"}`,
        x: (MARGIN.left + i * slot + 1).toFixed(1),
        y: y(n).toFixed(1),
        width: Math.max(1, slot - 2).toFixed(1),
        height: (y(0) - y(n)).toFixed(1),
      },
      svg("title", {}, text),
    );
  });
  const anchors = ["start", "middle", "end"];
  const xLabels = [0, Math.floor(counts.length / 2), counts.length].map((i, n) =>
    svg(
      "text",
      { class: "xtick", x: MARGIN.left + i * slot, y: box.height - 8, "text-anchor": anchors[n] },
      format(edges[i]),
    ),
  );
  container.append(
    svg(
      "svg",
      { class: "plot", viewBox: `0 0 ${box.width} ${box.height}`, width: box.width, height: box.height, role: "img", "aria-label": label },
      svg("title", {}, label),
      ...yAxis(box, ticks, y, (v) => String(v)),
      ...xLabels,
      ...bars,
    ),
  );
}
