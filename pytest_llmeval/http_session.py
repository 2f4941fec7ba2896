"""HTTP with retries from urllib3, shared by the OpenAI-compatible client and data downloads.

One :class:`RetryingSession` is a ``requests`` session whose adapter carries urllib3's
``Retry``: HTTP 429 and 5xx, refused and dropped connections and timeouts are retried with
exponential backoff and jitter (the first retry goes at once), honouring ``Retry-After``; any
other status comes back to the caller, which decides what it means. Each retry is logged at
WARNING naming the URL (without its query string) and the cause. A request that still fails
raises :class:`HTTPFailure`, one line naming method, URL, attempts and the last cause.

:meth:`RetryingSession.stop` ends every wait between retries at once (a run abandoned with
Ctrl-C must not keep its worker threads sleeping).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)
from urllib3.util.retry import Retry

from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.retry_policy import RetryPolicy

RETRY_STATUSES = frozenset({429, *range(500, 600)})
RETRY_METHODS = frozenset({"HEAD", "GET", "POST"})
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300
ERROR_BODY_CHARS = 500
USER_AGENT = "pytest-llmeval"


class HTTPFailure(LLMEvalError):
    """A request failed for good: ``METHOD URL failed after N attempts: cause``."""

    def __init__(self, message: str, cause: str, attempts: int) -> None:
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts


class RetryStopped(Exception):
    """The session was stopped while a request waited to retry."""


class _GaveUp(MaxRetryError):
    """urllib3's MaxRetryError, knowing how many attempts were made."""

    def __init__(self, error: MaxRetryError, attempts: int) -> None:
        super().__init__(error.pool, error.url or "", error.reason)
        self.attempts = attempts


@dataclass(frozen=True)
class _RetryContext:
    logger: logging.Logger
    stop: threading.Event
    timeout: float
    redact: Callable[[str], str]


class _LoggedRetry(Retry):
    """urllib3's Retry that logs each retry and whose waits end when the session stops."""

    context: _RetryContext | None = None

    def new(self, **kw: Any) -> _LoggedRetry:
        retry = super().new(**kw)
        retry.context = self.context
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None,
                  _stacktrace: TracebackType | None = None) -> _LoggedRetry:
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            raise _GaveUp(exc, len(self.history) + 1) from exc.reason
        if self.context is not None:
            cause = (describe_error(error, self.context.timeout) if error is not None
                     else f"HTTP {response.status}{describe_body(_peek(response))}")
            attempt = len(retry.history) + 1
            self.context.logger.warning(
                "retrying %s %s after %s (attempt %d of %d) in %.1f s", method, _shown_url(_pool, url),
                self.context.redact(cause), attempt, attempt + (retry.total or 0), retry._delay(response))
        return retry

    def _delay(self, response: Any) -> float:
        if self.respect_retry_after_header and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:
                return retry_after
        return self.get_backoff_time()

    def sleep(self, response: Any = None) -> None:
        stop = self.context.stop if self.context is not None else threading.Event()
        if stop.wait(self._delay(response)):
            raise RetryStopped()


class RetryingSession:
    """A ``requests`` session with the library's retries; usable from many threads at once."""

    def __init__(self, policy: RetryPolicy, logger: logging.Logger, *, url: str = "", pool_size: int = 10,
                 redact: Callable[[str], str] = str) -> None:
        """``url``: the server this session talks to (a loopback one ignores proxy settings);
        ``redact``: applied to every cause logged or raised (a server may echo a credential)."""
        self.policy = policy
        self._redact = redact
        self._stop = threading.Event()
        retry = _LoggedRetry(
            total=policy.retries, connect=None, read=None, status=None, other=0, redirect=10,
            allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES, backoff_factor=policy.backoff,
            backoff_jitter=policy.backoff, backoff_max=MAX_BACKOFF_S, retry_after_max=MAX_RETRY_AFTER_S,
            raise_on_status=False, respect_retry_after_header=True,
        )
        retry.context = _RetryContext(logger, self._stop, policy.timeout, redact)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
        self._session = requests.Session()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        # A local server must not be reached through an HTTP(S)_PROXY set for the outside world.
        self._session.trust_env = not is_loopback(urllib.parse.urlsplit(url).hostname)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The answer after retries, whatever its status; :class:`HTTPFailure` when none came."""
        if self._stop.is_set():
            raise RetryStopped()
        try:
            return self._session.request(method, url, timeout=self.policy.timeout, **kwargs)
        except requests.RequestException as exc:
            attempts = _attempts(exc)
            cause = self._redact(describe_error(exc, self.policy.timeout))
            plural = "s" if attempts > 1 else ""
            raise HTTPFailure(f"{method} {shown(url)} failed after {attempts} attempt{plural}: {cause}",
                              cause, attempts) from None

    def stop(self) -> None:
        """End every wait between retries now; later requests raise :class:`RetryStopped`."""
        self._stop.set()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RetryingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def attempts_of(response: requests.Response) -> int:
    """How many attempts it took to get ``response``."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def describe_error(error: BaseException | None, timeout: float) -> str:
    """A short cause for a failed attempt: timeout, connection error, dropped connection, TLS."""
    reason: Any = error
    while isinstance(reason, (requests.RequestException, MaxRetryError)):
        inner = reason.reason if isinstance(reason, MaxRetryError) else (reason.args[0] if reason.args else None)
        if not isinstance(inner, BaseException):
            break
        reason = inner
    if isinstance(reason, ProxyError):
        return f"proxy error ({reason})"
    if isinstance(reason, (ReadTimeoutError, Urllib3Timeout, TimeoutError)) and not isinstance(
            reason, NewConnectionError):
        return f"timeout after {timeout:g} s"
    if isinstance(reason, NewConnectionError):
        return f"connection error ({reason})"
    if isinstance(reason, SSLError):
        return f"TLS error ({reason})"
    if isinstance(reason, ProtocolError):
        return f"connection dropped ({reason})"
    return f"network error ({type(reason).__name__}: {reason})"


def decode_body(payload: bytes) -> Any:
    """An error body as JSON when it is JSON, else as text."""
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_body(body: Any) -> str:
    """``: <server message>`` for an error body (OpenAI's ``error.message`` when there is one)."""
    if body in (None, "", b""):
        return ""
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = error if isinstance(error, str) else json.dumps(error)
    else:
        text = str(body)
    return f": {truncate(text.strip())}"


def truncate(text: str) -> str:
    return text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "..."


def shown(url: str) -> str:
    """``url`` for messages: without credentials, query string or fragment (pre-signed URLs)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _attempts(exc: requests.RequestException) -> int:
    reason = exc.args[0] if exc.args else None
    return reason.attempts if isinstance(reason, _GaveUp) else 1


def _peek(response: Any) -> Any:
    """The start of a response about to be retried (its connection is drained afterwards)."""
    try:
        return decode_body(response.read(ERROR_BODY_CHARS * 4, decode_content=True) or b"")
    except Exception:  # a body that cannot be read names nothing; the status still does
        return None


def _shown_url(pool: Any, path: str | None) -> str:
    if pool is None:
        return shown(path or "")
    default = {"http": 80, "https": 443}.get(pool.scheme)
    host = f"[{pool.host}]" if ":" in (pool.host or "") else pool.host
    port = "" if pool.port in (None, default) else f":{pool.port}"
    return shown(f"{pool.scheme}://{host}{port}{path or ''}")
