"""Adapters end to end through pytest: separate multiple choice, max_prob and prompt-token stats,
each run serially and with ``-n 2``; the stats are recomputed from ``scenario_state.json``."""

from __future__ import annotations

import json
import math
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.projects import make_importable

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
SEPARATE = "mmlu:subject=anatomy,method=multiple_choice_separate_original"

SCRIPTED_MODELS = '''
"""Scripted models: a scorer that echoes prompts word by word with made-up log-probabilities,
a letter model that also reports a log-probability, and a text-only model."""
import re

from pytest_llmeval import GeneratedOutput, RequestResult, Token


def _logprob(word):
    return -float(sum(map(ord, word.strip())) % 7 + 1) / 2


class Scorer:
    def generate(self, requests):
        results = []
        for r in requests:
            if r.echo_prompt:
                words = re.findall(r"\\s*\\S+", r.prompt)
                tokens = [Token(w, 0.0 if i == 0 else _logprob(w)) for i, w in enumerate(words)]
                completion = GeneratedOutput(r.prompt, sum(t.logprob for t in tokens), tokens)
            else:
                letter = " " + "ABCD"[len(r.prompt) % 4]
                completion = GeneratedOutput(letter, -0.25, [Token(letter, -0.25)])
            results.append(RequestResult(success=True, completions=[completion]))
        return results


class TextOnly:
    def generate(self, requests):
        return [" A" for _ in requests]
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/scorer
    model_name: scripted/scorer
    client_spec: {class_name: "scripted_models:Scorer"}
  - name: scripted/text
    model_name: scripted/text
    client_spec: {class_name: "scripted_models:TextOnly"}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(scripted_models=SCRIPTED_MODELS)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    make_importable(pytester, monkeypatch)
    return pytester


def _runs(root: Path) -> dict[str, Path]:
    return {p.name: p for p in (root / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir()}


def _stats(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["name"]["name"], s["name"]["split"]): s for s in json.loads((run / "stats.json").read_text())
            if "perturbation" not in s["name"]}


def _option_score(state: dict[str, Any]) -> float:
    """HELM's option score: the echoed log-probabilities of the tokens that cover the option at the
    prompt's end, per token."""
    option = state["instance"]["references"][state["reference_index"]]["output"]["text"]
    tokens = state["result"]["completions"][0]["tokens"]
    text = "".join(t["text"] for t in tokens)
    start = text.rindex(option)
    total, count, offset = 0.0, 0, 0
    for token in tokens:
        if offset + len(token["text"]) > start:
            total += token["logprob"]
            count += 1
        offset += len(token["text"])
    return total / count


def _check_separate(run: Path) -> dict[str, list[float]]:
    """Recompute exact_match, predicted_index and max_prob per split from scenario_state.json."""
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    by_instance: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for state in states:
        assert state["request"]["echo_prompt"] and state["request"]["max_tokens"] == 0
        assert state["request_mode"] == "original"
        by_instance[state["instance"]["id"]].append(state)
    expected: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for group in by_instance.values():
        group.sort(key=lambda s: s["reference_index"])
        assert [s["reference_index"] for s in group] == list(range(len(group[0]["instance"]["references"])))
        scores = [_option_score(s) for s in group]
        best = max(range(len(scores)), key=scores.__getitem__)
        tied = [i for i, score in enumerate(scores) if score >= scores[best]]  # as HELM: ties share the credit
        instance = group[0]["instance"]
        split = expected[instance["split"]]
        split["exact_match"].append(sum("correct" in instance["references"][i]["tags"] for i in tied) / len(tied))
        split["predicted_index"].append(best)
        split["max_prob"].append(1 / sum(math.exp(s - scores[best]) for s in scores))
    stats = _stats(run)
    for split, values in expected.items():
        for name, numbers in values.items():
            assert stats[name, split]["count"] == 1, (name, split)  # one train trial
            assert stats[name, split]["mean"] == pytest.approx(sum(numbers) / len(numbers)), (name, split)
        assert stats["num_instances", split]["mean"] == len(values["exact_match"])
    per_instance = json.loads((run / "per_instance_stats.json").read_text())
    assert len(per_instance) == len(by_instance)  # one entry per instance, not per option
    for entry in per_instance:  # the general stats of each option's request, merged, as HELM
        [references] = [s for s in entry["stats"] if s["name"]["name"] == "num_references"]
        assert references["count"] == len(by_instance[entry["instance_id"]])
    return {split: values["exact_match"] for split, values in expected.items()}


@pytest.mark.parametrize("xdist", XDIST)
def test_separate_multiple_choice_through_pytest(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(textwrap.dedent(f"""
        entries:
          - description: {SEPARATE}
            gates: ["exact_match >= 0"]
          - mmlu:subject=anatomy
    """))
    result = project.runpytest("--llmeval-models", "scripted/scorer", "--llmeval-max-eval-instances", "8", *xdist)
    result.assert_outcomes(passed=2)
    runs = _runs(project.path)
    separate = runs[f"{SEPARATE},model=scripted_scorer"]
    found = _check_separate(separate)
    assert sum(len(v) for v in found.values()) == 8
    states = json.loads((separate / "scenario_state.json").read_text())["request_states"]
    assert len(states) == 8 * 4
    assert states[0]["request"]["prompt"].endswith(" " + states[0]["instance"]["references"][0]["output"]["text"])
    # The joint run reports HELM's max_prob from the letter's log-probability.
    joint = _stats(runs["mmlu:subject=anatomy,method=multiple_choice_joint,model=scripted_scorer"])
    assert joint["max_prob", "test"]["mean"] == pytest.approx(math.exp(-0.25))
    assert ("num_prompt_tokens", "test") not in joint  # no tokenizer for this deployment


@pytest.mark.parametrize("xdist", XDIST)
def test_separate_multiple_choice_needs_logprobs(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(f"entries: ['{SEPARATE}', mmlu:subject=anatomy]\n")
    result = project.runpytest("--llmeval-models", "scripted/text", "--llmeval-max-eval-instances", "2", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*scripted/text: separate multiple choice needs the log-probabilities*"])
    runs = _runs(project.path)
    written = runs[f"{SEPARATE},model=scripted_text"]
    assert len(json.loads((written / "scenario_state.json").read_text())["request_states"]) == 8  # nothing lost
    joint = _stats(runs["mmlu:subject=anatomy,method=multiple_choice_joint,model=scripted_text"])
    assert joint["max_prob", "test"]["mean"] == 1.0  # no logprobs: HELM's exp(0) of a text-only completion
    assert ("exact_match", "test") in joint


# --- the real bundled model -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_both_mmlu_methods(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text(textwrap.dedent(f"""
        entries:
          - {SEPARATE},eval_split=test
          - mmlu:subject=anatomy,eval_split=test
    """))
    result = pytester.runpytest("--llmeval-max-eval-instances", "3")
    result.assert_outcomes(passed=2)
    runs = _runs(pytester.path)
    separate = runs[f"{SEPARATE},eval_split=test,model=HuggingFaceTB_SmolLM2-135M-Instruct"]
    assert len(_check_separate(separate)["test"]) == 3
    stats = _stats(separate)
    per_instance = json.loads((separate / "per_instance_stats.json").read_text())
    assert [[s["count"] for s in e["stats"] if s["name"]["name"] == "num_prompt_tokens"] for e in per_instance] == [
        [4], [4], [4]]  # one per option, as HELM
    assert stats["num_prompt_tokens", "test"]["count"] == 1  # one train trial
    assert stats["num_output_tokens", "test"]["mean"] == 0  # echoed prompts are not output
    joint_run = runs["mmlu:subject=anatomy,method=multiple_choice_joint,eval_split=test,"
                     "model=HuggingFaceTB_SmolLM2-135M-Instruct"]
    joint = _stats(joint_run)
    states = json.loads((joint_run / "scenario_state.json").read_text())["request_states"]
    probs = [math.exp(s["result"]["completions"][0]["logprob"]) for s in states]
    assert joint["max_prob", "test"]["mean"] == pytest.approx(sum(probs) / len(probs))
    assert all(0 < p <= 1 for p in probs)
    assert joint["num_prompt_tokens", "test"]["mean"] > 300  # five examples and a question
