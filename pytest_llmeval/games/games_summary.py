"""The games' part of the terminal summary and ``results/results.json`` (strict JSON: a quality
score no episode has is ``null``): % Played, quality, clemscore, per run folder name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.games.clemscore import EpisodeScore, GameTable, compute_table
from pytest_llmeval.games.episode_files import write_json


def episode_scores(terminalreporter: Any) -> list[EpisodeScore]:
    """Episode scores of every game item of this session (xdist ships them in the reports)."""
    scores = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call":
                continue
            game = dict(getattr(report, "user_properties", [])).get("llmeval_game")
            if not isinstance(game, dict):
                continue
            for index, aborted, main in game["episodes"]:  # index: the instance's position in its experiment
                scores.append(EpisodeScore(game["game"], game["players"], game["experiment"], str(index),
                                           int(aborted), math.nan if main is None else float(main)))
    return scores


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def format_games(table: GameTable) -> list[str]:
    lines = []
    for players, games in table.games.items():
        averages = table.averages[players]
        lines.append(f"{players}: clemscore {_fmt(averages['clemscore'])} (average % played "
                     f"{_fmt(averages['Average % Played'])}, average quality score "
                     f"{_fmt(averages['Average Quality Score'])})")
        width = max(len(g) for g in games)
        for game, row in games.items():
            lines.append(f"  {game.ljust(width)}  % played {_fmt(row['% Played']):>6}  quality score "
                         f"{_fmt(row['Quality Score']):>6}  episodes {int(row['episodes'])}")
    return lines


def results_json(table: GameTable) -> dict[str, Any]:
    return {players: {"clemscore": table.averages[players]["clemscore"], **table.averages[players],
                      "games": table.games[players]} for players in table.games}


def write_games_summary(terminalreporter: Any, config: pytest.Config) -> None:
    scores = episode_scores(terminalreporter)
    if not scores:
        return
    table = compute_table(scores)
    terminalreporter.section("llmeval games")
    for line in format_games(table):
        terminalreporter.write_line(line)
    from pytest_llmeval.plugin import get_session

    target = Path(get_session(config).settings.output_path) / "results" / "results.json"
    write_json(target, results_json(table))
    terminalreporter.write_line(f"game records and results.json: {target.parent}")
