"""How much of a sweep's winner is luck: the deflated Sharpe ratio and the probability of
backtest overfitting, from the per-period returns of the ranked combinations.

- Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014): the probabilistic Sharpe ratio of the
  winner against the Sharpe the best of N trials would reach by luck alone,
  SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e))), g = Euler's constant, V the
  variance (ddof 1) of the trials' Sharpe ratios; DSR = Phi((SR - SR0) * sqrt(T - 1) /
  sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2)), with per-period (not annualised) Sharpe
  ratios and the winner's skewness and (non-excess) kurtosis as population moments.
- Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado & Zhu, 2015):
  combinatorially symmetric cross-validation. The T x N matrix of returns is cut into S = 16
  blocks (the first T mod S rows dropped); for each of the C(16, 8) = 12,870 halves, the
  combination with the best Sharpe on the half is ranked on the other half (average ranks,
  w = rank / (N + 1)); PBO is the share of halves where logit(w) <= 0, i.e. the in-sample best
  is at or below the out-of-sample median. The conventions are those of esvhd/pypbo.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCKS = 16
EULER_GAMMA = 0.5772156649015329
# Splits evaluated at once: bounds the (splits x trials) matrices to a few megabytes.
_SPLIT_BATCH = 512
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Verdict:
    trials: int
    deflated_sharpe: float | None
    pbo: float | None
    reading: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "deflated_sharpe": self.deflated_sharpe,
            "pbo": self.pbo,
            "reading": self.reading,
        }


def sharpe(returns: NDArray[np.float64]) -> float:
    """Per-period Sharpe ratio: mean / standard deviation (ddof 1); 0 for a flat series."""
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    return float(np.mean(returns)) / spread if spread > 0 else 0.0


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The Sharpe ratio the best of `trials` independent tries reaches by luck (trials >= 2)."""
    first = _NORMAL.inv_cdf(1 - 1 / trials)
    second = _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * first + EULER_GAMMA * second)


def probabilistic_sharpe(
    observed: float, benchmark: float, observations: int, skew: float, kurtosis: float
) -> float | None:
    """P(true Sharpe > benchmark) given the observed one; None when the moments make the
    standard error undefined."""
    spread = 1 - skew * observed + (kurtosis - 1) / 4 * observed**2
    if spread <= 0 or observations < 2:
        return None
    return _NORMAL.cdf((observed - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


def deflated_sharpe(returns: NDArray[np.float64]) -> float | None:
    """DSR of column 0 (the winner) among the columns (every ranked trial) of T x N returns."""
    periods, trials = returns.shape
    if trials < 2 or periods < 3:
        return None
    sharpes = np.array([sharpe(returns[:, column]) for column in range(trials)])
    winner = returns[:, 0]
    centred = winner - winner.mean()
    second = float(np.mean(centred**2))
    if second == 0:
        return None
    skew = float(np.mean(centred**3)) / second**1.5
    kurtosis = float(np.mean(centred**4)) / second**2
    benchmark = expected_max_sharpe(trials, float(np.var(sharpes, ddof=1)))
    return probabilistic_sharpe(float(sharpes[0]), benchmark, periods, skew, kurtosis)


def pbo(returns: NDArray[np.float64], blocks: int = BLOCKS) -> float | None:
    """Probability of backtest overfitting of T x N returns by CSCV over `blocks` blocks (even);
    None for fewer than 2 trials or 2 rows per block."""
    periods, trials = returns.shape
    size = periods // blocks
    if trials < 2 or size < 2:
        return None
    data = returns[periods % blocks :].reshape(blocks, size, trials)
    sums = data.sum(axis=1)  # blocks x trials
    squares = (data * data).sum(axis=1)
    halves = _halves(blocks)
    count = size * (blocks // 2)
    total_sum, total_squares = sums.sum(axis=0), squares.sum(axis=0)
    # In lexicographic order the complement of half i is half C - 1 - i: each pair of Sharpe
    # matrices serves two splits (i picks on A, judged on B, and its complement the reverse).
    pairs = len(halves) // 2
    overfit = 0
    for start in range(0, pairs, _SPLIT_BATCH):
        mask = halves[start : min(start + _SPLIT_BATCH, pairs)]
        first_sum, first_squares = mask @ sums, mask @ squares
        first = _block_sharpe(first_sum, first_squares, count)
        second = _block_sharpe(total_sum - first_sum, total_squares - first_squares, count)
        overfit += _overfit_splits(first, second) + _overfit_splits(second, first)
    return overfit / len(halves)


@functools.cache
def _halves(blocks: int) -> NDArray[np.float64]:
    """One row per half of `blocks` blocks, in lexicographic order: 1.0 in its blocks' columns
    (built once: 12,870 rows for 16 blocks took a fifth of a verdict's time)."""
    chosen = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    halves = np.zeros((len(chosen), blocks))
    np.put_along_axis(halves, chosen, 1.0, axis=1)
    halves.flags.writeable = False
    return halves


def _overfit_splits(inside: NDArray[np.float64], outside: NDArray[np.float64]) -> int:
    """Splits (rows) whose in-sample best ranks at or below the median out of sample."""
    trials = inside.shape[1]
    best = inside.argmax(axis=1)
    chosen = outside[np.arange(len(inside)), best][:, None]
    below = (outside < chosen).sum(axis=1)
    equal = (outside == chosen).sum(axis=1)
    # average rank = below + (equal + 1) / 2; logit(rank / (N + 1)) <= 0 <=> 2 rank <= N + 1
    return int((2 * below + equal + 1 <= trials + 1).sum())


def _block_sharpe(
    sums: NDArray[np.float64], squares: NDArray[np.float64], count: int
) -> NDArray[np.float64]:
    mean = sums / count
    variance = np.maximum(squares - sums * mean, 0.0) / (count - 1)
    spread = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: NDArray[np.float64] = np.where(spread > 0, mean / spread, 0.0)
    return ratio


def judge(returns: NDArray[np.float64]) -> Verdict:
    """The verdict on the winner (column 0) of T x N per-period returns of the ranked trials."""
    trials = returns.shape[1] if returns.ndim == 2 else 0
    if trials < 2:
        return Verdict(
            trials,
            None,
            None,
            "Fewer than two combinations reached the minimum number of trades, so there is "
            "nothing to compare the winner with.",
        )
    deflated = deflated_sharpe(returns)
    overfit = pbo(returns)
    return Verdict(trials, deflated, overfit, reading(trials, deflated, overfit))


def reading(trials: int, deflated: float | None, overfit: float | None) -> str:
    """One plain sentence on the two figures, with the thresholds in API.md."""
    parts = []
    if deflated is not None:
        parts.append(
            f"after {trials:,} tries there is a {deflated:.0%} chance the winner's Sharpe "
            "ratio reflects more than luck"
        )
    if overfit is not None:
        parts.append(
            f"in {overfit:.0%} of the ways to split the in-sample period, the best choice on "
            "one half did no better than the median on the other"
        )
    if (deflated is not None and deflated < 0.5) or (overfit is not None and overfit >= 0.5):
        verdict = "the winner is likely overfit"
    elif (deflated is None or deflated >= 0.95) and (overfit is None or overfit <= 0.2):
        verdict = "the winner looks robust"
    else:
        verdict = "the evidence is mixed and the winner deserves caution"
    if not parts:
        return "Too few days of returns to judge overfitting."
    sentence = "; ".join(parts)
    return f"{sentence[0].upper()}{sentence[1:]}, so {verdict}."
