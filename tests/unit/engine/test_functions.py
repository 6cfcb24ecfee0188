"""The function table: each entry parses from its example, computes what its indicator does,
and its warm-up is exactly the undefined head of the result."""

from __future__ import annotations

import numpy as np
import pytest

from engine import functions, indicators, rules

EXAMPLES = {
    name: function.example or f"{name}(close, 14)"
    for name, function in functions.FUNCTIONS.items()
    if not function.boolean and not function.inline
}


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    return {
        "open": close * 0.999,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.random(400) + 1,
    }


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_entry_computes_its_indicator_with_its_warm_up(
    name: str, columns: dict[str, np.ndarray]
) -> None:
    function = functions.FUNCTIONS[name]
    rule = rules.parse(f"{EXAMPLES[name]} > -1e9")
    cache: dict[str, np.ndarray] = {}
    rule.evaluate(columns, cache)
    node = next(step.node for step in rule.steps if step.kind == "call")
    direct = getattr(indicators, name)
    args = [columns[c] for c in function.columns] + [columns["close"]] * (function.kinds.count("x"))
    kinds = [k for k in function.kinds if k != "x"]
    values = [int(p) if k == "n" else p for p, k in zip(node.params, kinds, strict=True)]
    expected = direct(*args, *values)
    np.testing.assert_array_equal(cache[node.key], expected)
    warmup = function.warmup(node.params)
    assert np.isnan(expected[:warmup]).all() and not np.isnan(expected[warmup])
    assert rule.lookback == warmup


def test_boolean_functions_warm_up_one_bar(columns: dict[str, np.ndarray]) -> None:
    for name in ("crossover", "crossunder"):
        function = functions.FUNCTIONS[name]
        assert function.boolean and function.kinds == ("x", "x")
        assert rules.parse(f"{name}(close, open)").lookback == 1


@pytest.mark.parametrize("path", ["docs/api.md", "algotcha/web/index.html"])
def test_every_function_is_documented(path: str) -> None:
    """In the API document and in the web page's indicator reference."""
    from pathlib import Path

    doc = (Path(__file__).parents[3] / path).read_text()
    for function in functions.FUNCTIONS.values():
        assert f"{function.name}(" in doc, function.name
