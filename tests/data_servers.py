"""Real loopback servers for data-source tests: ``moto_server`` (S3) and ``http.server``."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.servers import LoopbackHTTPServer, free_port

DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}


class MotoS3:
    """``moto_server`` in a subprocess on a free loopback port: a real S3 endpoint."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 30.0) -> None:
        command = shutil.which("moto_server")
        if command is None:
            pytest.skip("moto_server is not installed (pip install 'moto[server]')")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        started = time.perf_counter()
        while time.perf_counter() - started < wait_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.endpoint_url + "/", timeout=2):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer within {wait_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def client(self) -> Any:
        boto3 = pytest.importorskip("boto3")
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def upload(self, bucket: str, key: str, body: bytes) -> None:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """A running S3-compatible server; always stopped at teardown."""
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    server = MotoS3(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, so nothing reaches for a real AWS account."""
    for key, value in DUMMY_AWS.items():
        monkeypatch.setenv(key, value)


class FileServer(LoopbackHTTPServer):
    """``http.server`` on a free loopback port serving one folder, counting GET requests.

    ``fail_next`` holds statuses to answer first, one per request (``0``: drop the connection).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.fail_next: list[int] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.fail_next:
                    status = server.fail_next.pop(0)
                    if status == 0:
                        self.close_connection = True
                        return
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(partial(Handler, directory=str(root)))


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A real HTTP server on loopback over ``tmp_path/served``."""
    root = tmp_path / "served"
    root.mkdir()
    with FileServer(root) as server:
        yield server


__all__ = ["DUMMY_AWS", "FileServer", "MotoS3", "aws_env", "file_server", "moto_s3"]
