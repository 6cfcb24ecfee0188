"""Rule expressions: the accepted language, its evaluation, and everything it refuses."""

from __future__ import annotations

import math
import pickle
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import indicators, rules
from engine.errors import RuleError

SIZE = 60


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, SIZE)))
    open_ = np.r_[100.0, close[:-1]]
    return {
        "open": open_,
        "high": np.maximum(open_, close) * 1.01,
        "low": np.minimum(open_, close) * 0.99,
        "close": close,
        "volume": rng.random(SIZE) * 10,
    }


def refuse(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        rules.parse(text)
    return caught.value


# --- accepted language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "close > open",
        "close >= open and not (volume < 1)",
        "(close < open) | (high - low > 2 * abs(close - open))",
        "~(close > 1e3) & (close / open != 1)",
        "crossover(ema(close, 12), ema(close, 26)) and rsi(close, 14) < 70",
        "crossunder(sma(close, 5), sma(close, 10)) or roc(close, 3) > 2.5",
        "wma(close, 4) > lowest(low, 5) + stdev(close, 5)",
        "highest(high, 3) <= prev(high, 1) * 1.1",
        "macd(close, 3, 6) > macd_signal(close, 3, 6, 2)",
        "bb_lower(close, 10, 2) < close and close < bb_upper(close, 10, 2.5)",
        "atr(14) / close < 0.05",
        "sma(close - open, 3) > -0.5",
        "-close < +open",
        "close == close",
        "crossover(close, 100)",
        "sma(ema(close, 3), 4) > 0",
    ],
)
def test_parse_accepts_the_documented_language(text: str, columns: dict[str, np.ndarray]) -> None:
    rule = rules.parse(text)
    values = rule.evaluate(columns)
    assert values.dtype == bool and values.shape == (SIZE,)


def test_evaluate_matches_numpy(columns: dict[str, np.ndarray]) -> None:
    rule = rules.parse("(close > sma(close, 5)) & (rsi(close, 3) < 60) | (volume > 8)")
    close = columns["close"]
    with np.errstate(invalid="ignore"):
        expected = (close > indicators.sma(close, 5)) & (indicators.rsi(close, 3) < 60) | (
            columns["volume"] > 8
        )
    expected[: rule.lookback] = False
    assert rule.evaluate(columns).tolist() == expected.tolist()


def test_canonical_text_is_normalised_and_reparses_to_itself() -> None:
    rule = rules.parse(" sma( close ,20 ) > 1_000 and\n not(close<open)")
    assert rule.canonical == "((sma(close, 20) > 1000.0) and (not (close < open)))"
    assert rules.parse(rule.canonical).canonical == rule.canonical


def test_numexpr_source_is_rebuilt_from_the_tree() -> None:
    rule = rules.parse("(rsi(close, 14) < 30) and (close > sma(close, 50))")
    assert rule.numexpr_source == "((v1 < 30.0) & (close > v2))"
    assert rule.calls == ("rsi(close, 14)", "sma(close, 50)")


def test_identical_calls_are_computed_once(columns: dict[str, np.ndarray]) -> None:
    entry = rules.parse("crossover(ema(close, 3), ema(close, 6))")
    exit_ = rules.parse("crossunder( ema(close,3), ema(close,6) ) or ema(close, 3) > 1e6")
    computed: list[int] = []
    cache: dict[str, np.ndarray] = {}
    entry.evaluate(columns, cache, lambda: computed.append(1))
    first = len(computed)
    exit_.evaluate(columns, cache, lambda: computed.append(1))
    # exit needs only its crossunder and the final expression: the EMAs are shared
    assert first == 4 and len(computed) == first + 2


def test_warm_up_bars_are_false_even_under_not(columns: dict[str, np.ndarray]) -> None:
    rule = rules.parse("not (sma(close, 10) > 1e9)")
    values = rule.evaluate(columns)
    assert rule.lookback == 9
    assert not values[:9].any() and values[9:].all()


def test_lookback_adds_up_through_nested_indicators() -> None:
    assert rules.parse("sma(ema(close, 5), 4) > 0").lookback == 4 + 3
    assert rules.parse("macd_signal(close, 12, 26, 9) > 0").lookback == 25 + 8
    assert rules.parse("crossover(rsi(close, 14), 30)").lookback == 15
    assert rules.parse("atr(14) > prev(close, 20)").lookback == 20
    assert rules.parse("close > open").lookback == 0


