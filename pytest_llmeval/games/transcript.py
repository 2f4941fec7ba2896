"""A readable ``transcript.html`` per episode, from ``templates/transcript.html.j2``.

The template is rendered with autoescaping on, so every piece of model or game text is escaped.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from pytest_llmeval.templating import package_environment

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATE = "transcript.html.j2"


def _text(value: Any) -> str:
    """Text as it is, anything else (a parsed move, a score) as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@functools.cache
def _environment() -> Environment:
    """Built once per process and never changed after: a game writes one transcript per episode."""
    return package_environment(__package__ or "pytest_llmeval.games", {"text": _text})


def build_transcript(interactions: dict[str, Any], experiment: dict[str, Any], instance: dict[str, Any],
                     players_folder: str, scores: dict[str, Any] | None = None) -> str:
    return _environment().get_template(TEMPLATE).render(
        interactions=interactions, experiment=experiment, instance=instance, players_folder=players_folder,
        scores=scores)
