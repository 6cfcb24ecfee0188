"""The sweep request: each bad input of the issue is a 422 naming the field, before any bars."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from algotcha import engine_requests, exports, schemas
from algotcha.errors import ValidationError

SWEEP: dict[str, Any] = {
    "payload": {
        "strategyName": "SMA grid",
        "symbol": "BTCUSDT",
        "timeframe": "1m",
        "start": "2021-01-01T00:00:00Z",
        "end": "2025-12-31T00:00:00Z",
        "initialCapital": 10000,
        "feeRate": 0.001,
        "longEntry": "crossover(sma(close, fast), sma(close, slow))",
        "longExit": "crossunder(sma(close, fast), sma(close, slow))",
    },
    "parameters": {
        "fast": {"from": 5, "to": 50, "step": 5},
        "slow": [60, 80, 100],
        "stopLoss": [0.01, 0.02],
    },
    "constraint": "fast < slow",
    "objective": "sharpe",
    "minTrades": 10,
    "outOfSample": 0.3,
}


def sweep(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(SWEEP)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = document
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    return document


def refused(document: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        engine_requests.parse_sweep(document, **kwargs)
    error = caught.value.errors[0]
    return error.field, error.message


def test_the_api_example_parses_into_a_planned_grid() -> None:
    request = engine_requests.parse_sweep(SWEEP)
    assert request.parameters["fast"] == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert request.parameters["stopLoss"] == (0.01, 0.02)
    assert request.objective == "sharpe"
    assert request.base.long_entry == "crossover(sma(close, 5), sma(close, 60))"
    assert request.base.stop_loss == 0.01
    single = request.backtest({"fast": 20, "slow": 80, "stopLoss": 0.02})
    assert single.long_exit == "crossunder(sma(close, 20), sma(close, 80))"
    assert single.stop_loss == 0.02


def test_defaults_apply() -> None:
    request = engine_requests.parse_sweep(
        sweep(constraint=None, objective=None, minTrades=None, outOfSample=None)
    )
    assert (request.objective, request.min_trades, request.out_of_sample) == ("sharpe", 10, 0.3)
    assert engine_requests.parse_sweep(sweep(objective="profitFactor")).objective == "profit_factor"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"parameters": {n: [1, 2] for n in ("a", "b", "c", "d", "e")}},
            "sweep.parameters",
            "1 to 4 parameters",
        ),
        ({"parameters__fast": []}, "sweep.parameters.fast", "1 to 1,000"),
        ({"parameters__fast": {"from": 50, "to": 5, "step": 5}}, "sweep.parameters.fast.to",
         "reversed"),
        ({"parameters__fast": {"from": 5, "to": 50, "step": 0}}, "sweep.parameters.fast.step",
         "above 0"),
        ({"parameters__fast": {"from": 5, "to": 50, "step": 7}}, "sweep.parameters.fast.step",
         "gives 7 values"),
        ({"parameters__fast": {"from": 1, "to": 2000, "step": 1}}, "sweep.parameters.fast.step",
         "2,000 values; the limit is 1,000"),
        ({"parameters__fast": {"from": 1, "to": 1e300, "step": 1e-300}},
         "sweep.parameters.fast.step", "more values than can be counted; the limit is 1,000"),
        ({"parameters__slow": list(range(60, 1060))}, "sweep.parameters",
         "20,000 combinations (10 x 1000 x 2); the limit is 10,000"),
        ({"constraint": "fast > 1000"}, "sweep.constraint", "leaves none of the 60"),
        ({"parameters__unused": [1, 2]}, "sweep.parameters.unused", "never used"),
        ({"parameters__close": [1, 2]}, "sweep.parameters.close", "shadows the series"),
        ({"parameters__sma": [1, 2]}, "sweep.parameters.sma", "shadows the function"),
        ({"parameters__fast": [5, 7.5]}, "sweep.parameters.fast", "whole number"),
        ({"parameters__fast": [0, 5]}, "sweep.parameters.fast", "from 1 to 10000"),
        ({"parameters__fast": [5, "x"]}, "sweep.parameters.fast[1]", "must be a number"),
        ({"parameters__fast": 5}, "sweep.parameters.fast", "{from, to, step}"),
        ({"parameters__fast": {"from": 5, "to": 9}}, "sweep.parameters.fast.step", "required"),
        ({"parameters__stopLoss": [0.01, 2]}, "sweep.parameters.stopLoss", "between 0 and 1"),
        ({"parameters__fast": [5, 5]}, "sweep.parameters.fast", "twice"),
        ({"constraint": "fast < close"}, "sweep.constraint", "parameters and numbers only"),
        ({"constraint": "fast <"}, "sweep.constraint", "syntax error"),
        ({"objective": "luck"}, "sweep.objective", "must be one of"),
        ({"outOfSample": 0.7}, "sweep.outOfSample", "between 0 and 0.5"),
        ({"minTrades": -1}, "sweep.minTrades", "0 or more"),
        ({"minTrades": 2.5}, "sweep.minTrades", "whole number"),
        ({"payload__longEntry": "crossover(sma(close, fats), sma(close, slow))"},
         "sweep.payload.longEntry", "unknown name 'fats'"),
        ({"payload__initialCapital": -5}, "sweep.payload.initialCapital", "greater than 0"),
        ({"extra": 1}, "sweep.extra", "not a known field"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(changes: dict[str, Any], field: str, words: str) -> None:
    got_field, message = refused(sweep(**changes))
    assert got_field == field
    assert words in message


def test_a_value_that_breaks_one_combination_is_refused_with_its_values() -> None:
    document = sweep(
        payload__longEntry="macd(close, fast, slow) > 0",
        payload__longExit=None,
        parameters={"fast": [12, 30], "slow": [26]},
        constraint=None,
    )
    field, message = refused(document)
    assert field == "sweep.parameters"
    assert "fast=30, slow=26" in message and "not shorter than slow" in message


def test_the_limit_comes_from_settings() -> None:
    field, message = refused(SWEEP, max_combinations=50)
    assert field == "sweep.parameters" and "the limit is 50" in message


def test_rendering_keeps_parameter_names_and_camel_cases_the_rest() -> None:
    from engine import overfitting
    from engine import sweep as engine_sweep

    row = engine_sweep.SweepRow(
        3,
        {"rsi_low": 30.0, "stopLoss": 0.01},
        dict.fromkeys(engine_sweep.SUMMARY_KEYS, 1.0),
        None,
        1.0,
        np.zeros(0),
    )
    result = engine_sweep.SweepResult(
        5, 4, 1, "total_return", 12.0, (row,), overfitting.Verdict(4, 0.5, 0.25, "x."), (row,)
    )
    rendered = schemas.render_sweep(result)
    assert rendered["objective"] == "totalReturn"
    assert rendered["top"][0]["parameters"] == {"rsi_low": 30, "stopLoss": 0.01}
    assert set(rendered["top"][0]["inSample"]) == {
        "totalReturn", "sharpe", "sortino", "maxDrawdown", "winRate", "profitFactor", "trades",
        "exposure",
    }  # fmt: skip
    assert rendered["overfitting"] == {
        "trials": 4, "deflatedSharpe": 0.5, "pbo": 0.25, "reading": "x.",
    }  # fmt: skip
    assert set(rendered) == {
        "combinations", "evaluated", "skipped", "objective", "elapsedMs", "top", "overfitting",
    }  # fmt: skip
    lines = exports.render_grid_csv(result).splitlines()
    assert lines[0].startswith("index,rsi_low,stopLoss,is_totalReturn,is_sharpe")
    assert lines[0].endswith("oos_trades,oos_exposure")
    assert lines[1].startswith("3,30,0.01,1.0,")
