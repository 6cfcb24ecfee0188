"""Background threads that run one job every interval: sweepers and heartbeats."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from algotcha.errors import UnavailableError

logger = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Calls `work()` every `interval_s` until stopped; a failure is logged, never fatal.

    A database outage (UnavailableError) is expected now and then and logged as a warning;
    anything else is a bug and logged with its traceback. Either way the next round runs.
    """

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval_s, self.work = interval_s, work
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.work()
            except UnavailableError as exc:
                logger.warning("event=%s_skipped reason=%s", self.name, exc.detail)
            except Exception:
                logger.exception("event=%s_failed", self.name)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
