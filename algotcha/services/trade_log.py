"""How a result's trades are kept: the first page in the job's JSON, all of them in chunks.

A chunk is 1,000 trades as one Arrow IPC stream with LZ4-compressed columns: encoding 92,000
trades takes a tenth of the time of writing them as JSON, and reading one page decodes one or
two chunks. Decoding gives back the very values the engine produced (floats bit for bit, times
as the same ISO 8601 strings).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

CHUNK_TRADES = 1000
FIRST_PAGE = 100

TRADE_FIELDS = (
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "quantity",
    "pnl",
    "return_pct",
    "exit_reason",
)
_SCHEMA = pa.schema(
    [
        (
            name,
            pa.string()
            if name in ("side", "entry_time", "exit_time", "exit_reason")
            else pa.float64(),
        )
        for name in TRADE_FIELDS
    ]
)
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")

Chunk = tuple[int, int, bytes]  # first trade number (from 1), trade count, encoded trades


def split(result: dict[str, Any]) -> tuple[dict[str, Any], list[Chunk]]:
    """The result as the job row keeps it (first page, count) and its trades in chunks.

    A result without a trades list (a sweep's) is kept as it is.
    """
    if not isinstance(result.get("trades"), list):
        return result, []
    trades: list[dict[str, Any]] = result["trades"]
    head = {
        **result,
        "trades": trades[:FIRST_PAGE],
        "trade_count": len(trades),
    }
    return head, encode(trades)


def encode(trades: list[dict[str, Any]]) -> list[Chunk]:
    if not trades:
        return []
    table = pa.Table.from_pylist(trades, schema=_SCHEMA)
    chunks: list[Chunk] = []
    first = 1
    for batch in table.to_batches(max_chunksize=CHUNK_TRADES):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, _SCHEMA, options=_OPTIONS) as writer:
            writer.write_batch(batch)
        chunks.append((first, batch.num_rows, sink.getvalue().to_pybytes()))
        first += batch.num_rows
    return chunks


def decode(data: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pa.ipc.open_stream(data).read_all().to_pylist()
    return rows
