// A sweep's grid in the browser: value counts exactly as engine/grid.py expands them, the grid
// CSV parsed, and the cells of a two-parameter heatmap (the other parameters at their best).

import { percent, ratio } from "./format.js";
import { DEFAULT_OBJECTIVE, MAX_VALUES, OBJECTIVES as NAMES } from "./vocabulary.js";

// engine/grid.py: a step "divides" a range when the count of steps is this close to whole.
const STEP_TOLERANCE = 1e-9;

const OBJECTIVE_LABEL = {
  sharpe: "Sharpe ratio",
  sortino: "Sortino ratio",
  calmar: "Calmar ratio",
  totalReturn: "Total return",
  profitFactor: "Profit factor",
  expectancy: "Average trade return",
};
// [value, label] of the API's objectives (vocabulary.js), its default first.
export const OBJECTIVES = [DEFAULT_OBJECTIVE, ...NAMES.filter((name) => name !== DEFAULT_OBJECTIVE)].map(
  (name) => [name, OBJECTIVE_LABEL[name] || name],
);

/** The value of an objective for people: returns as percents, ratios with two decimals. */
export function objectiveFormat(key) {
  return key === "totalReturn" || key === "expectancy" ? (v) => percent(v, { signed: true }) : ratio;
}

/**
 * {count} or {error} for one parameter: {from, to, step} or a list of numbers. The same rules as
 * the engine: `to` is included when a whole number of steps reaches it; otherwise it is refused.
 */
export function valueCount(spec) {
  if (Array.isArray(spec)) {
    if (!spec.length) return { error: "List at least one value." };
    if (spec.some((v) => !Number.isFinite(v))) return { error: "Every value must be a number." };
    if (new Set(spec).size !== spec.length) return { error: "A value is listed twice." };
    if (spec.length > MAX_VALUES) return { error: `At most ${MAX_VALUES} values.` };
    return { count: spec.length };
  }
  const { from, to, step } = spec;
  if (![from, to, step].every(Number.isFinite)) return { error: "Enter from, to and step." };
  if (step <= 0) return { error: "The step must be above 0." };
  if (to < from) return { error: "From is above to." };
  const steps = (to - from) / step;
  const count = Math.floor(steps + STEP_TOLERANCE) + 1;
  if (count > MAX_VALUES) return { error: `${count} values; the limit is ${MAX_VALUES}.` };
  if (Math.abs(steps - Math.round(steps)) > STEP_TOLERANCE * Math.max(1, Math.abs(steps)))
    return { error: `A step of ${step} never reaches ${to} from ${from}; it gives ${count} values.` };
  return { count };
}

/** The product of the value counts: the grid before the constraint (null if any is invalid). */
export function gridSize(parameters) {
  let size = 1;
  for (const spec of Object.values(parameters)) {
    const { count } = valueCount(spec);
    if (count === undefined) return null;
    size *= count;
  }
  return size;
}

/** The grid CSV (index, parameters, is_*, oos_*) as rows {index, values: {name}, is: {}, oos: {}}. */
export function parseGrid(text, names) {
  const lines = text.split("\n").filter(Boolean);
  if (!lines.length) return [];
  const header = lines[0].split(",");
  const number = (cell) => (cell === "" ? null : Number(cell));
  return lines.slice(1).map((line) => {
    const cells = line.split(",");
    const row = { index: Number(cells[0]), values: {}, is: {}, oos: {} };
    header.forEach((column, i) => {
      if (names.includes(column)) row.values[column] = number(cells[i]);
      else if (column.startsWith("is_")) row.is[column.slice(3)] = number(cells[i]);
      else if (column.startsWith("oos_")) row.oos[column.slice(4)] = number(cells[i]);
    });
    return row;
  });
}

/** A row is ranked as the engine ranks it: enough in-sample trades and a defined objective. */
export function objectiveOf(row, objective, minTrades) {
  const value = row.is[objective];
  return row.is.trades >= minTrades && value !== null && Number.isFinite(value) ? value : null;
}

/**
 * The heatmap over parameters x and y: one cell per (x value, y value) standing for the rows of
 * every value of the other parameters: `row` is the best ranked one (the backtest a click opens);
 * `value` its objective, or with others "mean" the mean over the ranked rows (null: computed but
 * none ranked); oosMean the same mean out of sample. No cell: nothing computed there yet.
 */
export function heatmapCells(rows, x, y, objective, minTrades, others = "best") {
  const cells = new Map();
  for (const row of rows) {
    const key = cellKey(row.values[x], y ? row.values[y] : null);
    const value = objectiveOf(row, objective, minTrades);
    let cell = cells.get(key);
    if (!cell) {
      cell = { row, best: value, sum: 0, ranked: 0, oosSum: 0, oosRanked: 0 };
      cells.set(key, cell);
    } else if (
      (value !== null && (cell.best === null || value > cell.best)) ||
      (value === cell.best && row.index < cell.row.index)
    ) {
      cell.row = row;
      cell.best = value;
    }
    if (value !== null) {
      cell.sum += value;
      cell.ranked += 1;
      const oos = row.oos[objective];
      if (oos !== null && Number.isFinite(oos)) {
        cell.oosSum += oos;
        cell.oosRanked += 1;
      }
    }
  }
  for (const cell of cells.values()) {
    cell.value = others === "mean" ? (cell.ranked ? cell.sum / cell.ranked : null) : cell.best;
    cell.oosMean = cell.oosRanked ? cell.oosSum / cell.oosRanked : null;
  }
  return cells;
}

/** grid.csv writes parameter values with Python's "g" (six significant digits): compare alike. */
export function cellKey(xValue, yValue) {
  const six = (v) => (v === null || v === undefined ? "" : String(Number(v.toPrecision(6))));
  return `${six(xValue)}|${six(yValue)}`;
}

/** The sorted values each parameter takes in the full grid, from the stored SweepRequest. */
export function axisValues(spec) {
  if (Array.isArray(spec)) return [...spec].sort((a, b) => a - b);
  const { count } = valueCount(spec);
  if (count === undefined) return [];
  // engine/grid.py _clean: twelve significant digits, so 0.1 + 2 * 0.05 shows as 0.2
  return Array.from({ length: count }, (_, i) => Number((spec.from + i * spec.step).toPrecision(12)));
}
