"""lm-eval entries on a Python-callable model (no weights, no tokenizer): generation tasks run
through it with lm-eval's stops and filters; log-likelihood tasks say in one line why not."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.projects import scripted_project

pytest.importorskip("lm_eval")

ANSWERS = '''
SEEN = []


class Answers:
    """A scripted model for nq_open: a known answer with trailing text lm-eval's stops cut."""

    def generate(self, requests):
        SEEN.extend(requests)
        replies = []
        for r in requests:
            question = r.prompt.rsplit("Q: ", 1)[-1]
            if "moon" in question:
                replies.append(" December 1972. Then more")
            elif "eagles" in question:
                replies.append(" 2017,  and so on")
            else:
                replies.append(" no idea")
        return replies
'''
DEPLOYMENTS = ("model_deployments:\n  - {name: scripted/answers, model_name: scripted/answers, "
               "client_spec: {class_name: 'scripted_answers:Answers'}}\n")
XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    scripted_project(pytester, monkeypatch, "", DEPLOYMENTS)
    pytester.makepyfile(scripted_answers=ANSWERS)
    return pytester


@pytest.mark.parametrize("xdist", XDIST)
def test_a_generation_task_runs_on_a_python_callable(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_nq.yaml").write_text(textwrap.dedent("""
        entries:
          - description: "lm_eval:task=nq_open"
            gates: ["exact_match,remove_whitespace >= 0.5"]
    """))
    result = project.runpytest("--llmeval-models", "scripted/answers", "--llmeval-max-eval-instances", "4",
                               "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=1)
    [samples_file] = (project.path / "benchmark_output" / "lm_eval").rglob("samples_nq_open_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines()]
    assert [s["filtered_resps"][0] for s in samples] == ["December 1972", "no idea", "no idea", "2017"]
    assert [s["exact_match"] for s in samples] == [1.0, 0.0, 0.0, 1.0]
    run = next((project.path / "benchmark_output" / "runs" / "default").glob("lm_eval:task=nq_open*"))
    [state, *_] = json.loads((run / "scenario_state.json").read_text(encoding="utf-8"))["request_states"]
    request = state["request"]
    assert request["prompt"].startswith("Answer these questions:\n\nQ: when was the last time anyone was on the moon")
    assert request["stop_sequences"] == ["\n", ".", ","] and request["temperature"] == 0.0
    assert request["max_tokens"] == 256 and request["verbatim"] is True
    summary = json.loads((run.parent / "llmeval_summary.json").read_text(encoding="utf-8"))
    assert summary["runs"][0]["main_metric"] == "exact_match,remove_whitespace"
    assert summary["runs"][0]["value"] == 0.5


MY_NQ = """\
task: my_nq
dataset_path: google-research-datasets/nq_open
output_type: generate_until
validation_split: validation
fewshot_split: validation
doc_to_text: "Q: {{question}}?\\nA:"
doc_to_target: "{{answer}}"
fewshot_delimiter: "\\n"
generation_kwargs: {until: ["\\n"], do_sample: false}
metric_list:
  - metric: exact_match
"""


def test_gen_kwargs_and_few_shot_reach_lm_eval(project: pytest.Pytester) -> None:
    (project.mkdir("tasks") / "my_nq.yaml").write_text(MY_NQ, encoding="utf-8")
    (project.path / "eval_nq.yaml").write_text(
        'entries:\n  - "lm_eval:task=my_nq,num_fewshot=2,gen_kwargs=max_gen_toks=7;until=Q:,seed=3"\n')
    project.runpytest("--llmeval-models", "scripted/answers", "--llmeval-max-eval-instances", "2",
                      "--llmeval-lm-eval-include", "tasks", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    [results_file] = (project.path / "benchmark_output" / "lm_eval").rglob("results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert results["n-shot"]["my_nq"] == 2 and results["config"]["random_seed"] == 3
    run = next((project.path / "benchmark_output" / "runs" / "default").glob("lm_eval:task=my_nq*"))
    [state, *_] = json.loads((run / "scenario_state.json").read_text(encoding="utf-8"))["request_states"]
    assert state["request"]["max_tokens"] == 7 and state["request"]["stop_sequences"] == ["Q:"]
    assert state["request"]["prompt"].count("Q: ") == 3  # two examples, then the question


def _fails_with(project: pytest.Pytester, entry: str, line: str) -> None:
    """The entry's one item fails with ``line`` in its report."""
    (project.path / "eval_one.yaml").write_text(f'entries:\n  - "{entry}"\n')
    result = project.runpytest("--llmeval-models", "scripted/answers", "--llmeval-max-eval-instances", "2",
                               "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([line])


def test_few_shot_examples_from_a_split_the_data_lacks_fail_in_one_line(project: pytest.Pytester) -> None:
    _fails_with(project, "lm_eval:task=nq_open,num_fewshot=2",
                "*lm-eval data google-research-datasets/nq_open (config default), split 'train': "
                "not in the mirror (it has validation; expected at *nq_open/default/train/)*")


def test_a_log_likelihood_task_needs_a_tokenizer(project: pytest.Pytester) -> None:
    _fails_with(project, "lm_eval:task=copa",
                "*deployment 'scripted/answers' has no tokenizer: lm-eval's log-likelihood requests need one*")
