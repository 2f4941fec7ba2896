"""How hard an HTTP call tries, as plain data: importing it costs nothing, so a session that
never goes to the network never imports ``requests`` (see :mod:`pytest_llmeval.http_session`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` after the first attempt, ``backoff`` seconds doubling from
    the second retry on, ``timeout`` seconds to connect and between bytes of the answer."""

    retries: int = 5
    backoff: float = 0.5
    timeout: float = 120.0
