"""Where records go: clembench's ``results/<players>/<game>/<experiment>/episode_<n>/`` layout."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = "results"
EPISODE_FILES = ("instance.json", "interactions.json", "requests.json", "scores.json", "transcript.html")


def players_folder(descriptors: Sequence[str]) -> str:
    """``<model>-t<temperature>`` joined by ``--`` for the players of a game (one or two)."""
    return "--".join(descriptors)


def episode_dir(results_root: Path, players: str, game: str, experiment: str, episode: int) -> Path:
    return results_root / players / game / experiment / f"episode_{episode}"


def write_json(path: Path, data: Any) -> None:
    """Atomic, so a reader (or a killed run) never sees half a file; NaN is written as clembench does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
