"""Walk-forward analysis: each fold's best in-sample combination, run on the window after it.

plan_folds(request, bars) cuts the bars into folds (DataError naming walk_forward.folds when an
out-of-sample window is shorter than the rules need); run_fold(request, bars, fold) runs one fold
in any process: the sweep of the grid on its in-sample bars (engine.sweep: same ranking,
objective and min_trades) and engine.run of the winner on its out-of-sample bars, which the
choice never saw. merge_folds(request, results) chains the out-of-sample segments, capital
carried from fold to fold, into one backtest result and judges it; any order of the results
gives the same result.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine import grid, metrics, result, sweep
from engine.errors import DataError
from engine.grid import Plan, SweepRequest
from engine.run import required_bars as backtest_bars
from engine.run import run as backtest
from engine.simulate import Simulation

MIN_FOLDS, MAX_FOLDS = 2, 20
MIN_IN_SAMPLE, MAX_IN_SAMPLE = 0.5, 0.9
# Verdict thresholds (docs/api.md "Walk-forward"): robust needs all three of the first row,
# likely overfit any one of the second.
ROBUST_EFFICIENCY, ROBUST_PROFITABLE, ROBUST_STABILITY = 0.5, 0.6, 0.7
OVERFIT_EFFICIENCY, OVERFIT_PROFITABLE = 0.25, 0.4
CHOSEN, NO_VALID_COMBINATION = "chosen", "no valid combination"

Summary = sweep.Summary
_NS_PER_MINUTE = 60_000_000_000
_TRADE_COLUMNS = tuple(
    field.name for field in dataclasses.fields(Simulation) if field.name != "equity"
)
# Columns that are amounts of money (or of units bought with it): scaled by the carried capital.
_MONEY_COLUMNS = ("quantity", "pnl", "fees")


@dataclass(frozen=True)
class WalkForwardRequest:
    """A sweep plus how to cut its period into folds (the sweep's out_of_sample is ignored)."""

    sweep: SweepRequest
    folds: int
    in_sample: float
    anchored: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.folds, bool) or not isinstance(self.folds, int):
            raise DataError("walk_forward.folds", "folds must be a whole number, e.g. 5")
        if not MIN_FOLDS <= self.folds <= MAX_FOLDS:
            raise DataError(
                "walk_forward.folds", f"folds must be {MIN_FOLDS} to {MAX_FOLDS}; got {self.folds}"
            )
        if not MIN_IN_SAMPLE <= self.in_sample <= MAX_IN_SAMPLE:
            raise DataError(
                "walk_forward.in_sample",
                f"in_sample must be between {MIN_IN_SAMPLE} and {MAX_IN_SAMPLE} of each window, "
                "e.g. 0.7",
            )
        if not isinstance(self.anchored, bool):
            raise DataError("walk_forward.anchored", "anchored must be true or false")


@dataclass(frozen=True)
class Fold:
    """Bar positions [start, stop) of one fold's in-sample and out-of-sample windows."""

    index: int
    in_sample: tuple[int, int]
    out_of_sample: tuple[int, int]


def windows(request: WalkForwardRequest, size: int) -> tuple[Fold, ...]:
    """The folds over `size` bars: out-of-sample windows of equal length that follow one
    another up to the last bar, each after its in-sample window. Rolling windows keep the
    in-sample length (the first window's in_sample share); anchored ones all start at bar 0."""
    share = request.in_sample
    oos = math.floor(size * (1 - share) / (share + request.folds * (1 - share)))
    first = size - request.folds * oos  # the first in-sample window takes the rounding
    folds = []
    for index in range(request.folds):
        start = first + index * oos
        folds.append(
            Fold(index, (0 if request.anchored else index * oos, start), (start, start + oos))
        )
    return tuple(folds)


def required_bars(request: WalkForwardRequest, laid_out: Plan | None = None) -> int:
    """Bars the longest-looking combination needs: its warm-up, a signal and a fill."""
    laid_out = laid_out or grid.plan(request.sweep)
    return max(
        backtest_bars(request.sweep.backtest(laid_out.values(index)))
        for index in range(len(laid_out.combinations))
    )


