"""The episode record, as clemcore 3.7.2's recorders keep it.

``interactions.json`` holds ``meta`` (game, experiment, game_id, run folder, ``clem_version``,
``round_count``, ``completed``), ``player_models`` (``{"0": {"model_spec", "gen_args"}}``),
``players`` and ``turns`` (one list of events per round, each ``{"from", "to", "timestamp",
"action": {"type", "content"}}``) plus the keys a game logs (``Aborted``, ``Request Count`` as a
list per round, ...). Each player that called a model gets ``player_N.requests.json``:
``{"meta": {...}, "calls": [{"round", "call": {"timestamp", "manipulated_prompt_obj",
"raw_response_obj"}}]}``, as clemcore's EventCallRecorder writes it.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pytest_llmeval.games.episode_files import CLEM_LAYOUT_VERSION, requests_file
from pytest_llmeval.games.player_models import HandleModel, PlayerModel, ProgrammaticModel

log = logging.getLogger("pytest_llmeval.games")


def model_info(model: PlayerModel) -> dict[str, Any]:
    """One entry of clemcore's ``player_models``: the model's spec and its generation arguments
    (never a client's arguments: they may hold credentials)."""
    spec: dict[str, Any] = {"model_name": model.name}
    gen_args: dict[str, Any] = {"temperature": model.temperature}
    if isinstance(model, HandleModel):
        deployment = model.handle.deployment
        spec.update(backend="pytest_llmeval", model_id=deployment.model_name,
                    client=deployment.client_spec.class_name)
        gen_args["max_tokens"] = model.max_tokens
    else:
        spec["backend"] = "programmatic" if isinstance(model, ProgrammaticModel) else "scripted"
    return {"model_spec": spec, "gen_args": gen_args}


def player_model_infos(models: Sequence[PlayerModel]) -> dict[str, Any]:
    """clemcore's ``Model.to_infos``: the run's models, as given, by position."""
    return {str(i): model_info(m) for i, m in enumerate(models)}


class GameRecorder:
    """Collects events grouped by round; round 0 is open from the start (pre-game events land there)."""

    def __init__(self, game_name: str, experiment_name: str = "", game_id: Any = None, results_folder: str = "",
                 player_models: dict[str, Any] | None = None) -> None:
        self.game_name = game_name
        self.interactions: dict[str, Any] = {
            "meta": {"game_name": game_name, "experiment_name": experiment_name, "game_id": game_id,
                     "results_folder": results_folder, "clem_version": CLEM_LAYOUT_VERSION,
                     "round_count": None, "completed": None, "framework": "pytest-llmeval"},
            "player_models": player_models or {},
            "players": OrderedDict(GM={"game_role": "Game Master", "model_name": "programmatic"}),
            "turns": [[]],
        }
        #: per player name, its calls as ``player_N.requests.json`` holds them
        self.player_requests: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # every model call, in order, of all players

    def set_run(self, results_folder: str, player_models: dict[str, Any]) -> None:
        """The run this episode belongs to: its folder name and its models' infos."""
        self.interactions["meta"]["results_folder"] = results_folder
        self.interactions["player_models"] = player_models

    def set_game_id(self, game_id: Any) -> None:
        self.interactions["meta"]["game_id"] = game_id
        for record in self.player_requests.values():
            record["meta"]["game_id"] = game_id

    @property
    def current_turn(self) -> int:
        return len(self.interactions["turns"]) - 1

    def request_files(self) -> dict[str, dict[str, Any]]:
        """File name -> content, for the players that called a model (clemcore skips the others)."""
        return {requests_file(name): record for name, record in self.player_requests.items() if record["calls"]}

    def log_next_turn(self) -> None:
        self.interactions["turns"].append([])
        rounds = len(self.interactions["turns"])
        self.interactions["meta"]["round_count"] = rounds
        for record in self.player_requests.values():
            record["meta"]["round_count"] = rounds

    def log_key(self, key: str, value: Any) -> None:
        self.interactions[key] = value

    def log_player(self, name: str, game_role: str, model_name: str) -> None:
        self.interactions["players"][name] = {"game_role": game_role, "model_name": model_name}
        meta = self.interactions["meta"]
        self.player_requests[name] = {
            "meta": {"game_name": self.game_name, "experiment_name": meta["experiment_name"],
                     "game_id": meta["game_id"], "player_name": name, "game_role": game_role,
                     "model_name": model_name, "round_count": None, "completed": None},
            "calls": [],
        }

    def log_event(self, from_: str, to: str, action: dict[str, Any], call: tuple[Any, Any] | None = None) -> None:
        """Record one event; ``call`` is ``(prompt sent, raw response)`` for a model call by ``from_``."""
        timestamp = datetime.now().isoformat()
        self.interactions["turns"][-1].append(
            {"from": from_, "to": to, "timestamp": timestamp, "action": copy.deepcopy(action)})
        log.debug("%s: %s (%s -> %s)", self.game_name, action.get("type"), from_, to)
        if call is not None:
            record = {"timestamp": timestamp, "manipulated_prompt_obj": copy.deepcopy(call[0]),
                      "raw_response_obj": copy.deepcopy(call[1])}
            self.requests.append(record)
            if from_ in self.player_requests:
                self.player_requests[from_]["calls"].append({"round": self.current_turn, "call": record})

    def log_game_end(self) -> None:
        """The game master ended the episode itself (not an exception): round count and ``completed``."""
        rounds = len(self.interactions["turns"])
        for meta in (self.interactions["meta"], *(r["meta"] for r in self.player_requests.values())):
            meta["round_count"] = rounds
            meta["completed"] = True
