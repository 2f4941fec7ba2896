"""Importing clemcore without its logging set-up: ``import clemcore`` runs ``dictConfig`` for
the whole process (the root logger's handlers, pytest's among them, replaced by a
``./clembench.log`` file at INFO, every logger made so far disabled). Inside a pytest session
that would break capture and silence other plugins, so both places that need clemcore (its
backends as a client, its games) import it through here.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

STRAY_LOG = "clembench.log"


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """The process's logging configuration, as it was before the block, after it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {name: logger.disabled for name, logger in logging.root.manager.loggerDict.items()
                if isinstance(logger, logging.Logger)}
    log_file = Path.cwd() / STRAY_LOG
    existed = log_file.exists()
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for name, was_disabled in disabled.items():
            logging.getLogger(name).disabled = was_disabled
        if not existed and log_file.is_file() and log_file.stat().st_size == 0:
            log_file.unlink()


def import_clemcore(module: str = "clemcore") -> ModuleType:
    """``import clemcore`` (or one of its modules), leaving logging as it found it."""
    if "clemcore" in sys.modules:
        return importlib.import_module(module)
    with logging_kept():
        return importlib.import_module(module)
