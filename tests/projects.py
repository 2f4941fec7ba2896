"""Throw-away pytester projects: a scripted model registered in prod_env/, importable by workers."""

from __future__ import annotations

import os

import pytest


def served_deployment(pytester: pytest.Pytester, name: str, base_url: str) -> None:
    """``prod_env/`` naming one OpenAI-compatible chat deployment ``name`` (model ``name`` too) at ``base_url``."""
    (pytester.path / "prod_env").mkdir(exist_ok=True)
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(
        f"model_deployments:\n  - name: {name}\n    model_name: {name}\n    client_spec:\n"
        f"      class_name: pytest_llmeval.clients.OpenAICompatibleClient\n"
        f"      args: {{base_url: \"{base_url}\", model: {name}, api: chat}}\n")


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
