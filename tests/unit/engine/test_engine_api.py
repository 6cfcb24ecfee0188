"""The public surface other packages code against, and the engine's import boundary."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import engine
from engine import metrics

REPO = Path(__file__).parents[3]
API_DOC = REPO / "docs" / "api.md"


def test_the_public_names_are_exported() -> None:
    assert sorted(engine.__all__) == sorted(
        [
            "EngineError", "RuleError", "DataError", "Cancelled", "BacktestRequest",
            "TIMEFRAMES", "BacktestResult", "Trade", "BarStore", "DatasetInfo", "DatasetSource",
            "run", "check", "backtest", "rules", "grid", "sweep", "overfitting", "SweepRequest",
            "SweepResult", "SweepRow", "ChunkResult", "walkforward", "WalkForwardRequest",
            "WalkForwardResult", "FoldResult", "estimate_bars",
        ]
    )  # fmt: skip
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_the_entry_points_keep_their_signatures() -> None:
    run = inspect.signature(engine.run)
    assert list(run.parameters) == ["request", "bars", "on_progress", "should_cancel"]
    assert run.parameters["on_progress"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(engine.check).parameters) == ["request", "store"]
    backtest = inspect.signature(engine.backtest)
    assert list(backtest.parameters) == ["request", "store", "on_progress", "should_cancel"]
    assert backtest.parameters["on_progress"].kind is inspect.Parameter.KEYWORD_ONLY
    assert next(iter(inspect.signature(engine.rules.parse).parameters)) == "text"
    store = engine.BarStore
    assert list(inspect.signature(store.load).parameters) == [
        "self", "symbol", "timeframe", "start", "end",
    ]  # fmt: skip
    for method in (store.write, store.append):
        parameters = inspect.signature(method).parameters
        assert list(parameters) == ["self", "symbol", "bars", "source"]
        assert parameters["source"].kind is inspect.Parameter.KEYWORD_ONLY
    fields = [field.name for field in engine.BacktestRequest.__dataclass_fields__.values()]
    assert fields == [
        "strategy_name", "symbol", "timeframe", "start", "end", "initial_capital", "fee_rate",
        "slippage", "position_size", "long_entry", "long_exit", "short_entry", "short_exit",
        "stop_loss", "take_profit", "trailing_stop",
    ]  # fmt: skip
    assert list(engine.Trade.__dataclass_fields__) == [
        "side", "entry_time", "entry_price", "exit_time", "exit_price", "quantity", "pnl",
        "return_pct", "exit_reason",
    ]  # fmt: skip
    assert list(engine.BacktestResult.__dataclass_fields__) == [
        "metrics", "trades", "equity_curve", "bars", "elapsed_ms", "tearsheet",
    ]  # fmt: skip
    assert list(engine.DatasetInfo.__dataclass_fields__) == [
        "symbol", "start", "end", "bars", "source",
    ]  # fmt: skip
    assert list(engine.DatasetSource.__dataclass_fields__) == ["kind", "files", "url", "updated_at"]


def test_engine_imports_nothing_of_the_other_packages() -> None:
    forbidden = {"algotcha", "actors", "monitoring", "dramatiq", "pika", "psycopg", "starlette",
                 "httpx", "uvicorn"}  # fmt: skip
    for path in (REPO / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_every_metric_key_is_documented_in_api_md_and_the_readme() -> None:
    assert API_DOC.is_file(), f"{API_DOC} not found"
    for doc in (API_DOC, REPO / "README.md"):
        words = set(re.findall(r"[A-Za-z]+", doc.read_text()))
        missing = [camel(key) for key in metrics.KEYS if camel(key) not in words]
        assert not missing, f"metrics missing from {doc.name}: {missing}"
