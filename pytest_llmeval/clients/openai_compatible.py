"""A client for any OpenAI-compatible HTTP server (OpenAI, Together, vLLM, ``transformers serve``...).

Only the standard library speaks HTTP here. Requests run concurrently in a thread pool; each
one is retried with exponential backoff and jitter on HTTP 429, 5xx and dropped or refused
connections, honouring ``Retry-After``. Any other 4xx fails at once.

A request that still fails after its retries comes back as ``RequestResult(success=False,
error=...)`` (the message names the endpoint, the cause and the number of attempts) instead
of an exception, so the requests of the same call that did succeed are returned, and cached,
rather than lost. The runner turns unsuccessful results into test failures.

The API key is sent as ``Authorization: Bearer`` and appears nowhere else: not in
``raw_request``, ``identity()``, ``repr()``, log lines or error messages.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import logging
import random
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_llmeval.clients.protocol import Capabilities, ClientBase
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token, truncate_at_stop

log = logging.getLogger("pytest_llmeval.http")

APIS = ("chat", "completions")
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300.0
_ERROR_BODY_CHARS = 500
_USER_AGENT = "pytest-llmeval"


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, cause: str, retry_after: float | None = None, body: Any = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after
        self.body = body


class _RequestFailed(ClientError):
    """A request failed for good; ``body`` is the server's answer when there was one."""

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


class _Cancelled(Exception):
    """The call was abandoned (e.g. Ctrl-C) while this request waited to retry."""


