"""Request parsing refuses what PostgreSQL cannot store and what int() reads otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from algotcha import models, schemas
from algotcha.errors import ValidationError
from algotcha.services import bot

# Characters that int() or str.isdigit() treat as digits although they are not ASCII.
UNICODE_DIGITS = ["²", "٣", "¹²", "\uff11\uff12", "\U0001d7d9", "1²"]

HOSTILE_TEXT = st.one_of(
    st.text(),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\udbff\udc00", *UNICODE_DIGITS]),
    st.text(alphabet=st.characters(codec=None), max_size=8),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(HOSTILE_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


def fields(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [e.field for e in exc.value.errors]


@pytest.mark.parametrize("raw", UNICODE_DIGITS)
def test_parse_id_refuses_digits_that_are_not_ascii(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        schemas.parse_id(raw)
    assert fields(exc) == ["id"]


@pytest.mark.parametrize("name", ["limit", "before"])
@pytest.mark.parametrize("raw", [*UNICODE_DIGITS, "\x00", "1\x00", "9" * 5000])
def test_parse_page_refuses_anything_but_ascii_digits(name: str, raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        schemas.parse_page({name: raw})
    assert fields(exc) == [name]


def test_parse_page_still_reads_ascii_digits() -> None:
    assert schemas.parse_page({"limit": "7", "before": "12"}) == (7, 12)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"payload": {"strategyName": "a\x00b"}}, "payload.strategyName", "U+0000"),
        ({"payload": {"strategyName": "\ud800"}}, "payload.strategyName", "U+D800"),
        ({"email": "x\udfff@example.com"}, "email", "U+DFFF"),
        ({"payload": {"rules": ["ok", "\x00"]}}, "payload.rules[1]", "U+0000"),
        ({"payload": {"a\x00b": 1}}, "payload.a\\u0000b", "key"),
        ({"\ud83d": 1}, "\\ud83d", "key"),
    ],
)
def test_parse_json_names_the_field_holding_nul_or_a_lone_surrogate(
    body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        models.parse_json(json.dumps(body).encode())
    assert fields(exc) == [field]
    assert message in exc.value.errors[0].message
    # The detail must itself be storable and printable: the escaped path, never the raw char.
    assert models.unstorable_text(exc.value.detail) is None


def test_parse_json_keeps_a_surrogate_pair_and_an_escaped_backslash_u() -> None:
    body = json.dumps({"name": "🚀 \\u0000 \u00e9"}).encode()
    assert models.parse_json(body) == {"name": "🚀 \\u0000 \u00e9"}


@given(JSON_VALUES)
def test_parse_json_returns_only_storable_strings(value: Any) -> None:
    body = json.dumps({"v": value}).encode()
    try:
        parsed = models.parse_json(body)
    except ValidationError as exc:
        assert exc.errors
        assert all(e.field.startswith("v") for e in exc.errors)
        return
    assert models.unstorable_strings(parsed) == []
    # What was accepted went through unchanged (a pair of surrogate escapes is one character in
    # JSON) and can be encoded for PostgreSQL.
    assert parsed == json.loads(body)
    json.dumps(parsed, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "body",
    [
        b'{"payload": {"initialCapital": ' + b"9" * 5000 + b"}}",
        b'{"payload": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
)
def test_parse_json_refuses_huge_numbers_and_deep_nesting_as_422(body: bytes) -> None:
    with pytest.raises(ValidationError) as exc:
        models.parse_json(body)
    assert fields(exc) == ["body"]


def test_a_telegram_update_with_nul_is_ignored_not_stored() -> None:
    update = {"update_id": 1, "message": {"chat": {"id": 5}, "text": "/start tok\x00en"}}
    assert bot.parse_webhook(json.dumps(update).encode()) is None
