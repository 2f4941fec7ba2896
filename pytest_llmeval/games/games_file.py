"""The games file: which games an evaluation plays (``games*.yaml`` or ``*.games.yaml``), with
their experiments, episode limits, gates, instances files and extra game folders; and the
``--llmeval-players`` pairings."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.games.game_spec import GameSpec, discover_games
from pytest_llmeval.gates import Gate
from pytest_llmeval.validation.game_schemas import GAMES_FILE
from pytest_llmeval.validation.validator import check, read_document

GAMES_FILE_PATTERNS = ("games*.yaml", "games*.yml", "*.games.yaml", "*.games.yml")


@dataclass(frozen=True)
class GameEntry:
    game: str  # a game name, or "" for a benchmark selection
    experiments: tuple[str, ...] | None
    gates: tuple[Gate, ...]
    max_episodes: int | None
    index: int
    benchmark: tuple[str, ...] = ()  # clemcore's {'benchmark': [...]}: every game of these versions
    instances: str | None = None  # clem run's -i: the instances file the entry's games read instead
    parallel_episodes: int | str | None = None  # episodes played at a time: N, "auto" or "off"

    @property
    def label(self) -> str:
        return entry_label(self.index, self.game, self.benchmark)

    def specs(self, found: dict[str, GameSpec], where: dict[str, Any]) -> list[GameSpec]:
        """The game specs this entry plays."""
        if not self.game:
            chosen = [s for s in found.values() if set(self.benchmark) & set(s.benchmark)]
            if not chosen:
                raise ConfigError(f"no game lists benchmark {' or '.join(self.benchmark)}", field="benchmark", **where)
        else:
            spec = found.get(self.game)
            if spec is None:
                raise ConfigError(f"unknown game {self.game!r}; known games: {', '.join(sorted(found))}",
                                  field="game", **where)
            chosen = [spec]
        if not self.instances:
            return chosen
        replaced = [s.with_instances(self.instances) for s in chosen]
        for spec in replaced:
            try:
                spec.instances_file()
            except ConfigError as exc:
                raise ConfigError(exc.message, field="instances", **where) from None
        return replaced


def entry_label(index: int, game: str, benchmark: Sequence[str]) -> str:
    """How errors name a games-file entry: ``#0 ('taboo')`` or ``#1 (benchmark 2.0)``."""
    return f"#{index} ({game!r})" if game else f"#{index} (benchmark {', '.join(benchmark)})"


def is_games_file(path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in GAMES_FILE_PATTERNS)


def read_games_file(path: Path) -> tuple[list[GameEntry], list[Path]]:
    """The entries and the extra game folders (``game_dirs``) of a games file."""
    document = read_document(path, "yaml")
    check(document, GAMES_FILE, path)
    dirs = [(path.parent / d).resolve() for d in document.get("game_dirs") or []]
    for index, folder in enumerate(dirs):
        if not folder.is_dir():
            raise ConfigError(f"{document['game_dirs'][index]!r} is not a folder (looked for {folder})", file=path,
                              field=f"game_dirs.{index}")
    entries = []
    if "games" not in document:  # every game the folders hold
        found = discover_games(dirs, registered={})
        return [GameEntry(name, None, (), None, index) for index, name in enumerate(found)], dirs
    for index, raw in enumerate(document["games"]):
        if isinstance(raw, str):
            raw = {"game": raw}
        benchmark = raw.get("benchmark") or ()
        benchmark = tuple(str(b) for b in ([benchmark] if isinstance(benchmark, str) else benchmark))
        where: dict[str, Any] = {"file": path, "entry": entry_label(index, raw.get("game") or "", benchmark)}
        experiments = raw.get("experiments")
        if isinstance(experiments, str):
            experiments = [experiments]
        limit = raw.get("max_episodes")
        gates_raw = raw.get("gates") or []
        if isinstance(gates_raw, str):
            gates_raw = [gates_raw]
        try:
            gates = tuple(Gate.parse(str(g)) for g in gates_raw)
        except ConfigError as exc:
            raise exc.located(**where) from None
        entries.append(GameEntry(raw.get("game") or "", tuple(experiments) if experiments else None, gates, limit,
                                 index, benchmark if not raw.get("game") else (),
                                 instances_name(raw.get("instances"), path.parent),
                                 raw.get("parallel_episodes")))
    return entries, dirs


def instances_name(value: str | None, base: Path) -> str | None:
    """An entry's ``instances`` as clemcore takes it (a name in the game's ``in/``, ``.json``
    optional), or a file beside the games file or a path from it, made absolute."""
    if not value:
        return value
    path = (base / value).resolve()
    if "/" in value or "\\" in value or (value.endswith(".json") and path.is_file()):
        return str(path.with_suffix("") if path.suffix == ".json" else path)
    return value.removesuffix(".json")


def game_folders(rootdir: Path, *near: Path) -> list[Path]:
    """``<rootdir>/evals/games`` and a ``games/`` folder beside each given file, when they exist."""
    folders: list[Path] = []
    for folder in (rootdir / "evals" / "games", *(p.parent / "games" for p in near)):
        folder = folder.resolve()
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


def parse_pairings(text: str | None) -> list[list[str]]:
    """``A,B`` (or several, ``A,B C,D``) into player lists."""
    if not text:
        return []
    groups = [g for g in re.split(r"[\s;]+", text.strip()) if g]
    return [[name.strip() for name in group.split(",") if name.strip()] for group in groups]
