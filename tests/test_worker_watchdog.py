"""xdist workers end when their controller is killed, instead of finishing the item they run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_llmeval.watchdog import CONTROLLER_GONE_EXIT, ControllerWatchdog
from tests.projects import scripted_project

# --- the watchdog alone ---------------------------------------------------------------------------


def test_a_new_parent_process_ends_the_process() -> None:
    parents = iter([100, 100, 100, 1])
    ended = threading.Event()
    codes: list[int] = []

    def end(code: int) -> None:
        codes.append(code)
        ended.set()

    watchdog = ControllerWatchdog(poll_s=0.01, parent_pid=lambda: next(parents, 1), end=end)
    watchdog.start()
    assert ended.wait(5)
    assert codes == [CONTROLLER_GONE_EXIT]


def test_a_stopped_watchdog_and_a_living_parent_end_nothing() -> None:
    calls: list[int] = []
    alive = ControllerWatchdog(poll_s=0.01, parent_pid=lambda: 100, end=calls.append)
    alive.start()
    parents = iter([100])
    stopped = ControllerWatchdog(poll_s=0.01, parent_pid=lambda: next(parents, 1), end=calls.append)
    stopped.stop()
    stopped.start()
    time.sleep(0.2)
    alive.stop()
    assert calls == []


def test_only_xdist_workers_are_watched() -> None:
    """xdist gives a worker's config ``workerinput``; the controller's and a plain run's have none."""
    assert ControllerWatchdog.for_worker(SimpleNamespace()) is None  # type: ignore[arg-type]
    watchdog = ControllerWatchdog.for_worker(SimpleNamespace(workerinput={}))  # type: ignore[arg-type]
    assert watchdog is not None
    watchdog.stop()


# --- a real controller, killed ----------------------------------------------------------------------

SLOW_MODEL = '''
"""Answers after a pause, leaving one file per answer: the files show who is still writing."""
import os
import time
from pathlib import Path


class SlowModel:
    def generate(self, requests):
        answers = []
        for _ in requests:
            time.sleep(0.25)
            Path(os.environ["SLOW_MARKS"], f"{os.getpid()}-{time.monotonic_ns()}").write_text("answered")
            answers.append(" A")
        return answers
'''
SLOW_DEPLOYMENTS = ("model_deployments:\n  - {name: scripted/slow, model_name: scripted/slow, "
                    "client_spec: {class_name: 'scripted_model:SlowModel'}}\n")
SUBJECTS = ["anatomy", "astronomy", "virology", "nutrition", "marketing", "prehistory"]


def running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child may wait a while for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_writing_when_the_controller_is_killed(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    scripted_project(pytester, monkeypatch, SLOW_MODEL, SLOW_DEPLOYMENTS)
    marks = pytester.path / "marks"
    marks.mkdir()
    monkeypatch.setenv("SLOW_MARKS", str(marks))
    # each item asks 40 questions at 0.25 s each: about 10 s of work in flight per worker
    (pytester.path / "eval_mmlu.yaml").write_text(
        "entries:\n" + "".join(f"  - mmlu:subject={s}\n" for s in SUBJECTS))
    with (pytester.path / "controller.log").open("w") as log:
        controller = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--llmeval-models",
             "scripted/slow", "--llmeval-max-eval-instances", "40", "eval_mmlu.yaml"],
            cwd=pytester.path, stdout=log, stderr=subprocess.STDOUT)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and controller.poll() is None:
            workers = {int(p.name.split("-")[0]) for p in marks.iterdir()}
            time.sleep(0.1)
        assert len(workers) == 2, (pytester.path / "controller.log").read_text()
        controller.kill()
        controller.wait()
        killed = time.monotonic()
        while any(running(pid) for pid in workers) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        assert not any(running(pid) for pid in workers), "workers still running 5 s after the controller died"
        written = files_under(pytester.path)
        time.sleep(1.0)
        assert files_under(pytester.path) == written
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
