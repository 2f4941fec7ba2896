"""Remote clients send a batch's requests side by side: one helper for every such backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pytest_llmeval.requests import Request, RequestResult


def map_concurrently(run: Callable[[Request], RequestResult], requests: Sequence[Request], concurrency: int,
                     thread_name: str, on_abort: Callable[[], None] | None = None) -> list[RequestResult]:
    """Each request's result, in order, at most ``concurrency`` under way at a time.

    When one raises or the run is interrupted (Ctrl-C), the requests not yet started are dropped,
    ``on_abort`` runs (a client stops its retries there), and requests under way finish on their own.
    """
    if len(requests) == 1 or concurrency == 1:
        return [run(request) for request in requests]
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(requests)), thread_name_prefix=thread_name)
    try:
        futures = [pool.submit(run, request) for request in requests]
        results = [future.result() for future in futures]
    except BaseException:
        if on_abort is not None:
            on_abort()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
