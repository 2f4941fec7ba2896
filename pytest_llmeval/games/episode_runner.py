"""Playing a game's episodes: master -> records -> scores -> per-episode stats -> aggregated stats
-> one :class:`GameRunResult`, which the HELM files are written from and which the caller hands
on to the report (its records and its episodes) and the terminal summary.

An experiment that fails part-way still yields what it played: :class:`RunFailed` carries the
partial result, whose HELM files are written too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pytest_llmeval.adapters.adapter_spec import AdapterSpec
from pytest_llmeval.games.clemscore import EpisodeScore, GameTable, compute_table, nanmean
from pytest_llmeval.games.episode_files import (
    EXPERIMENT_FILE,
    INSTANCE_FILE,
    INTERACTIONS_FILE,
    SCORES_FILE,
    TRANSCRIPT_FILE,
    clear_episode,
    episode_dir,
    instance_folder,
    run_folder,
    signal_file,
    update_run_file,
    write_json,
    write_text,
)
from pytest_llmeval.games.game_spec import GameSpec
from pytest_llmeval.games.lockstep import (
    EpisodePlan,
    Lockstep,
    Setting,
    episode_models,
    plan_episodes,
    play_side_by_side,
)
from pytest_llmeval.games.metrics import BENCH_SCORE, METRIC_ABORTED, METRIC_PLAYED, helm_name
from pytest_llmeval.games.player_models import HandleModel, PlayerModel
from pytest_llmeval.games.recorder import player_model_infos
from pytest_llmeval.games.transcript import build_transcript
from pytest_llmeval.metrics.stat import MetricName, Stat, aggregate
from pytest_llmeval.perturbations.augment import augmenter_spec
from pytest_llmeval.run_result import RunFailed

log = logging.getLogger("pytest_llmeval.games")

SPLIT = "test"
MAIN_METRIC = "quality_score"  # a game run's headline figure: mean Main Score over played episodes


@dataclass
class Episode:
    """One played episode: its records, as written to ``directory``, and its HELM stats.

    ``index`` is the instance's position in its experiment, ``players`` the run folder's name
    (``results/PLAYERS/GAME/EXPERIMENT/instance_GAMEID``), ``requests`` every model call in order
    and ``player_requests`` the same calls per player file (``player_1.requests.json`` -> its content).
    """

    game: str
    experiment: str
    index: int
    players: str
    directory: Path
    instance: dict[str, Any]
    interactions: dict[str, Any]
    requests: list[dict[str, Any]]
    scores: dict[str, Any]
    stats: list[Stat] = field(default_factory=list)
    player_requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The episode folder's name, ``instance_00001`` for game_id 1."""
        return self.directory.name

    @property
    def episode_scores(self) -> dict[str, Any]:
        return dict(self.scores["episode scores"])

    @property
    def aborted(self) -> bool:
        return bool(self.episode_scores[METRIC_ABORTED])

    @property
    def main_score(self) -> float:
        value = self.episode_scores.get(BENCH_SCORE, math.nan)
        return math.nan if value is None else float(value)

    def score(self) -> EpisodeScore:
        return EpisodeScore(self.game, self.players, self.experiment, self.name, int(self.aborted), self.main_score)


class EpisodeScores:
    """clembench's headline numbers over ``episodes`` (one run's, or a whole game's)."""

    episodes: list[Episode]

    @property
    def played(self) -> float:
        """The fraction of episodes not aborted (clembench's % Played / 100)."""
        return nanmean(0.0 if e.aborted else 1.0 for e in self.episodes)

    @property
    def quality(self) -> float:
        """Mean Main Score over played episodes; NaN when none was played."""
        return nanmean(e.main_score for e in self.episodes)


@dataclass
class GameRunResult(EpisodeScores):
    """Everything one game experiment with one set of players produced: its episodes (each with
    its stats), their aggregated stats, timing and the request and cache counts."""

    spec: GameSpec
    experiment: str
    players: str
    model_names: list[str]
    episodes: list[Episode]
    stats: list[Stat]  # the episodes' stats aggregated
    run_dir: Path | None  # the HELM run folder
    seconds: float
    requests: int = 0  # requests the players sent, answered by the cache or the model
    cache_hits: int = 0

    main_metric: ClassVar[str] = MAIN_METRIC

    @property
    def name(self) -> str:
        return f"{self.spec.game_name}:{self.experiment},model={'--'.join(self.model_names)}"


