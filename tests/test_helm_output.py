"""HELM's five per-run files: names, top-level shapes, and the run folder's name."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics import MetricName, Stat, aggregate
from pytest_llmeval.report.helm_output import RUN_FILES, run_dir, write_run
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult
from pytest_llmeval.run_result import InstanceResult, RunResult
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.mmlu import MMLUScenario
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference

DEPLOYMENT = "local/smollm2-135m-instruct"


def _states() -> list[RequestState]:
    states = []
    for n, (split, answer) in enumerate((("valid", " A"), ("test", " B"), ("test", " Z"))):
        instance = Instance(f"question {n}", (Reference("yes", (CORRECT_TAG,)), Reference("no")), split, id=f"id{n}")
        request = Request(model_deployment=DEPLOYMENT, prompt=f"Question: question {n}\nAnswer:", max_tokens=1,
                          stop_sequences=("\n",))
        state = RequestState(instance, 0, request, 5, output_mapping={"A": "yes", "B": "no"})
        state.result = RequestResult(success=True, completions=[GeneratedOutput(answer)], request_time=0.1)
        states.append(state)
    return states


def test_run_dir_replaces_slashes() -> None:
    name = "mmlu:subject=anatomy,method=multiple_choice_joint,model=local/smollm2-135m-instruct"
    path = run_dir(Path("/out"), "v1", name)
    assert path == Path("/out/runs/v1/mmlu:subject=anatomy,method=multiple_choice_joint,"
                        "model=local_smollm2-135m-instruct")
    assert run_dir(Path("/out"), "v1", "x:model=huggingface/org/repo").name == "x:model=huggingface_org_repo"


def test_write_run_files_and_shapes(tmp_path: Path) -> None:
    run_spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), DEPLOYMENT, "HuggingFaceTB/SmolLM2")
    scenario = MMLUScenario("anatomy", DataLocator(mirror=tmp_path / "unused"))  # reads no data
    states = _states()
    per_instance = [[Stat(MetricName("exact_match", s.instance.split)).add(float(s.instance.id == "id0"))]
                    for s in states]
    stats = aggregate(per_instance)
    directory = run_dir(tmp_path, "suite", run_spec.name)
    instances = [InstanceResult([state], instance_stats) for state, instance_stats in zip(states, per_instance)]
    helm_stats = [Stat(MetricName("exact_match", "valid")).add(1.0), Stat(MetricName("exact_match", "test")).add(0.0)]
    write_run(RunResult(run_spec, scenario, states, instances, stats, directory, 0.0, len(states),
                        helm_stats=helm_stats))

    assert sorted(p.name for p in directory.iterdir()) == sorted(RUN_FILES)  # no temporary files left behind
    data = {name: json.loads((directory / name).read_text(encoding="utf-8")) for name in RUN_FILES}

    spec = data["run_spec.json"]
    assert spec["name"] == run_spec.name
    # HELM's class, so helm-run can re-run the file; ours (to rebuild the run here) beside it.
    assert spec["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.mmlu_scenario.MMLUScenario",
                                     "args": {"subject": "anatomy"}}
    assert spec["llmeval"]["scenario_spec"] == {"class_name": "pytest_llmeval.scenarios.mmlu.MMLUScenario",
                                                "args": {"subject": "anatomy"}}
    assert spec["adapter_spec"]["method"] == "multiple_choice_joint"
    assert isinstance(spec["metric_specs"], list) and spec["groups"] == ["mmlu"]

    assert data["scenario.json"]["name"] == "mmlu"
    assert set(data["scenario.json"]) >= {"name", "description", "tags", "definition_path"}

    state = data["scenario_state.json"]
    assert set(state) == {"adapter_spec", "request_states"}
    assert state["adapter_spec"]["model_deployment"] == DEPLOYMENT
    assert state["adapter_spec"]["stop_sequences"] == ["\n"]
    assert len(state["request_states"]) == 3
    first = state["request_states"][0]
    assert first["instance"]["id"] == "id0"
    assert first["instance"]["references"][0] == {"output": {"text": "yes"}, "tags": ["correct"]}
    assert first["train_trial_index"] == 0
    assert first["request"]["prompt"].endswith("Answer:")
    assert first["result"]["completions"][0]["text"] == " A"
    assert first["output_mapping"] == {"A": "yes", "B": "no"}

    per_instance_json = data["per_instance_stats.json"]
    assert isinstance(per_instance_json, list) and len(per_instance_json) == 3
    for entry, source in zip(per_instance_json, states):
        assert set(entry) == {"instance_id", "train_trial_index", "stats"}
        assert entry["instance_id"] == source.instance.id
        assert entry["train_trial_index"] == 0
        assert entry["stats"][0]["name"] == {"name": "exact_match", "split": source.instance.split}

    stats_json = data["stats.json"]
    assert [(s["name"]["name"], s["name"]["split"], s["count"]) for s in stats_json] == [
        ("exact_match", "valid", 1), ("exact_match", "test", 1)]  # the result's HELM stats, not the pooled
    assert set(stats_json[0]) == {"name", "count", "sum", "sum_squared", "min", "max", "mean", "variance", "stddev"}


def test_write_run_overwrites(tmp_path: Path) -> None:
    run_spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), DEPLOYMENT, "m")
    scenario = MMLUScenario("anatomy", DataLocator())
    states = _states()
    write_run(RunResult(run_spec, scenario, states, [InstanceResult([s]) for s in states], [], tmp_path / "run", 0.0))
    write_run(RunResult(run_spec, scenario, [], [], [], tmp_path / "run", 0.0))
    assert json.loads((tmp_path / "run" / "scenario_state.json").read_text())["request_states"] == []
    assert json.loads((tmp_path / "run" / "stats.json").read_text()) == []
