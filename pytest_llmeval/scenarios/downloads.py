"""Data from the network and its checks: HTTP downloads with retries, SHA-256 verification."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmeval.errors import DataNotFoundError

if TYPE_CHECKING:
    from pytest_llmeval.retry_policy import RetryPolicy

log = logging.getLogger("pytest_llmeval.data")


class ChecksumMismatchError(DataNotFoundError):
    """Data arrived but its SHA-256 is not the one the scenario promised; nothing was kept."""


def verify_bytes(content: bytes, expected: str | None, origin: str) -> None:
    if expected is None:
        return
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ChecksumMismatchError(f"checksum mismatch for {origin}: expected sha256 {expected}, got {actual}; "
                                    f"the data was not used. If it changed on purpose, update sha256.")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str | None, origin: str) -> None:
    if expected is not None and (actual := file_sha256(path)) != expected:
        raise ChecksumMismatchError(f"checksum mismatch for {origin}: expected sha256 {expected}, got {actual}; "
                                    f"the data was not used. If it changed on purpose, update sha256.")


def http_download(url: str, target: Path, sha256: str | None, policy: RetryPolicy) -> None:
    """Stream ``url`` into ``target`` (atomically), hashing as it goes; a bad checksum keeps nothing.

    HTTP 429, 5xx, refused and dropped connections and timeouts are retried by the session.
    """
    import requests  # only a run that downloads pays for importing it

    from pytest_llmeval.http_session import HTTPFailure, RetryingSession, attempts_of, describe_error, shown

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with RetryingSession(policy, log, url=url) as session:
            response = session.request("GET", url, stream=True)
            with response:
                if response.status_code >= 400:
                    attempts = attempts_of(response)
                    raise DataNotFoundError(
                        f"GET {shown(url)} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
                        f"HTTP {response.status_code} {response.reason}".rstrip())
                with tmp.open("wb") as out:
                    for block in response.iter_content(1 << 20):
                        digest.update(block)
                        out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumMismatchError(
                f"checksum mismatch for {shown(url)}: expected sha256 {sha256}, got {digest.hexdigest()}; "
                f"the download was discarded. If the data changed on purpose, update sha256.")
        tmp.replace(target)
    except HTTPFailure as exc:
        raise DataNotFoundError(str(exc)) from None
    except requests.RequestException as exc:  # the answer broke off while its body was read
        raise DataNotFoundError(f"GET {shown(url)} broke off: {describe_error(exc, policy.timeout)}") from None
    finally:
        tmp.unlink(missing_ok=True)
