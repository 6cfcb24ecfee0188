"""Worker registration, heartbeats, and recovery of jobs a dead worker left behind."""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid

from psycopg_pool import ConnectionPool

from algotcha.db import workers as worker_db
from algotcha.db.pool import transaction
from algotcha.services.periodic import Periodic

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def register(pool: ConnectionPool, worker_id: str) -> None:
    hostname, pid = worker_id.split(":")[:2]
    with transaction(pool) as conn:
        worker_db.insert_worker(conn, worker_id, hostname, int(pid))
    logger.info("event=worker_registered worker=%s", worker_id)


def heartbeat(pool: ConnectionPool, worker_id: str) -> None:
    with transaction(pool) as conn:
        worker_db.update_worker_heartbeat(conn, worker_id)


def deregister(pool: ConnectionPool, worker_id: str) -> None:
    with transaction(pool) as conn:
        worker_db.update_worker_stopped(conn, worker_id)
    logger.info("event=worker_stopped worker=%s", worker_id)


def dead_predecessors(pool: ConnectionPool, worker_id: str) -> list[str]:
    """Workers registered on this host whose process is gone (killed, crashed, rebooted).

    Only this host can tell that a pid is dead, which is why a restarting worker may
    reclaim their jobs at once instead of waiting for the heartbeat to go stale.
    """
    hostname = worker_id.split(":")[0]
    with transaction(pool) as conn:
        rows = worker_db.select_workers_on_host(conn, hostname)
        # A pid equal to ours under another id is a previous life of this container.
        dead = [
            w.id for w in rows if w.id != worker_id and (w.pid == os.getpid() or not _alive(w.pid))
        ]
        for wid in dead:
            worker_db.update_worker_stopped(conn, wid)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def heartbeat_thread(pool: ConnectionPool, worker_id: str, interval_s: float) -> Periodic:
    """Keeps this worker counted as live while it waits for work."""
    return Periodic("algotcha_heartbeat", interval_s, functools.partial(heartbeat, pool, worker_id))
