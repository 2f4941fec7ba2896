"""pytest-xdist across hosts: workers behind execnet gateways, each told its slot on its own host.

Two execnet socket servers on loopback stand in for two hosts with the same checkout at the
same path (``--tx socket=HOST:PORT//chdir=FOLDER``; xdist no longer copies the code over).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import execnet
import pytest

from pytest_llmeval.clients.accelerators import pin_worker_gpu, visible_devices
from pytest_llmeval.hosts import SLOT_ENV, WORKERS_ENV, host_key, host_slot, local_workers
from tests.projects import letters_project
from tests.report_project import stable_runs

SOCKETSERVER = Path(execnet.__file__).parent / "script" / "socketserver.py"


def _specs(*texts: str) -> list[execnet.XSpec]:
    return [execnet.XSpec(text) for text in texts]


def test_workers_are_counted_per_host() -> None:
    specs = _specs("socket=10.0.0.1:8888", "socket=10.0.0.1:8889", "socket=10.0.0.2:8888",
                   "ssh=me@gpu-box", "popen", "popen", "popen//via=proxy")
    assert [host_key(s) for s in specs] == ["socket:10.0.0.1", "socket:10.0.0.1", "socket:10.0.0.2",
                                            "ssh:gpu-box", "local", "local", "via:proxy"]
    assert [(host_slot(specs, s)["slot"], host_slot(specs, s)["workers"]) for s in specs] == [
        (0, 2), (1, 2), (0, 1), (0, 1), (0, 2), (1, 2), (0, 1)]


def test_a_worker_pins_the_gpu_of_its_slot_on_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """gw3, the second worker on its host, takes that host's second GPU, not its fourth."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv(SLOT_ENV, "1")
    assert pin_worker_gpu() == "1" and visible_devices() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.delenv(SLOT_ENV)
    assert pin_worker_gpu() == "3"  # all workers local: the worker's number is its slot


def test_cpu_threads_are_split_among_the_workers_of_one_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "6")
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert local_workers() == 2
    monkeypatch.delenv(WORKERS_ENV)
    assert local_workers() == 6


# --- two socket servers on loopback --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"execnet socket server on port {port} exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"execnet socket server on port {port} did not start")


@pytest.fixture
def hosts(pytester: pytest.Pytester) -> Iterator[list[str]]:
    """Two execnet socket servers, each with its own environment, as a remote host would have."""
    env = {**os.environ, "PYTHONPATH": str(pytester.path)}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", SLOT_ENV, WORKERS_ENV, "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    servers: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(2):
            port = _free_port()
            server = subprocess.Popen([sys.executable, str(SOCKETSERVER), f"127.0.0.1:{port}"], cwd=pytester.path,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append((port, server))
            _wait_listening(port, server)
        yield [f"socket=127.0.0.1:{port}//chdir={pytester.path}" for port, _ in servers]
    finally:
        for _, server in servers:
            server.kill()
            server.wait(timeout=10)


SLOTS_CONFTEST = '''
import json, os
from pathlib import Path
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        Path(f"slot-{worker}.json").write_text(json.dumps(
            {"slot": os.environ.get("LLMEVAL_HOST_SLOT"), "workers": os.environ.get("LLMEVAL_HOST_WORKERS")}))
'''


def test_workers_on_two_socket_hosts_give_the_local_summary(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            hosts: list[str]) -> None:
    project = letters_project(pytester, monkeypatch)
    (project.path / "conftest.py").write_text(SLOTS_CONFTEST)
    (project.path / "eval_mmlu.yaml").write_text(textwrap.dedent("""
        entries:
          - mmlu:subject=anatomy
          - mmlu:subject=astronomy
          - mmlu:subject=virology
          - mmlu:subject=philosophy
    """))
    common = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "6", "--llmeval-disable-cache",
              "-p", "no:cacheprovider"]
    local = project.runpytest_subprocess(*common, "--llmeval-output-path", "local")
    local.assert_outcomes(passed=4)
    spread = project.runpytest_subprocess(*common, "--llmeval-output-path", "spread", "-d",
                                          *(arg for host in hosts for arg in ("--tx", host)))
    spread.assert_outcomes(passed=4)
    spread.stdout.fnmatch_lines(["*2 workers ?4 items?*"])

    def summary(name: str) -> dict[str, Any]:
        return json.loads((project.path / name / "runs" / "default" / "llmeval_summary.json").read_text())

    ours, theirs = summary("spread"), summary("local")
    assert len(ours["runs"]) == 4
    assert stable_runs(ours) == stable_runs(theirs)
    assert {run["worker"] for run in ours["runs"]} <= {"gw0", "gw1"}
    for name in ("anatomy", "virology"):  # each worker wrote its run folders where its host puts them
        assert any((project.path / "spread" / "runs" / "default").glob(f"mmlu:subject={name}*/stats.json"))
    slots = {p.name: json.loads(p.read_text()) for p in project.path.glob("slot-gw*.json")}
    assert slots == {"slot-gw0.json": {"slot": "0", "workers": "2"}, "slot-gw1.json": {"slot": "1", "workers": "2"}}
