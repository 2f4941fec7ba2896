"""What the benchmark scripts share: running ``pytest`` in a fresh process and timing it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"


def environment(data_dir: str | Path | None = None) -> dict[str, str]:
    """The caller's environment, offline, with the data mirror when there is one."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    folder = Path(data_dir) if data_dir else MIRROR
    if folder.is_dir():
        env["LLMEVAL_DATA_DIR"] = str(folder.resolve())
    return env


def timed_process(command: list[str], cwd: Path, env: dict[str, str] | None = None,
                  label: str | None = None) -> tuple[float, str]:
    """Seconds for a whole process, and its output; a failure stops the script."""
    started = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                         env=env if env is not None else environment(), check=False)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{label or command[0]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                         f"{out.stderr[-2000:]}")
    return elapsed, out.stdout


def timed_pytest(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds for a whole ``python -m pytest`` process, and its output; a failure stops the script."""
    return timed_process([sys.executable, "-m", "pytest", *args], cwd, env, label="pytest")


def machine_cpu_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``); None
    where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """This process's CPU seconds and its finished children's."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class OtherLoad:
    """How busy the rest of the machine was while something ran here: a shared machine's
    other work slows a timed run down, and its wall time alone does not show it."""

    seconds: float = 0.0
    others_cpu: float | None = None  # CPU seconds used by processes that are not ours

    @property
    def cores(self) -> float | None:
        """The other processes' mean use, in cores."""
        return None if self.others_cpu is None or self.seconds <= 0 else max(0.0, self.others_cpu) / self.seconds


@contextmanager
def other_load() -> Iterator[OtherLoad]:
    """Measure :class:`OtherLoad` over the block (a child process must have finished in it)."""
    load = OtherLoad()
    machine, own, started = machine_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
    try:
        yield load
    finally:
        load.seconds = time.perf_counter() - started
        after = machine_cpu_seconds()
        if machine is not None and after is not None:
            load.others_cpu = (after - machine) - (_own_cpu_seconds() - own)


def wait_for_quiet(max_cores: float = 0.25, window: float = 5.0, timeout: float = 600.0) -> float:
    """Wait until the machine's other processes use under ``max_cores`` over ``window`` seconds
    (at most ``timeout`` seconds); returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with other_load() as load:
            time.sleep(window)
        if load.cores is None or load.cores < max_cores:
            break
    return time.perf_counter() - started
