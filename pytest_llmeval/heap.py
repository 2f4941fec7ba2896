"""A quick exit after a model run.

torch and transformers leave millions of tracked Python objects behind. At shutdown the
interpreter (and pytest's own last ``gc.collect`` calls) walk all of them, which takes about
a second after every model run. Freezing the heap at the end of the session moves those
objects out of the collector's sight; the process is about to end, so nothing is lost.
"""

from __future__ import annotations

import gc
import sys

import pytest

_HEAVY = ("torch", "transformers")


def freeze_for_exit(config: pytest.Config) -> None:
    """Freeze the heap when a model library was loaded and this is pytest's own process.

    Sessions started with plugin objects (``pytest.main(plugins=...)``, pytester's in-process
    runs) are left alone: their process lives on and must keep collecting its garbage.
    """
    if config.invocation_params.plugins:
        return
    if not any(name in sys.modules for name in _HEAVY):
        return
    gc.freeze()