def test_crossover_is_above_now_and_at_or_below_before(columns: dict[str, np.ndarray]) -> None:
    values = rules.parse("crossover(close, open)").evaluate(columns)
    close, open_ = columns["close"], columns["open"]
    expected = np.r_[False, (close[1:] > open_[1:]) & (close[:-1] <= open_[:-1])]
    assert values.tolist() == expected.tolist()


def test_constant_rules_are_allowed_and_fold(columns: dict[str, np.ndarray]) -> None:
    assert rules.parse("1 < 2").evaluate(columns).all()
    assert not rules.parse("1 > 2 and close > 0").evaluate(columns).any()
    assert rules.parse("not (1 > 2) and close > 0").canonical == "(close > 0.0)"
    assert rules.parse("1 < 2").canonical == "(1.0 > 0.0)"
    assert rules.parse("(1 > 2) or (3 < 2)").canonical == "(1.0 < 0.0)"
    assert rules.parse("close > 2 * 3 - 1").canonical == "(close > 5.0)"
    assert rules.parse("abs(-3) < close").canonical == "(3.0 < close)"


def test_division_by_a_series_that_is_zero_gives_no_error(columns: dict[str, np.ndarray]) -> None:
    flat = dict(columns, high=columns["low"].copy())
    values = rules.parse("(close - open) / (high - low) > 0.5").evaluate(flat)
    assert values.dtype == bool


def test_a_wide_rule_is_split_below_numexpr_operand_limit(columns: dict[str, np.ndarray]) -> None:
    terms = [f"(sma(close, {n}) > 0)" for n in range(1, 29)]
    rule = rules.parse(" & ".join(terms))
    assert rule.evaluate(columns)[27:].all()
    assert max(len(step.names) for step in rule.steps) <= 24


def test_parse_is_cached_and_rules_pickle() -> None:
    rule = rules.parse("close > sma(close, 3)")
    assert rules.parse("close > sma(close, 3)") is rule
    assert pickle.loads(pickle.dumps(rule)).canonical == rule.canonical


