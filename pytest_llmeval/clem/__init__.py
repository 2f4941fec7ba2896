"""clembench's own games played by clemcore's own code, with pytest-llmeval's clients as the players.

A clembench game folder (``clemgame.json`` without a ``master`` class name, ``master.py`` importing
clemcore) becomes game items like ours; each item plays its episodes with the game's
``GameBenchmark``/``GameMaster``, clemcore's recorders and scorer, and hands the episodes on as a
:class:`~pytest_llmeval.games.GameRunResult`. Needs the ``clembench`` extra (clemcore).
"""

from __future__ import annotations

from pytest_llmeval.clemcore_import import import_clemcore

import_clemcore()  # before any module below imports clemcore: keeps the process's logging as it was

from pytest_llmeval.clem.model import BridgeModel  # noqa: E402
from pytest_llmeval.clem.play import play_clem_experiment  # noqa: E402

__all__ = ["BridgeModel", "import_clemcore", "play_clem_experiment"]