def plan_folds(
    request: WalkForwardRequest, bars: pd.DataFrame | int, *, laid_out: Plan | None = None
) -> tuple[Fold, ...]:
    """The folds over `bars` (or that many bars), or DataError naming walk_forward.folds when
    an out-of-sample window is too short for some combination's rules, before anything runs."""
    size = bars if isinstance(bars, int) else len(bars)
    folds = windows(request, size)
    oos = folds[0].out_of_sample[1] - folds[0].out_of_sample[0]
    need = required_bars(request, laid_out)
    if oos < need:
        raise DataError(
            "walk_forward.folds",
            f"{request.folds} folds of {size:,} bars leave out-of-sample windows of {oos:,} bars "
            f"but the rules need at least {need:,} (longest look-back plus a signal and a fill): "
            "use fewer folds, a smaller in_sample share or a longer period",
        )
    return folds


@dataclass(frozen=True)
class Segment:
    """One fold's out-of-sample backtest at the request's initial capital: its bar times (ns
    since the epoch, UTC), its simulation (trades and per-bar equity) and its first and last
    close."""

    times: NDArray[np.int64]
    simulation: Simulation
    first_close: float
    last_close: float

    def as_dict(self) -> dict[str, Any]:
        columns = {name: _pack(getattr(self.simulation, name)) for name in _TRADE_COLUMNS}
        return {
            "times": _pack(self.times),
            "equity": _pack(self.simulation.equity),
            "trades": columns,
            "closes": [self.first_close, self.last_close],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        columns = {name: _unpack(data["trades"][name]) for name in _TRADE_COLUMNS}
        first, last = data["closes"]
        simulation = Simulation(**columns, equity=_unpack(data["equity"]))
        return cls(_unpack(data["times"]), simulation, float(first), float(last))

    def to_bytes(self) -> bytes:
        """Exact and compact, for storage: the bar times as steps from the first (nearly all
        one bar long), every column deflated (equity repeats itself while out of the market).
        The stitched Sharpe, Sortino and drawdown read every bar's equity, so none is dropped."""
        arrays = {name: getattr(self.simulation, name) for name in (*_TRADE_COLUMNS, "equity")}
        arrays["time_steps"] = np.diff(self.times, prepend=np.int64(0))
        arrays["closes"] = np.array([self.first_close, self.last_close], dtype=np.float64)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Segment:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            columns = {name: arrays[name] for name in (*_TRADE_COLUMNS, "equity")}
            times = np.cumsum(arrays["time_steps"], dtype=np.int64)
            first, last = arrays["closes"].tolist()
        return cls(times, Simulation(**columns), float(first), float(last))


def _pack(values: NDArray[Any]) -> dict[str, str]:
    # Exact and a third the size of decimal text: a segment holds every bar's equity.
    array = np.ascontiguousarray(values)
    return {"dtype": array.dtype.str, "data": base64.b64encode(array.tobytes()).decode("ascii")}


def _unpack(packed: Mapping[str, str]) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(packed["data"]), dtype=np.dtype(packed["dtype"])).copy()


@dataclass(frozen=True)
class FoldResult:
    """One fold, JSON-ready through as_dict(): its windows (ns, end = last bar's close), the
    chosen values (None when no combination reached min_trades in-sample), their in-sample
    summary, objective and annualised return, and the out-of-sample backtest."""

    index: int
    in_sample_window: tuple[int, int]
    out_of_sample_window: tuple[int, int]
    parameters: dict[str, float] | None
    ranked: int  # in-sample combinations that reached min_trades with a defined objective
    in_sample: Summary | None
    in_sample_objective: float | None
    in_sample_annual_return: float | None
    out_of_sample: Summary
    out_of_sample_objective: float | None
    segment: Segment
    elapsed_ms: float

    @property
    def status(self) -> str:
        return CHOSEN if self.parameters is not None else NO_VALID_COMBINATION

    def as_dict(self, *, packed: bool = False) -> dict[str, Any]:
        """JSON-ready, or with the segment as Segment.to_bytes() when `packed` (to store)."""
        document = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        document["in_sample_window"] = list(self.in_sample_window)
        document["out_of_sample_window"] = list(self.out_of_sample_window)
        document["segment"] = self.segment.to_bytes() if packed else self.segment.as_dict()
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoldResult:
        """From as_dict(), its segment as a dict or as Segment.to_bytes()."""
        values = dict(data)
        values["in_sample_window"] = tuple(data["in_sample_window"])
        values["out_of_sample_window"] = tuple(data["out_of_sample_window"])
        segment = data["segment"]
        values["segment"] = (
            Segment.from_bytes(segment)
            if isinstance(segment, bytes)
            else Segment.from_dict(segment)
        )
        return cls(**values)


