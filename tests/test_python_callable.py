"""Python objects as model clients: functions, objects with generate, and classes built from args."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_llmeval.clients.protocol import batch_hint, client_identity
from pytest_llmeval.clients.python_callable import CallableClient, import_object
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult

REQUESTS = [Request(model_deployment="py/echo", prompt="one"), Request(model_deployment="py/echo", prompt="two")]


def shout(requests: Sequence[Request], suffix: str = "!") -> list[str]:
    return [r.prompt.upper() + suffix for r in requests]


class Echo:
    """Instantiated from the spec's args; its generate gets only the requests."""

    instances = 0

    def __init__(self, prefix: str = "", batch_hint: int = 0) -> None:
        Echo.instances += 1
        self.prefix = prefix
        self.batch_hint = batch_hint

    def generate(self, requests: Sequence[Request]) -> list[str | RequestResult]:
        return [self.prefix + r.prompt for r in requests]


class Identified:
    def identity(self) -> dict[str, Any]:
        return {"weights": "sha256:abc"}

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        return [RequestResult(success=True, completions=[GeneratedOutput(text="x")], request_time=9.0)
                for _ in requests]


def test_function_returning_strings() -> None:
    client = CallableClient(shout, {"suffix": "?"}, name="tests:shout")
    results = client.generate(REQUESTS)
    assert [r.text for r in results] == ["ONE?", "TWO?"]
    assert all(r.success and not r.cached for r in results)
    assert all(r.request_time is not None and r.request_time >= 0 for r in results)
    assert all(isinstance(r.request_datetime, int) for r in results)
    assert client.identity() == {"callable": "tests:shout", "args": {"suffix": "?"}}
    assert batch_hint(client) == 16


def test_object_with_generate() -> None:
    client = CallableClient(Echo(prefix="> "), name="tests:echo")
    assert [r.text for r in client.generate(REQUESTS)] == ["> one", "> two"]


def test_class_instantiated_with_args() -> None:
    before = Echo.instances
    client = CallableClient(Echo, {"prefix": "A: ", "batch_hint": 3}, name="tests:Echo")
    assert Echo.instances == before + 1
    assert [r.text for r in client.generate(REQUESTS)] == ["A: one", "A: two"]
    assert client.batch_hint == 3 and batch_hint(client) == 3
    # The args went to the constructor, so they are not passed to generate, but they shape the answers:
    # two deployments of the same class with other args must not share cache entries.
    assert client.identity() == {"callable": "tests:Echo", "args": {"prefix": "A: ", "batch_hint": 3}}
    assert client.identity() != CallableClient(Echo, {"prefix": "B: "}, name="tests:Echo").identity()


def test_own_identity_and_results_are_kept() -> None:
    client = CallableClient(Identified(), name="tests:Identified")
    assert client_identity(client) == {"weights": "sha256:abc"}
    results = client.generate(REQUESTS[:1])
    assert results[0].text == "x" and results[0].request_time == 9.0  # a time the object gave is kept


def test_result_without_time_gets_one() -> None:
    client = CallableClient(lambda requests: [RequestResult(success=False, error="no")] * len(requests))
    result = client.generate(REQUESTS[:1])[0]
    assert not result.success and result.error == "no" and result.request_time is not None


def test_wrong_count_is_an_error() -> None:
    client = CallableClient(lambda requests: ["only one"], name="tests:short")
    with pytest.raises(ConfigError) as excinfo:
        client.generate(REQUESTS)
    assert "tests:short" in str(excinfo.value)
    assert "1 items for 2 requests" in str(excinfo.value)


def test_wrong_item_type_is_an_error() -> None:
    client = CallableClient(lambda requests: [42 for _ in requests])
    with pytest.raises(TypeError, match="RequestResult or str"):
        client.generate(REQUESTS)


def test_not_callable_is_an_error() -> None:
    with pytest.raises(ConfigError) as excinfo:
        CallableClient(42, name="tests:NUMBER")
    assert excinfo.value.field == "client_spec.class_name"
    assert "tests:NUMBER" in str(excinfo.value)


def test_empty_batch() -> None:
    assert CallableClient(shout).generate([]) == []


def test_import_object() -> None:
    assert import_object("tests.test_python_callable:shout") is shout
    assert import_object("tests.test_python_callable.Echo") is Echo
    assert import_object("tests.test_python_callable:Echo.generate") is Echo.generate
    with pytest.raises(ImportError):
        import_object("nodots")
    with pytest.raises(ImportError):
        import_object("no_such_module_llmeval:thing")
    with pytest.raises(AttributeError):
        import_object("tests.test_python_callable:missing")
