"""Parameter sweeps: chunks of combinations run on shared indicator arrays, merged into a ranking.

plan(request) lists the combinations; run_chunk(request, bars, indices) runs any subset of them
in any process and returns JSON-ready rows; merge(request, chunks) ranks them and judges the
winner for overfitting. Merging the chunks of a grid in any order gives one run's result.

Each combination is two single backtests with the same simulate() and metrics.compute() as
engine.run: one on the in-sample bars (the first 1 - out_of_sample of them), one on the
held-out rest, so a row equals run() of that combination on that window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine import fastpath, jit, metrics, overfitting, rules
from engine.errors import Cancelled, DataError
from engine.grid import Plan, SweepRequest, plan
from engine.request import RULE_FIELDS, BacktestRequest
from engine.resample import Columns
from engine.run import _columns, params_of, signals_of
from engine.simulate import simulate

SUMMARY_KEYS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trades",
    "exposure",
)
TOP = 20
# Indicator and signal arrays kept between combinations, per window (in-sample, out-of-sample).
CACHE_BYTES = 384 * 2**20

Summary = dict[str, float | int | None]


@dataclass(frozen=True, eq=False)
class SweepRow:
    """One combination: its values, its in-sample and out-of-sample summaries, its in-sample
    objective (None when undefined) and the in-sample return of each UTC day.

    The daily returns stay a float64 array: a grid of thousands of combinations over years
    holds millions of them, and as Python floats they made most of a merge's time.
    """

    index: int
    parameters: dict[str, float]
    in_sample: Summary
    out_of_sample: Summary | None
    score: float | None
    daily_returns: NDArray[np.float64]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SweepRow):
            return NotImplemented
        return (
            (self.index, self.parameters, self.in_sample, self.out_of_sample, self.score)
            == (other.index, other.parameters, other.in_sample, other.out_of_sample, other.score)
        ) and np.array_equal(self.daily_returns, other.daily_returns)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the daily returns as a list)."""
        return {
            "index": self.index,
            "parameters": dict(self.parameters),
            "in_sample": dict(self.in_sample),
            "out_of_sample": None if self.out_of_sample is None else dict(self.out_of_sample),
            "score": self.score,
            "daily_returns": self.daily_returns.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepRow:
        """From as_dict()'s shape; the daily returns may be any sequence of floats (an array
        is taken as it is, not copied)."""
        oos = data["out_of_sample"]
        return cls(
            int(data["index"]),
            dict(data["parameters"]),
            dict(data["in_sample"]),
            None if oos is None else dict(oos),
            data["score"],
            np.asarray(data["daily_returns"], dtype=np.float64),
        )


@dataclass(frozen=True)
class ChunkResult:
    """The rows of one chunk, in index order, and the engine time it took."""

    rows: tuple[SweepRow, ...]
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"rows": [row.as_dict() for row in self.rows], "elapsed_ms": self.elapsed_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChunkResult:
        return cls(tuple(SweepRow.from_dict(row) for row in data["rows"]), data["elapsed_ms"])


@dataclass(frozen=True)
class SweepResult:
    """API.md's SweepResult, plus every row of the grid (in index order) for the CSV."""

    combinations: int  # run: the grid after the constraint
    evaluated: int  # ranked: reached min_trades with a defined objective
    skipped: int  # refused by the constraint, or short of min_trades / objective undefined
    objective: str
    elapsed_ms: float
    top: tuple[SweepRow, ...]
    overfitting: overfitting.Verdict
    rows: tuple[SweepRow, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, snake_case keys except the parameter names, which are the user's."""

        def row(item: SweepRow) -> dict[str, Any]:
            return {
                "index": item.index,
                "parameters": dict(item.parameters),
                "in_sample": dict(item.in_sample),
                "out_of_sample": None if item.out_of_sample is None else dict(item.out_of_sample),
            }

        return {
            "combinations": self.combinations,
            "evaluated": self.evaluated,
            "skipped": self.skipped,
            "objective": self.objective,
            "elapsed_ms": self.elapsed_ms,
            "top": [row(item) for item in self.top],
            "overfitting": self.overfitting.as_dict(),
        }


class _Cache(dict[str, NDArray[Any]]):
    """Arrays by rule-step key, least recently used dropped first once over a byte budget.

    Dropping happens only in trim(), between combinations, so a rule never loses an array it
    is still evaluating.
    """

    def __init__(self, budget_bytes: int) -> None:
        super().__init__()
        self.budget_bytes = budget_bytes
        self.held_bytes = 0
        self.used: dict[str, None] = {}  # keys in use order, oldest first

    def _touch(self, key: str) -> None:
        self.used.pop(key, None)
        self.used[key] = None

    def __contains__(self, key: object) -> bool:
        found = super().__contains__(key)
        if found:
            self._touch(str(key))
        return found

    def __getitem__(self, key: str) -> NDArray[Any]:
        value = super().__getitem__(key)
        self._touch(key)
        return value

    def __setitem__(self, key: str, value: NDArray[Any]) -> None:
        if super().__contains__(key):
            self.held_bytes -= super().__getitem__(key).nbytes
        super().__setitem__(key, value)
        self.held_bytes += value.nbytes
        self._touch(key)

    def trim(self) -> None:
        while self.held_bytes > self.budget_bytes and self.used:
            key = next(iter(self.used))
            del self.used[key]
            self.held_bytes -= super().pop(key).nbytes


class _Window:
    """One stretch of bars (in-sample or out-of-sample) with its own indicator cache."""

    def __init__(self, columns: Columns, index: pd.DatetimeIndex, bar_minutes: int) -> None:
        self.columns = columns
        self.size = len(index)
        self.bar_minutes = bar_minutes
        self.span_minutes = (index[-1] - index[0]) / timedelta(minutes=1) + bar_minutes
        days = index.normalize().asi8  # midnight UTC of each bar's day, whatever the unit
        # the last bar of each UTC day: its close is that day's equity
        self.day_ends = np.flatnonzero(np.append(days[1:] != days[:-1], True))
        self.cache = _Cache(CACHE_BYTES)
        self.never = fastpath.Signal.never()  # the signal of a rule not given

    def signal(self, rule: rules.Rule | None) -> fastpath.Signal:
        """How the walk reads `rule`: a crossover or comparison of two arrays is tested bar by
        bar in the walk (no full-length flag array per combination); any other rule is
        evaluated by numexpr."""
        if rule is None:
            return self.never
        shape = rule.pairwise
        if shape is None:
            return fastpath.Signal.of_flags(rule.evaluate(self.columns, self.cache))
        first, second = rule.operands(self.columns, self.cache)
        return fastpath.Signal.of_test(shape[0], first, second, rule.lookback)

    def measure(
        self, request: BacktestRequest, parsed: Mapping[str, rules.Rule]
    ) -> tuple[metrics.Metrics, NDArray[np.float64]]:
        """engine.run's metrics of `request` on these bars, and the daily returns."""
        need = max(rule.lookback for rule in parsed.values()) + 2
        if self.size < need:
            raise DataError(
                "start",
                f"the rules need at least {need} bars of {request.timeframe} but a window of "
                f"the sweep holds {self.size}: choose a longer period or a smaller outOfSample",
            )
        params = params_of(request)
        c = self.columns
        if params.has_stops:
            values = {field: rule.evaluate(c, self.cache) for field, rule in parsed.items()}
            self.cache.trim()
            simulation = simulate(
                c["open"], c["high"], c["low"], c["close"], signals_of(values), params
            )
            measured = metrics.compute(
                simulation,
                c["close"],
                initial_capital=request.initial_capital,
                bar_minutes=self.bar_minutes,
                span_minutes=self.span_minutes,
            )
            closes = simulation.equity[self.day_ends]
        else:
            setup = fastpath.Setup(
                c["open"],
                c["close"],
                request.initial_capital,
                request.fee_rate,
                request.slippage,
                request.position_size,
                self.bar_minutes,
                self.span_minutes,
                self.day_ends,
            )
            signals = [self.signal(parsed.get(field)) for field in RULE_FIELDS]
            self.cache.trim()
            measured, closes = fastpath.rule_metrics(setup, *signals)
        opens = np.concatenate(([request.initial_capital], closes[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            daily = closes / opens - 1
        return measured, np.nan_to_num(daily, nan=0.0, posinf=0.0, neginf=0.0)


def _windows(request: SweepRequest, bars: pd.DataFrame) -> tuple[_Window, _Window | None]:
    """The in-sample window and the held-out one (None when out_of_sample is 0)."""
    columns, index = _columns(bars)
    held = math.floor(len(index) * request.out_of_sample)
    split = len(index) - held
    minutes = request.base.bar_minutes
    if split < 2 or (held and held < 2):
        raise DataError("out_of_sample", "too few bars to hold out that share: use more bars")

    def part(bounds: slice) -> Columns:
        # read-only, so indicators may keep work on them between combinations
        return {name: jit.read_only(values[bounds]) for name, values in columns.items()}

    inside = _Window(part(slice(0, split)), index[:split], minutes)
    if not held:
        return inside, None
    return inside, _Window(part(slice(split, None)), index[split:], minutes)


class Workspace:
    """plan(request) and the windows of `bars` with their indicator caches, kept between the
    chunks of one sweep that a process runs in turn, so that the second chunk neither plans
    nor recomputes what the first one cached."""

    def __init__(self, request: SweepRequest, bars: pd.DataFrame) -> None:
        self.laid_out = plan(request)
        self.inside, self.held = _windows(request, bars)


def run_chunk(
    request: SweepRequest,
    bars: pd.DataFrame,
    indices: Sequence[int],
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    laid_out: Plan | None = None,
    workspace: Workspace | None = None,
) -> ChunkResult:
    """Run the combinations `indices` of plan(request) on `bars` (as engine.run takes them).

    on_progress gets the number of this chunk's combinations done after each one;
    should_cancel is asked at the same points and a True raises Cancelled. `laid_out` is
    plan(request) when the caller has it already; `workspace`, Workspace(request, bars) of
    an earlier chunk of the same sweep.
    """
    started = time.perf_counter()
    if workspace is not None:
        laid_out, (inside, held) = workspace.laid_out, (workspace.inside, workspace.held)
    else:
        laid_out = laid_out or plan(request)
        inside, held = _windows(request, bars)
    rows: list[SweepRow] = []
    for done, index in enumerate(sorted(indices), start=1):
        values = laid_out.values(index)
        single = request.backtest(values)
        parsed = single.parsed_rules()
        measured, daily = inside.measure(single, parsed)
        outside = None if held is None else _summary(held.measure(single, parsed)[0])
        rows.append(
            SweepRow(
                index,
                values,
                _summary(measured),
                outside,
                objective_value(measured, request.objective),
                daily,
            )
        )
        if on_progress is not None:
            on_progress(done)
        if should_cancel is not None and should_cancel():
            raise Cancelled()
    return ChunkResult(tuple(rows), (time.perf_counter() - started) * 1000.0)


def _summary(measured: metrics.Metrics) -> Summary:
    return {key: measured[key] for key in SUMMARY_KEYS}


def objective_value(measured: Mapping[str, float | int | None], objective: str) -> float | None:
    """A run's objective as a float, None where the metric is undefined (no trades, ...)."""
    value = measured[objective]
    return None if value is None else float(value)


def rank(request: SweepRequest, rows: Sequence[SweepRow]) -> list[SweepRow]:
    """The rows that reach min_trades with a defined objective, best first; equal scores keep
    index order when `rows` is in index order (the sort is stable)."""
    ranked = [
        row
        for row in rows
        if row.score is not None and int(row.in_sample["trades"] or 0) >= request.min_trades
    ]
    # metrics.BETTER says which way the objective is better (every objective has a side)
    sign = -1.0 if metrics.BETTER[request.objective] == "higher" else 1.0
    ranked.sort(key=lambda row: sign * (row.score or 0.0))
    return ranked


def merge(
    request: SweepRequest, chunks: Sequence[ChunkResult], *, laid_out: Plan | None = None
) -> SweepResult:
    """The result of the whole grid from its chunks, in any order; ValueError if the chunks do
    not cover plan(request) exactly once."""
    started = time.perf_counter()
    laid_out = laid_out or plan(request)
    rows = sorted((row for chunk in chunks for row in chunk.rows), key=lambda row: row.index)
    if [row.index for row in rows] != list(range(len(laid_out.combinations))):
        raise ValueError(
            f"the chunks hold {len(rows)} rows, not each of the {len(laid_out.combinations)} "
            "combinations once"
        )
    ranked = rank(request, rows)
    returns = np.array([row.daily_returns for row in ranked], dtype=np.float64).reshape(
        len(ranked), -1
    )
    verdict = overfitting.judge(returns.T)
    elapsed = sum(chunk.elapsed_ms for chunk in chunks) + (time.perf_counter() - started) * 1000
    return SweepResult(
        combinations=len(rows),
        evaluated=len(ranked),
        skipped=laid_out.skipped + len(rows) - len(ranked),
        objective=request.objective,
        elapsed_ms=elapsed,
        top=tuple(ranked[:TOP]),
        overfitting=verdict,
        rows=tuple(rows),
    )


def run(
    request: SweepRequest,
    bars: pd.DataFrame,
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> SweepResult:
    """The whole grid in this process: one chunk, merged."""
    indices = range(len(plan(request).combinations))
    chunk = run_chunk(request, bars, indices, on_progress=on_progress, should_cancel=should_cancel)
    return merge(request, [chunk])