def fold_units(laid_out: Plan) -> int:
    """Progress units of one fold: each in-sample combination, then the out-of-sample run."""
    return len(laid_out.combinations) + 1


def run_fold(
    request: WalkForwardRequest,
    bars: pd.DataFrame,
    fold: Fold,
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    laid_out: Plan | None = None,
) -> FoldResult:
    """Sweep the grid on the fold's in-sample bars, then backtest the best combination on its
    out-of-sample bars. on_progress gets the units of this fold done (fold_units in all);
    should_cancel is asked as the sweep and engine.run ask it."""
    started = time.perf_counter()
    laid_out = laid_out or grid.plan(request.sweep)
    inside = dataclasses.replace(request.sweep, out_of_sample=0.0)
    in_bars = bars.iloc[slice(*fold.in_sample)]
    out_bars = bars.iloc[slice(*fold.out_of_sample)]
    chunk = sweep.run_chunk(
        inside,
        in_bars,
        range(len(laid_out.combinations)),
        on_progress=on_progress,
        should_cancel=should_cancel,
        laid_out=laid_out,
    )
    ranked = sweep.rank(inside, chunk.rows)
    best = ranked[0] if ranked else None
    out_times = _times(out_bars.index)
    closes = out_bars["close"].to_numpy(np.float64)
    first_close, last_close = float(closes[0]), float(closes[-1])
    capital = request.sweep.base.initial_capital
    if best is None:
        simulation = _idle(len(out_bars), capital)
        measured = _measure(request, simulation, out_times, first_close, last_close)
    else:
        single = request.sweep.backtest(best.parameters)
        single_result = backtest(single, out_bars, should_cancel=should_cancel)
        simulation = _simulation_of(single_result)
        measured = single_result.metrics
    if on_progress is not None:
        on_progress(fold_units(laid_out))
    in_times = _times(in_bars.index[[0, -1]])
    bar_ns = request.sweep.base.bar_minutes * _NS_PER_MINUTE
    in_window = (int(in_times[0]), int(in_times[-1]) + bar_ns)
    return FoldResult(
        index=fold.index,
        in_sample_window=in_window,
        out_of_sample_window=(int(out_times[0]), int(out_times[-1]) + bar_ns),
        parameters=None if best is None else dict(best.parameters),
        ranked=len(ranked),
        in_sample=None if best is None else dict(best.in_sample),
        in_sample_objective=None if best is None else best.score,
        in_sample_annual_return=(
            None
            if best is None
            else _annualised(best.in_sample["total_return"], in_window[1] - in_window[0])
        ),
        out_of_sample={key: measured[key] for key in sweep.SUMMARY_KEYS},
        out_of_sample_objective=sweep.objective_value(measured, request.sweep.objective),
        segment=Segment(out_times, simulation, first_close, last_close),
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


def _simulation_of(backtest: result.BacktestResult) -> Simulation:
    trades = backtest.trades
    if not isinstance(trades, result.TradeList):  # run() always returns one
        raise TypeError("engine.run returned trades without their simulation")
    return trades.simulation


def _times(index: pd.Index) -> NDArray[np.int64]:
    ns = pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns").asi8
    return np.array(ns, dtype=np.int64)


def _idle(size: int, capital: float) -> Simulation:
    """No trades: the capital sits in cash for the whole window."""
    empty_ints = np.zeros(0, dtype=np.int64)
    empty_floats = np.zeros(0, dtype=np.float64)
    return Simulation(
        np.zeros(0, dtype=np.int8),
        empty_ints,
        empty_ints.copy(),
        empty_floats,
        empty_floats.copy(),
        np.zeros(0, dtype=np.int8),
        empty_floats.copy(),
        empty_floats.copy(),
        empty_floats.copy(),
        empty_floats.copy(),
        np.full(size, capital, dtype=np.float64),
    )


def _measure(
    request: WalkForwardRequest,
    simulation: Simulation,
    times: NDArray[np.int64],
    first_close: float,
    last_close: float,
) -> metrics.Metrics:
    """engine.run's metrics of a simulation over bars at these times; of the closes, the
    metrics read only the first and the last (buy and hold)."""
    minutes = request.sweep.base.bar_minutes
    span = (int(times[-1]) - int(times[0])) / _NS_PER_MINUTE + minutes
    return metrics.compute(
        simulation,
        np.array([first_close, last_close], dtype=np.float64),
        initial_capital=request.sweep.base.initial_capital,
        bar_minutes=minutes,
        span_minutes=span,
    )


def _annualised(total_return: float | int | None, span_ns: int) -> float | None:
    """(1 + total_return) ** (1 / years) - 1, as metrics' cagr; -1 when all was lost."""
    if total_return is None:
        return None
    ratio = 1 + float(total_return)
    years = span_ns / _NS_PER_MINUTE / metrics.MINUTES_PER_YEAR
    if ratio <= 0:
        return -1.0
    try:
        return math.exp(math.log(ratio) / years) - 1
    except OverflowError:
        return None


@dataclass(frozen=True)
class WalkForwardResult:
    """API.md's walk-forward result: the folds, the stitched out-of-sample backtest and the
    judgement."""

    folds: tuple[FoldResult, ...]
    stitched: result.BacktestResult
    efficiency: float | None
    profitable_folds: float
    parameter_stability: float | None
    reading: str
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, snake_case keys except the parameter names (the user's), ISO 8601 'Z'
        window bounds (a window ends at its last bar's close)."""
        stitched = self.stitched.as_dict()
        return {
            "folds": [_fold_dict(item) for item in self.folds],
            "stitched": {key: stitched[key] for key in ("metrics", "trades", "equity_curve")},
            "efficiency": self.efficiency,
            "profitable_folds": self.profitable_folds,
            "parameter_stability": self.parameter_stability,
            "reading": self.reading,
            "elapsed_ms": self.elapsed_ms,
        }


def _fold_dict(fold: FoldResult) -> dict[str, Any]:
    return {
        "index": fold.index,
        "in_sample_start": _iso(fold.in_sample_window[0]),
        "in_sample_end": _iso(fold.in_sample_window[1]),
        "out_of_sample_start": _iso(fold.out_of_sample_window[0]),
        "out_of_sample_end": _iso(fold.out_of_sample_window[1]),
        "status": fold.status,
        "parameters": None if fold.parameters is None else dict(fold.parameters),
        "ranked": fold.ranked,
        "in_sample": None if fold.in_sample is None else dict(fold.in_sample),
        "out_of_sample": dict(fold.out_of_sample),
        "in_sample_objective": fold.in_sample_objective,
        "out_of_sample_objective": fold.out_of_sample_objective,
    }


def _iso(ns: int) -> str:
    return str(pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()).replace("+00:00", "Z")


def merge_folds(request: WalkForwardRequest, results: Sequence[FoldResult]) -> WalkForwardResult:
    """The walk-forward result from every fold's result, in any order; ValueError if they do
    not hold each fold once."""
    started = time.perf_counter()
    folds = tuple(sorted(results, key=lambda item: item.index))
    if [item.index for item in folds] != list(range(request.folds)):
        raise ValueError(f"the results hold folds {[item.index for item in folds]}, not each of "
                         f"the {request.folds} folds once")  # fmt: skip
    simulation, times = stitch(request.sweep.base.initial_capital, [f.segment for f in folds])
    first, last = folds[0].segment, folds[-1].segment
    measured = _measure(request, simulation, times, first.first_close, last.last_close)
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    stitched = result.BacktestResult(
        measured,
        result.TradeList(simulation, index),
        result.equity_curve(simulation.equity, index),
        len(times),
        0.0,
    )
    chosen = [item for item in folds if item.parameters is not None]
    efficiency = _efficiency(measured["cagr"], [item.in_sample_annual_return for item in chosen])
    profitable = sum(1 for item in folds if (item.out_of_sample["total_return"] or 0) > 0)
    share = profitable / len(folds)
    stability = parameter_stability(request.sweep, [item.parameters or {} for item in chosen])
    reading = judge(efficiency, share, stability, len(folds), len(chosen))
    elapsed = sum(item.elapsed_ms for item in folds) + (time.perf_counter() - started) * 1000
    return WalkForwardResult(
        folds,
        dataclasses.replace(stitched, elapsed_ms=elapsed),
        efficiency,
        share,
        stability,
        reading,
        elapsed,
    )


def stitch(
    initial_capital: float, segments: Sequence[Segment]
) -> tuple[Simulation, NDArray[np.int64]]:
    """The segments chained: each one's money scaled by the capital the one before ended with
    (a segment starts at initial_capital and sizes positions as a share of equity, so its
    equity is proportional to its starting capital), bar positions shifted past the ones
    before. Returns the chained simulation and the bar times."""
    capital = initial_capital
    offset = 0
    parts: dict[str, list[NDArray[Any]]] = {name: [] for name in (*_TRADE_COLUMNS, "equity")}
    for segment in segments:
        factor = max(capital, 0.0) / initial_capital
        simulation = segment.simulation
        for name in _TRADE_COLUMNS:
            column = getattr(simulation, name)
            if name in _MONEY_COLUMNS:
                column = column * factor
            elif name in ("entry_bar", "exit_bar"):
                column = column + offset
            parts[name].append(column)
        equity = simulation.equity * factor
        parts["equity"].append(equity)
        capital = float(equity[-1])
        offset += len(segment.times)
    chained = {name: np.concatenate(columns) for name, columns in parts.items()}
    times = np.concatenate([segment.times for segment in segments])
    return Simulation(**chained), times


def _efficiency(oos_annual: float | int | None, in_sample: Sequence[float | None]) -> float | None:
    """Annualised stitched out-of-sample return / mean annualised in-sample return of the
    chosen combinations; None when the in-sample mean is not above 0 (the ratio says nothing)."""
    known = [value for value in in_sample if value is not None]
    if oos_annual is None or not known:
        return None
    mean = sum(known) / len(known)
    return float(oos_annual) / mean if mean > 0 else None


def parameter_stability(
    request: SweepRequest, chosen: Sequence[Mapping[str, float]]
) -> float | None:
    """1 - the mean move of the chosen values between consecutive folds that chose, each move
    |a - b| divided by the parameter's range in the grid (max - min of its values), averaged
    over the parameters with a range. 1: the same values every fold; 0: from one end of every
    range to the other each time. None with fewer than two folds that chose."""
    if len(chosen) < 2:
        return None
    moves = []
    for name, values in request.parameters.items():
        spread = max(values) - min(values)
        if spread <= 0:
            continue
        for before, after in itertools.pairwise(chosen):
            moves.append(abs(after[name] - before[name]) / spread)
    return 1.0 - sum(moves) / len(moves) if moves else 1.0


def judge(
    efficiency: float | None,
    profitable_folds: float,
    stability: float | None,
    folds: int,
    chosen: int,
) -> str:
    """One plain sentence from the three figures and the thresholds above."""
    if chosen == 0:
        return (
            "Nothing to judge: no fold had a combination reaching minTrades in-sample; lower "
            "minTrades, widen the grid or use a longer period."
        )
    robust = (
        efficiency is not None
        and efficiency >= ROBUST_EFFICIENCY
        and profitable_folds >= ROBUST_PROFITABLE
        and (stability is None or stability >= ROBUST_STABILITY)
    )
    overfit = (
        efficiency is None
        or efficiency < OVERFIT_EFFICIENCY
        or profitable_folds < OVERFIT_PROFITABLE
    )
    label = "Looks robust" if robust else "Likely overfit" if overfit else "Mixed"
    kept = (
        "efficiency undefined (the chosen combinations did not make money in-sample)"
        if efficiency is None
        else f"out-of-sample kept {efficiency:.0%} of the in-sample annualised return"
    )
    steady = "" if stability is None else f", parameter stability {stability:.2f}"
    profitable = round(profitable_folds * folds)
    sentence = f"{label}: {kept}, {profitable} of {folds} folds profitable out-of-sample{steady}."
    if chosen < folds:
        sentence += f" {folds - chosen} fold(s) had no valid combination and stayed in cash."
    return sentence


def run(
    request: WalkForwardRequest,
    bars: pd.DataFrame,
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    laid_out: Plan | None = None,
    folds: Sequence[Fold] | None = None,
) -> WalkForwardResult:
    """Every fold in this process, in turn, merged; on_progress gets units done of
    folds * fold_units. `laid_out` and `folds` are grid.plan(request.sweep) and
    plan_folds(request, bars) when the caller has them already."""
    laid_out = laid_out or grid.plan(request.sweep)
    folds = folds or plan_folds(request, bars, laid_out=laid_out)
    units = fold_units(laid_out)
    results = []
    for fold in folds:

        def progress(done: int, before: int = fold.index * units) -> None:
            if on_progress is not None:
                on_progress(before + done)

        results.append(
            run_fold(
                request,
                bars,
                fold,
                on_progress=progress,
                should_cancel=should_cancel,
                laid_out=laid_out,
            )
        )
    return merge_folds(request, results)
