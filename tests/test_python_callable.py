"""Python objects as model clients: functions, objects with generate, and classes built from args."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_llmeval.clients.protocol import batch_hint, client_identity
from pytest_llmeval.clients.python_callable import CallableClient, import_object
from pytest_llmeval.errors import ConfigError, UserModelError
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
    client = CallableClient(lambda requests: ["only one"], name="tests:short", deployment="py/short")
    with pytest.raises(UserModelError) as excinfo:
        client.generate(REQUESTS)
    assert str(excinfo.value) == ("py/short: the model function returned 1 items for 2 requests; expected a "
                                  "list with one str or RequestResult per request")


@pytest.mark.parametrize(("returned", "shown"), [
    ([42], "returned [42]; expected a list with one str or RequestResult per request (item 0 is int)"),
    (None, "returned None; expected a list with one str or RequestResult per request"),
    ([{"answer": "A"}], "returned [{'answer': 'A'}]; expected a list with one str or RequestResult per request "
                        "(item 0 is dict)"),
    ("A", "returned 'A'; expected a list with one str or RequestResult per request"),
])
def test_a_malformed_answer_is_one_line_naming_the_deployment(returned: Any, shown: str) -> None:
    client = CallableClient(lambda requests: returned, name="tests:bad", deployment="local/x")
    with pytest.raises(UserModelError) as excinfo:
        client.generate(REQUESTS[:1])
    assert str(excinfo.value) == f"local/x: the model function {shown}"


def test_a_long_malformed_answer_is_cut_to_one_line() -> None:
    client = CallableClient(lambda requests: ["x\n" * 500, 7], deployment="local/x")
    with pytest.raises(UserModelError) as excinfo:
        client.generate(REQUESTS)
    message = str(excinfo.value)
    assert "\n" not in message and len(message) < 300 and "(item 1 is int)" in message


def test_an_exception_is_named_with_its_cause_kept() -> None:
    def broken(requests: Sequence[Request]) -> list[str]:
        raise ValueError("boom\nsecond line")

    client = CallableClient(broken, name="tests:broken", deployment="local/x")
    with pytest.raises(UserModelError) as excinfo:
        client.generate(REQUESTS)
    assert str(excinfo.value) == "local/x: the model function raised ValueError: boom"
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_an_object_model_is_named_by_its_generate() -> None:
    class Broken:
        def generate(self, requests: Sequence[Request]) -> list[str]:
            raise KeyError("k")

    with pytest.raises(UserModelError, match=r"^local/x: the model's generate\(\) raised KeyError: 'k'$"):
        CallableClient(Broken(), deployment="local/x").generate(REQUESTS)


def test_a_class_that_fails_to_build_is_one_line() -> None:
    class Unbuildable:
        def __init__(self) -> None:
            raise RuntimeError("no weights here")

    with pytest.raises(UserModelError, match=r"^local/x: building tests:Unbuildable raised RuntimeError: no weights"):
        CallableClient(Unbuildable, name="tests:Unbuildable", deployment="local/x")


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
