"""map_concurrently: results in request order, side by side, and a clean stop when one raises."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_llmeval.clients.concurrent_requests import map_concurrently
from pytest_llmeval.requests import Request, RequestResult


def _requests(count: int) -> list[Request]:
    return [Request(model_deployment="org/m", prompt=f"p{i}") for i in range(count)]


def test_results_keep_request_order_and_run_side_by_side() -> None:
    threads: set[str] = set()

    def run(request: Request) -> RequestResult:
        threads.add(threading.current_thread().name)
        time.sleep(0.05 if request.prompt == "p0" else 0.0)  # the first finishes last
        return RequestResult(success=True, raw_response={"prompt": request.prompt})

    results = map_concurrently(run, _requests(6), 3, "llmeval-test")
    assert [r.raw_response["prompt"] for r in results] == [f"p{i}" for i in range(6)]
    assert len(threads) > 1 and all(name.startswith("llmeval-test") for name in threads)


def test_one_at_a_time_runs_in_the_calling_thread() -> None:
    seen: list[str] = []

    def run(request: Request) -> RequestResult:
        seen.append(threading.current_thread().name)
        return RequestResult(success=True)

    map_concurrently(run, _requests(3), 1, "llmeval-test")
    assert seen == [threading.current_thread().name] * 3


def test_an_error_stops_the_rest_and_calls_on_abort() -> None:
    aborted: list[bool] = []

    def run(request: Request) -> RequestResult:
        if request.prompt == "p1":
            raise KeyboardInterrupt
        return RequestResult(success=True)

    with pytest.raises(KeyboardInterrupt):
        map_concurrently(run, _requests(4), 2, "llmeval-test", on_abort=lambda: aborted.append(True))
    assert aborted == [True]
