"""The retrying HTTP session shared by the OpenAI-compatible client and data downloads."""

from __future__ import annotations

import http.server
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmeval.http_session import HTTPFailure, RetryingSession, RetryPolicy, RetryStopped, attempts_of, shown
from tests.servers import free_port

log = logging.getLogger("pytest_llmeval.test")


class Busy:
    """Answers 503 with ``Retry-After`` to every request, counting them."""

    def __init__(self, retry_after: str) -> None:
        self.hits = 0
        busy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                busy.hits += 1
                self.send_response(503)
                self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x?token=abc"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def busy(request: pytest.FixtureRequest) -> Iterator[Busy]:
    server = Busy(getattr(request, "param", "30"))
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_stop_ends_a_wait_for_retry_after(busy: Busy) -> None:
    """A request waiting out ``Retry-After: 30`` returns within moments of ``stop()``."""
    session = RetryingSession(RetryPolicy(retries=3, backoff=0.0, timeout=5), log, url=busy.url)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            session.request("GET", busy.url)
        except BaseException as exc:  # the outcome is what the test checks
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    session.stop()
    worker.join(timeout=5)
    assert not worker.is_alive() and time.perf_counter() - started < 2
    assert len(outcome) == 1 and isinstance(outcome[0], RetryStopped)
    assert busy.hits == 1
    with pytest.raises(RetryStopped):
        session.request("GET", busy.url)
    session.close()


@pytest.mark.parametrize("busy", ["0"], indirect=True)
def test_the_last_status_comes_back_with_its_attempts(busy: Busy, caplog: pytest.LogCaptureFixture) -> None:
    """Retries exhausted on a status: the response is returned; the log never shows the query string."""
    caplog.set_level(logging.WARNING, logger="pytest_llmeval.test")
    policy = RetryPolicy(retries=1, backoff=0.0, timeout=5)
    with RetryingSession(policy, log, url=busy.url) as session:
        response = session.request("GET", busy.url)
    assert response.status_code == 503 and attempts_of(response) == 2 and busy.hits == 2
    assert "token=abc" not in caplog.text and "retrying GET" in caplog.text


def test_refused_connection_is_one_line_with_the_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/data?sig=secret"
    session = RetryingSession(RetryPolicy(retries=2, backoff=0.0, timeout=5), log, url=url)
    with session, pytest.raises(HTTPFailure) as excinfo:
        session.request("GET", url)
    message = str(excinfo.value)
    assert message.startswith(f"GET {shown(url)} failed after 3 attempts: connection error")
    assert "sig=secret" not in message and "\n" not in message
    assert excinfo.value.attempts == 3
