"""A checked syntax tree to typed nodes: the whitelist of the rule language, constants folded,
numbers and conditions kept apart, and every refusal a RuleError with its column; templates
whose sweep parameters stand where numbers may."""

from __future__ import annotations

import ast
import difflib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np

from engine import functions, ruletext

MAX_PERIOD = 10_000
MAX_LITERAL = 1e12
MAX_K = 100.0
SERIES = ("open", "high", "low", "close", "volume")

# The functions, their signatures, warm-ups and computations: engine/functions.py.
FUNCTIONS = functions.FUNCTIONS
NodeKind = Literal["series", "const", "param", "neg", "arith", "compare", "logic", "not", "call"]
# How a sweep parameter is used where it stands: a period, a band width k, or a plain number.
Use = Literal["period", "k", "number"]

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
class Template:
    """A rule or constraint that names sweep parameters where numbers stand.

    `uses` says how each parameter is used (a period, a band width k, or a plain number), so each
    value can be checked before any combination is run; `bind` writes the values in.
    """

    source: str
    uses: tuple[tuple[str, Use, str], ...]  # (parameter, how it is used, function)
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


def node_of(text: str) -> Node:
    """The typed tree of a rule, or RuleError naming the token and its 1-based column."""
    body, indent, tree = ruletext.check(text)
    return _condition(_Compiler(body, indent), tree, body, indent)


@functools.lru_cache(maxsize=64)
def template_of(text: str, parameters: frozenset[str]) -> Template:
    body, indent, tree = ruletext.check(text)
    compiler = _Compiler(body, indent, parameters)
    node = _condition(compiler, tree, body, indent)
    spots = tuple(sorted(compiler.spots))
    return Template(text, tuple(sorted(compiler.uses)), spots, bool(node.leaves))


def _condition(compiler: _Compiler, tree: ast.Expression, body: str, indent: int) -> Node:
    node = compiler.expression(tree.body)
    if not node.boolean:
        what, hint = "rule is a number, not a condition", "compare it, e.g. close > sma(close, 20)"
        raise ruletext.error(indent + 1, what, body.split(" ", 1)[0], hint)
    return node


def value_problem(use: Use, function: str, value: float) -> str | None:
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


def number(value: float) -> str:
    return repr(float(value))


def _operation(kind: NodeKind, key: str, boolean: bool, *args: Node, op: str = "") -> Node:
    """A node computed bar by bar from `args`: undefined while any of them is."""
    return Node(
        kind,
        key,
        boolean,
        op=op,
        args=args,
        lookback=max(arg.lookback for arg in args),
        leaves=frozenset().union(*(arg.leaves for arg in args)),
    )


def _const(value: float) -> Node:
    return Node("const", number(value), False, value=value)


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
        self.uses: set[tuple[str, Use, str]] = set()
        self.spots: list[tuple[int, int, str]] = []

    def parameter(self, node: ast.expr, use: Use, function: str) -> str | None:
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
        raise ruletext.error(column, what, token, hint)

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
            return _operation("neg", f"(-{operand.key})", False, operand)
        symbol = "not" if isinstance(node.op, ast.Not) else "~"
        operand = self.condition(
            node.operand,
            f"'{symbol}' needs a condition",
            symbol,
            f"write {symbol} (close > open)",
        )
        if operand.kind == "const":
            return _truth(not operand.value)
        return _operation("not", f"(not {operand.key})", True, operand)

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
        return _operation(
            "arith", f"({left.key} {symbol} {right.key})", False, left, right, op=symbol
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
        return _operation(
            "compare", f"({left.key} {symbol} {right.key})", True, left, right, op=symbol
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
            str(int(p)) if kind == "n" else number(p)
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
    return _operation("logic", f"({left.key} {word} {right.key})", True, left, right, op=word)
