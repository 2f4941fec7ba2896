"""One clembench game experiment played the way ``clem run`` plays it, then scored as ``clem score``.

The game's ``master.py`` is loaded by clemcore's ``GameBenchmark.load_from_spec``; the episodes
run through clemcore's runner with clemcore's file savers (run, experiment, instance,
interactions, per-player requests, completed/error signals) and an :class:`EpisodeCollector`
that scores and keeps each episode. The caller gets our :class:`GameRunResult`.

Episodes side by side (``parallel_episodes``) are each played by clemcore's sequential runner
in a thread of their own, with their own copies of the player models, in lockstep on a local
model (see :mod:`pytest_llmeval.games.lockstep`), so the records are those of playing them one
at a time. (clemcore's batchwise runner, ``clem run -b``, records programmatic players' calls
otherwise than its sequential one.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clemcore.backends import Model
from clemcore.clemgame import GameBenchmark, GameInstances
from clemcore.clemgame import GameSpec as ClemGameSpec
from clemcore.clemgame.callbacks.base import GameBenchmarkCallbackList
from clemcore.clemgame.callbacks.files import (
    ExperimentFileSaver,
    InstanceFileSaver,
    ResultsFolder,
    SignalFileSaver,
)
from clemcore.clemgame.runners import sequential

from pytest_llmeval.clem.compat import legacy_games
from pytest_llmeval.clem.episodes import (
    EpisodeCollector,
    EpisodeFailed,
    KeptInteractions,
    KeptRequests,
    SharedRunFile,
)
from pytest_llmeval.clem.logs import clembench_log
from pytest_llmeval.clem.model import BridgeModel
from pytest_llmeval.clem.nltk_data import ensure_nltk_data
from pytest_llmeval.games.episode_runner import GameRunResult, finish_run
from pytest_llmeval.games.game_spec import GameSpec
from pytest_llmeval.games.lockstep import (
    EpisodePlan,
    Lockstep,
    Setting,
    episode_models,
    plan_episodes,
    play_side_by_side,
)
from pytest_llmeval.games.player_models import HandleModel, PlayerModel
from pytest_llmeval.paths import user_cache_dir
from pytest_llmeval.run_result import RunFailed

log = logging.getLogger("pytest_llmeval.clem")


def _nltk_ready() -> None:
    """The NLTK data clembench's games read (taboo's stop words), from files we ship, never the network."""
    import nltk

    folder = str(ensure_nltk_data(user_cache_dir() / "nltk_data"))
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)


def _model_spec(model: PlayerModel) -> dict[str, Any]:
    """What clemcore records as a player's ``model_spec``: the deployment and the model it serves."""
    if isinstance(model, HandleModel):
        return {"model_id": model.handle.deployment.model_name, "deployment": model.handle.name}
    return {}


class _GameEvents(GameBenchmarkCallbackList):
    """The run's callbacks for one of several episodes played side by side: the game events
    only, as the benchmark starts and ends once for all of them."""

    def on_benchmark_start(self, game_benchmark: Any) -> None:
        pass

    def on_benchmark_end(self, game_benchmark: Any) -> None:
        pass


def _play_rows(benchmark: Any, rows: list[Any], models: Sequence[PlayerModel], players: list[BridgeModel],
               callbacks: GameBenchmarkCallbackList, plan: EpisodePlan) -> None:
    """clemcore's sequential runner over ``rows``: once for all of them, or once per episode in
    ``plan.workers`` threads, each episode with its own copies of the models."""
    if plan.workers <= 1:
        sequential.run(benchmark, rows, players, callbacks=callbacks)
        return
    events = _GameEvents(list(callbacks.callbacks))

    def play(position: int, barrier: Lockstep | None) -> None:
        own = [BridgeModel(m, _model_spec(m)) for m in episode_models(models, barrier, position)]
        sequential.run(benchmark, [rows[position]], own, callbacks=events)

    callbacks.on_benchmark_start(benchmark)
    play_side_by_side(list(range(len(rows))), play, plan)
    callbacks.on_benchmark_end(benchmark)


def clem_spec(spec: GameSpec) -> ClemGameSpec:
    """clemcore's own spec for a clembench game folder: its ``clemgame.json`` entry as written."""
    return ClemGameSpec.from_dict({**dict(spec.clem or {}), "game_path": str(spec.game_path)})


def play_clem_experiment(spec: GameSpec, experiment: dict[str, Any], models: Sequence[PlayerModel],
                         results_root: Path, episodes: Sequence[int] | None = None,
                         helm_dir: Path | None = None, parallel: Setting = "off") -> GameRunResult:
    """Play the chosen episodes (positions in the experiment's instance list) of one experiment,
    ``parallel`` at a time (as :func:`plan_episodes` decides); raises :class:`RunFailed` with what was
    played when an episode fails."""
    started = time.perf_counter()
    _nltk_ready()
    instances = experiment["game_instances"]
    chosen = list(range(len(instances))) if episodes is None else list(episodes)
    indices = {instances[i]["game_id"]: i for i in chosen}
    players = [BridgeModel(m, _model_spec(m)) for m in models]
    folder = ResultsFolder(results_root, run_dir=Model.to_identifier(players))
    infos = Model.to_infos(players)
    interactions = KeptInteractions(folder, player_model_infos=infos)
    requests = KeptRequests(folder)
    collector = EpisodeCollector(folder, interactions, requests, indices)
    callbacks = GameBenchmarkCallbackList([  # clem run's savers, in its order, then ours
        InstanceFileSaver(folder),
        ExperimentFileSaver(folder, player_model_infos=infos),
        interactions,
        SharedRunFile(folder, experiment["name"], player_model_infos=infos),
        requests,
        SignalFileSaver(folder),
        collector,
    ])
    handle_models = [m for m in models if isinstance(m, HandleModel)]
    before = [(m.requests, m.cache_hits) for m in handle_models]
    own = clem_spec(spec)
    with clembench_log(Path(results_root)) as failures, legacy_games(), GameBenchmark.load_from_spec(own) as benchmark:
        rows = GameInstances.from_game_spec(own).filter(
            lambda row: row["experiment"]["name"] == experiment["name"]
            and row["game_instance"]["game_id"] in indices)
        _play_rows(benchmark, list(rows), models, players, callbacks, plan_episodes(models, parallel, len(chosen)))
    collector.check_all_played(failures)
    names = list(dict.fromkeys(m.name for m in models))
    run = GameRunResult(spec, experiment["name"], folder.run_dir, names,
                        sorted(collector.episodes, key=lambda e: e.index), [], helm_dir, 0.0)
    finish_run(run, handle_models, before, started)
    if collector.errors:
        instance, error = collector.errors[0]
        failed = EpisodeFailed(f"{spec.game_name}:{experiment['name']} instance {instance.get('game_id')}: "
                               f"{type(error).__name__}: {error}" + (f" (and {len(collector.errors) - 1} more)"
                                                                     if len(collector.errors) > 1 else ""))
        raise RunFailed(failed, run) from error
    return run
