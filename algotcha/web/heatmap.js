// The sweep heatmap as inline SVG: one cell per pair of values, coloured by the objective;
// a cell not computed yet is an outline, one computed but not ranked is hatched.

import { cellKey } from "./grid.js";
import { el, svg } from "./format.js";

const MARGIN = { top: 10, right: 12, bottom: 46, left: 70 };
// A dark-to-bright sequential scale (viridis stops): readable on the dark page, and in grey.
const STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

function colour(t) {
  const at = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(at));
  const mix = (a, b) => Math.round(a + (b - a) * (at - i));
  const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  const [a, b] = [rgb(STOPS[i]), rgb(STOPS[i + 1])];
  return `rgb(${mix(a[0], b[0])},${mix(a[1], b[1])},${mix(a[2], b[2])})`;
}

const label = (v) => String(Number(v.toPrecision(6)));

/**
 * Draws into `container`: xs and ys are the axis values (ys [null] for one parameter), cells the
 * Map of grid.heatmapCells; onOpen(cell) when a computed cell is clicked or chosen with Enter.
 */
export function drawHeatmap(container, { xs, ys, xName, yName, cells, format, onOpen }) {
  const values = [...cells.values()].map((c) => c.value).filter((v) => v !== null);
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const width = Math.max(320, container.clientWidth || 800);
  const plotW = width - MARGIN.left - MARGIN.right;
  const cellW = plotW / xs.length;
  const cellH = Math.max(18, Math.min(44, cellW * 0.7));
  const height = MARGIN.top + cellH * ys.length + MARGIN.bottom;
  const showText = cellW >= 44 && cellH >= 20;
  const rows = [...ys].reverse(); // the largest y at the top, as on any chart

  const hatchId = `hatch-${Math.random().toString(36).slice(2, 8)}`;
  const rects = [];
  rows.forEach((yValue, r) => {
    xs.forEach((xValue, c) => {
      const cell = cells.get(cellKey(xValue, yValue));
      const x = MARGIN.left + c * cellW;
      const y = MARGIN.top + r * cellH;
      const where = yName ? `${xName} ${label(xValue)}, ${yName} ${label(yValue)}` : `${xName} ${label(xValue)}`;
      if (!cell) {
        rects.push(svg("rect", { class: "hm-cell pending", x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2 },
          svg("title", {}, `${where}: not computed yet`)));
        return;
      }
      const ranked = cell.value !== null;
      const fill = ranked ? colour(hi > lo ? (cell.value - lo) / (hi - lo) : 0.5) : `url(#${hatchId})`;
      const text = ranked ? format(cell.value) : "not ranked";
      const group = svg(
        "g",
        {
          class: "hm-cell done",
          tabindex: 0,
          role: "button",
          "data-index": cell.row.index,
          "aria-label": `${where}: ${text}. Open the backtest of combination ${cell.row.index}`,
        },
        svg("rect", { x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2, fill }),
        svg("title", {}, `${where}: ${text} (combination #${cell.row.index}) · click to open its backtest`),
        showText && ranked
          ? svg("text", { x: x + cellW / 2, y: y + cellH / 2, dy: "0.32em", "text-anchor": "middle",
              class: (cell.value - lo) / (hi - lo || 1) > 0.6 ? "dark" : "" }, format(cell.value))
          : null,
      );
      group.addEventListener("click", () => onOpen(cell));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onOpen(cell);
        }
      });
      rects.push(group);
    });
  });

  const every = (n, size) => Math.max(1, Math.ceil(n / Math.max(1, Math.floor(size))));
  const xStep = every(xs.length, plotW / 48);
  const xLabels = xs.map((v, c) =>
    c % xStep ? null : svg("text", { class: "xtick", x: MARGIN.left + (c + 0.5) * cellW,
      y: MARGIN.top + cellH * rows.length + 16, "text-anchor": "middle" }, label(v)),
  );
  const yStep = every(rows.length, (cellH * rows.length) / 16);
  const yLabels = rows.map((v, r) =>
    v === null || r % yStep ? null : svg("text", { class: "ytick", x: MARGIN.left - 8,
      y: MARGIN.top + (r + 0.5) * cellH, dy: "0.32em", "text-anchor": "end" }, label(v)),
  );
  const axisTitles = [
    svg("text", { class: "axis-title", x: MARGIN.left + plotW / 2, y: height - 6, "text-anchor": "middle" }, xName),
    yName
      ? svg("text", { class: "axis-title", transform: `translate(14 ${MARGIN.top + (cellH * rows.length) / 2}) rotate(-90)`,
          "text-anchor": "middle" }, yName)
      : null,
  ];
  container.replaceChildren(
    svg(
      "svg",
      { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `Heatmap of ${xName}${yName ? ` by ${yName}` : ""}` },
      svg("defs", {}, svg("pattern", { id: hatchId, width: 6, height: 6, patternUnits: "userSpaceOnUse",
        patternTransform: "rotate(45)" }, svg("rect", { width: 6, height: 6, fill: "#151f33" }),
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#3a4a68", "stroke-width": 2 }))),
      rects,
      xLabels,
      yLabels,
      axisTitles,
    ),
  );
  return { lo, hi, ranked: values.length };
}

/** The colour key under the map, lowest to highest objective (SVG: the CSP allows no inline style). */
export function drawScale(container, lo, hi, format) {
  const steps = 24;
  const bar = svg(
    "svg",
    { class: "scale-bar", width: 160, height: 10, viewBox: `0 0 ${steps} 1`, preserveAspectRatio: "none",
      "aria-hidden": "true" },
    Array.from({ length: steps }, (_, i) => svg("rect", { x: i, y: 0, width: 1.05, height: 1, fill: colour(i / (steps - 1)) })),
  );
  container.replaceChildren(el("span", {}, format(lo)), bar, el("span", {}, format(hi)));
}
