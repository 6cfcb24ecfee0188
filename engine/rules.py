"""Rule expressions: an ast whitelist, compiled once, evaluated over shared arrays by numexpr."""

from __future__ import annotations

import ast
import difflib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numexpr
import numpy as np
from numpy.typing import NDArray

from engine import functions
from engine.errors import RuleError

MAX_CHARS = 1000
MAX_NODES = 200
MAX_DEPTH = 64
MAX_PERIOD = 10_000
MAX_LITERAL = 1e12
MAX_K = 100.0
SERIES = ("open", "high", "low", "close", "volume")

# The functions, their signatures, warm-ups and computations: engine/functions.py.
FUNCTIONS = functions.FUNCTIONS
_USES = {"n": "period", "k": "k"}  # how a parameter standing for an argument kind is used
NodeKind = Literal["series", "const", "param", "neg", "arith", "compare", "logic", "not", "call"]
StepKind = Literal["series", "call", "expr"]

# numexpr (and numpy below it) take a bounded number of operands per expression; wider
# expressions are split into materialised parts.
_MAX_INPUTS = 24
# Boolean functions of two series whose value on a bar needs only that bar and the one before.
PAIRWISE_CALLS = frozenset({"crossover", "crossunder"})

_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_BITWISE = {ast.BitAnd: "&", ast.BitOr: "|"}
_FORBIDDEN_BINARY = {
    ast.Pow: ("**", "multiply instead, e.g. x * x"),
    ast.Mod: ("%", "use + - * / only"),
    ast.FloorDiv: ("//", "use / for division"),
    ast.LShift: ("<<", "use + - * / only"),
    ast.RShift: (">>", "use + - * / only"),
    ast.BitXor: ("^", "use & for 'and' and | for 'or' between conditions"),
    ast.MatMult: ("@", "use * for multiplication"),
}
_COMPARISONS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_FORBIDDEN_COMPARISONS = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
# Friendly names (and the token to report) for syntax outside the language.
_FORBIDDEN_SYNTAX: dict[type[ast.AST], tuple[str, str]] = {
    ast.Lambda: ("lambda", "lambda"),
    ast.IfExp: ("if/else expression", "if"),
    ast.ListComp: ("list comprehension", "["),
    ast.SetComp: ("set comprehension", "{"),
    ast.DictComp: ("dict comprehension", "{"),
    ast.GeneratorExp: ("generator expression", "("),
    ast.List: ("list", "["),
    ast.Tuple: ("tuple", "("),
    ast.Set: ("set", "{"),
    ast.Dict: ("dict", "{"),
    ast.Subscript: ("indexing with []", "["),
    ast.Starred: ("'*' unpacking", "*"),
    ast.NamedExpr: ("assignment ':='", ":="),
    ast.JoinedStr: ("f-string", "f"),
    ast.Await: ("await", "await"),
    ast.Yield: ("yield", "yield"),
    ast.YieldFrom: ("yield", "yield"),
    ast.Slice: ("slice", ":"),
}
_HINTS = {
    ast.Subscript: "use prev(x, n) for the value n bars ago",
    ast.IfExp: "combine conditions with and / or",
}


@dataclass(frozen=True, eq=False)
class Node:
    """One node of a compiled rule. Nodes with equal `key` have equal values."""

    kind: NodeKind
    key: str  # canonical text, e.g. "(sma(close, 20) > close)"
    boolean: bool
    op: str = ""  # operator symbol or function name
    args: tuple[Node, ...] = ()
    params: tuple[float, ...] = ()  # period and k literals of a call
    value: float = 0.0  # of a const (1.0 / 0.0 for a boolean const)
    lookback: int = 0  # leading bars on which the value is NaN (warm-up)
    leaves: frozenset[str] = frozenset()  # materialised keys referenced when emitted inline

    @property
    def materialised(self) -> bool:
        return self.kind == "series" or (self.kind == "call" and not FUNCTIONS[self.op].inline)


