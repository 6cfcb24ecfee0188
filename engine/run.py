"""backtest(), check() and run(): the engine's entry points, from a request to a result."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from engine import metrics, result, tearsheet
from engine.errors import Cancelled, DataError
from engine.request import BacktestRequest
from engine.resample import COLUMNS, Columns
from engine.result import BacktestResult
from engine.simulate import Flags, Params, Signals, simulate
from engine.store import BarStore, DatasetInfo

# Share of the progress bar each phase ends at.
_READY, _SIGNALS, _SIMULATED, _MEASURED = 5, 50, 85, 95
_PROGRESS_STEP = 5


class _Progress:
    """Reports 0..100, never backwards and never more than 5 apart, checking for a cancel at
    each report."""

    def __init__(
        self,
        on_progress: Callable[[int], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.done = -1

    def to(self, percent: float) -> None:
        target = min(100, int(percent))
        while self.done < target:
            self.done = min(target, (self.done // _PROGRESS_STEP + 1) * _PROGRESS_STEP)
            if self.on_progress is not None:
                self.on_progress(self.done)
            if self.should_cancel is not None and self.should_cancel():
                raise Cancelled()


def run(
    request: BacktestRequest,
    bars: pd.DataFrame,
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> BacktestResult:
    """Backtest `request` on `bars` (tz-aware UTC DatetimeIndex, float64 open high low close
    volume, already at request.timeframe and within [start, end]).

    Calls on_progress with 0..100 (monotone, at most 5 apart) and should_cancel at the same
    points, raising Cancelled when it returns True. Rules see only bars up to their own close.
    """
    started = time.perf_counter()
    progress = _Progress(on_progress, should_cancel)
    progress.to(0)
    columns, index = _columns(bars)
    size = len(index)
    parsed = request.parsed_rules()
    need = required_bars(request)
    if size < need:
        raise DataError(
            "start",
            f"the rules need at least {need} bars of {request.timeframe} (look-back "
            f"{need - 2} plus a signal and a fill) but the range holds {size}: choose an "
            "earlier start, a later end or a shorter timeframe",
        )
    progress.to(_READY)

    cache: dict[str, np.ndarray] = {}
    total = len({step.key for rule in parsed.values() for step in rule.steps}) or 1
    computed = 0

    def step_done() -> None:
        nonlocal computed
        computed += 1
        progress.to(_READY + (_SIGNALS - _READY) * computed / total)

    values = {field: rule.evaluate(columns, cache, step_done) for field, rule in parsed.items()}
    progress.to(_SIGNALS)

    signals = signals_of(values)
    params = params_of(request)
    simulation = simulate(
        columns["open"],
        columns["high"],
        columns["low"],
        columns["close"],
        signals,
        params,
        on_tick=lambda share: progress.to(_SIGNALS + (_SIMULATED - _SIGNALS) * share),
    )
    progress.to(_SIMULATED)

    span = (index[-1] - index[0]) / timedelta(minutes=1) + request.bar_minutes
    measured = metrics.compute(
        simulation,
        columns["close"],
        initial_capital=request.initial_capital,
        bar_minutes=request.bar_minutes,
        span_minutes=span,
    )
    sheet = tearsheet.compute(
        simulation.equity,
        index,
        initial_capital=request.initial_capital,
        pnl=simulation.pnl,
        return_pct=simulation.return_pct,
        entry_bar=simulation.entry_bar,
        exit_bar=simulation.exit_bar,
    )
    progress.to(_MEASURED)
    trades = result.TradeList(simulation, index)
    curve = result.equity_curve(simulation.equity, index)
    progress.to(100)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return BacktestResult(measured, trades, curve, size, elapsed_ms, sheet)


def signals_of(values: Mapping[str, Flags]) -> Signals:
    """The simulation's signals from rule values by request field."""
    return Signals(
        values.get("long_entry"),
        values.get("long_exit"),
        values.get("short_entry"),
        values.get("short_exit"),
    )


def params_of(request: BacktestRequest) -> Params:
    """The simulation's parameters of a request."""
    return Params(
        request.initial_capital,
        request.fee_rate,
        request.slippage,
        request.position_size,
        request.stop_loss,
        request.take_profit,
        request.trailing_stop,
    )


