"""The redactor, the log redaction and the caching client's use of them."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_llmeval.clients.cache import CachingClient, RequestCache, cache_key
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.clients.redaction import MARKER, LogRedaction, Redactor
from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token

SECRET = "sk-abc123-very-secret"
IDENTITY = {"class": "Leaky"}


def _leaky_result(secret: str = SECRET) -> RequestResult:
    return RequestResult(
        success=True, request_time=0.1,
        completions=[GeneratedOutput(text=f"key is {secret}!", logprob=-1.0,
                                     tokens=[Token(secret, -1.0, {secret: -1.0})])],
        raw_request={"headers": {"Authorization": f"Bearer {secret}"}},
        raw_response={"choices": [{"text": f"key is {secret}!"}], secret: 1},
    )


def test_text_value_and_result_are_cleaned_everywhere() -> None:
    redactor = Redactor([SECRET, "short", None, ""])
    assert redactor.text(f"a {SECRET} b {SECRET}") == f"a {MARKER} b {MARKER}"
    assert redactor.text("short stays") == "short stays"  # too short to be a secret worth mangling text for
    assert redactor.value({"k": [SECRET, 1, None], SECRET: "v"}) == {"k": [MARKER, 1, None], MARKER: "v"}
    cleaned = redactor.result(_leaky_result())
    assert SECRET not in json.dumps(cleaned.to_dict())
    assert cleaned.completions[0].text == f"key is {MARKER}!"
    assert cleaned.completions[0].tokens[0].top_logprobs == {MARKER: -1.0}
    untouched = RequestResult(success=True, completions=[GeneratedOutput(text="fine")])
    assert redactor.result(untouched) is untouched
    assert SECRET not in repr(redactor)


def test_secrets_in_json_text_with_escapes_are_found() -> None:
    """A secret with a quote or non-ASCII characters is stored escaped in the cache's JSON rows."""
    secret = 'pa"ss-wörd-1234'
    redactor = Redactor([secret])
    stored = json.dumps({"text": f"x {secret} y"})
    assert secret not in json.loads(redactor.text(stored))["text"]


def test_an_empty_redactor_costs_nothing() -> None:
    result = _leaky_result()
    assert not Redactor()
    assert Redactor().result(result) is result


def test_log_records_are_cleaned_before_pytest_handles_them(caplog: pytest.LogCaptureFixture) -> None:
    """caplog's handler sits on the root logger, as pytest's terminal and log-file handlers do."""
    caplog.set_level(logging.DEBUG)
    redaction = LogRedaction(Redactor([SECRET])).install()
    try:
        logger = logging.getLogger("pytest_llmeval.some.module")
        logger.warning("server said %s", f"bad key {SECRET}")
        try:
            raise ValueError(f"rejected {SECRET}")
        except ValueError:
            logger.exception("call failed")
    finally:
        redaction.remove()
    assert "server said bad key [REDACTED]" in caplog.text
    assert "ValueError: rejected [REDACTED]" in caplog.text
    assert SECRET not in caplog.text
    logging.getLogger("pytest_llmeval.some.module").warning("after %s", SECRET)
    assert f"after {SECRET}" in caplog.text  # removed: nothing left attached


def test_urllib3_retry_warnings_are_cleaned_too(caplog: pytest.LogCaptureFixture) -> None:
    """urllib3 logs each retry with the URL, where a pre-signed query string may hold a key."""
    caplog.set_level(logging.DEBUG)
    redaction = LogRedaction(Redactor([SECRET])).install()
    try:
        logging.getLogger("urllib3.connectionpool").warning("Retrying ... /data?sig=%s", SECRET)
    finally:
        redaction.remove()
    assert "/data?sig=[REDACTED]" in caplog.text and SECRET not in caplog.text


class Leaky(ClientBase):
    """A backend that puts its key into everything it answers."""

    def __init__(self) -> None:
        self.calls = 0

    def identity(self) -> dict[str, str]:
        return dict(IDENTITY)

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        self.calls += 1
        return [_leaky_result() for _ in requests]


def test_caching_client_stores_and_returns_only_redacted_results(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "cache.sqlite")
    backend = Leaky()
    client = CachingClient("d", lambda: backend, None, cache, Redactor([SECRET]))
    request = Request(model_deployment="d", prompt="hi")
    [fresh] = client.generate([request])
    [again] = client.generate([request])
    assert backend.calls == 1 and again.cached and not fresh.cached
    assert SECRET not in json.dumps(fresh.to_dict()) and fresh.text == f"key is {MARKER}!"
    assert again.to_dict() == {**fresh.to_dict(), "cached": True}
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_results_stored_before_a_secret_was_known_are_cleaned_when_read(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "cache.sqlite")
    request = Request(model_deployment="d", prompt="hi")
    cache.put_many([(cache_key("d", IDENTITY, request), "d", request, _leaky_result())])
    client = CachingClient("d", Leaky, IDENTITY, cache, Redactor([SECRET]))
    [hit] = client.generate([request])
    assert hit.cached and hit.text == f"key is {MARKER}!"
    assert SECRET not in json.dumps(hit.to_dict())


def test_credentials_name_every_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "credentials.conf").write_text('openaiApiKey: "sk-conf-1234567"\nperspectiveApiKey: pk-98765432\n')
    (tmp_path / "key.json").write_text(json.dumps(
        {"generic": {"api_key": "sk-json-1234567", "organisation": "org-7654321",
                     "base_url": "http://127.0.0.1:1/v1"}}))
    monkeypatch.setenv("MY_KEY", "sk-env-named-12345")
    monkeypatch.setenv("TOGETHER_API_KEY", "sk-env-org-12345")
    monkeypatch.setenv("UNRELATED_TOKEN", "not-named-by-anyone")
    deployments = [
        ModelDeployment("local/a", "a", ObjectSpec("x", {"api_key_env": "MY_KEY"})),
        ModelDeployment("together/b", "b", ObjectSpec("x", {})),
        ModelDeployment("local/c", "c", ObjectSpec("x", {"api_key": "sk-written-in-registry"})),
    ]
    secrets = Credentials.load(tmp_path).secrets(deployments)
    assert secrets == {"sk-conf-1234567", "pk-98765432", "sk-json-1234567", "org-7654321", "sk-env-named-12345",
                       "sk-env-org-12345", "sk-written-in-registry"}
