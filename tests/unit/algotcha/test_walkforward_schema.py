"""The walk-forward request and result shapes: fields named from the file's root, camelCase out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import engine
from algotcha import engine_requests, schemas
from algotcha.errors import ValidationError
from engine.synth import synth_bars
from tests.unit.algotcha.test_sweep_schema import sweep


def walkforward(walk_forward: Any = None, **changes: Any) -> dict[str, Any]:
    document = sweep(**changes)
    if walk_forward is not None:
        document["walkForward"] = walk_forward
    return document


def refused(document: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        engine_requests.parse_walkforward(document, path)
    return [(error.field, error.message) for error in caught.value.errors]


def test_a_sweep_plus_walk_forward_parses_with_anchored_false_by_default() -> None:
    request = engine_requests.parse_walkforward(walkforward({"folds": 5, "inSample": 0.7}))
    assert (request.folds, request.in_sample, request.anchored) == (5, 0.7, False)
    assert request.sweep.parameters["slow"] == (60, 80, 100)
    assert request.sweep.objective == "sharpe"


@pytest.mark.parametrize(
    ("walk_forward", "field", "message"),
    [
        (None, "walkForward", "is required"),
        ([5], "walkForward", "must be a JSON object"),
        ({"inSample": 0.7}, "walkForward.folds", "is required"),
        ({"folds": 5.5, "inSample": 0.7}, "walkForward.folds", "whole number"),
        ({"folds": 1, "inSample": 0.7}, "walkForward.folds", "folds must be 2 to 20; got 1"),
        ({"folds": 21, "inSample": 0.7}, "walkForward.folds", "folds must be 2 to 20"),
        ({"folds": 5, "inSample": 0.95}, "walkForward.inSample", "between 0.5 and 0.9"),
        ({"folds": 5, "inSample": 0.7, "anchored": 1}, "walkForward.anchored", "true or false"),
        ({"folds": 5, "inSample": 0.7, "step": 2}, "walkForward.step", "not a known field"),
    ],
)
def test_each_bad_walk_forward_setting_names_its_field(
    walk_forward: Any, field: str, message: str
) -> None:
    errors = refused(walkforward(walk_forward))
    assert errors[0][0] == field and message in errors[0][1], errors


def test_sweep_errors_are_named_from_the_root_or_under_a_given_path() -> None:
    document = walkforward({"folds": 5, "inSample": 0.7}, parameters__close=[1])
    assert refused(document)[0][0] == "parameters.close"
    assert refused(document, "walkForward")[0][0] == "walkForward.parameters.close"
    bad = walkforward({"folds": 0, "inSample": 0.7})
    assert refused(bad, "walkForward")[0][0] == "walkForward.walkForward.folds"


def test_the_result_renders_camel_case_with_the_users_parameter_names() -> None:
    document = walkforward(
        {"folds": 2, "inSample": 0.6},
        payload__timeframe="15m",
        payload__start="2021-01-01T00:00:00Z",
        payload__end="2021-01-21T00:00:00Z",
        payload__longEntry="crossover(sma(close, fast_n), sma(close, slow))",
        payload__longExit="crossunder(sma(close, fast_n), sma(close, slow))",
        parameters={"fast_n": [5, 10], "slow": [30]},
        constraint=None,
        minTrades=1,
    )
    request = engine_requests.parse_walkforward(document)
    bars = synth_bars(datetime(2021, 1, 1, tzinfo=UTC), 20 * 1440, seed=3).iloc[::15]
    rendered = schemas.render_walkforward(engine.walkforward.run(request, bars))
    assert set(rendered) == {
        "folds", "stitched", "efficiency", "profitableFolds", "parameterStability", "reading",
        "elapsedMs",
    }  # fmt: skip
    fold = rendered["folds"][0]
    assert fold["parameters"].keys() == {"fast_n", "slow"}
    assert isinstance(fold["parameters"]["slow"], int)  # 30, as written
    assert {"inSampleStart", "outOfSampleEnd", "inSample", "outOfSample", "status"} <= set(fold)
    assert fold["inSampleStart"] == "2021-01-01T00:00:00Z"
    assert "totalReturn" in fold["outOfSample"] and "finalEquity" in rendered["stitched"]["metrics"]