# --- refusals: message, column and token --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "column", "token"),
    [
        ("sma(clsoe, 20) > 1", "unknown name 'clsoe' at column 5", 5, "clsoe"),
        ("close > __import__", "unknown name '__import__' at column 9", 9, "__import__"),
        ("close.real > 1", "attribute access '.real' at column 1", 1, "real"),
        ("close[0] > 1", "indexing with [] is not allowed at column 1", 1, "["),
        ("close > 'a'", "text 'a' is not allowed at column 9", 9, "'a'"),
        ("close > True", "'True' is not allowed at column 9", 9, "True"),
        ("close > None", "'None' is not allowed at column 9", 9, "None"),
        ("close > 2j", "literal 2j is not allowed at column 9", 9, "2j"),
        ("close > 1e400", "number inf is too large", 9, "inf"),
        ("close > 1e13", "is too large (limit 1e12) at column 9", 9, "10000000000000.0"),
        ("close ** 2 > 1", "operator '**' is not allowed at column 7", 7, "**"),
        ("close % 2 > 1", "operator '%' is not allowed at column 7", 7, "%"),
        ("close // 2 > 1", "operator '//' is not allowed at column 7", 7, "//"),
        ("close ^ open", "operator '^' is not allowed", 7, "^"),
        ("close << 2 > 1", "operator '<<' is not allowed", 7, "<<"),
        ("close > 1 < 2", "chained comparison at column 11", 11, "<"),
        ("close in open", "operator 'in' is not allowed at column 7", 7, "in"),
        ("close is open", "operator 'is' is not allowed", 7, "is"),
        (
            "rsi(close, 14) < 30 & close > sma(close, 50)",
            "'&' is applied to numbers at column 21: use parentheses: (a < b) & (c > d)",
            21,
            "&",
        ),
        ("close & open", "'&' is applied to numbers at column 7", 7, "&"),
        ("(close > 1) | 2", "'|' is applied to numbers", 13, "|"),
        ("close > open and open", "'and' needs conditions on both sides at column 18", 18, "and"),
        ("not close", "'not' needs a condition at column 5", 5, "not"),
        ("~close > 1", "'~' needs a condition at column 2", 2, "~"),
        ("-(close > 1) < 1", "unary '-' needs a number at column 3", 3, "-"),
        ("(close > 1) + 1 > 1", "arithmetic '+' on a condition at column 13", 13, "+"),
        ("(close > 1) < (open > 1)", "comparison '<' needs numbers on both sides", 13, "<"),
        ("close / 0 > 1", "division by zero at column 7", 7, "/"),
        ("close > 1 / (2 - 2)", "division by zero at column 11", 11, "/"),
        (
            "close > 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 "
            "* 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 * 1e12 "
            "* 1e12 * 1e12 * 1e12 * 1e12",
            "number out of range",
            0,
            "*",
        ),
        ("sma > 1", "function 'sma' used without arguments at column 1", 1, "sma"),
        ("smaa(close, 3) > 1", "unknown function 'smaa' at column 1: did you mean sma?", 1, "smaa"),
        ("eval('1') > 1", "unknown function 'eval' at column 1", 1, "eval"),
        ("close.sum() > 1", "only the listed functions can be called", 1, "("),
        ("sma(close, n=3) > 1", "keyword argument 'n=' is not allowed at column 12", 12, "n="),
        ("sma(*close) > 1", "'*' unpacking is not allowed at column 5", 5, "*"),
        ("sma(close) > 1", "sma() takes 2 arguments but got 1 at column 1", 1, "sma"),
        ("abs(close, 2) > 1", "abs() takes 1 argument but got 2", 1, "abs"),
        ("sma(close, 2.0) > 1", "period of sma() must be a whole number from 1", 12, "2.0"),
        ("sma(close, 0) > 1", "period of sma() must be a whole number", 12, "0"),
        ("sma(close, 10001) > 1", "from 1 to 10000 at column 12", 12, "10001"),
        ("sma(close, True) > 1", "period of sma()", 12, "True"),
        ("sma(close, open) > 1", "period of sma()", 12, "sma"),
        ("atr(-3) > 1", "period of atr()", 5, "atr"),
        ("bb_upper(close, 20, 0) > 1", "k of bb_upper() must be a number literal", 21, "0"),
        ("bb_lower(close, 20, 101) > 1", "k of bb_lower()", 21, "101"),
        ("bb_lower(close, 20, open) > 1", "k of bb_lower()", 21, "k"),
        ("macd(close, 26, 12) > 0", "fast period 26 is not shorter than slow 12", 13, "26"),
        ("sma(close > 1, 3) > 1", "sma() needs a number series, not a condition", 5, "sma"),
        ("close if open else high", "if/else expression is not allowed at column 1", 1, "if"),
        ("lambda: 1", "lambda is not allowed at column 1", 1, "lambda"),
        ("[c for c in close]", "list comprehension is not allowed", 1, "["),
        ("{c for c in close}", "set comprehension is not allowed", 1, "{"),
        ("{c: 1 for c in close}", "dict comprehension is not allowed", 1, "{"),
        ("sum(c for c in close)", "unknown function 'sum'", 1, "sum"),
        ("abs(c for c in close) > 1", "generator expression is not allowed at column 4", 4, "("),
        ("(close, open)", "tuple is not allowed at column 1", 1, "("),
        ("[close]", "list is not allowed", 1, "["),
        ("{close}", "set is not allowed", 1, "{"),
        ("{1: close}", "dict is not allowed", 1, "{"),
        ("(x := 1)", "assignment ':=' is not allowed at column 2", 2, ":="),
        ("f'{close}'", "f-string is not allowed", 1, "f"),
        ("...", "literal Ellipsis is not allowed", 1, "Ellipsis"),
        ("close", "is a number, not a condition", 1, "close"),
        ("sma(close, 3)", "is a number, not a condition", 1, "sma(close,"),
        ("close >", "syntax error at column 8", 8, ""),
        ("close > 1;", "syntax error at column 10", 10, ";"),
        ("sma(close, 3 > 1", "syntax error at column 4: '(' was never closed", 4, "("),
        ("close > 1 # comment", "comment '#' is not allowed at column 11", 11, "#"),
        ("close > 1\x00", "character '\\x00' is not allowed at column 10", 10, "\x00"),
        ("cl\u043ese > 1", "is not allowed at column 3: rules are plain ASCII", 3, "\u043e"),
        ("", "rule is empty", 1, ""),
        ("   \n ", "rule is empty", 1, ""),
        ("close > " + "1 + " * 250 + "1", "is 1009 characters long; the limit is 1000", 1001, ""),
        (" and ".join(["close > 0"] * 70), "more than 200 parts", 0, ""),
        ("close > " + "-" * 70 + "1", "nested more than 64 levels deep", 0, ""),
    ],
)
def test_parse_refuses_with_the_token_and_its_column(
    text: str, message: str, column: int, token: str
) -> None:
    error = refuse(text)
    assert message in str(error) and str(error) == error.message
    if column:
        assert error.column == column
    assert error.token == token
    assert error.field is None


