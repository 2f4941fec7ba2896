"""Where records go, in clemcore 3.7.2's layout, so ``clem eval`` and ``clem transcribe`` read them
beside clemcore's own: ``results/RUN/GAME/EXPERIMENT/instance_GAMEID/``.

``RUN`` is named as clemcore's ``Model.to_identifier`` names it: the model for one player, ``M1--M2``
for two, ``group-Np-HASH`` for more (a ``/`` in a model name becomes ``_``, since it would nest
folders). A run folder holds ``run.json``; an experiment folder ``experiment.json``; an episode
folder ``instance.json``, ``interactions.json``, one ``player_N.requests.json`` per player that
called a model, ``completed.json`` or ``error.json``, and (when it completed) ``scores.json`` and
``transcript.html``. Every file is strict JSON: NaN and infinities are written as ``null``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = "results"
RUN_FILE = "run.json"
EXPERIMENT_FILE = "experiment.json"
INSTANCE_FILE = "instance.json"
INTERACTIONS_FILE = "interactions.json"
SCORES_FILE = "scores.json"
TRANSCRIPT_FILE = "transcript.html"
COMPLETED_FILE = "completed.json"
ERROR_FILE = "error.json"
REQUESTS_SUFFIX = ".requests.json"
#: the clemcore release whose record layout these files follow
CLEM_LAYOUT_VERSION = "3.7.2"


def folder_name(model_name: str) -> str:
    """A model's name as it appears in a run folder's name (a ``/`` would nest folders)."""
    return model_name.replace("/", "_").replace("\\", "_")


def run_folder(model_names: Sequence[str]) -> str:
    """clemcore's run folder name for the models of a run, in the order they were given."""
    names = [folder_name(name) for name in model_names]
    joined = "--".join(names)
    if len(names) <= 2:
        return joined
    return f"group-{len(names)}p-{hashlib.sha1(joined.encode('utf-8')).hexdigest()[:8]}"


def instance_folder(instance: dict[str, Any], index: int) -> str:
    """``instance_00001`` for game_id 1, as clemcore names it; an instance without an integer
    game_id is named after its id as written, or its position in the experiment when it has none."""
    game_id = instance.get("game_id")
    if isinstance(game_id, int) and not isinstance(game_id, bool):
        return f"instance_{game_id:05d}"
    if game_id is None:
        return f"instance_{index:05d}"
    return "instance_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(game_id))


def episode_dir(results_root: Path, run: str, game: str, experiment: str, instance: str) -> Path:
    return results_root / run / game / experiment / instance


def requests_file(player_name: str) -> str:
    """``Player 1`` -> ``player_1.requests.json``, as clemcore's PlayerFileSaver names it."""
    return "_".join(player_name.lower().strip().split(" ")) + REQUESTS_SUFFIX


def clear_episode(directory: Path) -> None:
    """Remove an earlier play's record files, so the folder holds only this play's."""
    if not directory.is_dir():
        return
    fixed = {INTERACTIONS_FILE, SCORES_FILE, TRANSCRIPT_FILE, COMPLETED_FILE, ERROR_FILE}
    for path in directory.iterdir():
        if path.is_file() and (path.name in fixed or path.name.endswith(REQUESTS_SUFFIX)):
            path.unlink()


def finite(value: Any) -> Any:
    """NaN and infinities (an aborted episode's Main Score) as None, recursively, so files are JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(data: Any) -> str:
    """Strict JSON text; values JSON has no type for are written as their ``str``."""
    try:  # the walk that replaces NaN runs only when there is one
        return json.dumps(data, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(finite(data), indent=2, ensure_ascii=False, default=str, allow_nan=False)


#: record keys that differ from one playing to the next however the episodes are played
TIMING_KEYS = frozenset({"timestamp", "call_start", "call_duration", "request_time", "request_datetime"})


def timeless(data: Any) -> Any:
    """A record as its JSON file reads back, without timestamps and durations: what two plays
    of the same episodes (one at a time, side by side, on another day) must have in common."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(json.loads(dumps(data)))


def write_json(path: Path, data: Any) -> None:
    """Atomic, so a reader (or a killed run) never sees half a file."""
    write_text(path, dumps(data))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def signal_file(directory: Path, error: BaseException | None = None) -> None:
    """``completed.json``, or ``error.json`` naming the exception that ended the episode."""
    stamp = datetime.now().isoformat()
    if error is None:
        write_json(directory / COMPLETED_FILE, {"timestamp": stamp})
    else:
        write_json(directory / ERROR_FILE, {"timestamp": stamp, "error": type(error).__name__, "message": str(error)})


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path``: xdist workers playing games of one run share its run.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no POSIX locks: the atomic write still keeps the file whole
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_run_file(run_dir: Path, player_models: dict[str, Any], game: str, game_path: Path, experiment: str,
                    started: datetime, ended: datetime | None = None, instances: int = 0) -> None:
    """``run.json`` as clemcore's RunFileSaver keeps it: created once per run folder, one entry per
    game with its start, end, duration and instance count (summed over the game's experiments)."""
    path = run_dir / RUN_FILE
    with _locked(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or not isinstance(data.get("games"), dict):
            data = {"clem_version": CLEM_LAYOUT_VERSION, "created": started.isoformat(),
                    "player_models": player_models, "games": {}}
        entry = data["games"].setdefault(game, {})
        experiments = entry.setdefault("experiments", {})
        entry["game_path"] = str(game_path)
        first = entry.get("benchmark_start")
        entry["benchmark_start"] = min(first, started.isoformat()) if isinstance(first, str) else started.isoformat()
        if ended is not None:
            experiments[experiment] = instances
            entry["benchmark_end"] = ended.isoformat()
            duration = ended - datetime.fromisoformat(entry["benchmark_start"])
            entry["duration"] = str(duration)
            entry["duration_seconds"] = duration.total_seconds()
            entry["num_instances"] = sum(experiments.values())
        write_json(path, data)
