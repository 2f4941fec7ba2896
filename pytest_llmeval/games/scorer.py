"""Episode scoring from the records alone, as clembench's ``GameScorer`` does it.

``scores.json`` is ``{"turn scores": {turn: {metric: value}}, "episode scores": {metric: value}}``
(the key clembench's games write). The request counts come as one entry per round (clemcore's
current records) or as totals (clembench's legacy games log those). Main Score is NaN for an
aborted episode, so it drops out of the quality score (the file holds ``null``).
"""

from __future__ import annotations

import math
from typing import Any

from pytest_llmeval.games.metrics import (
    BENCH_SCORE,
    METRIC_ABORTED,
    METRIC_LOSE,
    METRIC_REQUEST_COUNT,
    METRIC_REQUEST_COUNT_PARSED,
    METRIC_REQUEST_COUNT_VIOLATED,
    METRIC_REQUEST_SUCCESS,
    METRIC_SUCCESS,
)


def total(count: Any) -> Any:
    """An episode's count from per-round counts (or a total as it is)."""
    return sum(count) if isinstance(count, list) else count


class GameScorer:
    """Override :meth:`log_main_score` (and :meth:`score_turns` for turn-level metrics)."""

    def __init__(self, game_name: str, experiment: dict[str, Any], game_instance: dict[str, Any]) -> None:
        self.game_name = game_name
        self.experiment = experiment
        self.game_instance = game_instance
        self.scores: dict[str, Any] = {"turn scores": {}, "episode scores": {}}

    def log_turn_score(self, turn_idx: int, name: str, value: Any) -> None:
        self.scores["turn scores"].setdefault(turn_idx, {})[name] = value

    def log_episode_score(self, name: str, value: Any) -> None:
        self.scores["episode scores"][name] = value

    def compute_scores(self, interactions: dict[str, Any]) -> dict[str, Any]:
        for key in ("meta", "player_models", "players"):
            if key in interactions:
                self.scores[key] = interactions[key]
        self.score_turns(interactions)
        self.score_game(interactions)
        return self.scores

    def score_turns(self, interactions: dict[str, Any]) -> None:
        for metric in (METRIC_REQUEST_COUNT, METRIC_REQUEST_COUNT_PARSED, METRIC_REQUEST_COUNT_VIOLATED):
            counts = interactions.get(metric)
            for turn_idx, value in enumerate(counts if isinstance(counts, list) else []):
                self.log_turn_score(turn_idx, metric, value)

    def score_game(self, interactions: dict[str, Any]) -> None:
        self.score_game_end(interactions)
        self.score_requests(interactions)
        self.log_main_score(interactions)

    def score_game_end(self, interactions: dict[str, Any]) -> None:
        aborted = int(interactions[METRIC_ABORTED])
        lose = int(interactions[METRIC_LOSE]) if not aborted else 0
        self.log_episode_score(METRIC_ABORTED, aborted)
        self.log_episode_score(METRIC_LOSE, lose)
        self.log_episode_score(METRIC_SUCCESS, 1 - lose if not aborted else 0)

    def score_requests(self, interactions: dict[str, Any]) -> None:
        requests = total(interactions[METRIC_REQUEST_COUNT])
        parsed = total(interactions[METRIC_REQUEST_COUNT_PARSED])
        self.log_episode_score(METRIC_REQUEST_COUNT, requests)
        self.log_episode_score(METRIC_REQUEST_COUNT_PARSED, parsed)
        self.log_episode_score(METRIC_REQUEST_COUNT_VIOLATED, total(interactions[METRIC_REQUEST_COUNT_VIOLATED]))
        # clembench divides unguarded; an episode aborted before its first request has no ratio.
        self.log_episode_score(METRIC_REQUEST_SUCCESS, parsed / requests if requests else math.nan)

    def log_main_score(self, interactions: dict[str, Any]) -> None:
        """Default: 100 for a success, 0 for a loss, NaN when aborted."""
        if interactions[METRIC_ABORTED]:
            self.log_episode_score(BENCH_SCORE, math.nan)
        else:
            self.log_episode_score(BENCH_SCORE, 100 if interactions[METRIC_SUCCESS] else 0)
