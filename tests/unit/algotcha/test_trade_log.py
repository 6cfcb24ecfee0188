"""How trades are kept: the first page with the job, the rest in chunks that decode exactly."""

from __future__ import annotations

from typing import Any

from algotcha.services import trade_log


def trade(n: int) -> dict[str, Any]:
    return {
        "side": "long" if n % 2 else "short",
        "entry_time": f"2024-01-01T00:{n % 60:02d}:00Z",
        "entry_price": 100.0 + n / 7,
        "exit_time": f"2024-01-01T01:{n % 60:02d}:00Z",
        "exit_price": 1e-9 * n,
        "quantity": 0.1 * n,
        "pnl": None if n == 5 else -n / 3,
        "return_pct": 1e-5 * n,
        "exit_reason": "signal",
    }


def test_split_keeps_the_first_page_and_chunks_every_trade_that_decode_to_the_same_values() -> None:
    trades = [trade(n) for n in range(2500)]
    head, chunks = trade_log.split({"metrics": {"trades": 2500}, "trades": trades})
    assert head["trades"] == trades[:100] and head["trade_count"] == 2500
    assert head["metrics"] == {"trades": 2500}
    assert [(first, count) for first, count, _ in chunks] == [(1, 1000), (1001, 1000), (2001, 500)]
    decoded = [row for _, _, data in chunks for row in trade_log.decode(data)]
    assert decoded == trades


def test_a_result_without_trades_is_kept_as_it_is() -> None:
    sweep = {"combinations": 4, "top": []}
    assert trade_log.split(sweep) == (sweep, [])
    assert trade_log.split({"trades": []}) == ({"trades": [], "trade_count": 0}, [])
