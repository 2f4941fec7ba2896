"""An xdist worker ends as soon as its controller is gone.

A worker whose controller was killed (``kill -9``, an out-of-memory kill, a closed terminal)
otherwise goes on with the item it is running, a model evaluation that can take minutes,
and writes run folders and cache entries nobody will collect. The worker is a child of the
controller (xdist's popen gateway), so the controller's death shows as a new parent process id.

Ending with ``os._exit`` at any moment leaves nothing half-written: every output file is
written to a temporary name and renamed into place, and the request cache is SQLite, whose
transactions roll back when the writing process dies mid-way. What earlier requests stored
in the cache stays there for the next run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

POLL_S = 0.25
CONTROLLER_GONE_EXIT = int(pytest.ExitCode.INTERRUPTED)


class ControllerWatchdog:
    """Polls the parent process id on a daemon thread; ends the process when it changes."""

    def __init__(self, *, poll_s: float = POLL_S, parent_pid: Callable[[], int] = os.getppid,
                 end: Callable[[int], object] = os._exit) -> None:
        self._parent_pid = parent_pid
        self._controller = parent_pid()
        self._poll_s = poll_s
        self._end = end
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pytest-llmeval-controller-watchdog", daemon=True)

    @classmethod
    def for_worker(cls, config: pytest.Config) -> ControllerWatchdog | None:
        """A started watchdog in an xdist worker (xdist sets ``config.workerinput``); else None."""
        if not hasattr(config, "workerinput"):
            return None
        watchdog = cls()
        watchdog.start()
        return watchdog

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The worker is ending normally: stop watching (the controller may exit first)."""
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self._poll_s):
            if self._parent_pid() != self._controller:
                self._end(CONTROLLER_GONE_EXIT)
                return
