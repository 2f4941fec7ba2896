"""A user's model function that raises or returns something unusable: one line naming the
deployment through pytest, its traceback only under ``-v``, and the batches already answered
kept in the cache."""

from __future__ import annotations

import textwrap

import pytest

from tests.projects import scripted_project

BROKEN_MODEL = '''
"""Answers " A", or misbehaves as $BROKEN_MODE says; logs each call's size to calls.log."""
import os
from pathlib import Path


def generate(requests):
    with Path(os.environ["BROKEN_LOG_DIR"], "calls.log").open("a") as log:
        log.write(f"{len(requests)}\\n")
    calls = len(Path(os.environ["BROKEN_LOG_DIR"], "calls.log").read_text().split())
    mode = os.environ.get("BROKEN_MODE", "ok")
    if mode == "raise" or (mode == "raise-on-second-call" and calls == 2):
        raise ValueError("boom")
    if mode == "forty-two":
        return [42 for _ in requests]
    if mode == "none":
        return None
    if mode == "dict":
        return [{"answer": "A"} for _ in requests]
    return [" A" for _ in requests]


generate.batch_hint = 2
'''

DEPLOYMENTS = """
model_deployments:
  - name: local/x
    model_name: local/x
    client_spec:
      class_name: scripted_model:generate
"""

EXPECTED = "expected a list with one str or RequestResult per request"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    scripted_project(pytester, monkeypatch, BROKEN_MODEL, DEPLOYMENTS)
    monkeypatch.setenv("BROKEN_LOG_DIR", str(pytester.path))
    (pytester.path / "eval_mmlu.yaml").write_text(textwrap.dedent("""
        entries:
          - mmlu:subject=anatomy
    """))
    return pytester


def _run(project: pytest.Pytester, mode: str, monkeypatch: pytest.MonkeyPatch, *args: str,
         instances: int = 1) -> pytest.RunResult:
    monkeypatch.setenv("BROKEN_MODE", mode)
    return project.runpytest("--llmeval-models", "local/x", "--llmeval-max-eval-instances", str(instances), *args)


@pytest.mark.parametrize(("mode", "message"), [
    ("forty-two", f"local/x: the model function returned [42]; {EXPECTED} (item 0 is int)"),
    ("none", f"local/x: the model function returned None; {EXPECTED}"),
    ("dict", f"local/x: the model function returned [{{'answer': 'A'}}]; {EXPECTED} (item 0 is dict)"),
    ("raise", "local/x: the model function raised ValueError: boom"),
])
def test_a_broken_model_function_fails_its_item_with_one_line(project: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch, mode: str,
                                                              message: str) -> None:
    result = _run(project, mode, monkeypatch)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert f"mmlu:subject=anatomy[local/x]: {message}" in out
    assert "Traceback" not in out and "scripted_model.py" not in out and "INTERNALERROR" not in out
    failure = out.split("= FAILURES =", 1)[1].splitlines()[2:]  # after the item's "____ name ____" line
    body = [line for line in failure[:next(i for i, line in enumerate(failure) if line.startswith(("-", "=")))]]
    assert body == [f"mmlu:subject=anatomy[local/x]: {message}"], body


def test_the_traceback_shows_under_verbose(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(project, "raise", monkeypatch, "-v")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "local/x: the model function raised ValueError: boom" in out
    assert "Traceback (most recent call last)" in out and "scripted_model.py" in out
    assert 'raise ValueError("boom")' in out


def test_answers_before_the_failure_stay_cached(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = _run(project, "raise-on-second-call", monkeypatch, instances=5)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*local/x: the model function raised ValueError: boom*"])
    log = project.path / "calls.log"
    assert log.read_text().split() == ["2", "2"]  # two requests answered, then the raise
    log.unlink()
    _run(project, "ok", monkeypatch, instances=5).assert_outcomes(passed=1)
    assert log.read_text().split() == ["2", "1"]  # only the three requests not answered before