@dataclass(frozen=True)
class Step:
    """One array to compute when evaluating a rule, in dependency order."""

    key: str
    kind: StepKind
    node: Node
    text: str = ""  # numexpr source of an "expr" step
    names: tuple[tuple[str, str], ...] = ()  # (numexpr variable, key of the array it binds)


@dataclass(frozen=True)
class Template:
    """A rule or constraint that names sweep parameters where numbers stand.

    `uses` says how each parameter is used (a period, a band width k, or a plain number), so each
    value can be checked before any combination is run; `bind` writes the values in.
    """

    source: str
    uses: tuple[tuple[str, str, str], ...]  # (parameter, "period" | "k" | "number", function)
    spots: tuple[tuple[int, int, str], ...]  # (start, end, parameter) character spans in source
    reads_bars: bool  # refers to a series or an indicator (a constraint may not)

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(name for name, _, _ in self.uses)

    def bind(self, values: Mapping[str, float]) -> str:
        """The source with every parameter replaced by its value."""
        parts: list[str] = []
        at = 0
        for start, end, name in self.spots:
            parts.append(self.source[at:start])
            parts.append(literal(values[name]))
            at = end
        parts.append(self.source[at:])
        return "".join(parts)


def literal(value: float) -> str:
    """A number as rule text: whole numbers without a decimal point (periods must be integer
    literals), negatives in brackets so they bind like one token."""
    text = str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)
    return f"({text})" if value < 0 else text


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


def _error(column: int, what: str, token: str, hint: str = "") -> RuleError:
    """A RuleError reading "<what> at column <n>[: <hint>]"."""
    return RuleError(
        None, f"{what} at column {column}" + (f": {hint}" if hint else ""), column, token
    )


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
        return _template(text, parameters)
    except RuleError as error:
        raise (error.with_field(field) if field else error) from None


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> Rule:
    body, indent, tree = _syntax(text)
    compiler = _Compiler(body, indent)
    node = _condition(compiler, tree, body, indent)
    if node.kind == "const":
        return Rule(text, node.key, (), bool(node.value), 0)
    planner = _Planner()
    planner.material(node)
    return Rule(text, node.key, tuple(planner.steps), None, node.lookback)


@functools.lru_cache(maxsize=64)
def _template(text: str, parameters: frozenset[str]) -> Template:
    body, indent, tree = _syntax(text)
    compiler = _Compiler(body, indent, parameters)
    node = _condition(compiler, tree, body, indent)
    spots = tuple(sorted(compiler.spots))
    return Template(text, tuple(sorted(compiler.uses)), spots, bool(node.leaves))


def _condition(compiler: _Compiler, tree: ast.Expression, body: str, indent: int) -> Node:
    node = compiler.expression(tree.body)
    if not node.boolean:
        what, hint = "rule is a number, not a condition", "compare it, e.g. close > sma(close, 20)"
        raise _error(indent + 1, what, body.split(" ", 1)[0], hint)
    return node


def _syntax(text: str) -> tuple[str, int, ast.Expression]:
    """The rule's one-line body, the indent stripped before it, and its checked ast."""
    if len(text) > MAX_CHARS:
        message = f"rule is {len(text)} characters long; the limit is {MAX_CHARS}: simplify it"
        raise RuleError(None, message, MAX_CHARS + 1, "")
    for index, char in enumerate(text):
        if not char.isascii() or (not char.isprintable() and char not in " \t\r\n"):
            what = f"character {char!r} is not allowed"
            raise _error(index + 1, what, char, "rules are plain ASCII")
    if "#" in text:
        raise _error(text.index("#") + 1, "comment '#' is not allowed", "#")
    flat = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    body = flat.lstrip(" ")
    indent = len(flat) - len(body)
    if not body.strip():
        raise RuleError(
            None, "rule is empty: write a condition, e.g. close > sma(close, 20)", 1, ""
        )
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as error:
        offset = error.offset or 0
        # The parser reports a rule that ends too early at offset 0 or past its end.
        column = indent + (offset if 1 <= offset <= len(body) else len(body) + 1)
        token = _word_at(flat, column - 1)
        reason = error.msg if error.msg != "invalid syntax" else "check operators and brackets"
        raise _error(column, "syntax error", token, reason) from None
    except (RecursionError, MemoryError, ValueError):
        message = f"rule is nested too deeply (limit {MAX_DEPTH} levels)"
        raise RuleError(None, message, 1, body[:1]) from None
    _check_size(tree.body, indent)
    return body, indent, tree


