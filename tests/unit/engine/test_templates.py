"""Rule templates: parameter names where numbers stand, and binding values into them."""

from __future__ import annotations

import pytest

from engine import RuleError, rules

NAMES = frozenset({"fast", "slow", "level", "width"})


def test_a_template_records_how_each_parameter_is_used() -> None:
    template = rules.template(
        "crossover(sma(close, fast), ema(close, slow)) & (rsi(close, 14) < level)"
        " | (close > bb_upper(close, 20, width))",
        NAMES,
    )
    assert set(template.uses) == {
        ("fast", "period", "sma"),
        ("slow", "period", "ema"),
        ("level", "number", ""),
        ("width", "k", "bb_upper"),
    }
    assert template.reads_bars


def test_binding_writes_values_that_parse_as_literals() -> None:
    template = rules.template("(sma(close, fast) - close) > level * 2", NAMES)
    text = template.bind({"fast": 20.0, "level": -1.5})
    assert text == "(sma(close, 20) - close) > (-1.5) * 2"
    assert rules.parse(text).canonical == "((sma(close, 20) - close) > -3.0)"


def test_binding_keeps_the_layout_around_the_names() -> None:
    template = rules.template("  close >\n sma(close,slow)", NAMES)
    assert template.bind({"slow": 30}) == "  close >\n sma(close,30)"


def test_a_constraint_of_parameters_only_does_not_read_bars() -> None:
    constraint = rules.template("(fast < slow) & (slow - fast > 10)", NAMES)
    assert not constraint.reads_bars
    assert rules.parse(constraint.bind({"fast": 5, "slow": 30})).constant is True
    assert rules.parse(constraint.bind({"fast": 25, "slow": 30})).constant is False


def test_a_template_is_checked_like_a_rule_with_columns() -> None:
    with pytest.raises(RuleError) as caught:
        rules.template("sma(close, fats) > close", NAMES, field="long_entry")
    assert (caught.value.field, caught.value.column, caught.value.token) == (
        "long_entry",
        12,
        "fats",
    )
    assert "fast, level, slow, width" in str(caught.value)


@pytest.mark.parametrize(
    ("use", "value", "words"),
    [
        ("period", 7.5, "whole number"),
        ("period", 0, "from 1 to 10000"),
        ("k", 0, "above 0"),
        ("number", float("inf"), "finite"),
    ],
)
def test_values_are_checked_for_their_use(use: str, value: float, words: str) -> None:
    problem = rules.value_problem(use, "sma", value)
    assert problem is not None and words in problem
    assert rules.value_problem(use, "sma", 14) is None
