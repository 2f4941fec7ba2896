"""Our player models as clemcore's ``Model``: what a clembench game master calls for a reply.

The requests go through our clients (cache, retries, credentials, context-window check); the
reply comes back as clemcore's triple (prompt sent, raw response, cleaned text) with the
``clem_player`` metadata and the alternating-roles clean-up clemcore's own backends apply.
"""

from __future__ import annotations

from typing import Any

from clemcore.backends import Model, ModelSpec
from clemcore.backends.utils import ContextExceededError, augment_response_object, ensure_messages_format

from pytest_llmeval.games.episode_files import folder_name
from pytest_llmeval.games.game_window import ContextOverflowError
from pytest_llmeval.games.player_models import PlayerModel

#: clemcore's ``clem run`` defaults (``-t 0.0 -l 300``)
DEFAULT_GEN_ARGS = {"temperature": 0.0, "max_tokens": 300}


class BridgeModel(Model):
    """A clemcore ``Model`` whose replies come from one of our :class:`PlayerModel` objects."""

    def __init__(self, player: PlayerModel, spec: dict[str, Any] | None = None) -> None:
        fields = {"model_name": folder_name(player.name), "backend": "pytest_llmeval", **(spec or {})}
        super().__init__(ModelSpec.from_dict(fields))
        self.player = player
        self.set_gen_args(temperature=player.temperature,
                          max_tokens=getattr(player, "max_tokens", DEFAULT_GEN_ARGS["max_tokens"]))

    @augment_response_object
    @ensure_messages_format
    def generate_response(self, messages: list[dict[str, Any]]) -> tuple[Any, Any, str]:
        try:
            reply = self.player.generate(messages)
        except ContextOverflowError as exc:  # clemcore's own name for it, which game code may catch
            raise ContextExceededError(f"Context token limit for {self.name} exceeded",
                                       tokens_used=exc.prompt_tokens + exc.max_tokens,
                                       tokens_left=exc.window - exc.prompt_tokens - exc.max_tokens,
                                       context_size=exc.window) from exc
        response = reply.response if isinstance(reply.response, dict) else {"response": reply.response}
        return reply.prompt, dict(response), reply.text

    def reset(self) -> None:
        self.player.reset()