def value_problem(use: str, function: str, value: float) -> str | None:
    """Why `value` cannot stand where a template uses a parameter (see Template.uses), or None."""
    if not math.isfinite(value) or abs(value) > MAX_LITERAL:
        return f"{value!r} is not a finite number up to 1e12"
    if use == "period" and not (float(value).is_integer() and 1 <= value <= MAX_PERIOD):
        return (
            f"{value:g} is used as the period of {function}() and must be a whole number "
            f"from 1 to {MAX_PERIOD}"
        )
    if use == "k" and not 0 < value <= MAX_K:
        return f"{value:g} is used as k of {function}() and must be above 0 and at most {MAX_K:g}"
    return None


def _word_at(text: str, index: int) -> str:
    if index >= len(text):
        return ""
    end = index
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[index:end] or text[index]


def _check_size(root: ast.expr, indent: int) -> None:
    """Count nodes and depth with an explicit stack, so hostile input cannot recurse."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)):
            continue
        count += 1
        column = indent + getattr(node, "col_offset", 0) + 1
        if count > MAX_NODES:
            raise _error(column, f"rule has more than {MAX_NODES} parts", "", "simplify it")
        if depth > MAX_DEPTH:
            raise _error(column, f"rule is nested more than {MAX_DEPTH} levels deep", "")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _number(value: float) -> str:
    return repr(float(value))


def _const(value: float) -> Node:
    return Node("const", _number(value), False, value=value)


def _truth(value: bool) -> Node:
    # Keyed by a comparison, so a constant rule's canonical text parses back to itself.
    key = "(1.0 > 0.0)" if value else "(1.0 < 0.0)"
    return Node("const", key, True, value=1.0 if value else 0.0)


class _Compiler:
    """Turns the checked ast into Nodes, folding constants and checking types."""

    def __init__(self, body: str, indent: int, parameters: frozenset[str] = frozenset()) -> None:
        self.body = body  # the parsed text: one line, ast offsets index into it
        self.indent = indent  # characters stripped before it, added back to every column
        self.parameters = parameters  # sweep parameter names that may stand for numbers
        self.uses: set[tuple[str, str, str]] = set()
        self.spots: list[tuple[int, int, str]] = []

    def parameter(self, node: ast.expr, use: str, function: str) -> str | None:
        """The parameter `node` names (recording how it is used), or None."""
        if not (isinstance(node, ast.Name) and node.id in self.parameters):
            return None
        start = self.indent + node.col_offset
        self.spots.append((start, start + len(node.id), node.id))
        self.uses.add((node.id, use, function))
        return node.id

    def fail(self, node: ast.AST, what: str, token: str, hint: str = "") -> NoReturn:
        column = self.indent + getattr(node, "col_offset", 0) + 1
        self.fail_at(column, what, token, hint)

    def fail_at(self, column: int, what: str, token: str, hint: str = "") -> NoReturn:
        raise _error(column, what, token, hint)

    def operator_column(self, left: ast.expr, right: ast.expr, symbol: str) -> int:
        start = left.end_col_offset or 0
        found = self.body.find(symbol, start, right.col_offset)
        return self.indent + (found if found >= 0 else start) + 1

    def expression(self, node: ast.expr) -> Node:
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.BoolOp):
            return self.boolean(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            self.fail(
                node,
                f"attribute access '.{node.attr}'",
                node.attr,
                "use a function such as sma(close, 20) instead",
            )
        kind, token = _FORBIDDEN_SYNTAX.get(type(node), (type(node).__name__, ""))
        hint = _HINTS.get(type(node), "only series, numbers, operators and the listed functions")
        self.fail(node, f"{kind} is not allowed", token, hint)

    def name(self, node: ast.Name) -> Node:
        if self.parameter(node, "number", "") is not None:
            return Node("param", node.id, False)
        if node.id in SERIES:
            return Node("series", node.id, False, leaves=frozenset({node.id}))
        if node.id in FUNCTIONS:
            self.fail(
                node,
                f"function '{node.id}' used without arguments",
                node.id,
                f"call it as {FUNCTIONS[node.id].signature}",
            )
        self.fail(node, f"unknown name '{node.id}'", node.id)

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or value is None:
            self.fail(node, f"'{value}' is not allowed", str(value), "write a comparison instead")
        if isinstance(value, (str, bytes)):
            self.fail(
                node,
                f"text {value!r} is not allowed",
                repr(value)[:20],
                "rules work on numbers and series",
            )
        if not isinstance(value, (int, float)):
            self.fail(node, f"literal {value!r} is not allowed", repr(value)[:20], "use a number")
        if not math.isfinite(value) or abs(value) > MAX_LITERAL:
            self.fail(node, f"number {value!r:.20} is too large (limit 1e12)", str(value)[:20])
        return _const(float(value))

    def numeric(self, node: ast.expr, what: str, token: str) -> Node:
        result = self.expression(node)
        if result.boolean:
            self.fail(node, what, token, "compare numbers, e.g. (close > open)")
        return result

    def condition(self, node: ast.expr, what: str, token: str, hint: str) -> Node:
        result = self.expression(node)
        if not result.boolean:
            self.fail(node, what, token, hint)
        return result

    def unary(self, node: ast.UnaryOp) -> Node:
        if isinstance(node.op, ast.UAdd):
            return self.numeric(node.operand, "unary '+' needs a number", "+")
        if isinstance(node.op, ast.USub):
            operand = self.numeric(node.operand, "unary '-' needs a number", "-")
            if operand.kind == "const":
                return _const(-operand.value)
            return Node(
                "neg",
                f"(-{operand.key})",
                False,
                args=(operand,),
                lookback=operand.lookback,
                leaves=operand.leaves,
            )
        symbol = "not" if isinstance(node.op, ast.Not) else "~"
        operand = self.condition(
            node.operand,
            f"'{symbol}' needs a condition",
            symbol,
            f"write {symbol} (close > open)",
        )
        if operand.kind == "const":
            return _truth(not operand.value)
        return Node(
            "not",
            f"(not {operand.key})",
            True,
            args=(operand,),
            lookback=operand.lookback,
            leaves=operand.leaves,
        )

    def binary(self, node: ast.BinOp) -> Node:
        if type(node.op) in _FORBIDDEN_BINARY:
            symbol, hint = _FORBIDDEN_BINARY[type(node.op)]
            column = self.operator_column(node.left, node.right, symbol)
            self.fail_at(column, f"operator '{symbol}' is not allowed", symbol, hint)
        if type(node.op) in _BITWISE:
            symbol = _BITWISE[type(node.op)]
            column = self.operator_column(node.left, node.right, symbol)
            left = self.expression(node.left)
            right = self.expression(node.right)
            if not (left.boolean and right.boolean):
                self.fail_at(
                    column,
                    f"'{symbol}' is applied to numbers",
                    symbol,
                    "use parentheses: (a < b) & (c > d)",
                )
            return _logic("and" if symbol == "&" else "or", left, right)
        symbol = _ARITHMETIC[type(node.op)]
        column = self.operator_column(node.left, node.right, symbol)
        left = self.expression(node.left)
        right = self.expression(node.right)
        if left.boolean or right.boolean:
            self.fail_at(
                column,
                f"arithmetic '{symbol}' on a condition",
                symbol,
                "arithmetic works on numbers; join conditions with and / or",
            )
        if right.kind == "const" and symbol == "/" and right.value == 0.0:
            self.fail_at(column, "division by zero", symbol, "divide by a non-zero number")
        if left.kind == "const" and right.kind == "const":
            with np.errstate(all="ignore"):
                value = float(_fold(symbol, left.value, right.value))
            # A folded constant obeys the literal limit, so the canonical text parses again.
            if not math.isfinite(value) or abs(value) > MAX_LITERAL:
                self.fail_at(column, "number out of range", symbol, "use smaller numbers")
            return _const(value)
        return Node(
            "arith",
            f"({left.key} {symbol} {right.key})",
            False,
            op=symbol,
            args=(left, right),
            lookback=max(left.lookback, right.lookback),
            leaves=left.leaves | right.leaves,
        )

    def boolean(self, node: ast.BoolOp) -> Node:
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = [
            self.condition(
                value,
                f"'{word}' needs conditions on both sides",
                word,
                f"e.g. (close > open) {word} (volume > 0)",
            )
            for value in node.values
        ]
        result = parts[0]
        for part in parts[1:]:
            result = _logic(word, result, part)
        return result

    def compare(self, node: ast.Compare) -> Node:
        operands = [node.left, *node.comparators]
        for operand in operands:
            if isinstance(operand, ast.BinOp) and type(operand.op) in _BITWISE:
                symbol = _BITWISE[type(operand.op)]
                column = self.operator_column(operand.left, operand.right, symbol)
                self.fail_at(
                    column,
                    f"'{symbol}' is applied to numbers",
                    symbol,
                    "use parentheses: (a < b) & (c > d)",
                )
        for index, op in enumerate(node.ops):
            if type(op) in _FORBIDDEN_COMPARISONS:
                symbol = _FORBIDDEN_COMPARISONS[type(op)]
                column = self.operator_column(
                    operands[index], operands[index + 1], symbol.split()[0]
                )
                self.fail_at(column, f"operator '{symbol}' is not allowed", symbol)
        if len(node.ops) > 1:
            symbol = _COMPARISONS[type(node.ops[1])]
            column = self.operator_column(operands[1], operands[2], symbol)
            self.fail_at(
                column,
                "chained comparison",
                symbol,
                "compare two values at a time: (a < b) & (b < c)",
            )
        symbol = _COMPARISONS[type(node.ops[0])]
        column = self.operator_column(node.left, node.comparators[0], symbol)
        left = self.expression(node.left)
        right = self.expression(node.comparators[0])
        if left.boolean or right.boolean:
            self.fail_at(
                column,
                f"comparison '{symbol}' needs numbers on both sides",
                symbol,
                "join conditions with and / or instead",
            )
        if left.kind == "const" and right.kind == "const":
            return _truth(bool(_fold(symbol, left.value, right.value)))
        return Node(
            "compare",
            f"({left.key} {symbol} {right.key})",
            True,
            op=symbol,
            args=(left, right),
            lookback=max(left.lookback, right.lookback),
            leaves=left.leaves | right.leaves,
        )

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            self.fail(
                node,
                "only the listed functions can be called",
                "(",
                "e.g. sma(close, 20)",
            )
        name = node.func.id
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(name, FUNCTIONS, n=1)
            hint = f"did you mean {close[0]}?" if close else "available: " + ", ".join(FUNCTIONS)
            self.fail(node, f"unknown function '{name}'", name, hint)
        function = FUNCTIONS[name]
        signature = function.signature
        for keyword in node.keywords:
            token = f"{keyword.arg}=" if keyword.arg else "**"
            self.fail(
                keyword,
                f"keyword argument '{token}' is not allowed",
                token,
                f"pass arguments by position: {signature}",
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "'*' unpacking is not allowed", "*", f"write {signature}")
        kinds = function.kinds
        if len(node.args) != len(kinds):
            self.fail(
                node,
                f"{name}() takes {len(kinds)} argument{'s' if len(kinds) > 1 else ''} "
                f"but got {len(node.args)}",
                name,
                f"write {signature}",
            )
        series: list[Node] = []
        params: list[float] = []
        named: list[str] = []  # parameter names standing for periods or k, in order
        for arg, kind in zip(node.args, kinds, strict=True):
            if kind == "x":
                series.append(
                    self.numeric(arg, f"{name}() needs a number series, not a condition", name)
                )
            elif (
                parameter := self.parameter(arg, "period" if kind == "n" else "k", name)
            ) is not None:
                named.append(parameter)
            elif kind == "n":
                params.append(self.period(arg, name, signature))
            else:
                params.append(self.multiplier(arg, name, signature))
        if named:
            # A template: values are checked per parameter, the call is never evaluated.
            key = f"{name}({', '.join([arg.key for arg in series] + named)})"
            return Node("call", key, function.boolean, op=name, leaves=frozenset({key}))
        if name in functions.ORDERED_PERIODS and params[0] >= params[1]:
            self.fail(
                node.args[1],
                f"{name}() fast period {int(params[0])} is not shorter than slow {int(params[1])}",
                str(int(params[0])),
                f"write e.g. {name}(close, 12, 26{', 9' if name == 'macd_signal' else ''})",
            )
        if function.inline and series[0].kind == "const":
            return _const(float(function.compute(series[0].value)))
        texts = [arg.key for arg in series] + [
            str(int(p)) if kind == "n" else _number(p)
            for p, kind in zip(params, [k for k in kinds if k != "x"], strict=True)
        ]
        key = f"{name}({', '.join(texts)})"
        inner = max((arg.lookback for arg in series), default=0)
        leaves = series[0].leaves if function.inline else frozenset({key})
        return Node(
            "call",
            key,
            function.boolean,
            op=name,
            args=tuple(series),
            params=tuple(params),
            lookback=inner + function.warmup(tuple(params)),
            leaves=leaves,
        )

    def unknown_parameter(self, node: ast.expr, what: str) -> None:
        """In a template, fail on a name where a literal must stand, listing the parameters."""
        if self.parameters and isinstance(node, ast.Name):
            known = ", ".join(sorted(self.parameters))
            hint = f"{what} is a number or one of the parameters {known}"
            self.fail(node, f"unknown name '{node.id}'", node.id, hint)

    def period(self, node: ast.expr, name: str, signature: str) -> float:
        self.unknown_parameter(node, f"the period of {name}()")
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PERIOD:
            token = str(value) if isinstance(node, ast.Constant) else name
            self.fail(
                node,
                f"period of {name}() must be a whole number from 1 to {MAX_PERIOD}",
                token[:20],
                f"write {signature}, e.g. {FUNCTIONS[name].hint}",
            )
        return float(value)

    def multiplier(self, node: ast.expr, name: str, signature: str) -> float:
        self.unknown_parameter(node, f"k of {name}()")
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_K:
            token = str(value) if isinstance(node, ast.Constant) else "k"
            self.fail(
                node,
                f"k of {name}() must be a number literal above 0 and at most {MAX_K:g}",
                token[:20],
                f"write {signature}, e.g. {name}(close, 20, 2)",
            )
        return float(value)


def _fold(symbol: str, left: float, right: float) -> float | bool:
    a, b = np.float64(left), np.float64(right)
    folded: dict[str, Callable[[], Any]] = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
    }
    result: float | bool = folded[symbol]()
    return result


def _logic(word: str, left: Node, right: Node) -> Node:
    # Constant operands fold away, so numexpr never sees a Python bool (~True is -2 there).
    for const, other in ((left, right), (right, left)):
        if const.kind == "const":
            if word == "and":
                return other if const.value else _truth(False)
            return _truth(True) if const.value else other
    return Node(
        "logic",
        f"({left.key} {word} {right.key})",
        True,
        op=word,
        args=(left, right),
        lookback=max(left.lookback, right.lookback),
        leaves=left.leaves | right.leaves,
    )


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
            text = _number(node.value)
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
