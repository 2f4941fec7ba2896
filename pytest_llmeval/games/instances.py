"""Game instances: the seeded generator each game folder uses, and episode sampling."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


class GameInstanceGenerator:
    """Builds ``{"experiments": [{"name", <params>, "game_instances": [{"game_id", ...}]}]}``.

    Subclass, implement :meth:`on_generate` with ``self.rng`` for every random choice, and call
    :meth:`generate`: the same seed always writes the same file.
    """

    def __init__(self, game_path: str | Path, seed: int = 42) -> None:
        self.game_path = Path(game_path)
        self.seed = seed
        self.rng = random.Random(seed)
        self.instances: dict[str, Any] = {"experiments": []}

    def add_experiment(self, name: str) -> dict[str, Any]:
        experiment: dict[str, Any] = {"name": name, "game_instances": []}
        self.instances["experiments"].append(experiment)
        return experiment

    def add_game_instance(self, experiment: dict[str, Any], game_id: int) -> dict[str, Any]:
        instance: dict[str, Any] = {"game_id": game_id}
        experiment["game_instances"].append(instance)
        return instance

    def load_file(self, relative: str) -> str:
        return (self.game_path / relative).read_text(encoding="utf-8")

    def load_template(self, relative: str) -> str:
        return self.load_file(relative if relative.endswith(".template") else f"{relative}.template").strip()

    def load_json(self, relative: str) -> Any:
        return json.loads(self.load_file(relative))

    def load_lines(self, relative: str) -> list[str]:
        """Non-empty lines, ``#`` comments skipped."""
        return [line.strip() for line in self.load_file(relative).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]

    def on_generate(self) -> None:
        raise NotImplementedError

    def generate(self, filename: str = "instances.json") -> Path:
        self.rng = random.Random(self.seed)
        self.instances = {"experiments": []}
        self.on_generate()
        target = self.game_path / filename
        # strict JSON: a NaN in an instance is an error here, not a file other tools cannot read
        text = json.dumps(self.instances, indent=2, ensure_ascii=False, allow_nan=False)
        target.write_text(text + "\n", encoding="utf-8")
        return target


def sample_episodes(count: int, limit: int | None) -> list[int]:
    """Indices of the episodes to play: all, or a seeded sample of ``limit`` kept in order."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(0).sample(range(count), limit))
