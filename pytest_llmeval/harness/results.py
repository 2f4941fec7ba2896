"""lm-eval's answer for one task as our :class:`RunResult`: a document is an instance, each of
its requests a request state, lm-eval's per-document metric values its stats, lm-eval's
aggregates the run's. Metric names are lm-eval's (``acc``; ``exact_match,strict-match`` for a
filter other than ``none``), so gates, baselines and the report use them as lm-eval users write them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.harness.outcome import Exchange, HarnessOutcome, Ledger
from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.run_result import InstanceResult, RunResult
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, TEST_SPLIT, VALID_SPLIT, Instance, Reference, Scenario

NO_FILTER = "none"


def metric_key(metric: str, filter_name: str) -> str:
    """Our stat name for lm-eval's ``metric,filter`` key."""
    return metric if filter_name == NO_FILTER else f"{metric},{filter_name}"


class TaskScenario(Scenario):
    """The lm-eval task, as ``scenario.json`` names it."""

    def __init__(self, task_name: str, description: str) -> None:
        self.task_name = task_name
        self.task_description = description

    def to_json(self) -> dict[str, Any]:
        return {"name": self.task_name, "description": self.task_description, "tags": ["lm_eval"],
                "definition_path": f"lm_eval.tasks:{self.task_name}"}


def eval_split(task: Any) -> str:
    """HELM's name for the split lm-eval scores: its test split when it has one, else validation."""
    if task is None:
        return TEST_SPLIT
    return TEST_SPLIT if task.has_test_docs() else VALID_SPLIT


def _references(task: Any, doc: dict[str, Any]) -> tuple[Reference, ...]:
    """A multiple-choice document's choices with the gold one(s) marked; else its target."""
    try:
        target = task.doc_to_target(doc)
        if task.OUTPUT_TYPE == "multiple_choice":
            choices = task.doc_to_choice(doc)
            gold = set(target) if isinstance(target, list) else {target}
            if all(isinstance(g, str) for g in gold):
                gold = {choices.index(g) for g in gold if g in choices}
            return tuple(Reference(str(c), (CORRECT_TAG,) if i in gold else ()) for i, c in enumerate(choices))
        targets = target if isinstance(target, list) else [target]
        return tuple(Reference(str(t), (CORRECT_TAG,)) for t in targets)
    except Exception:  # a task whose templates need more than the document: no references shown
        return ()


def _input_text(task: Any, doc: dict[str, Any], exchanges: list[Exchange]) -> str:
    try:
        text = task.doc_to_text(doc)
    except Exception:
        text = None
    if isinstance(text, str):
        return text
    return str(exchanges[0].instance.args[0]) if exchanges and exchanges[0].instance is not None else ""


def _documents(ledger: Ledger) -> dict[int, list[Exchange]]:
    """Each document's exchanges, in the order sent."""
    docs: dict[int, list[Exchange]] = {}
    for exchange in ledger.exchanges:
        doc_id = getattr(exchange.instance, "doc_id", None)
        docs.setdefault(int(doc_id) if doc_id is not None else -1, []).append(exchange)
    for exchanges in docs.values():
        exchanges.sort(key=lambda e: getattr(e.instance, "idx", 0))
    return docs


def _instance_stats(samples: list[dict[str, Any]], split: str, scores: dict[int, list[float]]) -> dict[int, list[Stat]]:
    """Per document, lm-eval's metric values under each filter (and, for multiple choice, the
    choice lm-eval's ``acc`` took: the highest log-likelihood of ``scores``)."""
    stats: dict[int, list[Stat]] = {}
    for sample in samples:
        doc_stats = stats.setdefault(int(sample["doc_id"]), [])
        for metric in sample.get("metrics", []):
            value = sample.get(metric)
            if isinstance(value, (bool, int, float)):
                doc_stats.append(Stat(MetricName(metric_key(metric, sample["filter"]), split)).add(float(value)))
    for doc_id, lls in scores.items():
        if lls:
            stats.setdefault(doc_id, []).append(
                Stat(MetricName("predicted_index", split)).add(max(range(len(lls)), key=lambda i: lls[i])))
    return stats