class OpenAICompatibleClient(ClientBase):
    """Sends :class:`Request` objects to ``{base_url}/chat/completions`` or ``{base_url}/completions``.

    ``max_retries`` counts retries after the first attempt: a request is tried at most
    ``max_retries + 1`` times. ``extra_body`` is merged into every JSON body; a key whose value
    is ``None`` removes that field (for servers that reject, say, ``top_p``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api: str = "chat",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120,
        max_retries: int = 5,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(str(base_url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"base_url {base_url!r} is not an http:// or https:// URL",
                              field="client_spec.args.base_url")
        if api not in APIS:
            raise ConfigError(f"api must be one of {', '.join(APIS)}, not {api!r}",
                              field="client_spec.args.api")
        if not model:
            raise ConfigError("model must be a non-empty string", field="client_spec.args.model")
        checks = (
            ("concurrency", isinstance(concurrency, int) and concurrency >= 1, "an integer >= 1"),
            ("max_retries", isinstance(max_retries, int) and max_retries >= 0, "an integer >= 0"),
            ("timeout", isinstance(timeout, (int, float)) and timeout > 0, "a number > 0"),
            ("backoff", isinstance(backoff, (int, float)) and backoff >= 0, "a number >= 0"),
            ("extra_body", extra_body is None or isinstance(extra_body, dict), "a mapping"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"must be {expected}", field=f"client_spec.args.{name}")
        self.base_url = str(base_url).rstrip("/")
        self.model = str(model)
        self.api = api
        self.concurrency = concurrency
        self.batch_hint = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.extra_body = dict(extra_body or {})
        self.endpoint = f"{self.base_url}/{'chat/completions' if api == 'chat' else 'completions'}"
        self.__api_key = api_key or None
        # A local server must not be reached through an HTTP(S)_PROXY set for the outside world.
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parsed.hostname) else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient(base_url={self.base_url!r}, model={self.model!r}, api={self.api!r})"

    def identity(self) -> dict[str, Any]:
        """Endpoint, model and API flavour (part of every cache key); never the API key."""
        identity: dict[str, Any] = {
            "class": "pytest_llmeval.clients.OpenAICompatibleClient",
            "base_url": self.base_url,
            "model": self.model,
            "api": self.api,
        }
        if self.extra_body:
            identity["extra_body"] = self._redact_value(self.extra_body)
        return identity

    def capabilities(self) -> Capabilities:
        """The completions API echoes the prompt with its log-probabilities; chat cannot."""
        return Capabilities(prompt_logprobs=self.api == "completions")

    # --- generation ---------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """One result per request, in order; failed requests come back with ``success=False``."""
        if not requests:
            return []
        cancel = threading.Event()
        if len(requests) == 1 or self.concurrency == 1:
            return [self._run(request, cancel) for request in requests]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)),
                                  thread_name_prefix="llmeval-http")
        try:
            futures = [pool.submit(self._run, request, cancel) for request in requests]
            results = [future.result() for future in futures]
        except BaseException:
            cancel.set()  # waiting retries stop; requests already on the wire finish or time out
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results

    def _run(self, request: Request, cancel: threading.Event) -> RequestResult:
        """Send one request and turn every failure into an unsuccessful result."""
        started_at = int(time.time())
        started = time.perf_counter()
        body: dict[str, Any] | None = None
        try:
            body = self.build_body(request)
            response = self._post(body, cancel)
            completions = self.parse_response(response, request)
            return RequestResult(
                success=True, completions=completions, request_time=time.perf_counter() - started,
                request_datetime=started_at, raw_request=body, raw_response=self._redact_value(response),
            )
        except _Cancelled:
            raise
        except _RequestFailed as exc:
            error, raw_response = str(exc), self._redact_value(exc.body)
        except ClientError as exc:
            error, raw_response = str(exc), None
        except Exception as exc:  # a malformed answer, or a bug: the other requests still count
            log.error("POST %s: unexpected %s", self.endpoint, type(exc).__name__, exc_info=True)
            error, raw_response = self._redact(f"POST {self.endpoint}: {type(exc).__name__}: {exc}"), None
        return RequestResult(success=False, error=error, request_time=time.perf_counter() - started,
                             request_datetime=started_at, raw_request=body, raw_response=raw_response)

    def build_body(self, request: Request) -> dict[str, Any]:
        """The JSON body for ``request``: exactly what is sent, without credentials."""
        body: dict[str, Any] = {"model": self.model}
        if self.api == "chat":
            if request.echo_prompt:
                raise ClientError(f"{self.endpoint}: echo_prompt needs api: completions; chat cannot echo")
            if request.messages is not None:
                body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            else:
                body["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            if request.messages is not None:
                body["prompt"] = "\n\n".join(m.content for m in request.messages)
            else:
                body["prompt"] = request.prompt
            if request.echo_prompt:
                body["echo"] = True
        body["temperature"] = request.temperature
        body["max_tokens"] = request.max_tokens
        body["top_p"] = request.top_p
        if request.num_completions != 1:
            body["n"] = request.num_completions
        if request.stop_sequences:
            body["stop"] = list(request.stop_sequences)
        if request.top_k_per_token > 1:
            if self.api == "chat":
                body["logprobs"] = True
                body["top_logprobs"] = request.top_k_per_token
            else:
                body["logprobs"] = request.top_k_per_token
        for key, value in self.extra_body.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    # --- HTTP -----------------------------------------------------------------------------

    def _post(self, body: dict[str, Any], cancel: threading.Event) -> Any:
        """POST ``body`` with retries; the decoded JSON answer, or :class:`_RequestFailed`."""
        attempts = self.max_retries + 1
        data = json.dumps(body).encode("utf-8")
        for attempt in range(1, attempts + 1):
            if cancel.is_set():
                raise _Cancelled()
            try:
                return self._attempt(data)
            except _Retryable as exc:
                if attempt == attempts:
                    message = self._redact(
                        f"POST {self.endpoint} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
                        f"{exc.cause}")
                    log.error("%s", message)
                    raise _RequestFailed(message, exc.body) from None
                delay = self._delay(attempt, exc.retry_after)
                log.warning("retrying POST %s after %s (attempt %d of %d) in %.1f s", self.endpoint,
                            self._redact(exc.cause), attempt + 1, attempts, delay)
                if cancel.wait(delay):
                    raise _Cancelled() from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, data: bytes) -> Any:
        """One POST; raises :class:`_Retryable` or :class:`_RequestFailed` on failure."""
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": _USER_AGENT}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        http_request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(http_request, timeout=self.timeout) as response:
                payload = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                error_payload = exc.read()
            except (OSError, http.client.HTTPException):
                error_payload = b""
            finally:
                exc.close()
            error_body = _decode(error_payload)
            cause = f"HTTP {status}{_describe(error_body)}"
            if status == 429 or status >= 500:
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                raise _Retryable(cause, retry_after, error_body) from None
            message = (f"POST {self.endpoint} failed after 1 attempt: {cause} "
                       "(a 4xx other than 429 is not retried)")
            raise _RequestFailed(self._redact(message), error_body) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise _RequestFailed(
                f"POST {self.endpoint} failed after 1 attempt: TLS certificate error: {reason}") from None
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"timeout after {self.timeout:g} s") from None
            raise _Retryable(f"connection error ({_exception_text(reason)})") from None
        except TimeoutError:
            raise _Retryable(f"timeout after {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            # RemoteDisconnected, ConnectionResetError, IncompleteRead, BadStatusLine...
            raise _Retryable(f"connection dropped ({_exception_text(exc)})") from None
        except OSError as exc:
            raise _Retryable(f"network error ({_exception_text(exc)})") from None
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _RequestFailed(self._redact(
                f"POST {self.endpoint} answered HTTP {status} with a body that is not JSON: "
                f"{payload[:_ERROR_BODY_CHARS]!r}")) from None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        return min(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()), MAX_BACKOFF_S)

    # --- parsing ------------------------------------------------------------------------

    def parse_response(self, response: Any, request: Request) -> list[GeneratedOutput]:
        """Completions from a decoded answer, cut at the request's stop sequences."""
        choices = response.get("choices") if isinstance(response, dict) else None
        if not isinstance(choices, list) or not choices:
            message = f"POST {self.endpoint} answered without choices: {_truncate(json.dumps(response))}"
            raise _RequestFailed(self._redact(message), response)
        ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        outputs = [self._parse_choice(choice, request) for choice in ordered]
        if len(outputs) < request.num_completions:
            log.warning("POST %s: asked for %d completions, the server returned %d", self.endpoint,
                        request.num_completions, len(outputs))
        return outputs

    def _parse_choice(self, choice: dict[str, Any], request: Request) -> GeneratedOutput:
        if self.api == "chat":
            message = choice.get("message") or {}
            text = message.get("content") or ""
            tokens = _chat_tokens(choice.get("logprobs"))
        else:
            text = choice.get("text") or ""
            tokens = _completion_tokens(choice.get("logprobs"))
        finish: dict[str, Any] = {"reason": choice.get("finish_reason")}
        prefix = ""
        if self.api == "completions" and request.echo_prompt and text.startswith(str(request.prompt)):
            prefix, text = str(request.prompt), text[len(str(request.prompt)):]
        cut, hit = truncate_at_stop(text, request.stop_sequences)
        if hit is not None:
            finish = {"reason": "stop", "stop_sequence": hit}
            tokens = _tokens_within(tokens, len(prefix) + len(cut))
        logprob = sum(t.logprob for t in tokens)
        return GeneratedOutput(text=prefix + cut, logprob=logprob, tokens=tokens, finish_reason=finish)

    # --- credentials --------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        """``text`` with the API key, should a server echo it back, replaced by ``***``."""
        key = self.__api_key
        return text.replace(key, "***") if key and key in text else text

    def _redact_value(self, value: Any) -> Any:
        key = self.__api_key
        if not key or value is None:
            return value
        dumped = json.dumps(value)
        return json.loads(dumped.replace(key, "***")) if key in dumped else value


