"""JSON Schemas for games files (``games*.yaml``) and clembench's ``clemgame.json``.

``clemgame.json`` keys are those clembench's own games carry (``main_game``, ``image``,
``languages``, ``benchmark``, ``regression``, ``roles``) plus the ones this plugin reads.
"""

from __future__ import annotations

from typing import Any

_AT_LEAST_ONE = {"type": "integer", "minimum": 1, "errorMessage": "must be a whole number of at least 1"}
_STRING = {"type": "string", "errorMessage": "must be a string"}

GAME_ENTRY: dict[str, Any] = {
    "type": ["string", "object"],
    "errorMessage": "needs a 'game' name such as 'taboo' (or a 'benchmark' version such as '2.0')",
    "if": {"type": "object", "required": ["benchmark"]}, "else": {"required": ["game"]},
    "properties": {
        "game": {"type": "string", "minLength": 1, "errorMessage": "needs a 'game' name such as 'taboo'"},
        # clemcore's selector {'benchmark': ['2.0']}: every game spec listing one of these versions
        "benchmark": {"type": ["string", "array"], "items": {"type": "string"}, "minItems": 1,
                      "errorMessage": "must be a benchmark version such as '2.0' or a list of them"},
        "experiments": {"type": ["string", "array", "null"], "items": {"type": "string"},
                        "errorMessage": "must be a list of experiment names"},
        "gates": {"type": ["string", "array", "null"], "items": {"type": ["string", "number"]},
                  "errorMessage": "must be a gate such as 'played >= 0.5' or a list of them"},
        "max_episodes": {**_AT_LEAST_ONE, "type": ["integer", "null"]},
        # episodes played at a time (--llmeval-parallel-episodes overrides it)
        "parallel_episodes": {"anyOf": [{"type": "integer", "minimum": 1}, {"enum": ["auto", "off"]}],
                              "errorMessage": "must be a whole number of at least 1, 'auto' or 'off'"},
        # clem run's -i: an instances file name in the game's in/ folder, or a path to one
        "instances": {"type": "string", "minLength": 1,
                      "errorMessage": "must be an instances file name such as 'instances_v2.0_en' or a path"},
    },
    "warnUnknown": True,
}

# Without 'games', a file plays every game its 'game_dirs' hold.
GAMES_FILE: dict[str, Any] = {
    "type": "object",
    "errorMessage": "must be a mapping with a 'games' list (or 'game_dirs')",
    "if": {"type": "object", "required": ["game_dirs"]}, "else": {"required": ["games"]},
    "properties": {
        "games": {"type": "array", "items": GAME_ENTRY, "errorMessage": "must be a list of games"},
        "game_dirs": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1},
                      "errorMessage": "must be a list of folders"},
    },
    "warnUnknown": True,
}

GAME_SPEC: dict[str, Any] = {
    "type": "object",
    "errorMessage": "needs a 'game_name' string",
    "required": ["game_name", "master"],
    "properties": {
        "game_name": {"type": "string", "minLength": 1, "errorMessage": "needs a 'game_name' string"},
        "master": {"type": "string", "minLength": 1,
                   "errorMessage": "needs 'master', the class name of the game master in master.py"},
        "players": {"type": ["integer", "string"], "minimum": 1,
                    "errorMessage": "must be a number of players or 'one'/'two'"},
        "scorer": _STRING, "instances": _STRING, "description": _STRING,
        "max_tokens": _AT_LEAST_ONE, "max_requests": _AT_LEAST_ONE,
        "main_game": {}, "image": {}, "languages": {}, "benchmark": {}, "regression": {}, "roles": {},
    },
    "warnUnknown": True,
}

# A clemgame.json holds one spec or a list of them; the reader checks both as a list.
GAME_SPECS: dict[str, Any] = {"type": "array", "items": GAME_SPEC}

# A clembench game's own entry (no ``master``): clemcore reads it as a free namespace, needing
# only these keys; every other key is the game's own and is passed on unchanged.
CLEM_GAME_SPEC: dict[str, Any] = {
    "type": "object",
    "errorMessage": "needs a 'game_name' string",
    "required": ["game_name", "players"],
    "properties": {
        "game_name": {"type": "string", "minLength": 1, "errorMessage": "needs a 'game_name' string"},
        "players": {"type": ["integer", "string"], "minimum": 1,
                    "errorMessage": "needs 'players', a number of players or 'one'/'two'"},
        "instances": _STRING, "description": _STRING,
        "benchmark": {"type": ["array", "string"], "items": {"type": "string"},
                      "errorMessage": "must be a list of benchmark versions such as '2.0'"},
    },
}
