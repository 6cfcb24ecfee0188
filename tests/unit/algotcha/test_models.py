"""The models and vocabularies agree with the engine and the database they stand in front of."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import get_args

import pytest

import engine
from algotcha import engine_requests, models, vocabulary
from algotcha.errors import ValidationError
from algotcha.services import results
from engine import walkforward


def test_timeframes_and_objectives_are_the_engines() -> None:
    assert vocabulary.TIMEFRAMES == tuple(engine.TIMEFRAMES)
    assert vocabulary.OBJECTIVES == tuple(models.camel(o) for o in engine.grid.OBJECTIVES)


def test_limits_are_the_engines() -> None:
    assert models.MAX_RATE == engine.request.MAX_RATE
    assert models.SYMBOL_PATTERN == f"^{engine.request.SYMBOL_PATTERN.pattern}$"
    assert (models.MAX_PARAMETERS, models.MAX_VALUES) == (
        engine.grid.MAX_PARAMETERS,
        engine.grid.MAX_VALUES,
    )
    assert (models.MIN_FOLDS, models.MAX_FOLDS) == (walkforward.MIN_FOLDS, walkforward.MAX_FOLDS)
    assert (models.COMPARE_MIN, models.COMPARE_MAX) == (results.COMPARE_MIN, results.COMPARE_MAX)


def _checked_list(column: str, migration: str = "0001_initial.sql") -> tuple[str, ...]:
    sql = (resources.files("algotcha") / "db" / "migrations" / migration).read_text()
    found = re.search(rf"CHECK \({column} IN \(([^)]*)\)\)", sql)
    assert found is not None, column
    return tuple(part.strip().strip("'") for part in found.group(1).split(","))


def test_statuses_and_channels_are_the_databases() -> None:
    assert vocabulary.JOB_STATUSES == _checked_list("status")
    assert vocabulary.NOTIFY_CHANNELS == _checked_list("notify_via")
    assert get_args(vocabulary.JobKind) == _checked_list("kind", "0007_job_chunks.sql")
    assert tuple(vocabulary.KIND_NAMES) == get_args(vocabulary.JobKind)


def test_the_models_load_without_the_database_http_client_or_engine() -> None:
    code = (
        "import sys, algotcha.models, algotcha.vocabulary; "
        "heavy = ('psycopg', 'httpx', 'algotcha.db', 'algotcha.services', 'engine', 'pandas'); "
        "print([m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"payload": {}, "sweep": {}}, "sweep", "give payload or sweep, not both"),
        ({"notifyVia": "none"}, "payload", "give payload (a backtest) or sweep"),
        ({"payload": None}, "payload", "must be a JSON object"),
    ],
)
def test_the_queue_takes_exactly_one_of_payload_and_sweep(
    tmp_path: Path, body: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        engine_requests.parse_submit(json.dumps(body).encode(), engine.BarStore(tmp_path))
    assert [e.field for e in exc.value.errors] == [field]
    assert message in exc.value.errors[0].message
