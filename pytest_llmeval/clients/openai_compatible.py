"""A client for any OpenAI-compatible HTTP server (OpenAI, Together, vLLM, ``transformers serve``...).

HTTP goes through ``requests`` with urllib3's retries (:mod:`pytest_llmeval.http_session`):
HTTP 429, 5xx, refused and dropped connections and timeouts are retried with exponential
backoff and jitter, honouring ``Retry-After``; any other 4xx fails at once. Requests run
concurrently in a thread pool over one connection pool.

A request that still fails after its retries comes back as ``RequestResult(success=False,
error=...)`` (one line naming the endpoint, the attempts and the last cause) instead of an
exception, so the requests of the same call that did succeed are returned, and cached,
rather than lost. The runner turns unsuccessful results into test failures.

The API key is sent as ``Authorization: Bearer`` and appears nowhere else: not in
``raw_request``, ``identity()``, ``repr()``, log lines or error messages, even when a server
echoes it back.

``base_url`` may be a list: the replicas of one fleet serving the same model (vLLM
data-parallel ranks, Ray Serve, several ``transformers serve`` processes). Requests are spread
over them, ``concurrency`` in flight on each live replica (:mod:`pytest_llmeval.clients.replicas`);
a replica that fails a request after the session's retries (refused or dropped connections,
timeouts, 5xx) is taken out for ``cooldown`` seconds, its request goes to another, and it is
probed again after the cool-down. When none is left the call raises a one-line
:class:`~pytest_llmeval.clients.replicas.FleetDown` (a ``ClientError``) after returning every
result that came back.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from pytest_llmeval.clients.concurrent_requests import map_concurrently
from pytest_llmeval.clients.openai_choices import completion_of
from pytest_llmeval.clients.protocol import Capabilities, ClientBase, Finished, collect
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.clients.replicas import DEFAULT_COOLDOWN_S, ReplicaFailed, ReplicaPool, stream_over_fleet
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.http_session import (
    ERROR_BODY_CHARS,
    HTTPFailure,
    RetryingSession,
    RetryPolicy,
    RetryStopped,
    attempts_of,
    decode_body,
    describe_body,
    shown,
    truncate,
)
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult

log = logging.getLogger("pytest_llmeval.http")

APIS = ("chat", "completions")


class _RequestFailed(ClientError):
    """A request failed for good; ``body`` is the server's answer when there was one;
    ``replica_down``: the server itself failed (no answer, a timeout, a 5xx), not the request."""

    def __init__(self, message: str, body: Any = None, replica_down: bool = False) -> None:
        super().__init__(message)
        self.body = body
        self.replica_down = replica_down


class _BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <key>`` on each request (and never ``~/.netrc`` instead)."""

    def __init__(self, key: str) -> None:
        self.__key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.__key}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class OpenAICompatibleClient(ClientBase):
    """Sends :class:`Request` objects to ``{base_url}/chat/completions`` or ``{base_url}/completions``.

    ``max_retries`` counts retries after the first attempt: a request is tried at most
    ``max_retries + 1`` times. ``extra_body`` is merged into every JSON body; a key whose value
    is ``None`` removes that field (for servers that reject, say, ``top_p``).

    A list of ``base_url`` s is a fleet serving one model: its cache identity is the model, the
    API, ``extra_body`` and the optional ``fleet`` name, never the URLs, so adding, removing or
    reordering replicas keeps the cache; give two fleets that serve different weights under one
    model name different ``fleet`` names. A single ``base_url`` string is identified by its URL,
    as always. ``cooldown``: seconds a failed replica stays out before it is probed again.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        api: str = "chat",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120,
        max_retries: int = 5,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
        fleet: str | None = None,
        cooldown: float = DEFAULT_COOLDOWN_S,
    ) -> None:
        urls = _base_urls(base_url)
        is_fleet = not isinstance(base_url, str)
        if fleet is not None and not (is_fleet and isinstance(fleet, str) and fleet):
            raise ConfigError("must be a non-empty string, given with a list of base_url replicas",
                              field="client_spec.args.fleet")
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
            ("cooldown", isinstance(cooldown, (int, float)) and cooldown >= 0, "a number >= 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"must be {expected}", field=f"client_spec.args.{name}")
        self.base_urls = urls
        self.base_url = urls[0]
        self.fleet = fleet
        self.model = str(model)
        self.api = api
        self.concurrency = concurrency
        self.batch_hint = concurrency * len(urls)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.extra_body = dict(extra_body or {})
        path = "chat/completions" if api == "chat" else "completions"
        self.endpoints = [f"{url}/{path}" for url in urls]
        self.endpoint = self.endpoints[0]
        self._auth = _BearerAuth(api_key) if api_key else None
        self._redactor = Redactor([api_key])
        self._session: RetryingSession | None = None
        self._sessions: list[RetryingSession] | None = None
        self.pool: ReplicaPool | None = None
        if is_fleet:
            label = f"fleet {fleet!r}" if fleet else f"the {self.model} fleet"
            self.pool = ReplicaPool([shown(url) for url in urls], concurrency, float(cooldown), label=label,
                                    logger=log)

    def __repr__(self) -> str:
        where = f"base_url={self.base_url!r}" if self.pool is None else f"base_url={self.base_urls!r}"
        return f"OpenAICompatibleClient({where}, model={self.model!r}, api={self.api!r})"

    def identity(self) -> dict[str, Any]:
        """Endpoint (or fleet name), model and API flavour (part of every cache key); never the API key.

        A fleet's replicas serve one model, so its URLs are left out: the cache survives replicas
        added, removed or reordered.
        """
        identity: dict[str, Any] = {"class": "pytest_llmeval.clients.OpenAICompatibleClient"}
        if self.pool is None:
            identity["base_url"] = self.base_url
        else:
            identity["fleet"] = self.fleet
        identity.update(model=self.model, api=self.api)
        if self.extra_body:
            identity["extra_body"] = self._redactor.value(self.extra_body)
        return identity

    def capabilities(self) -> Capabilities:
        """The completions API echoes the prompt with its log-probabilities; chat cannot."""
        return Capabilities(prompt_logprobs=self.api == "completions", raw_prompts=self.api == "completions")

    # --- generation ---------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """One result per request, in order; failed requests come back with ``success=False``."""
        if not requests:
            return []
        if self.pool is not None:
            return collect(self._fleet_stream(requests), len(requests))
        session = self._session_for_call()

        def abort() -> None:  # waiting retries stop and the session is dropped; requests on the wire finish
            self._session = None
            session.stop()

        return map_concurrently(functools.partial(self._run, session=session), requests, self.concurrency,
                                "llmeval-http", on_abort=abort)

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """A fleet's results as they finish (each is cached even if the fleet goes down later)."""
        if self.pool is not None:
            return self._fleet_stream(requests)
        return super().generate_stream(requests)

    def _fleet_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        sessions = self._fleet_sessions()

        def attempt(request: Request, replica: int) -> RequestResult:
            return self._run(request, sessions[replica], self.endpoints[replica], replica_failures=True)

        def abort() -> None:
            self._sessions = None
            for session in sessions:
                session.stop()

        assert self.pool is not None
        return stream_over_fleet(self.pool, attempt, requests, "llmeval-http", abort)

    def _new_session(self, url: str) -> RetryingSession:
        policy = RetryPolicy(retries=self.max_retries, backoff=self.backoff, timeout=self.timeout)
        return RetryingSession(policy, log, url=url, pool_size=self.concurrency, redact=self._redactor.text)

    def _session_for_call(self) -> RetryingSession:
        if self._session is None:
            self._session = self._new_session(self.base_url)
        return self._session

    def _fleet_sessions(self) -> list[RetryingSession]:
        if self._sessions is None:
            self._sessions = [self._new_session(url) for url in self.base_urls]
        return self._sessions

    def _run(self, request: Request, session: RetryingSession, endpoint: str | None = None,
             replica_failures: bool = False) -> RequestResult:
        """Send one request and turn every failure into an unsuccessful result; with
        ``replica_failures``, a failure of the server itself raises :class:`ReplicaFailed` instead."""
        endpoint = endpoint or self.endpoint
        started_at = int(time.time())
        started = time.perf_counter()
        body: dict[str, Any] | None = None
        try:
            body = self.build_body(request, endpoint)
            response = self._post(body, session, endpoint)
            completions = self.parse_response(response, request, endpoint)
            return RequestResult(
                success=True, completions=completions, request_time=time.perf_counter() - started,
                request_datetime=started_at, raw_request=body, raw_response=self._redactor.value(response),
            )
        except RetryStopped:
            raise
        except _RequestFailed as exc:
            if replica_failures and exc.replica_down:
                raise ReplicaFailed(str(exc)) from None
            error, raw_response = str(exc), self._redactor.value(exc.body)
        except ClientError as exc:
            error, raw_response = self._redactor.text(str(exc)), None
        except Exception as exc:  # a malformed answer, or a bug: the other requests still count
            log.error("POST %s: unexpected %s", endpoint, type(exc).__name__, exc_info=True)
            error = self._redactor.text(f"POST {endpoint}: {type(exc).__name__}: {exc}")
            raw_response = None
        return RequestResult(success=False, error=error, request_time=time.perf_counter() - started,
                             request_datetime=started_at, raw_request=body, raw_response=raw_response)

    def build_body(self, request: Request, endpoint: str | None = None) -> dict[str, Any]:
        """The JSON body for ``request``: exactly what is sent, without credentials."""
        body: dict[str, Any] = {"model": self.model}
        if self.api == "chat":
            if request.echo_prompt or (request.verbatim and request.messages is None):
                what = "echo_prompt" if request.echo_prompt else "a verbatim prompt (lm-eval's)"
                raise ClientError(f"{endpoint or self.endpoint}: {what} needs api: completions; chat cannot echo or "
                                  "take raw text")
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

    def _post(self, body: dict[str, Any], session: RetryingSession, endpoint: str) -> Any:
        """POST ``body`` (retried by the session); the decoded JSON answer, or :class:`_RequestFailed`."""
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            response = session.request("POST", endpoint, data=data, headers=headers, auth=self._auth)
        except HTTPFailure as exc:
            message = self._redactor.text(str(exc))
            log.error("%s", message)
            raise _RequestFailed(message, replica_down=True) from None
        attempts = attempts_of(response)
        plural = "s" if attempts > 1 else ""
        if response.status_code >= 400:
            error_body = decode_body(response.content)
            message = (f"POST {endpoint} failed after {attempts} attempt{plural}: "
                       f"HTTP {response.status_code}{describe_body(error_body)}")
            if response.status_code != 429 and response.status_code < 500:
                message += " (a 4xx other than 429 is not retried)"
            else:
                log.error("%s", self._redactor.text(message))
            raise _RequestFailed(self._redactor.text(message), error_body, replica_down=response.status_code >= 500)
        try:
            return json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _RequestFailed(self._redactor.text(
                f"POST {endpoint} answered HTTP {response.status_code} with a body that is not JSON: "
                f"{response.content[:ERROR_BODY_CHARS]!r}")) from None

    # --- parsing ------------------------------------------------------------------------

    def parse_response(self, response: Any, request: Request, endpoint: str | None = None) -> list[GeneratedOutput]:
        """Completions from a decoded answer, cut at the request's stop sequences."""
        endpoint = endpoint or self.endpoint
        choices = response.get("choices") if isinstance(response, dict) else None
        if not isinstance(choices, list) or not choices:
            message = f"POST {endpoint} answered without choices: {truncate(json.dumps(response))}"
            raise _RequestFailed(self._redactor.text(message), response)
        ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        outputs = [completion_of(choice, request, self.api) for choice in ordered]
        if len(outputs) < request.num_completions:
            log.warning("POST %s: asked for %d completions, the server returned %d", endpoint,
                        request.num_completions, len(outputs))
        return outputs


# --- helpers ---------------------------------------------------------------------------------


def _base_urls(base_url: Any) -> list[str]:
    """The URLs of ``base_url`` (one string, or a list of a fleet's replicas), each checked."""
    field = "client_spec.args.base_url"
    if isinstance(base_url, str):
        given = [base_url]
    elif isinstance(base_url, (list, tuple)) and base_url:
        given = list(base_url)
    else:
        raise ConfigError(f"must be an http(s) URL or a non-empty list of them, not {base_url!r}", field=field)
    urls: list[str] = []
    for i, url in enumerate(given):
        where = field if isinstance(base_url, str) else f"{field}[{i}]"
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"base_url {url!r} is not an http:// or https:// URL", field=where)
        url = url.rstrip("/")
        if url in urls:
            raise ConfigError(f"{shown(url)} is listed twice", field=where)
        urls.append(url)
    return urls
