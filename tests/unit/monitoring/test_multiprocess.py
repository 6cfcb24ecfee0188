"""Multiprocess mode: metrics written by several processes are summed by the one that serves them.

prometheus_client chooses its storage when first imported, from PROMETHEUS_MULTIPROC_DIR, so each
case runs in a fresh interpreter with the variable set (or unset) before that import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from monitoring import multiprocess

ROOT = Path(__file__).resolve().parents[3]

FORKING_PARENT = """
import multiprocessing, sys
from prometheus_client import generate_latest
from monitoring import exporter, metrics
from monitoring.collector import QueueCollector, QueueSample

def child() -> None:
    metrics.BACKTESTS.labels(outcome="completed").inc(3)
    metrics.BACKTEST_DURATION.observe(2.0)

process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join()
assert process.exitcode == 0
metrics.BACKTESTS.labels(outcome="completed").inc(2)

queue = QueueCollector(lambda: QueueSample({"queued": 6}, 30.0, 1, 0.0))
sys.stdout.write(generate_latest(exporter.combine(exporter.registry(sys.argv[1]), queue)).decode())
"""

WRITER = """
import sys
from monitoring import metrics
metrics.NOTIFICATIONS.labels(channel="email", outcome="sent").inc(float(sys.argv[1]))
"""

READER = """
import sys
from prometheus_client import generate_latest
from monitoring import exporter
sys.stdout.write(generate_latest(exporter.registry(sys.argv[1])).decode())
"""


def python(script: str, *args: str, multiproc_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if "multiproc_dir" not in key.lower()}
    env["PYTHONPATH"] = str(ROOT)
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_registry_sums_a_counter_incremented_in_a_forked_child(tmp_path: Path) -> None:
    multiprocess.prepare_multiproc_dir(str(tmp_path))
    run = python(FORKING_PARENT, str(tmp_path), multiproc_dir=tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'algotcha_backtests_total{outcome="completed"} 5.0' in run.stdout
    assert "algotcha_backtest_duration_seconds_count 1.0" in run.stdout
    assert 'algotcha_queue_jobs{status="queued"} 6.0' in run.stdout


def test_registry_sums_processes_that_have_exited(tmp_path: Path) -> None:
    multiprocess.prepare_multiproc_dir(str(tmp_path))
    for amount in ("1", "4"):
        assert python(WRITER, amount, multiproc_dir=tmp_path).returncode == 0
    run = python(READER, str(tmp_path), multiproc_dir=tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'algotcha_notifications_total{channel="email",outcome="sent"} 5.0' in run.stdout


def test_prepare_multiproc_dir_removes_files_of_an_earlier_run(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    multiprocess.prepare_multiproc_dir(str(directory))
    assert python(WRITER, "7", multiproc_dir=directory).returncode == 0
    assert list(directory.glob("*.db"))

    multiprocess.prepare_multiproc_dir(str(directory))

    assert not list(directory.glob("*.db"))
    run = python(READER, str(directory), multiproc_dir=directory)
    assert 'outcome="sent"} 7.0' not in run.stdout


def test_registry_refuses_a_directory_when_the_variable_was_not_set(tmp_path: Path) -> None:
    run = python(READER, str(tmp_path), multiproc_dir=None)
    assert run.returncode != 0
    assert "set PROMETHEUS_MULTIPROC_DIR=" in run.stderr
