"""Deflated Sharpe ratio and PBO against the paper's worked example, hand-computed cases and a
plain loop re-implementation of CSCV with esvhd/pypbo's conventions."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from engine import overfitting

NORMAL = statistics.NormalDist()


def test_deflated_sharpe_matches_the_papers_numerical_example() -> None:
    """Bailey & Lopez de Prado (2014), section 'A numerical example': N = 100 trials with an
    annualised Sharpe variance of 0.5, the best at an annualised 2.5 over T = 1250 daily
    returns of skew -3 and kurtosis 10, 250 days a year: SR0 = 0.1132 a day, DSR = 0.9004."""
    threshold = overfitting.expected_max_sharpe(100, 0.5 / 250)
    assert threshold == pytest.approx(0.1132, abs=5e-5)
    dsr = overfitting.probabilistic_sharpe(2.5 / math.sqrt(250), threshold, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_deflated_sharpe_of_returns_is_the_hand_computed_value() -> None:
    winner = [0.02, -0.01, 0.03, 0.0, 0.01, -0.02, 0.04, 0.01]
    other = [0.01, 0.0, -0.01, 0.02, -0.02, 0.01, 0.0, 0.01]
    third = [0.0, 0.01, 0.0, -0.01, 0.02, 0.0, -0.01, 0.0]
    returns = np.array([winner, other, third]).T

    def sharpe(values: list[float]) -> float:
        return statistics.mean(values) / statistics.stdev(values)

    sharpes = [sharpe(column) for column in (winner, other, third)]
    gamma = 0.5772156649015329
    sr0 = math.sqrt(statistics.variance(sharpes)) * (
        (1 - gamma) * NORMAL.inv_cdf(1 - 1 / 3) + gamma * NORMAL.inv_cdf(1 - 1 / (3 * math.e))
    )
    mean = statistics.mean(winner)
    m2 = sum((x - mean) ** 2 for x in winner) / 8
    skew = sum((x - mean) ** 3 for x in winner) / 8 / m2**1.5
    kurtosis = sum((x - mean) ** 4 for x in winner) / 8 / m2**2
    sr = sharpes[0]
    z = (sr - sr0) * math.sqrt(7) / math.sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2)
    assert overfitting.deflated_sharpe(returns) == pytest.approx(NORMAL.cdf(z), rel=1e-12)


def test_deflated_sharpe_needs_two_trials() -> None:
    assert overfitting.deflated_sharpe(np.ones((10, 1))) is None


def test_pbo_hand_cases_with_two_blocks() -> None:
    # A wins the first half and loses the second, B the reverse: whichever half picks the
    # winner, it comes last on the other half -> every split overfits.
    a = [0.02, 0.01, 0.03, 0.02, -0.01, -0.02, -0.01, -0.03]
    b = [-0.01, -0.02, -0.01, -0.03, 0.02, 0.01, 0.03, 0.02]
    assert overfitting.pbo(np.array([a, b]).T, blocks=2) == 1.0
    # A beats B on both halves: the in-sample pick is first out of sample -> no overfitting.
    steady = [0.01, 0.02, 0.01, 0.02, 0.01, 0.02, 0.01, 0.02]
    worse = [x - 0.05 for x in steady]
    assert overfitting.pbo(np.array([steady, worse]).T, blocks=2) == 0.0


def reference_pbo(returns: np.ndarray, blocks: int) -> float:
    """CSCV written out as in esvhd/pypbo's pbo(): drop T mod S leading rows, concatenate the
    blocks of each half, Sharpe (ddof 1), average ranks, w = rank / (N + 1), logit <= 0."""
    periods, trials = returns.shape
    data = returns[periods % blocks :]
    size = len(data) // blocks
    parts = [data[i * size : (i + 1) * size] for i in range(blocks)]
    overfit = 0
    splits = list(itertools.combinations(range(blocks), blocks // 2))
    for chosen in splits:
        inside = np.concatenate([parts[i] for i in chosen])
        outside = np.concatenate([parts[i] for i in range(blocks) if i not in chosen])
        r_in = inside.mean(axis=0) / inside.std(axis=0, ddof=1)
        r_out = outside.mean(axis=0) / outside.std(axis=0, ddof=1)
        best = int(np.argmax(r_in))
        order = sorted(r_out)
        positions = [i + 1 for i, value in enumerate(order) if value == r_out[best]]
        rank = sum(positions) / len(positions)
        w = rank / (trials + 1)
        if math.log(w / (1 - w)) <= 0:
            overfit += 1
    return overfit / len(splits)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pbo_equals_the_loop_reference_on_random_returns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    periods, trials = 203, 12
    returns = rng.normal(0.0, 0.01, (periods, trials))
    # some skill that persists in a few columns, some that flips half way
    returns[:, :3] += 0.002
    returns[: periods // 2, 3:6] += 0.004
    returns[periods // 2 :, 3:6] -= 0.004
    assert overfitting.pbo(returns) == pytest.approx(reference_pbo(returns, 16), abs=1e-12)


def test_pbo_is_high_for_pure_noise_and_low_for_real_skill() -> None:
    rng = np.random.default_rng(9)
    noise = rng.normal(0.0, 0.01, (320, 20))
    assert 0.3 < (overfitting.pbo(noise) or 0) < 0.7
    skill = noise.copy()
    skill[:, 0] += 0.01
    assert overfitting.pbo(skill) == 0.0


def test_the_verdict_reads_as_one_sentence() -> None:
    rng = np.random.default_rng(4)
    verdict = overfitting.judge(rng.normal(0.0, 0.01, (64, 5)))
    assert verdict.trials == 5
    assert verdict.reading.endswith(".")
    assert ". " not in verdict.reading  # one sentence
    assert "likely overfit" in overfitting.reading(5, 0.2, 0.6)
    assert "robust" in overfitting.reading(5, 0.97, 0.1)
    assert "mixed" in overfitting.reading(5, 0.8, 0.3)
    assert overfitting.judge(np.zeros((64, 1))).deflated_sharpe is None
