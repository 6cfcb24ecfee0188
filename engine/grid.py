"""SweepRequest and its plan: the parameter grid, checked value by value, in a sharing order."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import functions, rules
from engine.errors import DataError, RuleError
from engine.request import BacktestRequest

MAX_PARAMETERS = 4
MAX_VALUES = 1000
MAX_COMBINATIONS = 10_000
# Metrics a sweep may rank by; each has a better side in metrics.BETTER, which the ranking follows.
OBJECTIVES = ("total_return", "sharpe", "sortino", "calmar", "profit_factor", "expectancy")
# Sweep parameter names that set a numeric payload field rather than a rule value.
PAYLOAD_PARAMETERS = {
    "stopLoss": "stop_loss",
    "takeProfit": "take_profit",
    "trailingStop": "trailing_stop",
    "positionSize": "position_size",
    "feeRate": "fee_rate",
    "slippage": "slippage",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
# A step divides a range "sensibly" when the count of steps is this close to a whole number.
_STEP_TOLERANCE = 1e-9


def expand(name: str, start: float, stop: float, step: float) -> tuple[float, ...]:
    """The values start, start + step, ... up to stop inclusive, or DataError naming the
    `parameters.<name>` part at fault."""
    field = f"parameters.{name}"
    for part, value in (("from", start), ("to", stop), ("step", step)):
        if not math.isfinite(value):
            raise DataError(f"{field}.{part}", f"{part} must be a finite number")
    if step <= 0:
        raise DataError(f"{field}.step", "step must be above 0, e.g. 1")
    if stop < start:
        raise DataError(
            f"{field}.to", f"the range is reversed: from {start:g} is above to {stop:g}"
        )
    steps = (stop - start) / step
    whole = round(steps)
    count = math.floor(steps + _STEP_TOLERANCE) + 1
    if count > MAX_VALUES:
        raise DataError(
            f"{field}.step",
            f"the range gives {count:,} values; the limit is {MAX_VALUES:,}: use a larger step",
        )
    if abs(steps - whole) > _STEP_TOLERANCE * max(1.0, abs(steps)):
        last = start + (count - 1) * step
        raise DataError(
            f"{field}.step",
            f"step {step:g} does not divide {start:g} to {stop:g}: it gives {count} "
            f"values ({start:g} to {last:.12g}) and never reaches {stop:g}; choose a step that "
            "does, or list the values",
        )
    return tuple(_clean(start + index * step) for index in range(count))


def _clean(value: float) -> float:
    # 0.1 + 2 * 0.05 is 0.20000000000000001: values are shown and bound into rule text.
    return float(f"{value:.12g}")


def check_grid(
    texts: Mapping[str, str], parameters: Mapping[str, Sequence[float]]
) -> dict[str, rules.Template]:
    """The rule templates, once the parameters' names, counts and every value have been
    checked against how the rules use them (DataError or RuleError naming the field)."""
    if not 1 <= len(parameters) <= MAX_PARAMETERS:
        raise DataError(
            "parameters", f"give 1 to {MAX_PARAMETERS} parameters; got {len(parameters)}"
        )
    names = frozenset(parameters)
    for name, values in parameters.items():
        _check_name(name)
        if not 1 <= len(values) <= MAX_VALUES:
            raise DataError(
                f"parameters.{name}",
                f"give 1 to {MAX_VALUES:,} values; got {len(values):,}",
            )
        if len(set(values)) != len(values):
            raise DataError(f"parameters.{name}", "a value is listed twice")
    templates = {field: rules.template(text, names, field=field) for field, text in texts.items()}
    used = {name for template in templates.values() for name in template.parameters}
    for name, values in parameters.items():
        if name not in used and name not in PAYLOAD_PARAMETERS:
            raise DataError(
                f"parameters.{name}",
                f"parameter '{name}' is never used: name it in a rule, e.g. sma(close, {name}), "
                "or sweep a payload field (" + ", ".join(PAYLOAD_PARAMETERS) + ")",
            )
        for template in templates.values():
            for parameter, use, function in template.uses:
                if parameter != name:
                    continue
                for value in values:
                    problem = rules.value_problem(use, function, value)
                    if problem is not None:
                        raise DataError(f"parameters.{name}", problem)
    return templates


@dataclass(frozen=True)
class SweepRequest:
    """A validated sweep (API.md "Sweeps and walk-forward"): a backtest payload whose rules name
    parameters, the values of each, and how to rank the combinations.

    `base` is the payload with every parameter at its first value; `rules` holds the rule texts
    as written, naming the parameters. Construction raises DataError or RuleError whose `field`
    is a payload field (e.g. "long_entry") or a sweep one ("parameters.fast", "constraint",
    "objective", "min_trades", "out_of_sample").
    """

    base: BacktestRequest
    rules: Mapping[str, str]
    parameters: Mapping[str, tuple[float, ...]]
    constraint: str | None = None
    objective: str = "sharpe"
    min_trades: int = 10
    out_of_sample: float = 0.3
    max_combinations: int = MAX_COMBINATIONS

    def __post_init__(self) -> None:
        check_grid(self.rules, self.parameters)
        for name, values in self.parameters.items():
            if name in PAYLOAD_PARAMETERS:
                for value in values:
                    self._check_payload_value(name, value)
        names = frozenset(self.parameters)
        if self.constraint is not None:
            constraint = rules.template(self.constraint, names, field="constraint")
            if constraint.reads_bars:
                raise DataError(
                    "constraint",
                    "the constraint may use parameters and numbers only, e.g. fast < slow",
                )
        if self.objective not in OBJECTIVES:
            raise DataError(
                "objective", "objective must be one of " + ", ".join(_camel(o) for o in OBJECTIVES)
            )
        if isinstance(self.min_trades, bool) or not isinstance(self.min_trades, int):
            raise DataError("min_trades", "min_trades must be a whole number")
        if self.min_trades < 0:
            raise DataError("min_trades", "min_trades must be 0 or more")
        if not 0 <= self.out_of_sample <= 0.5:
            raise DataError("out_of_sample", "out_of_sample must be between 0 and 0.5, e.g. 0.3")
        size = math.prod(len(values) for values in self.parameters.values())
        if size > self.max_combinations:
            sizes = " x ".join(str(len(v)) for v in self.parameters.values())
            raise DataError(
                "parameters",
                f"the grid has {size:,} combinations ({sizes}); the limit is "
                f"{self.max_combinations:,}: use fewer values or larger steps",
            )

    def _check_payload_value(self, name: str, value: float) -> None:
        field = f"parameters.{name}"
        changes: dict[str, Any] = {PAYLOAD_PARAMETERS[name]: value}
        try:
            dataclasses.replace(self.base, **changes)
        except DataError as error:
            raise DataError(field, f"{value:g}: {error.message}") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.parameters)

    def backtest(self, values: Mapping[str, float]) -> BacktestRequest:
        """The single backtest of one combination (RuleError if the values break a rule)."""
        names = frozenset(self.parameters)
        changes: dict[str, Any] = {
            field: rules.template(text, names).bind(values) for field, text in self.rules.items()
        }
        for name, value in values.items():
            if name in PAYLOAD_PARAMETERS:
                changes[PAYLOAD_PARAMETERS[name]] = value
        return dataclasses.replace(self.base, **changes)


def _check_name(name: str) -> None:
    field = f"parameters.{name}"
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise DataError(
            "parameters",
            f"parameter name {name!r} is not valid: use a letter then letters, digits or '_' "
            "(at most 40), e.g. fast",
        )
    if name in rules.SERIES or name in rules.FUNCTIONS:
        kind = "series" if name in rules.SERIES else "function"
        raise DataError(
            field, f"parameter name '{name}' shadows the {kind} '{name}': choose another name"
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class Plan:
    """The combinations to run, after the constraint, in index order.

    The order puts the parameter with the most values outermost (rule parameters before payload
    ones), so consecutive indices share the indicators of the outer values: a chunk of
    consecutive indices computes each indicator once, and so does a run of every chunk in turn.
    """

    names: tuple[str, ...]  # as given in the request
    combinations: tuple[tuple[float, ...], ...]  # values in `names` order
    grid: int  # combinations before the constraint

    @property
    def skipped(self) -> int:
        return self.grid - len(self.combinations)

    def values(self, index: int) -> dict[str, float]:
        return dict(zip(self.names, self.combinations[index], strict=True))

    def chunks(self, size: int) -> list[range]:
        """Consecutive index ranges of at most `size` combinations, in order."""
        count = len(self.combinations)
        return [range(start, min(start + size, count)) for start in range(0, count, size)]


def plan(request: SweepRequest) -> Plan:
    """Every combination the sweep runs, each checked by binding it into the rules, or
    DataError/RuleError before anything is computed."""
    names = request.names
    in_rules = {
        name
        for text in request.rules.values()
        for name in rules.template(text, frozenset(names)).parameters
    }
    order = sorted(
        range(len(names)),
        key=lambda i: (names[i] not in in_rules, -len(request.parameters[names[i]]), i),
    )
    constraint = (
        None
        if request.constraint is None
        else rules.template(request.constraint, frozenset(names), field="constraint")
    )
    kept: list[tuple[float, ...]] = []
    grid = 0
    for ordered in itertools.product(*(request.parameters[names[i]] for i in order)):
        grid += 1
        values = [0.0] * len(names)
        for position, value in zip(order, ordered, strict=True):
            values[position] = value
        combination = tuple(values)
        bound = dict(zip(names, combination, strict=True))
        if constraint is not None and not _holds(constraint, bound):
            continue
        kept.append(combination)
    if not kept:
        raise DataError(
            "constraint",
            f"the constraint {request.constraint!r} leaves none of the {grid:,} combinations: "
            "loosen it or change the values",
        )
    _check_rules(request, names, kept)
    return Plan(names, tuple(kept), grid)


def _holds(constraint: rules.Template, values: Mapping[str, float]) -> bool:
    try:
        rule = rules.parse(constraint.bind(values), field="constraint")
    except RuleError as error:
        raise DataError("constraint", f"constraint with {_show(values)}: {error}") from None
    return bool(rule.constant)


def _check_rules(
    request: SweepRequest, names: tuple[str, ...], kept: list[tuple[float, ...]]
) -> None:
    """Parse each distinct bound rule that can break for a combination of valid values (a MACD
    whose fast period is not below its slow one, a division by a zero value), once."""
    for field, text in request.rules.items():
        template = rules.template(text, frozenset(names))
        risky = any(
            use == "number" or function in functions.ORDERED_PERIODS
            for _, use, function in template.uses
        )
        if not risky:
            continue  # valid periods and k values (checked one by one) always bind
        seen: set[str] = set()
        for combination in kept:
            values = dict(zip(names, combination, strict=True))
            bound = template.bind(values)
            if bound in seen:
                continue
            seen.add(bound)
            try:
                rules.parse(bound, field=field)
            except RuleError as error:
                raise DataError("parameters", f"{field} with {_show(values)}: {error}") from None


def _show(values: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in values.items())
