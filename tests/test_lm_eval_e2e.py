"""lm-eval entries end to end through pytest on the real bundled model: lm-eval's files and
ours, gates on lm-eval's metric names, groups across xdist workers, user task folders, a
rerun served by the cache, an interrupted run resumed, and bad input in one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_llmeval.clients import hf_loading

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.slow

MY_TASK = """\
task: my_copa
dataset_path: aps/super_glue
dataset_name: copa
validation_split: validation
output_type: multiple_choice
doc_to_text: "{{premise}} Therefore,"
doc_to_choice: "{{[choice1, choice2]}}"
doc_to_target: label
metric_list:
  - metric: acc
"""


def _eval_file(folder: Path, *entries: str) -> Path:
    path = folder / "eval_lm.yaml"
    path.write_text("entries:\n" + "".join(f"  - {e}\n" for e in entries), encoding="utf-8")
    return path


def _lm_eval_files(output: Path) -> tuple[dict, list[dict]]:
    [results] = sorted((output / "lm_eval").rglob("results_*.json"))
    [samples] = sorted((output / "lm_eval").rglob("samples_*.jsonl"))
    return (json.loads(results.read_text(encoding="utf-8")),
            [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()])


def _properties(junit: Path) -> list[dict[str, str]]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return [{p.get("name", ""): p.get("value", "") for p in case.iter("property")} for case in cases]


def test_hellaswag_writes_lm_eval_files_and_ours_and_a_rerun_loads_no_model(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_loading, "_MODELS", {})  # as in a fresh process: no model resident yet
    gates = '["acc_norm >= 0.05", "acc,none >= 0.05"]'
    _eval_file(pytester.path, f'{{description: "lm_eval:task=hellaswag", gates: {gates}}}')
    args = ["--llmeval-max-eval-instances", "20", "-p", "no:cacheprovider"]
    first = pytester.runpytest(*args, "--junitxml", "first.xml")
    first.assert_outcomes(passed=1)
    output = pytester.path / "benchmark_output"
    results, samples = _lm_eval_files(output)
    metrics = results["results"]["hellaswag"]
    assert {"acc,none", "acc_norm,none", "acc_stderr,none"} <= set(metrics)
    assert results["n-samples"]["hellaswag"] == {"original": 10042, "effective": 20}
    assert results["config"]["limit"] == 20 and results["model_name"] == "local/smollm2-135m-instruct"
    assert [s["doc_id"] for s in samples] == list(range(20))
    assert all(len(s["resps"]) == 4 for s in samples)
    run = next((output / "runs" / "default").glob("lm_eval:task=hellaswag*"))
    stats = {s["name"]["name"]: s for s in json.loads((run / "stats.json").read_text(encoding="utf-8"))}
    assert stats["acc"]["count"] == 20
    assert stats["acc"]["mean"] == pytest.approx(metrics["acc,none"])
    assert stats["acc_norm"]["mean"] == pytest.approx(metrics["acc_norm,none"])
    states = json.loads((run / "scenario_state.json").read_text(encoding="utf-8"))["request_states"]
    assert len(states) == 80 and all(s["request"]["echo_prompt"] and s["request"]["verbatim"] for s in states)
    summary = json.loads((output / "runs" / "default" / "llmeval_summary.json").read_text(encoding="utf-8"))
    [record] = summary["runs"]
    assert record["main_metric"] == "acc" and record["value"] == pytest.approx(metrics["acc,none"])
    [props] = _properties(pytester.path / "first.xml")
    assert props["llmeval_requests"] == "80" and props["llmeval_model_loads"] == "1"

    rerun = pytester.runpytest(*args, "--junitxml", "second.xml", "--llmeval-output-path", "again")
    rerun.assert_outcomes(passed=1)
    [props] = _properties(pytester.path / "second.xml")
    assert props["llmeval_cache_hits"] == "80" and props["llmeval_model_loads"] == "0"
    again, again_samples = _lm_eval_files(pytester.path / "again")
    assert again["results"]["hellaswag"] == metrics
    assert [s["filtered_resps"] for s in again_samples] == [s["filtered_resps"] for s in samples]


def test_a_group_gives_an_item_per_task_and_lm_evals_aggregate_across_workers(pytester: pytest.Pytester) -> None:
    _eval_file(pytester.path, '"lm_eval:task=mmlu_social_sciences"')
    result = pytester.runpytest("--llmeval-max-eval-instances", "2", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    summary = json.loads((pytester.path / "benchmark_output" / "runs" / "default" / "llmeval_summary.json")
                         .read_text(encoding="utf-8"))
    runs = summary["runs"]
    assert all(r["label"].endswith(",group=mmlu_social_sciences") for r in runs)
    [group] = summary["lm_eval_groups"]
    assert group["group"] == "mmlu_social_sciences" and (group["tasks"], group["of"]) == (12, 12)
    expected = sum(r["value"] * r["count"] for r in runs) / sum(r["count"] for r in runs)  # size-weighted
    assert group["metrics"]["acc,none"] == pytest.approx(expected)
    result.stdout.fnmatch_lines([f"*lm-eval group mmlu_social_sciences on local/smollm2-135m-instruct: acc "
                                 f"{expected:.4f}*(12 of 12 tasks)"])
    selected = pytester.runpytest("--llmeval-max-eval-instances", "2", "-k", "mmlu_sociology",
                                  "-p", "no:cacheprovider")
    selected.assert_outcomes(passed=1)
    selected.stdout.fnmatch_lines(["*lm-eval group mmlu_social_sciences on *(1 of 12 tasks)"])


def test_a_users_task_folder_is_found_as_lm_eval_include_path_finds_it(pytester: pytest.Pytester) -> None:
    tasks = pytester.mkdir("my_tasks")
    (tasks / "my_copa.yaml").write_text(MY_TASK, encoding="utf-8")
    pytester.makeini("[pytest]\nllmeval_lm_eval_include = my_tasks\n")
    _eval_file(pytester.path, '"lm_eval:task=my_copa,num_fewshot=1"')
    result = pytester.runpytest("--llmeval-max-eval-instances", "5", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    results, samples = _lm_eval_files(pytester.path / "benchmark_output")
    assert results["n-shot"]["my_copa"] == 1 and len(samples) == 5
    assert samples[0]["arguments"]["gen_args_0"]["arg_0"].endswith(" Therefore,")


def test_data_neither_mirrored_nor_reachable_fails_in_one_line(pytester: pytest.Pytester) -> None:
    _eval_file(pytester.path, '"lm_eval:task=arc_easy"')
    result = pytester.runpytest("--llmeval-max-eval-instances", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*lm-eval data allenai/ai2_arc (config ARC-Easy), split 'test': not in the mirror "
                                 "(it has validation; expected at *hf/allenai/ai2_arc/ARC-Easy/test/) and not "
                                 "downloadable*"])


def test_unknown_task_and_bad_arguments_name_file_entry_and_field(pytester: pytest.Pytester) -> None:
    _eval_file(pytester.path, '"lm_eval:task=hellaswagg"')
    result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*eval_lm.yaml, entry #0 ('lm_eval:task=hellaswagg'), field task: unknown lm-eval "
                                 "task 'hellaswagg'; did you mean hellaswag*"])
    _eval_file(pytester.path, '"lm_eval:task=hellaswag,num_fewshot=two"')
    result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*field num_fewshot: num_fewshot='two' is not a whole number*"])


def _stored(cache: Path) -> int:
    try:
        with sqlite3.connect(cache, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_an_interrupted_run_resumes_from_the_cache(tmp_path: Path) -> None:
    _eval_file(tmp_path, '"lm_eval:task=piqa"')
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmeval-max-eval-instances", "40",
               "--llmeval-local-path", "env", "--junitxml", "run.xml"]
    cache = tmp_path / "env" / "cache" / "requests.sqlite"
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _stored(cache) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
    kept = _stored(cache)
    assert 0 < kept < 80, "the run was not interrupted part-way"
    subprocess.run(command, cwd=tmp_path, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    [props] = _properties(tmp_path / "run.xml")
    assert props["llmeval_requests"] == "80" and int(props["llmeval_cache_hits"]) == kept
    assert _stored(cache) == 80


def test_entries_in_a_conf_file_run_too(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", run_entries_lm=textwrap.dedent("""
        entries: [
          {description: "lm_eval:task=copa", priority: 1}
        ]
    """))
    result = pytester.runpytest("--llmeval-max-eval-instances", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    results, samples = _lm_eval_files(pytester.path / "benchmark_output")
    assert "acc,none" in results["results"]["copa"] and len(samples) == 3


def test_baselines_and_the_report_take_lm_eval_runs(pytester: pytest.Pytester) -> None:
    _eval_file(pytester.path, '"lm_eval:task=copa"')
    args = ["--llmeval-max-eval-instances", "6", "-p", "no:cacheprovider"]
    pytester.runpytest(*args, "--llmeval-save-baseline", "base").assert_outcomes(passed=1)
    report = (pytester.path / "benchmark_output" / "runs" / "default" / "llmeval_report.html").read_text("utf-8")
    assert "The man turned on the faucet therefore" in report  # the first document's prompt
    data = json.loads(report.split('id="llmeval-data">', 1)[1].split("</script>", 1)[0])
    first = data["runs"][0]["instances"][0]
    assert [r["correct"] for r in first["references"]] == [False, True]  # copa's first label is 1
    scores = [r["score"] for r in first["references"]]
    assert first["prediction"] == first["references"][scores.index(max(scores))]["text"]  # the model's pick
    compared = pytester.runpytest(*args, "--llmeval-compare", "base")
    compared.assert_outcomes(passed=1)
    summary = json.loads((pytester.path / "benchmark_output" / "runs" / "default" / "llmeval_summary.json")
                         .read_text(encoding="utf-8"))
    comparison = summary["runs"][0]["comparison"]
    assert comparison is not None and comparison["regression"] is False
    assert (comparison["right_to_wrong"], comparison["wrong_to_right"]) == (0, 0)
