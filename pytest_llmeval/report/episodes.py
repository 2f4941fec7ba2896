"""Game episodes for the report, from the games' results of this session.

Each game run's result (``games/episode_runner.py``) holds its played episodes; the report shows
each one's turns and scores exactly as its records (clemcore's layout) hold them, its folder's last
four parts naming ``RUN/GAME/EXPERIMENT/instance_GAMEID``. Only this session's episodes are
shown, since only this session's results are handed over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.games.episode_files import dumps

if TYPE_CHECKING:
    from pytest_llmeval.games.episode_runner import Episode


def _turns(interactions: Any) -> list[list[dict[str, Any]]]:
    turns = interactions.get("turns") if isinstance(interactions, dict) else None
    if not isinstance(turns, list):
        return []
    cleaned = []
    for turn in turns:
        events = []
        for event in turn if isinstance(turn, list) else []:
            if not isinstance(event, dict):
                continue
            action: dict[str, Any] = event["action"] if isinstance(event.get("action"), dict) else {}
            content = action.get("content", "")
            events.append({"from": str(event.get("from", "")), "to": str(event.get("to", "")),
                           "type": str(action.get("type", "")),
                           "content": content if isinstance(content, str) else json.dumps(content)})
        cleaned.append(events)
    return cleaned


def _as_written(value: Any) -> Any:
    """The value as its record file holds it (``games/episode_files.py`` writes strict JSON, NaN
    as null and ``str`` for anything else), so the report shows exactly what the records say."""
    return json.loads(dumps(value))


def episode_view(episode: Episode) -> dict[str, Any]:
    """What the report shows of one played episode: its folder, players, scores and turns."""
    interactions: Any = _as_written(episode.interactions)
    scores: Any = _as_written(episode.scores)
    players, game, experiment, name = (("",) * 4 + episode.directory.parts)[-4:]
    episode_scores = scores.get("episode scores", {}) if isinstance(scores, dict) else {}
    players_map = interactions.get("players", {}) if isinstance(interactions, dict) else {}
    return {
        "path": str(episode.directory), "players": players, "game": game, "experiment": experiment,
        "episode": name,
        "roles": {str(k): str(v) for k, v in players_map.items()} if isinstance(players_map, dict) else {},
        "scores": {str(k): v for k, v in episode_scores.items()} if isinstance(episode_scores, dict) else {},
        "turns": _turns(interactions),
    }


def shown_episodes(views: Iterable[dict[str, Any]], limit: int = 2000) -> list[dict[str, Any]]:
    """The episodes of this session in the order of their folders, at most ``limit``."""
    return sorted(views, key=lambda view: Path(view["path"]))[:limit]