@dataclass
class GamePlay(EpisodeScores):
    """What a game-based test gets back: every run of the game and their episodes."""

    runs: list[GameRunResult] = field(default_factory=list)

    @property
    def episodes(self) -> list[Episode]:  # type: ignore[override]
        return [e for run in self.runs for e in run.episodes]

    def table(self) -> GameTable:
        return compute_table(e.score() for e in self.episodes)


def play_episode(spec: GameSpec, experiment: dict[str, Any], instance: dict[str, Any], index: int,
                 models: Sequence[PlayerModel], results_root: Path) -> Episode:
    """Play one instance and write its records; scores come from the records alone.

    An episode the game code fails in keeps what it played, with ``error.json`` naming the error.
    """
    for model in models:
        model.reset()
    players = run_folder([m.name for m in models])
    directory = episode_dir(results_root, players, spec.game_name, experiment["name"],
                            instance_folder(instance, index))
    master = spec.master_class()(spec, experiment, list(models))
    master.recorder.set_run(players, player_model_infos(models))
    clear_episode(directory)
    write_json(directory / INSTANCE_FILE, instance)
    try:
        master.setup(**instance)
        master.play()
    except BaseException as exc:  # what was played so far is kept, even when the game code fails
        _write_records(directory, master)
        signal_file(directory, exc)
        raise
    _write_records(directory, master)
    signal_file(directory)
    scorer = spec.scorer_class()(spec.game_name, experiment, instance)
    scores = scorer.compute_scores(master.interactions)
    write_json(directory / SCORES_FILE, scores)
    write_text(directory / TRANSCRIPT_FILE,
               build_transcript(master.interactions, experiment, instance, players, scores))
    episode = Episode(spec.game_name, experiment["name"], index, players, directory, instance, master.interactions,
                      master.requests, scores, player_requests=master.recorder.request_files())
    episode.stats = episode_stats(episode)
    return episode


def _write_records(directory: Path, master: Any) -> None:
    write_json(directory / INTERACTIONS_FILE, master.interactions)
    for name, record in master.recorder.request_files().items():
        write_json(directory / name, record)


def play_experiment(spec: GameSpec, experiment: dict[str, Any], models: Sequence[PlayerModel], results_root: Path,
                    episodes: Sequence[int] | None = None, helm_dir: Path | None = None,
                    parallel: Setting = "off") -> GameRunResult:
    """Play the chosen episodes of one experiment, side by side as ``parallel`` says (see
    :mod:`lockstep`); raises :class:`RunFailed` with what was played when an episode fails."""
    started = time.perf_counter()
    begun = datetime.now()
    instances = experiment["game_instances"]
    chosen = list(range(len(instances))) if episodes is None else list(episodes)
    players = run_folder([m.name for m in models])
    infos = player_model_infos(models)
    config = {k: v for k, v in experiment.items() if k != "game_instances"}
    config.update(timestamp=begun.isoformat(), game_name=spec.game_name, player_models=infos)
    write_json(results_root / players / spec.game_name / experiment["name"] / EXPERIMENT_FILE, config)
    update_run_file(results_root / players, infos, spec.game_name, spec.game_path, experiment["name"], begun)
    handle_models = [m for m in models if isinstance(m, HandleModel)]
    before = [(m.requests, m.cache_hits) for m in handle_models]
    names = sorted({m.name for m in models}, key=[m.name for m in models].index)
    run = GameRunResult(spec, experiment["name"], players, names, [], [], helm_dir, 0.0)
    plan = plan_episodes(models, parallel, len(chosen))
    try:
        if plan.workers <= 1:
            for i in chosen:
                run.episodes.append(play_episode(spec, experiment, instances[i], i, models, results_root))
        else:
            log.info("%s: %d episodes, %d at a time (%s)", run.name, len(chosen), plan.workers, plan.mode)
            _play_parallel(run, spec, experiment, models, results_root, chosen, plan)
    except Exception as exc:  # the episodes played so far are kept, with the requests they sent
        finish_run(run, handle_models, before, started)
        raise RunFailed(exc, run) from exc
    finally:
        update_run_file(results_root / players, infos, spec.game_name, spec.game_path, experiment["name"], begun,
                        datetime.now(), len(run.episodes))
    finish_run(run, handle_models, before, started)
    log.info("%s: %d episodes, %% played %.1f", run.name, len(run.episodes),
             100 * run.played if run.episodes else math.nan)
    return run


