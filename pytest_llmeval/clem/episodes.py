"""Each finished clembench episode, scored by the game's own scorer as ``clem score`` would, and
kept in memory as our :class:`~pytest_llmeval.games.Episode`.

clemcore's own file savers write the records; the two here are those savers, keeping in memory
the very objects they write (so what we hand on is what is on disk, without reading it back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clemcore.clemgame.callbacks.base import GameBenchmarkCallback
from clemcore.clemgame.callbacks.files import InteractionsFileSaver, PlayerFileSaver, ResultsFolder
from clemcore.clemgame.resources import store_file
from clemcore.clemgame.transcripts.builder import build_transcript

from pytest_llmeval.clem.logs import EpisodeFailures
from pytest_llmeval.games.episode_files import update_run_file
from pytest_llmeval.games.episode_runner import Episode, episode_stats


class EpisodeFailed(Exception):
    """An episode clemcore could not play or score (clemcore logs it and plays on; we report it)."""


def _as_stored(data: Any) -> Any:
    """What a JSON record of ``data`` reads back as (tuples become lists, keys strings)."""
    return json.loads(json.dumps(data))


def _game_id(game_master: Any, game_instance: dict[str, Any]) -> tuple[str, str, Any]:
    return game_master.game_spec.game_name, game_master.experiment["name"], game_instance["game_id"]


class SharedRunFile(GameBenchmarkCallback):
    """clemcore's ``run.json`` saver for one experiment of a run that xdist workers share.

    clemcore's RunFileSaver reads the file once and overwrites it at the end, so two workers
    playing games of one run folder lose each other's entries (or read a half-written file); this
    one updates the file under a lock at each step, with the same fields, and counts a game's
    instances over all its experiments as one ``clem run`` of the game does.
    """

    def __init__(self, folder: ResultsFolder, experiment: str, *, player_model_infos: Any = None) -> None:
        self.run_dir = Path(folder.to_run_dir_path())
        self.experiment = experiment
        self.infos = _as_stored(player_model_infos or {})
        self.started = datetime.now()
        self.played = 0

    def on_benchmark_start(self, game_benchmark: Any) -> None:
        self.started = datetime.now()
        update_run_file(self.run_dir, self.infos, game_benchmark.game_name, Path(game_benchmark.game_path),
                        self.experiment, self.started)

    def on_game_start(self, game_master: Any, game_instance: dict[str, Any]) -> None:
        self.played += 1

    def on_benchmark_end(self, game_benchmark: Any) -> None:
        update_run_file(self.run_dir, self.infos, game_benchmark.game_name, Path(game_benchmark.game_path),
                        self.experiment, self.started, datetime.now(), self.played)


class KeptInteractions(InteractionsFileSaver):
    """clemcore's ``interactions.json`` saver, keeping each episode's interactions as written."""

    def __init__(self, folder: ResultsFolder, *, player_model_infos: Any = None) -> None:
        super().__init__(folder, player_model_infos=player_model_infos)
        self.kept: dict[tuple[str, str, Any], dict[str, Any]] = {}

    def on_game_end(self, game_master: Any, game_instance: dict[str, Any], exception: Exception | None = None,
                    rewards: dict[str, float] | None = None) -> None:
        if exception is None:
            recorder = self._recorders.get(self.to_key(*_game_id(game_master, game_instance)))
            if recorder is not None:
                self.kept[_game_id(game_master, game_instance)] = recorder.interactions
        super().on_game_end(game_master, game_instance, exception, rewards)


class KeptRequests(PlayerFileSaver):
    """clemcore's ``player_N.requests.json`` saver, keeping each player's calls as written."""

    def __init__(self, folder: ResultsFolder) -> None:
        super().__init__(folder)
        self.kept: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}

    def on_game_end(self, game_master: Any, game_instance: dict[str, Any], exception: Exception | None = None,
                    rewards: dict[str, float] | None = None) -> None:
        if exception is None:
            game, experiment, game_id = _game_id(game_master, game_instance)
            recorders = [self._recorders.get(self.to_key(game, experiment, game_id, p.name))
                         for p in game_master.get_players()]
            self.kept[(game, experiment, game_id)] = [r.requests for r in recorders if r is not None and len(r)]
        super().on_game_end(game_master, game_instance, exception, rewards)


@dataclass
class EpisodeCollector(GameBenchmarkCallback):
    """Scores, transcribes and keeps every episode of one experiment; failures are kept too.
    Runs after the savers, whose records it scores."""

    folder: ResultsFolder
    interactions: KeptInteractions
    requests: KeptRequests
    indices: dict[Any, int]  # game_id -> position in the experiment's instance list
    episodes: list[Episode] = field(default_factory=list)
    errors: list[tuple[dict[str, Any], BaseException]] = field(default_factory=list)
    _benchmark: Any = None

    def on_benchmark_start(self, game_benchmark: Any) -> None:
        self._benchmark = game_benchmark

    def on_game_end(self, game_master: Any, game_instance: dict[str, Any], exception: Exception | None = None,
                    rewards: dict[str, float] | None = None) -> None:
        key = _game_id(game_master, game_instance)
        recorded = self.interactions.kept.pop(key, None)
        if exception is not None or recorded is None:
            self.errors.append((game_instance, exception or EpisodeFailed("no interactions were recorded")))
            return
        directory = Path(self.folder.to_instance_dir_path(game_master, game_instance))
        interactions = _as_stored(recorded)
        try:  # as `clem score` does; a game whose scorer fails keeps its records, without scores.json
            scorer = self._benchmark.create_game_scorer(game_master.experiment, game_instance)
            scorer.compute_scores(interactions)
            scorer.store_scores(str(directory))
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__} (the game defines no scorer?)"
            self.errors.append((game_instance, EpisodeFailed(f"scoring failed: {why}")))
            return
        store_file(build_transcript(interactions), "transcript.html", str(directory))
        episode = Episode(key[0], key[1], self.indices[key[2]], self.folder.run_dir, directory,
                          _as_stored(game_instance), interactions, _as_stored(self.requests.kept.pop(key, [])),
                          _as_stored(scorer.scores))
        episode.stats = episode_stats(episode)
        self.episodes.append(episode)
    def check_all_played(self, failures: EpisodeFailures) -> None:
        """Episodes clemcore's runner gave up on (a player's call failed, the setup failed: it
        logs those and plays on), with the exception it logged."""
        seen = {e.instance.get("game_id") for e in self.episodes} | {i.get("game_id") for i, _ in self.errors}
        for game_id in self.indices:
            if game_id not in seen:
                cause = failures.by_game_id.get(str(game_id))
                self.errors.append(({"game_id": game_id}, cause or EpisodeFailed(
                    f"the episode did not finish; see {failures.path}")))
