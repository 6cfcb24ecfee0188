"""An embedded PostgreSQL under ./var for `algotcha up` on a machine without one (pgserver)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from algotcha.errors import ConfigError

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A private PostgreSQL server whose data lives in `data_dir` and outlives the process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; returns its connection URL (a Unix socket)."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, as under sudo or in containers,
            # already when pgserver is imported
            warnings.simplefilter("ignore")
            try:
                from pgserver.postgres_server import get_server
            except ImportError:
                # An optional extra: production images connect to their own PostgreSQL.
                raise ConfigError(
                    "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                    "set DATABASE_URL, or pip install 'algotcha[embedded]' (make run does)"
                ) from None
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # "stop": the server stops when this process lets go of it, at exit at the latest
            self._server = get_server(self.data_dir, cleanup_mode="stop")
        url: str = self._server.get_uri()
        logger.info("event=embedded_postgres_started data_dir=%s", self.data_dir)
        return url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.cleanup()
        self._server = None
        logger.info("event=embedded_postgres_stopped")
