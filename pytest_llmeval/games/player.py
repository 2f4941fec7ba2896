"""A participant of a dialogue game, as in clembench: a role played by a model or by code."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pytest_llmeval.games.player_models import PlayerModel, ProgrammaticModel, Reply


class Player:
    """Calls its model with the chat so far and returns ``(prompt, response, text)``.

    Subclasses give programmatic behaviour in :meth:`_custom_response`, used when the model
    is a :class:`ProgrammaticModel` (clembench's ``CustomResponseModel``).
    """

    def __init__(self, model: PlayerModel | None = None, game_role: str | None = None) -> None:
        self.model = model if model is not None else ProgrammaticModel()
        self.game_role = game_role or type(self).__name__
        self.descriptor: str = ""  # "Player 1", "Player 2", ... set by the game master

    @property
    def counts_requests(self) -> bool:
        return self.model.counts_requests

    def __call__(self, messages: list[dict[str, str]], turn_idx: int) -> tuple[Any, Any, str]:
        started = datetime.now()
        clock = time.perf_counter()
        if self.model.programmatic:
            text = self._custom_response(messages, turn_idx)
            reply = Reply([dict(m) for m in messages], {}, text)
        else:
            reply = self.model.generate(messages)
        response = reply.response if isinstance(reply.response, dict) else {"response": reply.response}
        response = {**response, "clem_player": {
            "call_start": started.isoformat(),
            "call_duration": f"{time.perf_counter() - clock:.6f}",
            "response": reply.text,
            "model_name": self.model.name,
        }}
        return reply.prompt, response, reply.text

    def _custom_response(self, messages: list[dict[str, str]], turn_idx: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no programmatic behaviour; give it a model")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.descriptor or '?'}, {self.model.name})"


class ProgrammaticPlayer(Player):
    """A player whose replies come from a function ``(messages, turn_idx) -> str``."""

    def __init__(self, function: Callable[[list[dict[str, str]], int], str], game_role: str | None = None) -> None:
        super().__init__(ProgrammaticModel(), game_role)
        self.function = function

    def _custom_response(self, messages: list[dict[str, str]], turn_idx: int) -> str:
        return self.function(messages, turn_idx)
