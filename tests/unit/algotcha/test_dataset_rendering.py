"""GET /api/backtest/datasets items: range, bars, the synthetic label and the source."""

from __future__ import annotations

from datetime import UTC, datetime

from algotcha import schemas
from engine import DatasetInfo, DatasetSource

START = datetime(2021, 1, 1, tzinfo=UTC)
END = datetime(2021, 3, 1, tzinfo=UTC)


def test_a_downloaded_dataset_says_where_it_came_from() -> None:
    source = DatasetSource(
        "download", (), "https://data.binance.vision/data/spot", datetime(2021, 3, 1, 3, tzinfo=UTC)
    )
    assert schemas.render_dataset(DatasetInfo("BTCUSDT", START, END, 84_960, source)) == {
        "symbol": "BTCUSDT",
        "start": "2021-01-01T00:00:00Z",
        "end": "2021-03-01T00:00:00Z",
        "bars": 84_960,
        "synthetic": False,
        "source": {
            "kind": "download",
            "files": [],
            "url": "https://data.binance.vision/data/spot",
            "updatedAt": "2021-03-01T03:00:00Z",
        },
    }


def test_synthetic_data_is_labelled_and_an_unrecorded_source_is_null() -> None:
    synthetic = DatasetInfo("SYNTH", START, END, 10, DatasetSource("synthetic"))
    assert schemas.render_dataset(synthetic)["synthetic"] is True
    unknown = schemas.render_dataset(DatasetInfo("OLD", START, END, 10))
    assert unknown["synthetic"] is False and unknown["source"] is None
