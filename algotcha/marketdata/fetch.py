"""Verified downloads of archive files: a few in parallel, retried with backoff, resumable.

A file is kept in the staging directory only once its SHA-256 matches the archive's
.CHECKSUM, so a rerun after an interruption fetches only what is not there yet. Outcomes:

    Fetched   the verified zip is in the staging directory (resumed: it already was)
    Missing   the archive answers 404 (a month not published yet, or an unknown symbol)
    Failed    anything else, with the reason: checksum mismatch, network or disk error
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from algotcha.marketdata.archive import ArchiveFile, parse_checksum

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fetched:
    file: ArchiveFile
    path: Path
    resumed: bool


@dataclass(frozen=True)
class Missing:
    file: ArchiveFile


@dataclass(frozen=True)
class Failed:
    file: ArchiveFile
    reason: str


Outcome = Fetched | Missing | Failed


class _NotFound(Exception):
    pass


class _GaveUp(Exception):
    pass


class Fetcher:
    """Fetches ArchiveFiles from `base_url` into `staging`."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        staging: Path,
        *,
        parallel: int = 4,
        attempts: int = 4,
        backoff_s: float = 1.0,
        on_bytes: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.staging = staging
        self.parallel = parallel
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.on_bytes = on_bytes

    def fetch_all(self, files: list[ArchiveFile]) -> Iterator[Outcome]:
        """Each file's outcome, in the order given, as soon as it and those before it are done."""
        self.staging.mkdir(parents=True, exist_ok=True)
        pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="fetch")
        try:
            yield from pool.map(self.fetch, files)
        except KeyboardInterrupt:
            # said before the wait below, which may take as long as a file takes
            logger.warning("event=download_stopping waiting_for=files_in_flight")
            raise
        finally:
            # On Ctrl-C (or any error) start nothing new: only the files in flight finish.
            pool.shutdown(wait=True, cancel_futures=True)

    def fetch(self, file: ArchiveFile) -> Outcome:
        target = self.staging / file.name
        checksum = self.staging / f"{file.name}.CHECKSUM"
        try:
            if target.is_file() and checksum.is_file():
                if _sha256(target) == parse_checksum(checksum.read_text(), file.name):
                    return Fetched(file, target, resumed=True)
                target.unlink()
            checksum_text = self._retried(file, lambda: self._get_text(f"{file.path}.CHECKSUM"))
            expected = parse_checksum(checksum_text, file.name)
            part = self.staging / f"{file.name}.part"
            digest = self._retried(file, lambda: self._download(file.path, part))
            if digest != expected:
                part.unlink(missing_ok=True)
                logger.warning("event=checksum_mismatch file=%s", file.name)
                return Failed(
                    file,
                    f"checksum mismatch: {file.name}.CHECKSUM says {expected}, the file hashes "
                    f"to {digest}; nothing of it was stored",
                )
            checksum.write_text(checksum_text)
            os.replace(part, target)
        except _NotFound:
            return Missing(file)
        except _GaveUp as error:
            return Failed(file, str(error))
        except ValueError as error:
            return Failed(file, str(error))
        except OSError as error:  # the staging disk: full, read-only, ...
            return Failed(file, f"cannot write {target}: {error.strerror or error}")
        logger.debug("event=file_fetched file=%s bytes=%d", file.name, target.stat().st_size)
        return Fetched(file, target, resumed=False)

    def _retried(self, file: ArchiveFile, request: Callable[[], str]) -> str:
        for attempt in range(1, self.attempts + 1):
            try:
                return request()
            except (httpx.TransportError, _RetryableStatusError) as error:
                reason = str(error) or type(error).__name__
                if attempt == self.attempts:
                    raise _GaveUp(f"{reason} (gave up after {attempt} attempts)") from None
                delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                logger.warning(
                    "event=fetch_retry file=%s attempt=%d delay_s=%.2f reason=%s",
                    file.name,
                    attempt,
                    delay,
                    reason,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _get_text(self, path: str) -> str:
        response = self.client.get(f"{self.base_url}/{path}")
        _check(response)
        return response.text

    def _download(self, path: str, part: Path) -> str:
        """Stream the file into `part`; its SHA-256 (hex)."""
        digest = hashlib.sha256()
        with self.client.stream("GET", f"{self.base_url}/{path}") as response:
            _check(response)
            with open(part, "wb") as out:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    self.on_bytes(len(chunk))
        return digest.hexdigest()


class _RetryableStatusError(Exception):
    pass


def _check(response: httpx.Response) -> None:
    if response.status_code == 404:
        raise _NotFound
    if response.status_code in _RETRY_STATUSES:
        raise _RetryableStatusError(f"HTTP {response.status_code} from the archive")
    if response.status_code != 200:
        raise _GaveUp(f"HTTP {response.status_code} from the archive")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
