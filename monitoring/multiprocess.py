"""The multiprocess metrics directory: wiped before a process group starts writing to it."""

from __future__ import annotations

from pathlib import Path


def prepare_multiproc_dir(path: str) -> None:
    """Create the multiprocess directory and remove the metric files of earlier runs.

    Call it once per process group, in the parent, before anything imports our metrics
    (they create their files on import): prometheus_client's multiprocess documentation
    requires the directory to be wiped between runs, since the files a previous run left
    would otherwise be summed into this run's counters. This module imports no
    prometheus_client for that reason.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