def test_the_unknown_name_message_is_exactly_the_documented_one() -> None:
    assert str(refuse("sma(clsoe, 20) > 1")) == "unknown name 'clsoe' at column 5"


def test_columns_count_from_the_first_character_even_after_whitespace() -> None:
    assert refuse("  \n close > clsoe").column == 13
    assert refuse("(close >\n clsoe)").column == 11


def test_field_is_attached_when_given() -> None:
    with pytest.raises(RuleError) as caught:
        rules.parse("close > clsoe", field="long_entry")
    assert caught.value.field == "long_entry"
    assert caught.value.column == 9


def test_non_text_is_refused() -> None:
    with pytest.raises(RuleError, match="a rule must be text"):
        rules.parse(42)  # type: ignore[arg-type]


def test_deep_nesting_beyond_the_parser_is_refused_not_crashed() -> None:
    assert "nested" in str(refuse("-" * 999 + "1"))
    assert "nested" in str(refuse("(" * 300 + "close" + ")" * 300)) or "syntax" in str(
        refuse("(" * 300 + "close" + ")" * 300)
    )


# --- the numexpr bypasses and denial-of-service inputs of reliability.md ------------------


def payloads(marker: Path) -> list[str]:
    target = str(marker)
    return [
        f'where(*(eval(\'open("{target}", "w").write("x")\') for x in (1,)))',
        f'sin(*(exec(\'open("{target}","w").write("x")\') for x in (1,)))',
        f'{{eval(\'open("{target}", "w").write("x")\') for x in (1,)}}',
        f'abs(*(eval(\'open("{target}", "w").write("x")\') for x in (1,))) > 0',
        f'crossover(close, [eval(\'open("{target}", "w")\') for x in (1,)][0])',
        "(lambda fc=(lambda n: [c for c in ().__class__.__bases__[0].__subclasses__() "
        "if c.__name__ == n][0]): fc('function')(fc('Popen')(['id'],shell=True)))()",
        "__import__('os').system('id')",
        "__import__ ('os').system('id')",
        "close.__class__",
        "close.sum()",
        "(lambda: 1)()",
        "lambda x=1 : x",
        "close[0]",
        "1; 2",
        "(x := 1)",
        f"open('{target}')",
        "eval('1+1')",
        "getattr(close,'sum')()",
        "'a' * 10**9",
        "'ab' * 3*10**8",
        "close * 9**9**9",
        "close * 9**9**7",
        "close * 0 + SECRET_PIN > 0",
        "rsi_14 < 30 & close > sma_50",
        " + ".join(["close"] * 100_000),
        "(" * 100_000 + "close" + ")" * 100_000,
        "-" * 100_000 + "close",
        "cl\u043ese > 1",
        "close > 1e400",
        "close > 1\nimport os",
        "__builtins__",
    ]


def test_numexpr_bypass_payloads_are_refused_and_never_run(
    tmp_path: Path, columns: dict[str, np.ndarray]
) -> None:
    marker = tmp_path / "pwned"
    for text in payloads(marker):
        with pytest.raises(RuleError):
            rules.parse(text).evaluate(columns)
    assert not marker.exists()


def test_module_globals_are_not_visible_to_rules(columns: dict[str, np.ndarray]) -> None:
    assert str(refuse("close * 0 + SIZE > 0")) == "unknown name 'SIZE' at column 13"


# --- property tests -------------------------------------------------------------------------

ALPHABET = string.ascii_letters + string.digits + " _.,()[]{}<>=!+-*/%&|~^'\":;#@\\\n\t"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=120))
def test_any_text_parses_or_raises_rule_error(text: str) -> None:
    try:
        rules.parse(text)
    except RuleError as error:
        assert error.column >= 1 and error.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_unicode_parses_or_raises_rule_error(text: str) -> None:
    try:
        rules.parse(text)
    except RuleError:
        pass


