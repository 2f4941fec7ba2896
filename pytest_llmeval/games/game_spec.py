"""Game folders and how they are found.

A game folder holds ``clemgame.json`` (one spec, or a list of specs sharing the folder, as in
clembench), ``master.py`` with the game master (and scorer) classes the spec names,
``instances.json`` (or ``in/instances.json``), its prompts and an ``instancegenerator.py``.
A spec without ``master`` is one of clembench's own games: its ``master.py`` defines a clemcore
``GameBenchmark``, and clemcore plays it (:mod:`pytest_llmeval.clem`). Folders are searched
three levels deep, as clemcore searches them, and a ``game_registry.json`` in a folder adds its
entries (clemcore's format: ``game_path`` or ``benchmark_path`` per entry).
Folders are found, later sources overriding earlier ones by game name: the session's ``games``
registry (the games built into pytest-llmeval, packages registered under the
``pytest_llmeval.games`` entry-point group, plugins), then the ``games/`` folders the eval
files point at (``evals/games/`` by default).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.validation.game_schemas import CLEM_GAME_SPEC, GAME_SPEC
from pytest_llmeval.validation.validator import check, read_document

SPEC_FILE = "clemgame.json"
REGISTRY_FILE = "game_registry.json"
#: folders clemcore's game search skips, and how deep it looks
SKIPPED_FOLDERS = frozenset({"venv", "__pycache__", "docs", "in", "resources", "utils", "evaluation", "files"})
MAX_DEPTH = 3
#: ``clem run``'s default reply length for clembench's games
CLEM_MAX_TOKENS = 300
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_LOADING = threading.RLock()  # one master.py load at a time


@dataclass(frozen=True)
class GameSpec:
    game_name: str
    game_path: Path
    players: int
    master: str
    scorer: str | None = None
    instances: str = "instances"
    description: str = ""
    max_tokens: int = 100
    max_requests: int | None = None
    source: str = "built-in"
    benchmark: tuple[str, ...] = ()
    #: the ``clemgame.json`` entry of a clembench game that clemcore plays; None for ours
    clem: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def on_clemcore(self) -> bool:
        return self.clem is not None

    def with_instances(self, name: str) -> GameSpec:
        """This game reading another instances file (``clem run -i``): a name in ``in/`` or a path."""
        clem = None if self.clem is None else {**self.clem, "instances": name}
        return replace(self, instances=name, clem=clem)

    def instances_file(self) -> Path:
        for candidate in (self.game_path / "in" / f"{self.instances}.json", self.game_path / f"{self.instances}.json"):
            if candidate.is_file():
                return candidate
        raise ConfigError(f"game {self.game_name!r} has no {self.instances}.json (looked in {self.game_path} and "
                          f"its in/ folder); run its instancegenerator.py", file=self.game_path / SPEC_FILE,
                          entry=self.game_name, field="instances")

    def load_instances(self) -> dict[str, Any]:
        path = self.instances_file()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"is not valid JSON: {exc}", file=path) from None
        experiments = data.get("experiments") if isinstance(data, dict) else None
        if not isinstance(experiments, list):
            raise ConfigError("must be a mapping with an 'experiments' list", file=path, field="experiments")
        for index, experiment in enumerate(experiments):
            if not isinstance(experiment, dict) or not isinstance(experiment.get("name"), str):
                raise ConfigError("needs a 'name'", file=path, entry=f"experiment #{index}", field="name")
            if not isinstance(experiment.get("game_instances"), list):
                raise ConfigError("needs a 'game_instances' list", file=path, entry=experiment["name"],
                                  field="game_instances")
        return data

    def _module(self) -> Any:
        master_file = self.game_path / "master.py"
        if not master_file.is_file():
            raise ConfigError("has no master.py", file=self.game_path / SPEC_FILE, entry=self.game_name, field="master")
        if master_file.parent.parent == BUILTIN_DIR:  # built-in games import by name, once
            return importlib.import_module(f"pytest_llmeval.games.builtin.{master_file.parent.name}.master")
        name = f"llmeval_game_{abs(hash(str(master_file)))}_master"
        with _LOADING:  # episodes played side by side load it once, never half-initialised
            return self._load(name, master_file)

    @staticmethod
    def _load(name: str, master_file: Path) -> Any:
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, master_file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return sys.modules[name]

    def master_class(self) -> Any:
        return self._class(self.master, "master")

    def scorer_class(self) -> Any:
        if self.scorer is None:
            from pytest_llmeval.games.scorer import GameScorer

            return GameScorer
        return self._class(self.scorer, "scorer")

    def _class(self, name: str, field: str) -> Any:
        found = getattr(self._module(), name, None)
        if found is None:
            raise ConfigError(f"master.py defines no class {name!r}", file=self.game_path / SPEC_FILE,
                              entry=self.game_name, field=field)
        return found


def _players(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 1:
        return value
    return {"one": 1, "two": 2}.get(str(value).lower())


def read_spec_file(path: Path, source: str = "built-in") -> list[GameSpec]:
    """The specs in one ``clemgame.json``; each problem names the file, the entry and the field."""
    raw = read_document(path, "json")
    entries = raw if isinstance(raw, list) else [raw]
    return [spec_from_entry(entry, path.parent, path, index, source) for index, entry in enumerate(entries)]


def spec_from_entry(entry: Any, game_path: Path, path: Path, index: int, source: str) -> GameSpec:
    """One ``clemgame.json`` entry: ours when it names a ``master`` class, else clemcore's."""
    clem = isinstance(entry, dict) and "master" not in entry
    name = entry.get("game_name") if isinstance(entry, dict) else None
    label = f"#{index} ({name!r})" if isinstance(name, str) and name else f"#{index}"
    where: dict[str, Any] = {"file": path, "entry": label}
    if clem and not (game_path / "master.py").is_file():
        raise ConfigError(f"needs 'master', the class name of the game master in master.py (or, for a clembench "
                          f"game, a master.py in {game_path})", field="master", **where)
    check(entry, CLEM_GAME_SPEC if clem else GAME_SPEC, path, entry=label)
    players = _players(entry.get("players", 1))
    if players is None:
        raise ConfigError(f"must be a number of players or 'one'/'two', not {entry.get('players')!r}",
                          field="players", **where)
    benchmark = entry.get("benchmark") or ()
    return GameSpec(
        game_name=entry["game_name"], game_path=game_path, players=players, master=entry.get("master", ""),
        scorer=entry.get("scorer"), instances=entry.get("instances", "instances"),
        description=entry.get("description", ""),
        max_tokens=entry.get("max_tokens", CLEM_MAX_TOKENS if clem else 100),
        max_requests=entry.get("max_requests"), source=source,
        benchmark=tuple(str(b) for b in ([benchmark] if isinstance(benchmark, str) else benchmark)),
        clem=dict(entry) if clem else None)


