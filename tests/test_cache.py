"""The SQLite request cache and the caching client, with a scripted in-test client."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients.cache import CachingClient, RequestCache, cache_key
from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult

DEPLOYMENT = "test/scripted"
IDENTITY = {"class": "Scripted", "weights": "v1"}


def _request(n: int, **changes: Any) -> Request:
    return Request(model_deployment=DEPLOYMENT, prompt=f"prompt {n}", max_tokens=1, **changes)


def _result(text: str, success: bool = True) -> RequestResult:
    if not success:
        return RequestResult(success=False, error="backend said no")
    return RequestResult(success=True, completions=[GeneratedOutput(text=text, logprob=-0.5)], request_time=0.01)


class Scripted(ClientBase):
    """Answers ``answer:<prompt>``; records every call; can fail a prompt or raise on the n-th call."""

    def __init__(self, batch_hint: int = 16, raise_on_call: int | None = None, fail: tuple[str, ...] = ()) -> None:
        self.batch_hint = batch_hint
        self.raise_on_call = raise_on_call
        self.fail = fail
        self.calls: list[list[str]] = []

    def identity(self) -> dict[str, Any]:
        return dict(IDENTITY)

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        self.calls.append([r.prompt for r in requests])
        if self.raise_on_call is not None and len(self.calls) == self.raise_on_call:
            raise KeyboardInterrupt("interrupted mid-run")
        return [_result(f"answer:{r.prompt}", success=r.prompt not in self.fail) for r in requests]

    @property
    def sent(self) -> list[str]:
        return [prompt for call in self.calls for prompt in call]


class Factory:
    """A make_client callable that counts how often the wrapped client is built."""

    def __init__(self, client: Scripted) -> None:
        self.client = client
        self.built = 0

    def __call__(self) -> Scripted:
        self.built += 1
        return self.client


def _caching(cache: RequestCache | None, client: Scripted, identity: dict[str, Any] | None = IDENTITY
             ) -> tuple[CachingClient, Factory]:
    factory = Factory(client)
    return CachingClient(DEPLOYMENT, factory, identity, cache), factory


@pytest.fixture()
def cache(tmp_path: Path) -> RequestCache:
    return RequestCache(tmp_path / "cache" / "requests.sqlite")


# --- RequestCache -----------------------------------------------------------------------------------


def test_put_get_round_trip(cache: RequestCache) -> None:
    request = _request(1, stop_sequences=("\n",))
    result = _result(" C")
    key = cache_key(DEPLOYMENT, IDENTITY, request)
    assert cache.get_many([key]) == {}
    cache.put_many([(key, DEPLOYMENT, request, result)])
    assert cache.get_many([key, "missing"]) == {key: result}
    assert cache.count() == 1
    cache.put_many([(key, DEPLOYMENT, request, _result(" D"))])  # replaced, not duplicated
    assert cache.get_many([key])[key].text == " D"
    assert cache.count() == 1
    cache.put_many([])
    assert cache.count() == 1


def test_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    request = _request(1)
    key = cache_key(DEPLOYMENT, IDENTITY, request)
    RequestCache(path).put_many([(key, DEPLOYMENT, request, _result("x"))])
    assert RequestCache(path).get_many([key])[key].text == "x"


def test_get_many_in_chunks(cache: RequestCache) -> None:
    rows = [(f"k{n}", DEPLOYMENT, _request(n), _result(str(n))) for n in range(1200)]
    cache.put_many(rows)
    found = cache.get_many([f"k{n}" for n in range(1200)])
    assert len(found) == 1200 and found["k1100"].text == "1100"


def test_cache_key_depends_on_everything() -> None:
    base = cache_key(DEPLOYMENT, IDENTITY, _request(1))
    assert base == cache_key(DEPLOYMENT, dict(reversed(list(IDENTITY.items()))), _request(1))  # key order
    assert base != cache_key("other/deployment", IDENTITY, _request(1))
    assert base != cache_key(DEPLOYMENT, {**IDENTITY, "weights": "v2"}, _request(1))
    assert base != cache_key(DEPLOYMENT, IDENTITY, _request(2))
    assert base != cache_key(DEPLOYMENT, IDENTITY, _request(1, temperature=0.7))


# --- CachingClient --------------------------------------------------------------------------------------


def test_misses_go_to_the_client_then_hits_are_cached(cache: RequestCache) -> None:
    client = Scripted()
    caching, _ = _caching(cache, client)
    first = caching.generate([_request(0), _request(1)])
    assert [r.text for r in first] == ["answer:prompt 0", "answer:prompt 1"]
    assert [r.cached for r in first] == [False, False]
    assert client.sent == ["prompt 0", "prompt 1"]

    second = caching.generate([_request(2), _request(0), _request(3), _request(1)])
    assert [r.text for r in second] == ["answer:prompt 2", "answer:prompt 0", "answer:prompt 3", "answer:prompt 1"]
    assert [r.cached for r in second] == [False, True, False, True]
    assert client.calls[-1] == ["prompt 2", "prompt 3"]  # only the misses were sent
    assert (caching.hits, caching.misses) == (2, 4)
    assert cache.count() == 4


def test_failed_results_are_not_stored(cache: RequestCache) -> None:
    client = Scripted(fail=("prompt 1",))
    caching, _ = _caching(cache, client)
    results = caching.generate([_request(0), _request(1)])
    assert [r.success for r in results] == [True, False]
    assert cache.count() == 1
    client.fail = ()
    again = caching.generate([_request(0), _request(1)])
    assert [(r.success, r.cached) for r in again] == [(True, True), (True, False)]
    assert client.calls[-1] == ["prompt 1"]  # the failure is retried


def test_interrupted_run_keeps_finished_batches(cache: RequestCache) -> None:
    client = Scripted(batch_hint=2, raise_on_call=2)
    caching, _ = _caching(cache, client)
    requests = [_request(n) for n in range(5)]
    with pytest.raises(KeyboardInterrupt):
        caching.generate(requests)
    assert client.calls == [["prompt 0", "prompt 1"], ["prompt 2", "prompt 3"]]
    assert cache.count() == 2  # the first call's results were written before the second call

    resumed = Scripted(batch_hint=2)
    results = _caching(cache, resumed)[0].generate(requests)
    assert [r.cached for r in results] == [True, True, False, False, False]
    assert resumed.calls == [["prompt 2", "prompt 3"], ["prompt 4"]]
    assert cache.count() == 5


def test_other_identity_is_a_miss(cache: RequestCache) -> None:
    _caching(cache, Scripted())[0].generate([_request(0)])
    client = Scripted()
    results = _caching(cache, client, identity={**IDENTITY, "weights": "v2"})[0].generate([_request(0)])
    assert not results[0].cached
    assert client.sent == ["prompt 0"]


def test_identity_from_the_client_when_not_given(cache: RequestCache) -> None:
    _caching(cache, Scripted())[0].generate([_request(0)])
    caching, factory = _caching(cache, Scripted(), identity=None)
    assert caching.generate([_request(0)])[0].cached  # Scripted.identity() equals IDENTITY
    assert factory.built == 1


def test_client_never_built_when_everything_is_cached(cache: RequestCache) -> None:
    requests = [_request(n) for n in range(3)]
    _caching(cache, Scripted())[0].generate(requests)
    caching, factory = _caching(cache, Scripted())
    results = caching.generate(requests)
    assert all(r.cached for r in results)
    assert factory.built == 0
    caching.generate([_request(9)])
    assert factory.built == 1
    caching.generate([_request(10)])
    assert factory.built == 1  # built once, lazily


def test_without_cache_everything_is_sent() -> None:
    client = Scripted()
    caching, _ = _caching(None, client)
    caching.generate([_request(0)])
    results = caching.generate([_request(0)])
    assert not results[0].cached
    assert client.sent == ["prompt 0", "prompt 0"]
    assert caching.generate([]) == []


def test_wrong_result_count_is_an_error(cache: RequestCache) -> None:
    class Short(Scripted):
        def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
            return super().generate(requests)[:-1]

    caching, _ = _caching(cache, Short())
    with pytest.raises(RuntimeError, match="1 results for 2 requests"):
        caching.generate([_request(0), _request(1)])


# --- many processes, one file -----------------------------------------------------------------------------

WRITERS, PER_WRITER, PER_TRANSACTION = 4, 200, 4


def _writer(path: str, worker: int, barrier: Any, errors: Any) -> None:
    try:
        barrier.wait(timeout=60)  # open the (new) file and write all at the same moment
        cache = RequestCache(Path(path))
        for start in range(0, PER_WRITER, PER_TRANSACTION):
            rows = []
            for n in range(start, start + PER_TRANSACTION):
                request = Request(model_deployment=DEPLOYMENT, prompt=f"w{worker} n{n}")
                rows.append((cache_key(DEPLOYMENT, IDENTITY, request), DEPLOYMENT, request, _result(f"{worker}/{n}")))
            cache.put_many(rows)
            cache.get_many([rows[0][0]])  # readers interleave with writers too
        errors.put(None)
    except BaseException as exc:  # reported to the parent, whatever it is
        errors.put(f"worker {worker}: {type(exc).__name__}: {exc}")


def test_concurrent_writers(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    errors = context.Queue()
    path = tmp_path / "shared.sqlite"
    processes = [context.Process(target=_writer, args=(str(path), w, barrier, errors)) for w in range(WRITERS)]
    started = time.monotonic()
    for process in processes:
        process.start()
    reports = [errors.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [r for r in reports if r is not None] == []  # no "database is locked", nothing else
    assert all(p.exitcode == 0 for p in processes)
    cache = RequestCache(path)
    assert cache.count() == WRITERS * PER_WRITER
    key = cache_key(DEPLOYMENT, IDENTITY, Request(model_deployment=DEPLOYMENT, prompt="w3 n199"))
    assert cache.get_many([key])[key].text == "3/199"
    assert time.monotonic() - started < 60
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class Streaming(Scripted):
    """Plans its own batches over the whole list (like the Hugging Face client) and yields them."""

    def generate_stream(self, requests: Sequence[Request]) -> Any:
        order = sorted(range(len(requests)), key=lambda i: requests[i].prompt, reverse=True)
        for start in range(0, len(order), self.batch_hint):
            batch = order[start:start + self.batch_hint]
            yield batch, self.generate([requests[i] for i in batch])


def test_a_streaming_client_sees_every_miss_at_once_and_each_batch_is_stored(cache: RequestCache) -> None:
    requests = [_request(n) for n in range(5)]
    _caching(cache, Scripted())[0].generate(requests[:1])
    client = Streaming(batch_hint=2, raise_on_call=2)
    caching, _ = _caching(cache, client)
    with pytest.raises(KeyboardInterrupt):
        caching.generate(requests)
    assert client.calls == [["prompt 4", "prompt 3"], ["prompt 2", "prompt 1"]]
    assert cache.count() == 3  # the hit, then the first batch, stored before the second ran

    resumed = Streaming(batch_hint=2)
    results = _caching(cache, resumed)[0].generate(requests)
    assert [r.text for r in results] == [f"answer:prompt {n}" for n in range(5)]
    assert [r.cached for r in results] == [True, False, False, True, True]
    assert resumed.calls == [["prompt 2", "prompt 1"]]


def test_stream_reports_hits_first_then_batches(cache: RequestCache) -> None:
    requests = [_request(n) for n in range(4)]
    _caching(cache, Scripted())[0].generate([requests[1], requests[3]])
    caching, _ = _caching(cache, Streaming(batch_hint=1))
    batches = list(caching.generate_stream(requests))
    assert [indices for indices, _ in batches] == [[1, 3], [2], [0]]
    assert [[r.cached for r in results] for _, results in batches] == [[True, True], [False], [False]]


class TurnAtOnce(Streaming):
    """Answers a turn of conversations side by side (``generate_together``) as one batch."""

    def generate_together(self, requests: Sequence[Request]) -> Any:
        yield list(range(len(requests))), self.generate(list(requests))


def test_a_turn_sends_its_misses_together_and_other_calls_plan_as_usual(cache: RequestCache) -> None:
    requests = [_request(n) for n in range(5)]
    _caching(cache, Scripted())[0].generate(requests[:1])
    client = TurnAtOnce(batch_hint=2)
    caching, _ = _caching(cache, client)
    results = caching.generate(requests, together=True)
    assert client.calls == [["prompt 1", "prompt 2", "prompt 3", "prompt 4"]]  # the misses, one batch
    assert [r.cached for r in results] == [True, False, False, False, False] and cache.count() == 5
    client.calls.clear()
    caching.generate([_request(n) for n in range(5, 8)])
    assert client.calls == [["prompt 7", "prompt 6"], ["prompt 5"]]  # its own batches
    plain = Streaming(batch_hint=2)  # a client without turns plans a turn as any other list
    _caching(None, plain)[0].generate(requests[:3], together=True)
    assert plain.calls == [["prompt 2", "prompt 1"], ["prompt 0"]]
