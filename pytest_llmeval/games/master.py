"""The dialogue game master, in the spirit of clembench's ``DialogueGameMaster``.

Players are called in the order they were added, once per turn, each with its own message
history. Every reply is validated and parsed by the game, may be re-prompted, and every step
is logged. The framework ends an episode cleanly as aborted, with the reason logged, when a
prompt no longer fits the model's context window, when a backend fails, or when an episode
makes more requests than ``max_requests`` (a guard against endless re-prompting).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from pytest_llmeval.games.game_window import ContextOverflowError
from pytest_llmeval.games.metrics import (
    METRIC_ABORTED,
    METRIC_LOSE,
    METRIC_REQUEST_COUNT,
    METRIC_REQUEST_COUNT_PARSED,
    METRIC_REQUEST_COUNT_VIOLATED,
    METRIC_SUCCESS,
)
from pytest_llmeval.games.player import Player
from pytest_llmeval.games.player_models import PlayerModel, PlayerModelError
from pytest_llmeval.games.recorder import GameRecorder, player_model_infos

if TYPE_CHECKING:
    from pytest_llmeval.games.game_spec import GameSpec

log = logging.getLogger("pytest_llmeval.games")

#: interactions key naming why the framework aborted an episode
ABORT_REASON_KEY = "Abort Reason"
DEFAULT_MAX_REQUESTS = 100


class DialogueGameMaster:
    """Subclass and implement :meth:`_on_setup` (add players there) and the hooks you need.

    Hooks, as in clembench: ``_on_before_game``, ``_on_before_turn``, ``_validate_player_response``,
    ``_on_parse_response``, ``_after_add_player_response``, ``_should_reprompt``,
    ``_on_before_reprompt``, ``_on_after_turn``, ``_does_game_proceed``, ``_on_after_game``.
    Set ``self.success``, ``self.lose`` or ``self.aborted`` to end the game.
    """

    def __init__(self, game_spec: GameSpec, experiment: dict[str, Any], player_models: list[PlayerModel]) -> None:
        self.game_spec = game_spec
        self.game_name = game_spec.game_name
        self.experiment = experiment
        infos = player_model_infos(player_models)  # the run's models as given, before self-play
        if len(player_models) == 1 and game_spec.players > 1:
            player_models = player_models * game_spec.players  # self-play: one model in every role
        self.player_models = player_models
        self.players_by_names: OrderedDict[str, Player] = OrderedDict()
        self.messages_by_names: dict[str, list[dict[str, str]]] = {}
        self.current_turn = 0
        self.game_instance: dict[str, Any] = {}
        self.recorder = GameRecorder(self.game_name, experiment.get("name", ""), player_models=infos)
        self.success = False
        self.lose = False
        self.aborted = False
        self.abort_reason: str | None = None
        self.max_requests = game_spec.max_requests or DEFAULT_MAX_REQUESTS
        self.request_counts: list[int] = [0]
        self.parsed_request_counts: list[int] = [0]
        self.violated_request_counts: list[int] = [0]
        self._verdict: bool | None = None

    # --- resources ---------------------------------------------------------------------------

    def load_template(self, relative: str) -> str:
        path = self.game_spec.game_path / relative
        return (path if path.suffix else path.with_suffix(".template")).read_text(encoding="utf-8")

    def load_json(self, relative: str) -> Any:
        path = self.game_spec.game_path / relative
        return json.loads((path if path.suffix else path.with_suffix(".json")).read_text(encoding="utf-8"))

    # --- players and messages ------------------------------------------------------------------

    def add_player(self, player: Player) -> None:
        """Players are prompted in the order added and are named ``Player 1``, ``Player 2``, ..."""
        player.descriptor = f"Player {len(self.players_by_names) + 1}"
        self.players_by_names[player.descriptor] = player
        self.messages_by_names[player.descriptor] = []
        self.recorder.log_player(player.descriptor, player.game_role, player.model.name)

    def get_players(self) -> list[Player]:
        return list(self.players_by_names.values())

    def add_message(self, player: Player, utterance: str, role: str) -> None:
        self.messages_by_names[player.descriptor].append({"role": role, "content": utterance})

    def add_user_message(self, player: Player, utterance: str) -> None:
        self.add_message(player, utterance, "user")

    def add_assistant_message(self, player: Player, utterance: str) -> None:
        self.add_message(player, utterance, "assistant")

    # --- logging -----------------------------------------------------------------------------

    def log_event(self, from_: str, to: str, action: dict[str, Any], call: tuple[Any, Any] | None = None) -> None:
        self.recorder.log_event(from_, to, action, call)

    def log_message_to(self, player: Player, message: str) -> None:
        self.log_event("GM", player.descriptor, {"type": "send message", "content": message})

    def log_message_to_self(self, message: str) -> None:
        self.log_event("GM", "GM", {"type": "metadata", "content": message})

    def log_to_self(self, type_: str, value: Any) -> None:
        self.log_event("GM", "GM", {"type": type_, "content": value})

    def log_key(self, key: str, value: Any) -> None:
        self.recorder.log_key(key, value)

    @property
    def interactions(self) -> dict[str, Any]:
        return self.recorder.interactions

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.recorder.requests

    # --- the episode ---------------------------------------------------------------------------

    def setup(self, **game_instance: Any) -> None:
        self.game_instance = game_instance
        self.recorder.set_game_id(game_instance.get("game_id"))
        self._on_setup(**game_instance)

    def play(self) -> None:
        """The turn loop; the framework's own aborts end it cleanly between any two calls."""
        self._on_before_game()
        inner_break = False
        while not inner_break and self._proceed():
            if self.current_turn > 0:
                self.recorder.log_next_turn()
                for counts in (self.request_counts, self.parsed_request_counts, self.violated_request_counts):
                    counts.append(0)
            self._on_before_turn(self.current_turn)
            for player in self.get_players():
                if not self._proceed():
                    inner_break = True
                    break
                self.prompt(player)
                while self.abort_reason is None and self._should_reprompt(player):
                    self._on_before_reprompt(player)
                    self.prompt(player, is_reprompt=True)
            self._on_after_turn(self.current_turn)
            self.current_turn += 1
        self._on_after_game()
        self._log_outcome()

    def _proceed(self) -> bool:
        return self.abort_reason is None and self._does_game_proceed()

    def prompt(self, player: Player, is_reprompt: bool = False) -> None:
        """Send the player its history, log the exchange, then validate, parse and record the reply."""
        if self.abort_reason is not None:
            return
        history = self.messages_by_names[player.descriptor]
        if not history or history[-1]["role"] == "assistant":
            raise RuntimeError(f"{self.game_name}: nothing new to send to {player.descriptor}; add a user message "
                               "before its turn")
        action_type = "send message (reprompt)" if is_reprompt else "send message"
        self.log_event("GM", player.descriptor, {"type": action_type, "content": history[-1]["content"]})
        if player.counts_requests and sum(self.request_counts) >= self.max_requests:
            self.abort(f"more than {self.max_requests} requests in one episode")
            return
        try:
            sent, response, text = player(history, self.current_turn)
        except ContextOverflowError as exc:
            self.abort(exc.reason)
            return
        except PlayerModelError as exc:
            self.abort(f"model error: {exc}")
            return
        call = (sent, response) if player.counts_requests else None
        self.log_event(player.descriptor, "GM", {"type": "get message", "content": text}, call=call)
        self._verdict = None
        valid = self._validate_player_response(player, text)
        if player.counts_requests:
            parsed = valid if self._verdict is None else self._verdict
            self.request_counts[-1] += 1
            (self.parsed_request_counts if parsed else self.violated_request_counts)[-1] += 1
        if valid:
            utterance = self._parse(player, text)
            # The player's own history keeps its reply verbatim, so the model sees the format it used.
            self.add_assistant_message(player, text)
            self._after_add_player_response(player, utterance)

    def count_as_parsed(self, parsed: bool = True) -> None:
        """From ``_validate_player_response``: the reply followed the format even if it breaks a rule
        (or the other way round); by default a valid reply counts as parsed, an invalid one as violated."""
        self._verdict = parsed

    def abort(self, reason: str) -> None:
        """End the episode now as aborted, with the reason in the records."""
        self.aborted = True
        self.abort_reason = reason
        log.info("%s: episode aborted: %s", self.game_name, reason)
        self.log_to_self("error", reason)
        self.log_to_self("invalid format", "abort game")
        self.log_key(ABORT_REASON_KEY, reason)

    def _parse(self, player: Player, utterance: str) -> str:
        parsed, log_action = self._on_parse_response(player, utterance)
        if parsed != utterance and log_action:
            self.log_to_self("parse", parsed)
        return parsed

    def _log_outcome(self) -> None:
        """The standard keys clemcore's scorers read, unless the game logged its own: the outcome,
        and the request counts as one list entry per round (as clemcore's recorder logs them)."""
        if not (self.success or self.aborted):
            self.lose = True  # the game ended without reaching its goal
        defaults = {
            METRIC_ABORTED: int(self.aborted),
            METRIC_LOSE: int(self.lose and not self.aborted),
            METRIC_SUCCESS: int(self.success and not self.aborted),
            METRIC_REQUEST_COUNT: list(self.request_counts),
            METRIC_REQUEST_COUNT_PARSED: list(self.parsed_request_counts),
            METRIC_REQUEST_COUNT_VIOLATED: list(self.violated_request_counts),
        }
        for key, value in defaults.items():
            self.interactions.setdefault(key, value)
        self.recorder.log_game_end()

    # --- hooks -------------------------------------------------------------------------------

    def _on_setup(self, **game_instance: Any) -> None:
        raise NotImplementedError("implement _on_setup and add the players there")

    def _on_before_game(self) -> None:
        """Add the initial prompts to the players' histories here."""

    def _on_before_turn(self, turn_idx: int) -> None:
        """Before the players of a turn are prompted."""

    def _on_after_turn(self, turn_idx: int) -> None:
        """After every player of the turn has answered (or the game ended inside it)."""

    def _on_after_game(self) -> None:
        """Once, after the loop: log game-specific keys for the scorer."""

    def _does_game_proceed(self) -> bool:
        return not (self.success or self.lose or self.aborted)

    def _validate_player_response(self, player: Player, utterance: str) -> bool:
        """False keeps the reply out of the history (and counts it as violated by default)."""
        return True

    def _on_parse_response(self, player: Player, utterance: str) -> tuple[str, bool]:
        """Return the parsed utterance and whether to log a ``parse`` event when it changed."""
        return utterance, True

    def _after_add_player_response(self, player: Player, utterance: str) -> None:
        """Pass the utterance on, e.g. ``self.add_user_message(other_player, utterance)``."""

    def _should_reprompt(self, player: Player) -> bool:
        return False

    def _on_before_reprompt(self, player: Player) -> None:
        """Add the re-prompt to the player's history with :meth:`add_user_message`."""
