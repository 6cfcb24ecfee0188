"""The CSV cells: plain decimals that read back as the same floats, and quoting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from algotcha import exports


def test_decimal_never_writes_an_exponent() -> None:
    assert exports.decimal(1e-05) == "0.00001"
    assert exports.decimal(1.5e20) == "150000000000000000000"
    assert exports.decimal(-2.5e-7) == "-0.00000025"
    assert exports.decimal(0.1) == "0.1" and exports.decimal(3) == "3"
    assert exports.decimal(None) == ""


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_decimal_reads_back_as_the_same_float(value: float) -> None:
    text = exports.decimal(value)
    assert "e" not in text.lower()
    assert float(text) == value


def test_trades_csv_numbers_rows_and_quotes_text_with_separators() -> None:
    chunks = [[{"side": "long", "exit_reason": 'a,"b"', "pnl": 1.0}], [{"side": "short"}]]
    text = "".join(exports.trades_csv(chunks))
    lines = text.split("\r\n")
    assert lines[0].startswith("number,side,entry_time")
    assert lines[1].startswith("1,long,") and lines[1].endswith(',1.0,,"a,""b"""')
    assert lines[2].startswith("2,short,")


def test_result_json_streams_the_head_and_every_chunk_of_trades() -> None:
    pieces = exports.result_json({"bars": 3}, [[{"n": 1}], [], [{"n": 2}, {"n": 3}]])
    assert "".join(pieces) == '{"bars":3,"trades":[{"n":1},{"n":2},{"n":3}]}'
    assert "".join(exports.result_json({}, [])) == '{"trades":[]}'
