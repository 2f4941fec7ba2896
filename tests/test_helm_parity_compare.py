"""The comparison behind the helm-run parity test, and the data rule both tools read by."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helm_parity import HELDOUT_ROWS, RunFiles, build_mirror, compare_runs, compare_stats, place_for_helm

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def stat(name: str, mean: float, count: int = 1, **name_fields: Any) -> dict[str, Any]:
    return {"name": {"name": name, "split": "test", **name_fields}, "count": count, "sum": mean * count,
            "sum_squared": mean * mean * count, "min": mean, "max": mean, "mean": mean, "variance": 0.0,
            "stddev": 0.0}


def test_equal_within_the_tolerance_and_runtimes_skipped() -> None:
    helm = [stat("exact_match", 0.25), stat("inference_runtime", 3.0)]
    ours = [stat("exact_match", 0.25 + 5e-7), stat("inference_runtime", 1.0)]
    assert compare_stats(helm, ours, "stats.json") == []


def test_a_relative_tolerance_widens_only_where_it_is_given() -> None:
    helm, ours = [stat("logprob", -120.0)], [stat("logprob", -120.0 * (1 + 2e-6))]
    assert compare_stats(helm, ours, "stats.json")  # 2.4e-4 apart: over the 1e-6 default
    assert compare_stats(helm, ours, "stats.json", rel_tolerance=1e-5) == []
    assert compare_stats(helm, [stat("logprob", -120.0 * (1 + 2e-5))], "stats.json", rel_tolerance=1e-5)


def test_each_field_that_differs_is_named_with_both_values() -> None:
    problems = compare_stats([stat("exact_match", 0.25)], [stat("exact_match", 0.5)], "stats.json")
    assert "stats.json: exact_match[split=test] mean: HELM 0.25, ours 0.5" in problems
    assert {p.split("] ")[1].split(":")[0] for p in problems} == {"sum", "sum_squared", "min", "max", "mean"}


def test_missing_and_extra_stats_and_perturbations_are_told_apart() -> None:
    robust = {"perturbation": {"name": "robustness", "robustness": True, "fairness": False, "computed_on": "worst"}}
    problems = compare_stats([stat("exact_match", 1.0), stat("exact_match", 1.0, **robust)],
                             [stat("exact_match", 1.0), stat("num_bytes", 2.0)], "stats.json")
    assert problems == [
        "stats.json: exact_match[split=test, perturbation=robustness/worst] missing (HELM: mean=1.0, count=1)",
        "stats.json: num_bytes[split=test] extra (ours: mean=2.0)",
    ]


def test_a_stat_without_values_must_be_without_values_in_both() -> None:
    empty = {"name": {"name": "training_co2_cost", "split": "test"}, "count": 0, "sum": 0, "sum_squared": 0}
    assert compare_stats([empty], [dict(empty)], "s") == []
    assert compare_stats([empty], [stat("training_co2_cost", 0.0)], "s")


def write_run(folder: Path, ids: list[str], per_instance: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "stats.json").write_text(json.dumps([stat("exact_match", 0.5)]))
    (folder / "per_instance_stats.json").write_text(json.dumps(per_instance))
    (folder / "instance_ids.json").write_text(json.dumps(ids))
    return folder


def test_runs_compare_names_ids_and_the_merged_stats_of_each_instance(tmp_path: Path) -> None:
    # HELM writes one entry per metric and instance; they are merged before comparing.
    helm = write_run(tmp_path / "mmlu:subject=x,model=m", ["id3", "id1"], [
        {"instance_id": "id3", "train_trial_index": 0, "stats": [stat("exact_match", 1.0)]},
        {"instance_id": "id3", "train_trial_index": 0, "stats": [stat("num_bytes", 2.0)]},
        {"instance_id": "id1", "train_trial_index": 0, "stats": [stat("exact_match", 0.0)]},
    ])
    ours = write_run(tmp_path / "ours" / "mmlu:subject=x,model=n", ["id1", "id3"], [
        {"instance_id": "id3", "train_trial_index": 0, "stats": [stat("exact_match", 1.0), stat("num_bytes", 2.0)]},
        {"instance_id": "id1", "train_trial_index": 0, "stats": [stat("exact_match", 1.0)]},
        {"instance_id": "id7", "train_trial_index": 0, "stats": []},
    ])
    problems = compare_runs(RunFiles.load(helm), RunFiles.load(ours))
    assert problems[0] == "run folder name: HELM 'mmlu:subject=x,model=m', ours 'mmlu:subject=x,model=n'"
    assert problems[1] == "evaluated instance ids: HELM ['id3', 'id1'], ours ['id1', 'id3']"
    assert "per_instance_stats.json id1 (trial 0): exact_match[split=test] mean: HELM 0.0, ours 1.0" in problems
    assert not any("id3" in p for p in problems[2:])
    assert problems[-1] == "per_instance_stats.json id7 (trial 0): extra"
    assert compare_runs(RunFiles.load(helm), RunFiles.load(helm)) == []


@pytest.mark.skipif(not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file(), reason="no shared data mirror")
def test_the_train_files_are_the_first_rows_of_the_evaluated_files(tmp_path: Path) -> None:
    mirror = build_mirror(SHARED_DATA, tmp_path / "mirror")
    place_for_helm(mirror, tmp_path / "benchmark_output")
    for source, train, evaluated, helm_train, helm_evaluated in [
        ("gsm8k/test.jsonl", "gsm8k/train.jsonl", "gsm8k/test.jsonl", "gsm/gsm_data_train", "gsm/gsm_data_test"),
        ("boolq/dev.jsonl", "boolq/train.jsonl", "boolq/dev.jsonl", "boolq/data/train", "boolq/data/dev"),
    ]:
        lines = (SHARED_DATA / source).read_bytes().splitlines(keepends=True)
        assert (mirror / train).read_bytes() == b"".join(lines[:HELDOUT_ROWS])
        assert (mirror / evaluated).read_bytes() == b"".join(lines[HELDOUT_ROWS:])
        scenarios = tmp_path / "benchmark_output" / "scenarios"
        assert (scenarios / helm_train).read_bytes() == (mirror / train).read_bytes()
        assert (scenarios / helm_evaluated).read_bytes() == (mirror / evaluated).read_bytes()
    assert json.loads((tmp_path / "benchmark_output/scenarios/boolq/data/boolq_perturbed.jsonl").read_text()) == {
        "data": [{}]}


def test_prompts_compared_byte_for_byte_per_instance_and_trial() -> None:
    from tests.helm_parity import compare_prompts

    helm = [("id1", 0, "Question: a\nAnswer:"), ("id1", 0, "second"), ("id2", 0, "Q2")]
    assert compare_prompts(helm, list(helm)) == []
    assert compare_prompts(None, []) == []
    problems = compare_prompts(helm, [("id1", 0, "Question: b\nAnswer:"), ("id2", 0, "Q2"), ("id3", 0, "x")])
    assert problems[0].startswith("prompt of id1 (trial 0, request 0): differs at character 10")
    assert "prompt of id1 (trial 0, request 1): missing" in problems
    assert "prompt of id3 (trial 0, request 0): extra" in problems
    assert compare_prompts(helm, None) == ["prompts: our run folder has no scenario_state.json"]
