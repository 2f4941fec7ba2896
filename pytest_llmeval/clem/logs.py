"""clemcore's log while a game plays: its messages go to ``clembench.log`` in the results folder
(where ``clem run`` users look for them), and the episode failures it logs are kept for the report.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG_FILE = "clembench.log"


class EpisodeFailures(logging.Handler):
    """The exceptions clemcore's runners log and play on after ("Exception for instance 3 (but
    continue)"), by game id, so a failed episode is reported with its cause."""

    PATTERN = re.compile(r"Exception for instance (\S+) \(but continue\)")

    def __init__(self, path: Path) -> None:
        super().__init__(logging.ERROR)
        self.path = path
        self.by_game_id: dict[str, BaseException] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = self.PATTERN.search(record.getMessage())
        if found and record.exc_info and record.exc_info[1] is not None:
            self.by_game_id.setdefault(found.group(1), record.exc_info[1])


@contextmanager
def clembench_log(folder: Path) -> Iterator[EpisodeFailures]:
    """clemcore's records of the block (INFO and up) appended to ``folder/clembench.log``; the
    yielded handler collects the episode failures clemcore logged."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    failures = EpisodeFailures(path)
    logger = logging.getLogger("clemcore")
    level = logger.level
    logger.addHandler(handler)
    logger.addHandler(failures)
    logger.setLevel(logging.INFO)
    try:
        yield failures
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(failures)
        logger.setLevel(level)
        handler.close()
