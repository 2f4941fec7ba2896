"""Games as pytest items: one per (game, experiment, players), listed in a games file.

A games file (``games*.yaml`` or ``*.games.yaml``) lists the games to play, each optionally
with a subset of experiments, its own episode limit and gates::

    games:
      - hellogame
      - game: taboo
        experiments: [high_en]
        gates: ["played >= 0.5"]

Items are named ``taboo:high_en[local/smollm2-135m-instruct]`` (``[A,B]`` for a pairing from
``--llmeval-players A,B``), so ``-k`` selects by game, experiment or model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmeval.collect import GateFailure, LLMEvalItem
from pytest_llmeval.errors import ConfigError, LLMEvalError
from pytest_llmeval.games.episode_runner import GamePlay, GameRunResult, play_experiment
from pytest_llmeval.games.game_spec import GameSpec, discover_games
from pytest_llmeval.games.game_window import ChatTokenCounter
from pytest_llmeval.games.games_file import GameEntry, game_folders, is_games_file, parse_pairings, read_games_file
from pytest_llmeval.games.instances import sample_episodes
from pytest_llmeval.games.player_models import HandleModel, PlayerModel, ScriptedModel
from pytest_llmeval.options import pick_limit
from pytest_llmeval.report.helm_output import run_dir
from pytest_llmeval.run_result import RunFailed

if TYPE_CHECKING:
    from pytest_llmeval.session import LLMEvalSession

log = logging.getLogger("pytest_llmeval.games")

RESULTS = "results"


def collect_games_file(file_path: Path, parent: pytest.Collector) -> GamesFile | None:
    """The plugin's hand-off: a games file becomes a :class:`GamesFile`."""
    if is_games_file(file_path):
        return GamesFile.from_parent(parent, path=file_path)
    return None


class GamesFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from pytest_llmeval.plugin import get_session

        session = get_session(self.config)
        entries, extra_dirs = read_games_file(self.path)
        specs = discover_games([*game_folders(self.config.rootpath, self.path), *extra_dirs],
                               session.registries.games)
        pairings = parse_pairings(session.settings.players)
        for entry in entries:
            where: dict[str, Any] = {"file": self.path, "entry": entry.label}
            for spec in entry.specs(specs, where):
                yield from self._items(session, entry, spec, pairings, where)

    def _items(self, session: LLMEvalSession, entry: GameEntry, spec: GameSpec, pairings: list[list[str]],
               where: dict[str, Any]) -> Iterator[pytest.Item]:
        """One item per (experiment, players) of one game."""
        try:
            experiments = [e["name"] for e in spec.load_instances()["experiments"]]
        except ConfigError as exc:
            raise exc.located(**where) from None
        for name in entry.experiments or ():
            if name not in experiments:
                raise ConfigError(f"game {spec.game_name!r} has no experiment {name!r} "
                                  f"(it has {', '.join(experiments)})", field="experiments", **where)
        groups = pairings if (pairings and spec.players > 1) else [[m] for m in session.models]
        for group in groups:
            for name in group:
                try:
                    session.registry.deployment(name)
                except ConfigError as exc:
                    raise ConfigError(exc.message, field="--llmeval-players", **where) from None
            if len(group) > spec.players:
                raise ConfigError(f"game {spec.game_name!r} has {spec.players} player(s), not {len(group)}",
                                  field="--llmeval-players", **where)
            for experiment in experiments:
                if entry.experiments and experiment not in entry.experiments:
                    continue
                yield GameItem.from_parent(self, name=f"{spec.game_name}:{experiment}[{','.join(group)}]",
                                           spec=spec, experiment=experiment, models=tuple(group), entry=entry)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, LLMEvalError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


# --- items ---------------------------------------------------------------------------------------


