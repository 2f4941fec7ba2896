"""A pytester project for the report and gate tests: scripted models registered in prod_env/.

- ``scripted/letters`` answers a letter chosen from the prompt's length (as in test_plugin_e2e);
- ``scripted/oracle`` looks the question up in the MMLU mirror and answers right, except for a
  seeded ``wrong_percent`` of questions (the deployment's client arg, so the cache keeps apart
  the good and the degraded model under one deployment name);
- ``scripted/evil`` answers with markup, to check the report escapes it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.projects import make_importable

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]

SCRIPTED_MODELS = '''
import csv
import os
import re
import zlib
from pathlib import Path


class LetterModel:
    def generate(self, requests):
        return [" " + "ABCD"[len(r.prompt) % 4] for r in requests]


class EvilModel:
    def generate(self, requests):
        return [" <script>window.__pwned = 1</script><b>bold</b>" for r in requests]


class OracleModel:
    """Right on every MMLU question, except a seeded share of them when degraded."""

    def __init__(self, wrong_percent=0):
        self.wrong_percent = int(wrong_percent)
        self.answers = {}

    def lookup(self, subject):
        if subject not in self.answers:
            root = Path(os.environ["LLMEVAL_DATA_DIR"]) / "mmlu"
            answers = self.answers[subject] = {}
            for path in (root / "test" / f"{subject}_test.csv", root / "val" / f"{subject}_val.csv"):
                with path.open(newline="", encoding="utf-8") as handle:
                    for row in csv.reader(handle):
                        answers[(row[0].strip(), *(option.strip() for option in row[1:5]))] = row[5].strip()
        return self.answers[subject]

    def answer(self, prompt):
        subject = prompt.split(" about ", 1)[1].split(".", 1)[0].strip().replace(" ", "_")
        question, _, options = prompt.rsplit("Question: ", 1)[-1].partition("\\nA. ")
        options = options.rsplit("\\nAnswer:", 1)[0]
        texts = re.split(r"\\n[BCD]\\. ", options)  # question and all four options: some questions repeat
        letter = self.lookup(subject).get((question.strip(), *(text.strip() for text in texts)), "A")
        if zlib.crc32(question.encode()) % 100 < self.wrong_percent:
            letter = "ABCD"["ABCD".index(letter) - 1]
        return " " + letter

    def generate(self, requests):
        return [self.answer(r.prompt) for r in requests]
'''


def deployments(wrong_percent: int = 0) -> str:
    return textwrap.dedent(f"""
        model_deployments:
          - name: scripted/letters
            model_name: scripted/letters
            client_spec: {{class_name: "scripted_models:LetterModel"}}
          - name: scripted/oracle
            model_name: scripted/oracle
            client_spec: {{class_name: "scripted_models:OracleModel", args: {{wrong_percent: {wrong_percent}}}}}
          - name: scripted/evil
            model_name: scripted/evil
            client_spec: {{class_name: "scripted_models:EvilModel"}}
    """)


def make_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_models(pytester.path)
    make_importable(pytester, monkeypatch)
    return pytester


def write_models(root: Path, wrong_percent: int = 0) -> None:
    """The scripted models' module and their registry entries, in a project folder."""
    (root / "scripted_models.py").write_text(SCRIPTED_MODELS)
    (root / "prod_env").mkdir(exist_ok=True)
    (root / "prod_env" / "model_deployments.yaml").write_text(deployments(wrong_percent))


def set_deployments(pytester: pytest.Pytester, wrong_percent: int = 0) -> None:
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(deployments(wrong_percent))


def write_evals(pytester: pytest.Pytester, body: str, name: str = "eval_mmlu.yaml") -> None:
    (pytester.path / name).write_text(textwrap.dedent(body))


def summary_of(root: Path, output: str = "benchmark_output", suite: str = "default") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / output / "runs" / suite / "llmeval_summary.json").read_text())
    return data


def stable_runs(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's runs without the fields that differ between two sessions of the same runs."""
    from pytest_llmeval.report.summary import VOLATILE_FIELDS

    runs = []
    for run in summary["runs"]:
        stable = {k: v for k, v in run.items() if k not in VOLATILE_FIELDS}
        stable["stats"] = [s for s in run["stats"] if "runtime" not in s["name"]["name"]]  # wall-clock timings
        runs.append(stable)
    return runs


def stats_json(run_dir: str | Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((Path(run_dir) / "stats.json").read_text())
    return data
