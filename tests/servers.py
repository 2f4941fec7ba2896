"""Real servers on loopback for the tests: ``transformers serve`` with the bundled model, and a
small OpenAI-compatible server that echoes what it was sent."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

import pytest


def free_port() -> int:
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedModel:
    """``transformers serve`` in a subprocess on a free loopback port, pinned to one model folder."""

    def __init__(self, folder: Path, log_path: Path) -> None:
        self.folder = folder
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self.extra_args: list[str] = []

    @property
    def model(self) -> str:
        """The request's ``model`` must be the pinned path, exactly as given on the command line."""
        return str(self.folder)

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "transformers.cli.transformers", "serve", str(self.folder),
                "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", *self.extra_args]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait_s: float = 90.0) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        started = time.perf_counter()
        # The pinned model loads before uvicorn listens, so /health answers only once it is ready.
        # (/v1/models scans the hub cache and answers 500 offline: not a readiness probe.)
        while time.perf_counter() - started < wait_s:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"transformers serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        self.startup_s = time.perf_counter() - started
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"transformers serve did not answer within {wait_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server's whole process group, forcefully if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


ServerT = TypeVar("ServerT", bound="LoopbackHTTPServer")


class LoopbackHTTPServer:
    """A threaded ``http.server`` on a free loopback port, serving while inside ``with``."""

    def __init__(self, handler: Any) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self: ServerT) -> ServerT:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class JSONHandler(http.server.BaseHTTPRequestHandler):
    """A quiet request handler for scripted JSON APIs: reads the JSON body, answers JSON."""

    def read_json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

    def send_json(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EchoingOpenAIServer(LoopbackHTTPServer):
    """An OpenAI-compatible chat server on loopback that echoes the request's ``Authorization``
    header into every completion (a misconfigured proxy or a debugging server does this).

    The first ``overloaded`` requests get HTTP 503 with the header in the error message.
    """

    def __init__(self, overloaded: int = 0) -> None:
        self.overloaded = overloaded
        self.authorizations: list[str] = []
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                auth = self.headers.get("Authorization", "")
                with lock:
                    server.authorizations.append(auth)
                    busy = server.overloaded > 0
                    server.overloaded -= 1
                if busy:
                    status, answer = 503, {"error": {"message": f"overloaded; your header was {auth}"}}
                else:
                    content = f"You sent {auth!r}. Answer: A"
                    status, answer = 200, {"object": "chat.completion", "model": body.get("model"), "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
                self.send_json(status, answer, {"Retry-After": "0"} if busy else None)

        lock = threading.Lock()
        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"