def backtest(
    request: BacktestRequest,
    store: BarStore,
    *,
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> BacktestResult:
    """The whole of one backtest on stored data: check(), load the bars, run().

    Raises DataError/RuleError for input the data cannot serve, Cancelled as run() does.
    """
    request = check(request, store)
    bars = store.load(request.symbol, request.timeframe, request.start, request.end)
    return run(request, bars, on_progress=on_progress, should_cancel=should_cancel)


def required_bars(request: BacktestRequest) -> int:
    """Bars the rules need: the longest warm-up, one bar to signal on and one to fill at."""
    return max(rule.lookback for rule in request.parsed_rules().values()) + 2


def check(request: BacktestRequest, store: BarStore) -> BacktestRequest:
    """Validate `request` against the stored data, from metadata only (no bars are loaded).

    Unknown symbol -> DataError(field="symbol"). The range is clipped to the stored one and the
    clipped request returned; an empty overlap, or an estimate of fewer bars than the rules'
    longest look-back needs, -> DataError(field="start").
    """
    info = store.info(request.symbol)
    if info is None:
        known = [dataset.symbol for dataset in store.datasets()]
        listing = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise DataError(
            "symbol",
            f"unknown symbol {request.symbol!r}: available: "
            + (listing or "none (import data first)"),
        )
    start = max(request.start, info.start)
    end = min(request.end, info.end)
    if start >= end:
        raise DataError(
            "start",
            f"no {request.symbol} data between {_iso(request.start)} and {_iso(request.end)}: "
            f"the stored data covers {_iso(info.start)} to {_iso(info.end)}",
        )
    estimate = _estimate_bars(info, start, end, request.bar_duration)
    need = required_bars(request)
    if estimate < need:
        raise DataError(
            "start",
            f"the rules need at least {need} bars of {request.timeframe} but "
            f"{_iso(start)} to {_iso(end)} holds about {estimate}: choose an earlier start, "
            "a later end or a shorter timeframe",
        )
    if (start, end) == (request.start, request.end):
        return request
    return dataclasses.replace(request, start=start, end=end)


def estimate_bars(request: BacktestRequest, store: BarStore) -> int:
    """About how many bars `request` (checked) runs over, from the stored metadata only."""
    info = store.info(request.symbol)
    if info is None:
        raise DataError("symbol", f"unknown symbol {request.symbol!r}")
    return _estimate_bars(info, request.start, request.end, request.bar_duration)


def _estimate_bars(info: DatasetInfo, start: datetime, end: datetime, bar: timedelta) -> int:
    """Complete bars of length `bar` in [start, end), capped by the 1-minute bars expected there
    (the stored count spread evenly over the stored span)."""
    epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    first = epoch + math.ceil((start - epoch) / bar) * bar
    bins = max(0, (end - first) // bar)
    stored = info.bars * ((end - start) / (info.end - info.start))
    return int(min(bins, math.ceil(stored)))


def _columns(bars: pd.DataFrame) -> tuple[Columns, pd.DatetimeIndex]:
    """The float64 columns and the UTC index of `bars`, or DataError if they are unusable."""
    if not isinstance(bars, pd.DataFrame) or not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError(None, "bars must be a DataFrame indexed by UTC times (DatetimeIndex)")
    missing = [name for name in COLUMNS if name not in bars.columns]
    if missing:
        raise DataError(None, "bars lack the column(s) " + ", ".join(missing))
    if len(bars) == 0:
        raise DataError("start", "there are no bars between start and end")
    index = bars.index
    if index.tz is None:
        raise DataError(None, "bar times must be timezone-aware UTC")
    index = index.tz_convert("UTC")
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        raise DataError(None, "bar times must increase strictly (sorted, no duplicates)")
    try:
        columns = {name: np.ascontiguousarray(bars[name].to_numpy(np.float64)) for name in COLUMNS}
    except (TypeError, ValueError) as error:
        raise DataError(None, f"bar values must be numbers: {error}") from None
    for name, values in columns.items():
        if not np.isfinite(values.sum()):
            at = index[int(np.argmax(~np.isfinite(values)))]
            raise DataError(
                None,
                f"the {name} of the bar at {_iso(at)} is missing or infinite: fill or drop such "
                "bars",
            )
    for name in ("open", "high", "low", "close"):
        if columns[name].min() <= 0:
            at = index[int(np.argmax(columns[name] <= 0))]
            raise DataError(None, f"the {name} of the bar at {_iso(at)} is not above 0")
    return columns, index


def _iso(moment: datetime | pd.Timestamp) -> str:
    return moment.isoformat().replace("+00:00", "Z")