OPERATORS = [*"+-*/<>&|^%@", "**", "//", "==", " and ", " or ", " in ", " is "]


def python_expressions() -> st.SearchStrategy[str]:
    """Arbitrary Python expressions, most outside the language (calls, attributes...)."""
    leaves = st.sampled_from(
        [
            "close",
            "open",
            "volume",
            "x",
            "__import__",
            "eval",
            "1",
            "2.5",
            "1e400",
            "'s'",
            "True",
            "None",
            "()",
            "[]",
            "...",
            "sma",
            "where",
        ]
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(OPERATORS), inner).map(
                lambda t: f"({t[0]}{t[1]}{t[2]})"
            ),
            st.tuples(st.sampled_from(["-", "~", "not ", "+"]), inner).map(lambda t: t[0] + t[1]),
            st.tuples(
                st.sampled_from(
                    ["sma", "abs", "crossover", "eval", "open", "getattr", "rsi", "bb_upper"]
                ),
                st.lists(inner, max_size=3),
            ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            inner.map(lambda e: f"{e}.__class__"),
            inner.map(lambda e: f"{e}[0]"),
            inner.map(lambda e: f"(lambda: {e})()"),
            inner.map(lambda e: f"[{e} for c in (1,)]"),
            inner.map(lambda e: f"({e} for c in (1,))"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[0]}"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(python_expressions())
def test_random_python_expressions_never_escape(text: str) -> None:
    try:
        rule = rules.parse(text)
    except RuleError:
        return
    rng = np.random.default_rng(0)
    data = {name: rng.random(30) + 1 for name in rules.SERIES}
    assert rule.evaluate(data).shape == (30,)


def valid_rules() -> st.SearchStrategy[str]:
    """Expressions inside the language: they must parse and evaluate."""
    periods = st.integers(1, 12).map(str)
    numbers = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: repr(round(v, 3)))
    series = st.sampled_from(list(rules.SERIES))

    def numeric(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"abs({e})"),
            st.tuples(
                st.sampled_from(
                    ["sma", "ema", "wma", "rsi", "stdev", "highest", "lowest", "roc", "prev"]
                ),
                inner,
                periods,
            ).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            periods.map(lambda n: f"atr({n})"),
        )

    values = st.recursive(st.one_of(series, numbers), numeric, max_leaves=6)
    comparisons = st.tuples(
        values, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), values
    ).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    crosses = st.tuples(st.sampled_from(["crossover", "crossunder"]), values, values).map(
        lambda t: f"{t[0]}({t[1]}, {t[2]})"
    )

    def logic(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from([" and ", " or ", " & ", " | "]), inner).map(
                lambda t: f"({t[0]}{t[1]}{t[2]})"
            ),
            inner.map(lambda e: f"(not {e})"),
            inner.map(lambda e: f"~{e}"),
        )

    return st.recursive(st.one_of(comparisons, crosses), logic, max_leaves=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rules())
def test_rules_inside_the_language_evaluate_without_warnings(text: str) -> None:
    try:
        rule = rules.parse(text)
    except RuleError as error:
        # constant sub-expressions may fold to a division by zero or overflow
        assert "division by zero" in error.message or "out of range" in error.message
        return
    rng = np.random.default_rng(1)
    data = {name: rng.random(40) + 0.5 for name in rules.SERIES}
    values = rule.evaluate(data)
    assert values.dtype == bool and values.shape == (40,)
    assert not values[: rule.lookback].any()
    assert rules.parse(rule.canonical).canonical == rule.canonical


def test_a_constant_folded_past_the_literal_limit_is_refused() -> None:
    # 1e6 * 1000001 folds to 1.000001e12: accepted, its canonical text would not parse again.
    with pytest.raises(RuleError, match="number out of range"):
        rules.parse("close > 1000000 * 1000001")
    assert rules.parse("close > 1000000 * 1000000").canonical == "(close > 1000000000000.0)"


def test_numbers_in_the_canonical_text_survive_numexpr_sanitizer(
    columns: dict[str, np.ndarray],
) -> None:
    for literal in ("1e-07", "1.5e-07", "100000000000.0", "0.5", "1_000"):
        rule = rules.parse(f"close * {literal} > -1")
        assert rule.evaluate(columns).all()
    assert math.isclose(float(rules.parse("close > 0.1 + 0.2").canonical[9:-1]), 0.3)
