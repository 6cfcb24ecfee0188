"""Rule text to a checked syntax tree: plain ASCII, no comments, bounded length, size and
depth, and Python's syntax errors reported with the rule's own 1-based columns."""

from __future__ import annotations

import ast

from engine.errors import RuleError

MAX_CHARS = 1000
MAX_NODES = 200
MAX_DEPTH = 64


def error(column: int, what: str, token: str, hint: str = "") -> RuleError:
    """A RuleError reading "<what> at column <n>[: <hint>]"."""
    return RuleError(
        None, f"{what} at column {column}" + (f": {hint}" if hint else ""), column, token
    )


def check(text: str) -> tuple[str, int, ast.Expression]:
    """The rule's one-line body, the indent stripped before it, and its checked ast."""
    if len(text) > MAX_CHARS:
        message = f"rule is {len(text)} characters long; the limit is {MAX_CHARS}: simplify it"
        raise RuleError(None, message, MAX_CHARS + 1, "")
    for index, char in enumerate(text):
        if not char.isascii() or (not char.isprintable() and char not in " \t\r\n"):
            what = f"character {char!r} is not allowed"
            raise error(index + 1, what, char, "rules are plain ASCII")
    if "#" in text:
        raise error(text.index("#") + 1, "comment '#' is not allowed", "#")
    flat = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    body = flat.lstrip(" ")
    indent = len(flat) - len(body)
    if not body.strip():
        raise RuleError(
            None, "rule is empty: write a condition, e.g. close > sma(close, 20)", 1, ""
        )
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as problem:
        offset = problem.offset or 0
        # The parser reports a rule that ends too early at offset 0 or past its end.
        column = indent + (offset if 1 <= offset <= len(body) else len(body) + 1)
        token = _word_at(flat, column - 1)
        reason = problem.msg if problem.msg != "invalid syntax" else "check operators and brackets"
        raise error(column, "syntax error", token, reason) from None
    except (RecursionError, MemoryError, ValueError):
        message = f"rule is nested too deeply (limit {MAX_DEPTH} levels)"
        raise RuleError(None, message, 1, body[:1]) from None
    _check_size(tree.body, indent)
    return body, indent, tree


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
            raise error(column, f"rule has more than {MAX_NODES} parts", "", "simplify it")
        if depth > MAX_DEPTH:
            raise error(column, f"rule is nested more than {MAX_DEPTH} levels deep", "")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