def read_registry_file(path: Path, source: str) -> list[GameSpec]:
    """clemcore's ``game_registry.json``: entries with a ``game_path`` (relative paths from the
    file's folder) or a ``benchmark_path`` (a folder searched for games)."""
    raw = read_document(path, "json")
    if not isinstance(raw, list):
        raise ConfigError("must be a list of game entries", file=path)
    specs: list[GameSpec] = []
    for index, entry in enumerate(raw):
        if isinstance(entry, dict) and isinstance(entry.get("benchmark_path"), str):
            specs.extend(_scan(path.parent / entry["benchmark_path"], source, registry=False))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("game_path"), str):
            raise ConfigError("needs a 'game_path' (or a 'benchmark_path') string", file=path,
                              entry=f"#{index}", field="game_path")
        specs.append(spec_from_entry(entry, (path.parent / entry["game_path"]).resolve(), path, index, source))
    return specs


def _scan(folder: Path, source: str, depth: int = 0, registry: bool = True) -> list[GameSpec]:
    """A game folder itself, or folders of game folders down to clemcore's depth; a folder's
    ``game_registry.json`` entries come first, as clemcore lists them first."""
    if (folder / SPEC_FILE).is_file():
        return read_spec_file(folder / SPEC_FILE, source)
    specs: list[GameSpec] = []
    if registry and (folder / REGISTRY_FILE).is_file():
        specs.extend(read_registry_file(folder / REGISTRY_FILE, source))
    if folder.is_dir() and depth < MAX_DEPTH:
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and child.name not in SKIPPED_FOLDERS:
                specs.extend(_scan(child, source, depth + 1, registry=False))
    return specs


def discover_games(folders: list[Path] | tuple[Path, ...] = (),
                   registered: Mapping[str, Path] | None = None) -> dict[str, GameSpec]:
    """Every game by name: the ``registered`` sources (a session's ``games`` registry; default:
    the built-in games only), then ``folders`` (later ones win)."""
    found: dict[str, GameSpec] = {}
    registered = registered if registered is not None else {"built-in": BUILTIN_DIR}
    sources = [*((Path(folder), label) for label, folder in registered.items()),
               *((Path(f), str(f)) for f in folders)]
    for folder, source in sources:
        for spec in _scan(folder, source):
            found[spec.game_name] = spec
    return found
