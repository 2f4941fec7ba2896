"""What the benchmark scripts share: running ``pytest`` in a fresh process and timing it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
