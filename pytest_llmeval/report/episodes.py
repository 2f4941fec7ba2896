"""Game episodes for the report, read generically from clembench-layout records on disk.

Any folder with an ``interactions.json`` under the output path is an episode; the last four
parts of its path are clembench's ``<players>/<game>/<experiment>/<episode>``. Only episodes
written during this session are shown, so an old results folder does not leak into a report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("pytest_llmeval.report")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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


def find_episodes(roots: list[Path], since: float | None = None, limit: int = 2000) -> list[dict[str, Any]]:
    """Episodes under ``roots`` (newest files first are not needed: sorted by path), at most ``limit``."""
    episodes: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("interactions.json")):
            folder = path.parent.resolve()
            if folder in seen:
                continue
            seen.add(folder)
            try:
                if since is not None and path.stat().st_mtime < since:
                    continue
            except OSError:
                continue
            interactions: Any = _read(path)
            if interactions is None:
                log.warning("skipping unreadable game record %s", path)
                continue
            parts = path.parent.relative_to(root).parts
            players, game, experiment, episode = (("",) * 4 + tuple(parts))[-4:]
            scores: Any = _read(path.parent / "scores.json")
            episode_scores = scores.get("episode scores", {}) if isinstance(scores, dict) else {}
            players_map = interactions.get("players", {}) if isinstance(interactions, dict) else {}
            episodes.append({
                "path": str(path.parent), "players": players, "game": game, "experiment": experiment,
                "episode": episode,
                "roles": {str(k): str(v) for k, v in players_map.items()} if isinstance(players_map, dict) else {},
                "scores": {str(k): v for k, v in episode_scores.items()} if isinstance(episode_scores, dict) else {},
                "turns": _turns(interactions),
            })
            if len(episodes) >= limit:
                return episodes
    return episodes
