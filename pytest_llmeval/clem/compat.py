"""Four narrow fixes that let clembench's games (at a717f23) run on today's clemcore and NumPy,
applied only while a game plays and undone after.

- clemcore 3.7's ``GameMaster.state`` setter copies the base ``GameState`` fields onto a state
  a game assigns, reading them from the new state first; clembench's wordle games still assign
  their own dataclass without those fields, so every wordle episode fails at setup under
  ``clem run`` ("'WordleGameState' object has no attribute 'outcome'"). The setter here does the
  same copy but treats a missing field like an unset one.
- clemcore 3.7 registers the episode's recorders after the game's ``_on_setup``, so what a game
  logs there is lost; adventuregame logs its ``adventure_info`` there, and its scorer then fails
  on every episode ("KeyError: 'adventure_info'"). Here keys logged before any recorder is
  registered are handed to each recorder as it registers, as the recorders of clemcore 3.6 saw
  them.
- clemcore 3.5 moved the start of round counting in the (legacy) ``DialogueGameMaster``:
  ``current_round`` is -1 during ``_on_before_game`` and 1 is added after it. The games on that
  master were written for round 0 from the start (hellogame tests ``current_round == 0`` there,
  wordle counts its first attempt from it, privateshared probes round ``str(current_round)``
  and then moves to round 1 itself, failing every episode with "KeyError: '-1'"). Here
  ``before_game`` starts round 0 before ``_on_before_game`` and keeps a round the game set
  there, as clemcore 3.4 did; games that do not touch the round in ``_on_before_game`` (taboo,
  referencegame) play exactly as before.
- NumPy 2 removed ``numpy.NaN``, which textmapworld's scorers use; it is the same value as
  ``numpy.nan``.

Nothing else of clemcore or the games is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy
from clemcore.clemgame.events import GameEventSource
from clemcore.clemgame.legacy.master import DialogueGameMaster as LegacyDialogueGameMaster
from clemcore.clemgame.master import GameMaster

_MISSING = object()
_EARLY = "_llmeval_early_keys"


def _log_key(self: Any, key: str, value: Any) -> None:
    if not self._loggers:
        self.__dict__.setdefault(_EARLY, []).append((key, value))
    _ORIGINAL_LOG_KEY(self, key, value)


def _register(self: Any, logger: Any) -> None:
    _ORIGINAL_REGISTER(self, logger)
    for key, value in self.__dict__.get(_EARLY, ()):
        logger.log_key(key, value)


def _before_game(self: Any) -> None:
    self.current_round = 0
    self._on_before_game()
    self.state.current_turn = 0
    self._on_before_round()


_ORIGINAL_BEFORE_GAME = LegacyDialogueGameMaster.before_game
_ORIGINAL_LOG_KEY = GameEventSource.log_key
_ORIGINAL_REGISTER = GameEventSource.register


def _set_state(self: Any, new_state: Any) -> None:
    if self._state is not None:
        for name in self._GAME_STATE_FIELDS:
            if getattr(new_state, name, None) is None:
                setattr(new_state, name, getattr(self._state, name))
    self._state = new_state


@contextmanager
def legacy_games() -> Iterator[None]:
    """Within the block, clembench's not-yet-migrated games play as they did on clemcore 3.6."""
    original = GameMaster.__dict__["state"]
    had_nan = numpy.__dict__.get("NaN", _MISSING)
    GameMaster.state = property(original.fget, _set_state)
    GameEventSource.log_key = _log_key
    GameEventSource.register = _register
    LegacyDialogueGameMaster.before_game = _before_game
    if had_nan is _MISSING:
        vars(numpy)["NaN"] = numpy.nan
    try:
        yield
    finally:
        GameMaster.state = original
        GameEventSource.log_key = _ORIGINAL_LOG_KEY
        GameEventSource.register = _ORIGINAL_REGISTER
        LegacyDialogueGameMaster.before_game = _ORIGINAL_BEFORE_GAME
        if had_nan is _MISSING:
            del vars(numpy)["NaN"]
