"""Throw-away pytester projects: a scripted model registered in prod_env/, importable by workers."""

from __future__ import annotations

import os

import pytest


def make_importable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the project on sys.path here and, through PYTHONPATH, in xdist workers."""
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(pytester.path),
                                                                    os.environ.get("PYTHONPATH")])))


def scripted_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, model_source: str,
                     deployments: str) -> pytest.Pytester:
    """A project whose ``scripted_model`` module is served by the deployments in ``prod_env/``."""
    pytester.makepyfile(scripted_model=model_source)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(deployments)
    make_importable(pytester, monkeypatch)
    return pytester


LETTER_MODEL = '''
class LetterModel:
    def generate(self, requests):
        return [" " + "ABCD"[len(r.prompt) % 4] for r in requests]
'''
"""A scripted model answering a letter picked by the prompt's length: deterministic, no weights."""

LETTER_DEPLOYMENTS = ("model_deployments:\n  - {name: scripted/letters, model_name: scripted/letters, "
                      "client_spec: {class_name: 'scripted_model:LetterModel'}}\n")


def letters_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project serving :data:`LETTER_MODEL` as ``scripted/letters``."""
    return scripted_project(pytester, monkeypatch, LETTER_MODEL, LETTER_DEPLOYMENTS)
