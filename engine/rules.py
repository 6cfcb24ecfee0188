"""Rules: a compiled rule planned into the arrays it needs, shared sub-expressions once, and
evaluated over shared arrays by numexpr (parsing is engine/ruletext.py and engine/compiler.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numexpr
import numpy as np
from numpy.typing import NDArray

from engine import compiler
from engine.compiler import FUNCTIONS, SERIES, Node, Template, literal, value_problem
from engine.errors import RuleError

__all__ = [
    "FUNCTIONS",
    "PAIRWISE_CALLS",
    "SERIES",
    "Rule",
    "Step",
    "Template",
    "literal",
    "parse",
    "template",
    "value_problem",
]

StepKind = Literal["series", "call", "expr"]

# numexpr (and numpy below it) take a bounded number of operands per expression; wider
# expressions are split into materialised parts.
_MAX_INPUTS = 24
# Boolean functions of two series whose value on a bar needs only that bar and the one before.
PAIRWISE_CALLS = frozenset({"crossover", "crossunder"})


@dataclass(frozen=True)
class Step:
    """One array to compute when evaluating a rule, in dependency order."""

    key: str
    kind: StepKind
    node: Node
    text: str = ""  # numexpr source of an "expr" step
    names: tuple[tuple[str, str], ...] = ()  # (numexpr variable, key of the array it binds)


@dataclass(frozen=True)
class Rule:
    """A parsed rule: the canonical text, the steps that compute it, and its warm-up."""

    source: str
    canonical: str
    steps: tuple[Step, ...]
    constant: bool | None  # the value of a rule without any series, e.g. "1 < 2"
    lookback: int  # bars at the start on which the rule is false because indicators warm up

    @property
    def numexpr_source(self) -> str:
        """The text numexpr evaluates for the whole rule (calls bound to variables v0, v1...)."""
        return self.steps[-1].text if self.steps and self.steps[-1].kind == "expr" else ""

    @property
    def calls(self) -> tuple[str, ...]:
        """Canonical text of every indicator call, each once."""
        return tuple(step.key for step in self.steps if step.kind == "call")

    @property
    def pairwise(self) -> tuple[str, str, str] | None:
        """(operator, key of a, key of b) when the whole rule is crossover(a, b),
        crossunder(a, b) or a comparison `a op b` of two arrays (series or indicator calls),
        so its value on a bar can be read off a and b there and on the bar before (see
        engine.fastpath); None for any other rule."""
        if self.constant is not None:
            return None
        node = self.steps[-1].node
        fits = (node.kind == "call" and node.op in PAIRWISE_CALLS) or (
            node.kind == "compare" and all(arg.materialised for arg in node.args)
        )
        return (node.op, node.args[0].key, node.args[1].key) if fits else None

    def operands(
        self, columns: Mapping[str, NDArray[np.float64]], cache: dict[str, NDArray[Any]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The arrays a and b of a pairwise rule, computed into `cache` unless there already."""
        _, first, second = self.pairwise or ("", "", "")
        _fill(self.steps[:-1], cache, columns)
        return cache[first], cache[second]

    def evaluate(
        self,
        columns: Mapping[str, NDArray[np.float64]],
        cache: dict[str, NDArray[Any]] | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> NDArray[np.bool_]:
        """The rule's value on every bar. `cache` (key -> array) shares indicator arrays between
        rules; on_step is called after each array actually computed."""
        size = len(columns["close"])
        if self.constant is not None:
            return np.full(size, self.constant)
        arrays: dict[str, NDArray[Any]] = {} if cache is None else cache
        _fill(self.steps, arrays, columns, on_step)
        result = np.array(arrays[self.steps[-1].key], dtype=bool)
        result[: self.lookback] = False
        return result


def _fill(
    steps: tuple[Step, ...],
    arrays: dict[str, NDArray[Any]],
    columns: Mapping[str, NDArray[np.float64]],
    on_step: Callable[[], None] | None = None,
) -> None:
    """Compute each step's array into `arrays`, skipping those already there."""
    size = len(columns["close"])
    for step in steps:
        if step.key in arrays:
            continue
        arrays[step.key] = _compute(step, arrays, columns, size)
        if on_step is not None:
            on_step()


def parse(text: str, *, field: str | None = None) -> Rule:
    """Parse and validate a rule, or raise RuleError naming the token and its 1-based column."""
    if not isinstance(text, str):
        raise RuleError(field, "a rule must be text, e.g. close > sma(close, 20)", 1, "")
    try:
        return _parse(text)
    except RuleError as error:
        raise (error.with_field(field) if field else error) from None


def template(text: str, parameters: frozenset[str], *, field: str | None = None) -> Template:
    """Parse a condition in which the names in `parameters` stand where numbers may, or raise
    RuleError as parse() does. The values are checked later, one by one (see Template.uses)."""
    if not isinstance(text, str):
        raise RuleError(field, "a rule must be text, e.g. close > sma(close, fast)", 1, "")
    try:
        return compiler.template_of(text, parameters)
    except RuleError as error:
        raise (error.with_field(field) if field else error) from None


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> Rule:
    node = compiler.node_of(text)
    if node.kind == "const":
        return Rule(text, node.key, (), bool(node.value), 0)
    planner = _Planner()
    planner.material(node)
    return Rule(text, node.key, tuple(planner.steps), None, node.lookback)


class _Planner:
    """Orders the arrays a rule needs and emits numexpr text for the parts in between."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.names: dict[str, str] = {}

    def material(self, node: Node) -> str:
        """The numexpr variable bound to node's array, planning its computation first."""
        if node.key in self.names:
            return self.names[node.key]
        if node.kind == "series":
            self.steps.append(Step(node.key, "series", node))
            name = node.key
        elif node.materialised:
            for arg in node.args:
                self.material(arg)
            for column in FUNCTIONS[node.op].columns:
                self.material(Node("series", column, False))
            self.steps.append(Step(node.key, "call", node))
            name = f"v{len(self.steps) - 1}"
        else:
            bound: dict[str, str] = {}
            text = self.inline(node, bound)
            self.steps.append(Step(node.key, "expr", node, text, tuple(sorted(bound.items()))))
            name = f"v{len(self.steps) - 1}"
        self.names[node.key] = name
        return name

    def inline(self, node: Node, bound: dict[str, str]) -> str:
        if node.materialised:
            name = self.material(node)
            bound[name] = node.key
            return name
        if node.kind == "const":
            text = compiler.number(node.value)
            return f"({text})" if node.value < 0 else text
        parts = []
        for arg in node.args:
            if len(node.leaves) > _MAX_INPUTS and len(arg.leaves) > _MAX_INPUTS // 2:
                name = self.material(arg)
                bound[name] = arg.key
                parts.append(name)
            else:
                parts.append(self.inline(arg, bound))
        if node.kind == "neg":
            return f"(-{parts[0]})"
        if node.kind == "not":
            return f"(~{parts[0]})"
        if node.kind == "call":  # an inline function, e.g. abs
            return f"{node.op}({parts[0]})"
        symbol = {"and": "&", "or": "|"}.get(node.op, node.op)
        return f"({parts[0]} {symbol} {parts[1]})"


def _compute(
    step: Step,
    arrays: dict[str, NDArray[Any]],
    columns: Mapping[str, NDArray[np.float64]],
    size: int,
) -> NDArray[Any]:
    node = step.node
    if step.kind == "series":
        return np.ascontiguousarray(columns[node.key], dtype=np.float64)
    if step.kind == "expr":
        local = {name: arrays[key] for name, key in step.names}
        with np.errstate(all="ignore"):
            value = numexpr.evaluate(step.text, local_dict=local, global_dict={}, sanitize=True)
        if value.shape != (size,):
            value = np.broadcast_to(value, (size,)).copy()
        return value  # type: ignore[no-any-return]
    function = FUNCTIONS[node.op]
    columns_read = tuple(arrays[column] for column in function.columns)
    return function(columns_read, tuple(arrays[arg.key] for arg in node.args), node.params)