class GameItem(LLMEvalItem):
    """One game experiment played by one model (or one pairing of models)."""

    def __init__(self, *, spec: GameSpec, experiment: str, models: tuple[str, ...], entry: GameEntry,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.experiment = experiment
        self.models = models
        self.entry = entry
        for keyword in (spec.game_name, experiment, *models):
            self.keywords[keyword] = True
        self.add_marker(pytest.mark.llmeval)

    def runtest(self) -> None:
        from pytest_llmeval.plugin import get_session
        from pytest_llmeval.report.collector import get_report
        from pytest_llmeval.session import worker_id

        session = get_session(self.config)
        report = get_report(self.config)
        limit = pick_limit(session.settings.max_episodes, self.entry.max_episodes)
        label = ",".join(self.models)
        try:
            parallel = session.settings.parallel_episodes or self.entry.parallel_episodes or "auto"
            run = run_game(session, self.spec, self.experiment, list(self.models), limit, parallel=parallel)
        except RunFailed as exc:  # listed as an error with what it played, then reported as usual
            report.run_error(self, exc.error, worker_id(), exc.result, model=label)
            raise exc.error from exc.error.__cause__  # keeps a user traceback for -v
        except Exception as exc:
            report.run_error(self, exc, worker_id(), model=label)
            raise
        report.finish_game(self, run, label, worker_id())
        self.user_properties.extend(run_properties(run, label, worker_id()).items())
        self.add_report_section("call", "llmeval", describe(run))
        failures = [m for gate in self.entry.gates if (m := gate.check(run.stats)) is not None]
        if failures:
            raise GateFailure("\n".join(failures))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.entry.index, f"{self.spec.game_name}:{self.experiment} on {','.join(self.models)}"


# --- running -------------------------------------------------------------------------------------

def token_counter(session: LLMEvalSession, name: str) -> ChatTokenCounter:
    """When the deployment has a window to check: its local client, which counts the prompt as
    it renders it for sending, else its tokenizer (else a character estimate)."""
    deployment = session.registry.deployment(name)
    counters = session.chat_token_counters
    if name not in counters:
        tokenizer = client = None
        if deployment.max_sequence_length is not None:
            try:
                local = session.handle(name).client
                if local.capabilities().local_tokenizer and local.prompt_tokenizer() is not None:
                    client = local
                else:
                    tokenizer = session.tokenizer(name)
            except Exception as exc:  # no tokenizer: fall back to counting characters
                log.info("%s: no tokenizer (%s); estimating prompt tokens from characters", name, exc)
        counters[name] = ChatTokenCounter(tokenizer, client)
    return counters[name]


def player_models(session: LLMEvalSession, spec: GameSpec, players: Sequence[str | PlayerModel | Any]) -> list[
        PlayerModel]:
    """Deployment names become cached registry models; callables become scripted models."""
    models: list[PlayerModel] = []
    for player in players:
        if isinstance(player, PlayerModel):
            models.append(player)
        elif isinstance(player, str):
            models.append(HandleModel(session.handle(player), max_tokens=spec.max_tokens,
                                      counter=token_counter(session, player)))
        elif callable(player):
            models.append(ScriptedModel(player, name=getattr(player, "__name__", "scripted")))
        else:
            raise TypeError(f"a player is a deployment name, a PlayerModel or a function, not {player!r}")
    return models


def run_game(session: LLMEvalSession, spec: GameSpec, experiment: str, players: Sequence[str | PlayerModel | Any],
             max_episodes: int | None = None, episodes: Sequence[int] | None = None,
             parallel: Any = None) -> GameRunResult:
    """Play (a sample of) one experiment; records under ``<output>/results``, HELM files under ``runs``.
    ``parallel``: episodes at a time (N, ``auto``, ``off``; default: the session's setting)."""
    found = [e for e in spec.load_instances()["experiments"] if e["name"] == experiment]
    if not found:
        raise ConfigError(f"game {spec.game_name!r} has no experiment {experiment!r}",
                          file=spec.instances_file(), field="experiments")
    models = player_models(session, spec, players)
    chosen = list(episodes) if episodes is not None else sample_episodes(len(found[0]["game_instances"]),
                                                                          max_episodes)
    names = "--".join(dict.fromkeys(m.name for m in models))
    helm = run_dir(session.settings.output_path, session.settings.suite, f"{spec.game_name}:{experiment},model={names}")
    parallel = parallel or session.settings.parallel_episodes or "auto"
    if spec.on_clemcore:
        return clemcore_player(spec)(spec, found[0], models, session.settings.output_path / RESULTS, chosen, helm,
                                     parallel)
    return play_experiment(spec, found[0], models, session.settings.output_path / RESULTS, chosen, helm, parallel)


def clemcore_player(spec: GameSpec) -> Callable[..., GameRunResult]:
    """The bridge that lets clemcore play a clembench game; one line when clemcore is missing."""
    try:
        from pytest_llmeval.clem.play import play_clem_experiment
    except ImportError as exc:
        if not (exc.name or "").startswith("clemcore"):
            raise
        raise ConfigError(f"game {spec.game_name!r} is one of clembench's own games, played by clemcore, which is "
                          f"not installed: pip install 'pytest-llmeval[clembench]'",
                          file=spec.game_path / "clemgame.json", entry=spec.game_name, field="master") from None
    return play_clem_experiment


def run_properties(run: GameRunResult, label: str, worker: str) -> dict[str, Any]:
    """The same ``llmeval_*`` keys a scenario run sets, plus the episode scores for the clemscore."""
    quality = run.quality
    return {
        "llmeval_run": run.name,
        "llmeval_model": label,
        "llmeval_metric": run.main_metric,
        "llmeval_value": None if quality != quality else quality,
        "llmeval_count": len(run.episodes),
        "llmeval_requests": run.requests,
        "llmeval_cache_hits": run.cache_hits,
        "llmeval_seconds": round(run.seconds, 3),
        "llmeval_output": str(run.run_dir),
        "llmeval_worker": worker,
        "llmeval_game": {
            "game": run.spec.game_name, "experiment": run.experiment, "players": run.players,
            "played": run.played, "episodes": [[e.index, int(e.aborted), e.main_score] for e in run.episodes],
        },
    }


def describe(run: GameRunResult) -> str:
    quality = "n/a" if run.quality != run.quality else f"{run.quality:.2f}"
    played = "n/a" if run.played != run.played else f"{100 * run.played:.1f}"
    return (f"{run.name}\n% played: {played}, quality score: {quality} ({len(run.episodes)} episodes)\n"
            f"requests: {run.requests}, cache hits: {run.cache_hits}, {run.seconds:.1f} s\n"
            f"records: {run.episodes[0].directory.parent if run.episodes else '-'}\nHELM run: {run.run_dir}\n")


# --- the play_game fixture ---------------------------------------------------------------------------


class GameFixture:
    """``play_game(game, players, experiment=None, max_episodes=None, episodes=None)`` -> :class:`GamePlay`.

    ``players`` is one entry per role (or one for self-play): a deployment name, a
    :class:`PlayerModel` such as ``ScriptedModel([...])``, or a function of the chat.
    """

    def __init__(self, session: LLMEvalSession, rootdir: Path, game_dirs: Sequence[Path] = (),
                 on_result: Callable[[GameRunResult], None] | None = None) -> None:
        self.session = session
        self.folders = [*game_folders(rootdir), *game_dirs]
        self.on_result = on_result  # the report's: it shows every played episode

    def _run(self, spec: GameSpec, experiment: str, players: list[Any], max_episodes: int | None,
             episodes: Sequence[int] | None) -> GameRunResult:
        try:
            run = run_game(self.session, spec, experiment, players, max_episodes, episodes)
        except RunFailed as exc:
            if self.on_result is not None:
                self.on_result(exc.result)
            raise
        if self.on_result is not None:
            self.on_result(run)
        return run

    def spec(self, game: str) -> GameSpec:
        specs = discover_games(self.folders, self.session.registries.games)
        if game not in specs:
            raise ConfigError(f"unknown game {game!r}; known games: {', '.join(sorted(specs))}", field="game")
        return specs[game]

    def __call__(self, game: str, players: Sequence[str | PlayerModel | Any] | str | PlayerModel | None = None, *,
                 experiment: str | Sequence[str] | None = None, max_episodes: int | None = None,
                 episodes: Sequence[int] | None = None) -> GamePlay:
        spec = self.spec(game)
        if players is None:
            players = [self.session.models[0]]
        elif isinstance(players, (str, PlayerModel)) or callable(players):
            players = [players]
        names = [e["name"] for e in spec.load_instances()["experiments"]]
        wanted = names if experiment is None else [experiment] if isinstance(experiment, str) else list(experiment)
        play = GamePlay()
        for name in wanted:
            play.runs.append(self._run(spec, name, list(players), max_episodes, episodes))
        return play