def _play_parallel(run: GameRunResult, spec: GameSpec, experiment: dict[str, Any], models: Sequence[PlayerModel],
                   results_root: Path, chosen: list[int], plan: EpisodePlan) -> None:
    """Every chosen episode, several at a time; the results in the order chosen. When some fail,
    the others still finish and are kept, and the first failure (in that order) is raised."""
    def one(i: int, barrier: Lockstep | None) -> Episode:
        return play_episode(spec, experiment, experiment["game_instances"][i], i,
                            episode_models(models, barrier, i), results_root)

    outcomes = play_side_by_side(chosen, one, plan)
    run.episodes.extend(o for o in outcomes if isinstance(o, Episode))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise errors[0]


def finish_run(run: GameRunResult, handle_models: list[HandleModel], before: list[tuple[int, int]],
            started: float) -> None:
    """The run's counts and aggregated stats, then its HELM files."""
    run.requests = sum(m.requests - b[0] for m, b in zip(handle_models, before))
    run.cache_hits = sum(m.cache_hits - b[1] for m, b in zip(handle_models, before))
    run.stats = aggregate([e.stats for e in run.episodes])
    if run.run_dir is not None:
        write_helm_run(run)
    run.seconds = time.perf_counter() - started


def episode_stats(episode: Episode) -> list[Stat]:
    """HELM Stats for one episode: every numeric episode score (NaN skipped), Played and quality."""
    stats = []
    for metric, value in episode.episode_scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        stats.append(Stat(MetricName(helm_name(metric), SPLIT)).add(value))
    played = 0.0 if episode.aborted else 1.0
    stats.append(Stat(MetricName(helm_name(METRIC_PLAYED), SPLIT)).add(played))
    stats.append(Stat(MetricName("percent_played", SPLIT)).add(100 * played))
    if not math.isnan(episode.main_score):
        stats.append(Stat(MetricName("quality_score", SPLIT)).add(episode.main_score))
    return stats


def write_helm_run(run: GameRunResult) -> None:
    """``run_spec.json``, ``per_instance_stats.json`` and ``stats.json``, as HELM writes them.
    The run spec has HELM's RunSpec fields, so helm-summarize reads a suite with games in it
    (it ignores the game's own keys after them)."""
    assert run.run_dir is not None
    directory = run.run_dir
    write_json(directory / "run_spec.json", {
        "name": directory.name,
        "scenario_spec": {"class_name": "pytest_llmeval.games.game_spec.GameSpec",
                          "args": {"game": run.spec.game_name, "experiment": run.experiment}},
        "adapter_spec": AdapterSpec(method="dialogue_game", model=run.model_names[0] if run.model_names else "",
                                    max_train_instances=0).to_json(),
        "metric_specs": [], "data_augmenter_spec": augmenter_spec([]), "groups": [run.spec.game_name],
        "game": run.spec.game_name, "experiment": run.experiment,
        "players": run.players, "models": run.model_names,
        "episodes": [e.index for e in run.episodes],
        "results": str(run.episodes[0].directory.parent) if run.episodes else None,
        "metric_names": sorted({s.name.name for s in run.stats}),
    })
    write_json(directory / "per_instance_stats.json", [
        {"instance_id": e.name, "train_trial_index": 0, "stats": [s.to_json() for s in e.stats]}
        for e in run.episodes])
    write_json(directory / "stats.json", [s.to_json() for s in run.stats])