def _choice_scores(samples: list[dict[str, Any]]) -> dict[int, list[float]]:
    """Each document's log-likelihood per choice, as lm-eval's unfiltered answers hold them."""
    scores: dict[int, list[float]] = {}
    for sample in samples:
        if sample["filter"] == NO_FILTER:
            lls = [r[0] if isinstance(r, (list, tuple)) else r for r in sample.get("filtered_resps", [])]
            if lls and all(isinstance(v, (int, float)) for v in lls):
                scores[int(sample["doc_id"])] = [float(v) for v in lls]
    return scores


def _aggregates(outcome: HarnessOutcome, instances: list[InstanceResult], split: str) -> list[Stat]:
    """lm-eval's aggregate of each metric: the pooled per-document values where lm-eval's
    aggregate is their mean (so intervals and significance tests have them), else its value."""
    pooled: dict[str, Stat] = {}
    for instance in instances:
        for stat in instance.stats:
            pooled.setdefault(stat.name.name, Stat(stat.name)).merge(stat)
    count = outcome.sample_count
    stats: list[Stat] = []
    for key, value in outcome.task_metrics.items():
        if "," not in key or "_stderr," in key or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        metric, _, filter_name = key.partition(",")
        name = metric_key(metric, filter_name)
        found = pooled.get(name)
        if found is not None and found.mean is not None and math.isclose(found.mean, float(value), rel_tol=1e-9,
                                                                         abs_tol=1e-12):
            stats.append(found)
        else:
            v = float(value)
            stats.append(Stat(MetricName(name, split), count, v * count, v * v * count, v, v))
    if "predicted_index" in pooled:
        stats.append(pooled["predicted_index"])
    return stats


def build_result(run_spec: RunSpec, task: Any, outcome: HarnessOutcome | None, ledger: Ledger,
                 folder: Path) -> RunResult:
    """The run's result from lm-eval's outcome (None when it failed: the requests sent so far)."""
    split = eval_split(task)
    name = run_spec.harness.task if run_spec.harness is not None else run_spec.name
    description = str(getattr(getattr(task, "config", None), "description", "") or "") if task is not None else ""
    scenario = TaskScenario(name, description)
    multiple_choice = task is not None and getattr(task, "OUTPUT_TYPE", "") == "multiple_choice"
    samples = outcome.samples.get(name, []) if outcome else []
    scores = _choice_scores(samples) if multiple_choice else {}
    per_doc = _instance_stats(samples, split, scores)
    states: list[RequestState] = []
    instances: list[InstanceResult] = []
    fewshot = int(getattr(getattr(task, "config", None), "num_fewshot", 0) or 0) if task is not None else 0
    for doc_id, exchanges in _documents(ledger).items():
        head = exchanges[0].instance
        doc = getattr(head, "doc", {}) or {}
        instance = Instance(input=_input_text(task, doc, exchanges),
                            references=_references(task, doc) if task is not None else (),
                            split=split, id=f"id{doc_id}")
        group = [RequestState(instance=instance, train_trial_index=0, request=e.request, num_train_instances=fewshot,
                              result=e.result, reference_index=getattr(e.instance, "idx", None) if multiple_choice
                              else None, request_mode=e.kind) for e in exchanges]
        states.extend(group)
        instances.append(InstanceResult(group, per_doc.get(doc_id, []), scores.get(doc_id, [])))
    result = RunResult(run_spec, scenario, states, instances, [], folder, 0.0, requests=ledger.requests,
                       cache_hits=ledger.cache_hits, failures=list(ledger.failures))
    if outcome is not None:
        result.stats = _aggregates(outcome, instances, split)
        result.helm_stats = list(result.stats)
        result.harness = outcome
    return result
