"""A result as files: trades.csv, equity.csv and result.json, written piece by piece.

The CSV files have a header row, ISO 8601 UTC times and plain decimal numbers (never an
exponent: 0.00001, not 1e-05) that read back as the very floats of the JSON result. The API
streams them; `algotcha backtest run --csv DIR` writes the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import engine
from algotcha import models
from algotcha.services import trade_log

TRADE_COLUMNS = ("number", *trade_log.TRADE_FIELDS)
EQUITY_COLUMNS = ("time", "equity")


def decimal(value: float | int | None) -> str:
    """The shortest text that reads back as the same float, without an exponent; empty for
    None (a figure that is undefined, such as NaN in the engine)."""
    if value is None:
        return ""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _cell(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return decimal(value)
    text = "" if value is None else str(value)
    # Our fields hold no separators or quotes, but quote defensively, as RFC 4180 says.
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def trades_csv(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """trades.csv, one piece per chunk of trades; trades are numbered from 1."""
    yield ",".join(TRADE_COLUMNS) + "\r\n"
    number = 0
    for chunk in chunks:
        lines = []
        for trade in chunk:
            number += 1
            cells = [str(number), *(_cell(trade.get(name)) for name in TRADE_COLUMNS[1:])]
            lines.append(",".join(cells) + "\r\n")
        yield "".join(lines)


def equity_csv(curve: list[dict[str, Any]]) -> Iterator[str]:
    yield ",".join(EQUITY_COLUMNS) + "\r\n"
    yield "".join(f"{_cell(point['t'])},{_cell(point['equity'])}\r\n" for point in curve)


def result_json(head: dict[str, Any], chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The result object of the API (camelCase) with every trade, streamed: `head` is the
    result without its trades."""
    opening = json.dumps(head, separators=(",", ":"))[:-1]
    yield opening + ("," if opening != "{" else "") + '"trades":['
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        body = json.dumps(chunk, separators=(",", ":"))[1:-1]
        yield body if first else "," + body
        first = False
    yield "]}"


def write_files(directory: Path, result: dict[str, Any]) -> list[Path]:
    """trades.csv, equity.csv and result.json of an engine result (BacktestResult.as_dict())
    in `directory`, created if need be."""
    directory.mkdir(parents=True, exist_ok=True)
    trades = result.get("trades") or []
    head = models.camel_keys({key: value for key, value in result.items() if key != "trades"})
    head["tradeCount"] = len(trades)
    files = {
        "trades.csv": trades_csv([trades]),
        "equity.csv": equity_csv(result.get("equity_curve") or []),
        "result.json": result_json(head, [models.camel_keys(trades)]),
    }
    written = []
    for name, pieces in files.items():
        path = directory / name
        with path.open("w", encoding="utf-8", newline="") as out:
            out.writelines(pieces)
        written.append(path)
    return written


def render_grid_csv(result: engine.SweepResult) -> str:
    """Every combination: index, the parameter names, then is_<metric> and oos_<metric>."""
    names = list(result.rows[0].parameters) if result.rows else []
    return "".join(grid_csv_lines(names, (row.as_dict() for row in result.rows)))


def grid_csv_lines(names: list[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The grid CSV line by line from rows shaped as SweepRow.as_dict() (daily returns
    not needed), so a stored grid streams without being held whole."""
    keys = engine.sweep.SUMMARY_KEYS
    header = ["index", *names]
    header += [f"is_{models.camel(key)}" for key in keys] + [
        f"oos_{models.camel(key)}" for key in keys
    ]
    yield ",".join(header) + "\n"
    for row in rows:
        cells = [str(row["index"])] + [f"{row['parameters'][name]:g}" for name in names]
        for summary in (row["in_sample"], row["out_of_sample"]):
            cells += [_csv_number(None if summary is None else summary[k]) for k in keys]
        yield ",".join(cells) + "\n"


def _csv_number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def folds_csv_lines(names: list[str], folds: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The folds table line by line from folds shaped as a stored walk-forward result's:
    index, the window bounds, the chosen values (empty for a fold with no valid
    combination), is_<metric> and oos_<metric>, then the fold's status."""
    keys = engine.sweep.SUMMARY_KEYS
    windows = ("in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end")
    header = ["index", *(models.camel(key) for key in windows), *names]
    header += [f"is_{models.camel(key)}" for key in keys] + [
        f"oos_{models.camel(key)}" for key in keys
    ]
    yield ",".join([*header, "status"]) + "\n"
    for fold in folds:
        chosen = fold["parameters"] or {}
        cells = [str(fold["index"]), *(str(fold[key]) for key in windows)]
        cells += [f"{chosen[name]:g}" if name in chosen else "" for name in names]
        for summary in (fold["in_sample"], fold["out_of_sample"]):
            cells += [_csv_number(None if summary is None else summary[k]) for k in keys]
        yield ",".join([*cells, fold["status"]]) + "\n"
