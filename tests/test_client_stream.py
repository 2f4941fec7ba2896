"""The client protocol: planned streams, chunked fallbacks, collection, and the defaults."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from pytest_llmeval.clients.protocol import Capabilities, Client, ClientBase, Finished, collect, stream
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult


def _requests(n: int) -> list[Request]:
    return [Request(model_deployment="t/t", prompt=str(i)) for i in range(n)]


def _answer(request: Request) -> RequestResult:
    return RequestResult(success=True, completions=[GeneratedOutput(text=request.prompt, logprob=0.0)])


class Plain(ClientBase):
    batch_hint = 3

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        self.calls.append(len(requests))
        return [_answer(r) for r in requests]


class Planned(ClientBase):
    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        yield [2, 0], [_answer(requests[2]), _answer(requests[0])]
        yield [1], [_answer(requests[1])]


def test_plain_clients_are_called_a_batch_hint_at_a_time() -> None:
    client = Plain()
    batches = list(stream(client, _requests(7)))
    assert client.calls == [3, 3, 1]
    assert [indices for indices, _ in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_planned_streams_come_back_in_request_order() -> None:
    results = collect(stream(Planned(), _requests(3)), 3)
    assert [r.text for r in results] == ["0", "1", "2"]


def test_a_missing_result_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no result for 1 of 4"):
        collect(stream(Planned(), _requests(4)), 4)


def test_a_plain_client_returning_too_few_results_is_an_error() -> None:
    class Short(Plain):
        def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
            return super().generate(requests)[:-1]

    with pytest.raises(RuntimeError, match="2 results for 3 requests"):
        list(stream(Short(), _requests(3)))


def test_a_planned_client_gets_generate_from_its_stream() -> None:
    assert [r.text for r in Planned().generate(_requests(3))] == ["0", "1", "2"]


def test_a_client_with_neither_generate_nor_stream_says_so() -> None:
    class Nothing(ClientBase):
        pass

    with pytest.raises(NotImplementedError, match="Nothing defines neither generate nor generate_stream"):
        Nothing().generate(_requests(1))


def test_the_defaults_claim_no_extras() -> None:
    client = Plain()
    assert isinstance(client, Client)
    assert client.capabilities() == Capabilities()
    assert client.prompt_tokenizer() is None and client.prompt_tokenizer(counting=True) is None
    assert client.model_loads() == 0
    assert client.identity() == {"class": "tests.test_client_stream.Plain"}
