// A walk-forward's windows in the browser, cut exactly as engine/walkforward.py windows() cuts
// them, and the work they take, for the count and the estimate before queueing.

export const MIN_FOLDS = 2;
export const MAX_FOLDS = 20;
export const MIN_IN_SAMPLE = 0.5;
export const MAX_IN_SAMPLE = 0.9;

/**
 * The folds over `size` bars: [{inSample: [start, stop), outOfSample: [start, stop)}], out-of-sample
 * windows of equal length following one another up to the last bar; rolling in-sample windows
 * keep the first one's length, anchored ones start at bar 0.
 */
export function windows(size, folds, inSample, anchored) {
  // the same operations in the same order as the engine, so the floor lands alike
  const oos = Math.floor((size * (1 - inSample)) / (inSample + folds * (1 - inSample)));
  const first = size - folds * oos; // the first in-sample window takes the rounding
  return Array.from({ length: folds }, (_, index) => {
    const start = first + index * oos;
    return { inSample: [anchored ? 0 : index * oos, start], outOfSample: [start, start + oos] };
  });
}

/** Combination-bars to compute: each fold sweeps its in-sample bars, then runs one combination
 * on its out-of-sample bars. */
export function workOf(size, combinations, { folds, inSample, anchored }) {
  return windows(size, folds, inSample, anchored).reduce(
    (sum, fold) =>
      sum + combinations * (fold.inSample[1] - fold.inSample[0]) + (fold.outOfSample[1] - fold.outOfSample[0]),
    0,
  );
}
