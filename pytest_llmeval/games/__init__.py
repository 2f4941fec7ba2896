"""Dialogue games (clembench-style) as pytest items: game master, players, records, clemscore.

The modules behind this package are private; the names below are the public API.
"""

from __future__ import annotations

from pytest_llmeval.games.clemscore import EpisodeScore, GameTable, compute_table
from pytest_llmeval.games.episode_runner import Episode, GamePlay, GameRunResult, play_episode, play_experiment
from pytest_llmeval.games.game_spec import GameSpec, discover_games
from pytest_llmeval.games.game_window import ChatTokenCounter, ContextOverflowError
from pytest_llmeval.games.instances import GameInstanceGenerator, sample_episodes
from pytest_llmeval.games.items import GameFixture, GameItem, GamesFile
from pytest_llmeval.games.master import DialogueGameMaster
from pytest_llmeval.games.metrics import (
    BENCH_SCORE,
    METRIC_ABORTED,
    METRIC_LOSE,
    METRIC_PLAYED,
    METRIC_REQUEST_COUNT,
    METRIC_REQUEST_COUNT_PARSED,
    METRIC_REQUEST_COUNT_VIOLATED,
    METRIC_REQUEST_SUCCESS,
    METRIC_SUCCESS,
)
from pytest_llmeval.games.player import Player, ProgrammaticPlayer
from pytest_llmeval.games.player_models import HandleModel, PlayerModel, ProgrammaticModel, Reply, ScriptedModel
from pytest_llmeval.games.recorder import GameRecorder
from pytest_llmeval.games.scorer import GameScorer

__all__ = [
    "BENCH_SCORE",
    "METRIC_ABORTED",
    "METRIC_LOSE",
    "METRIC_PLAYED",
    "METRIC_REQUEST_COUNT",
    "METRIC_REQUEST_COUNT_PARSED",
    "METRIC_REQUEST_COUNT_VIOLATED",
    "METRIC_REQUEST_SUCCESS",
    "METRIC_SUCCESS",
    "ChatTokenCounter",
    "ContextOverflowError",
    "DialogueGameMaster",
    "Episode",
    "EpisodeScore",
    "GameFixture",
    "GameInstanceGenerator",
    "GameItem",
    "GamePlay",
    "GameRecorder",
    "GameRunResult",
    "GameScorer",
    "GameSpec",
    "GameTable",
    "GamesFile",
    "HandleModel",
    "Player",
    "PlayerModel",
    "ProgrammaticModel",
    "ProgrammaticPlayer",
    "Reply",
    "ScriptedModel",
    "compute_table",
    "discover_games",
    "play_episode",
    "play_experiment",
    "sample_episodes",
]