# --- helpers ---------------------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode(payload: bytes) -> Any:
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _describe(body: Any) -> str:
    """``: <server message>`` for an error body, shortened."""
    if body in (None, "", b""):
        return ""
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = error if isinstance(error, str) else json.dumps(error)
    else:
        text = str(body)
    return f": {_truncate(text.strip())}"


def _truncate(text: str) -> str:
    return text if len(text) <= _ERROR_BODY_CHARS else text[:_ERROR_BODY_CHARS] + "..."


def _exception_text(exc: object) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text and not isinstance(exc, str) else (text or name)


def _chat_tokens(logprobs: Any) -> list[Token]:
    """Tokens from a chat choice's ``logprobs.content``."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    tokens = []
    for item in content or []:
        top = {t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or [] if "token" in t}
        tokens.append(Token(text=item.get("token", ""), logprob=float(item.get("logprob") or 0.0),
                            top_logprobs=top))
    return tokens


def _completion_tokens(logprobs: Any) -> list[Token]:
    """Tokens from a completions choice's ``logprobs`` (parallel lists)."""
    if not isinstance(logprobs, dict):
        return []
    texts = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    tokens = []
    for i, text in enumerate(texts):
        value = values[i] if i < len(values) else None  # the first echoed token has no logprob
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        tokens.append(Token(text=text, logprob=float(value or 0.0),
                            top_logprobs={k: float(v) for k, v in top.items()}))
    return tokens


def _tokens_within(tokens: list[Token], length: int) -> list[Token]:
    """The leading tokens whose text fits in the first ``length`` characters."""
    kept, used = [], 0
    for token in tokens:
        used += len(token.text)
        if used > length:
            break
        kept.append(token)
    return kept
