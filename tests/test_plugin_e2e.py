"""End-to-end tests through pytest itself (pytester), each run serially and with ``-n 2``.

Most use a scripted model plugged in through a deployment's ``client_spec`` (fast); the
ones marked ``slow`` run the real bundled SmolLM2 model or a real ``transformers serve``.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.projects import scripted_project
from tests.servers import ServedModel

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
BUNDLED = "local/smollm2-135m-instruct"

SCRIPTED_MODEL = '''
"""A scripted model: answers a letter chosen from the prompt's length; counts constructions."""
import os
from pathlib import Path


class LetterModel:
    def __init__(self, log: str = "constructions.log") -> None:
        with Path(os.environ["SCRIPTED_LOG_DIR"], log).open("a") as handle:
            handle.write("built\\n")

    def generate(self, requests):
        return [" " + "ABCD"[len(r.prompt) % 4] for r in requests]
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/letters
    model_name: scripted/letters
    client_spec:
      class_name: scripted_model:LetterModel
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with the scripted model registered in prod_env/ and importable by workers."""
    scripted_project(pytester, monkeypatch, SCRIPTED_MODEL, DEPLOYMENTS)
    monkeypatch.setenv("SCRIPTED_LOG_DIR", str(pytester.path))
    return pytester


def write_evals(pytester: pytest.Pytester, body: str, name: str = "eval_mmlu.yaml") -> None:
    (pytester.path / name).write_text(textwrap.dedent(body))


def stats_of(run_dir: Path, metric: str = "exact_match") -> dict[str, dict[str, float]]:
    stats = json.loads((run_dir / "stats.json").read_text())
    return {s["name"]["split"]: s for s in stats if s["name"]["name"] == metric and "perturbation" not in s["name"]}


def the_run(root: Path, output: str = "benchmark_output", suite: str = "default") -> Path:
    [run] = sorted(p for p in (root / output / "runs" / suite).iterdir() if p.is_dir())
    return run


@pytest.mark.parametrize("xdist", XDIST)
def test_items_are_named_for_k_selection(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, """
        entries:
          - mmlu:subject=anatomy
          - description: mmlu:subject=astronomy
    """)
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/letters")
    result.stdout.fnmatch_lines([
        "eval_mmlu.yaml::mmlu:subject=anatomy[[]scripted/letters[]]",
        "eval_mmlu.yaml::mmlu:subject=astronomy[[]scripted/letters[]]",
    ])
    result = project.runpytest("-k", "mmlu and anatomy", "--llmeval-models", "scripted/letters",
                               "--llmeval-max-eval-instances", "3", *xdist)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("xdist", XDIST)
def test_run_writes_helm_files_whose_stats_match_the_predictions(project: pytest.Pytester,
                                                                 xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "20",
                               "--llmeval-suite", "nightly", "--llmeval-output-path", "out", *xdist)
    result.assert_outcomes(passed=1)
    run = the_run(project.path, "out", "nightly")
    assert run.name == "mmlu:subject=anatomy,method=multiple_choice_joint,model=scripted_letters"
    for name in ("run_spec.json", "scenario.json", "scenario_state.json", "per_instance_stats.json",
                 "stats.json"):
        assert (run / name).is_file(), name
    state = json.loads((run / "scenario_state.json").read_text())
    by_split: dict[str, list[float]] = {}
    for rs in state["request_states"]:
        letter = rs["result"]["completions"][0]["text"].strip()
        gold = next(r["output"]["text"] for r in rs["instance"]["references"] if "correct" in r["tags"])
        by_split.setdefault(rs["instance"]["split"], []).append(float(rs["output_mapping"][letter] == gold))
    assert sum(len(v) for v in by_split.values()) == 20
    stats = stats_of(run)
    instances = stats_of(run, "num_instances")
    for split, values in by_split.items():  # one train trial: HELM's count is 1, num_instances the instances
        assert stats[split]["count"] == 1 and instances[split]["mean"] == len(values)
        assert stats[split]["mean"] == pytest.approx(sum(values) / len(values))
    result.stdout.fnmatch_lines(["*llmeval runs*", "*scripted/letters*mmlu:subject=anatomy*exact_match*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_cached_rerun_never_builds_the_model(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    args = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "5", "-rA", *xdist]
    project.runpytest(*args).assert_outcomes(passed=1)
    log = project.path / "constructions.log"
    built = log.read_text().count("built")
    assert built >= 1
    rerun = project.runpytest(*args)
    rerun.assert_outcomes(passed=1)
    assert log.read_text().count("built") == built
    rerun.stdout.fnmatch_lines(["*requests: 5, cache hits: 5*"])
    assert (project.path / "prod_env" / "cache" / "requests.sqlite").is_file()
    uncached = project.runpytest(*args, "--llmeval-disable-cache")
    uncached.assert_outcomes(passed=1)
    assert log.read_text().count("built") > built
    uncached.stdout.fnmatch_lines(["*requests: 5, cache hits: 0*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_gate_failure_names_metric_value_and_bound(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, """
        entries:
          - description: mmlu:subject=anatomy
            gates: ["exact_match >= 0.99"]
          - description: mmlu:subject=astronomy
            gates: ["exact_match >= 0.0"]
    """)
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "8",
                               *xdist)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*mmlu:subject=anatomy*gate failed: exact_match = 0.* on split test (n=*), "
                                 "required >= 0.99*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_invalid_registry_stops_with_one_clear_message(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    (project.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS + "    max_sequence_length: lots\n")
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "model_deployments.yaml" in text and "entry #0 ('scripted/letters')" in text
    assert "field max_sequence_length" in text
    assert "Traceback" not in text + result.stdout.str()


@pytest.mark.parametrize("xdist", XDIST)
def test_unknown_client_class_is_named(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    (project.path / "prod_env" / "model_deployments.yaml").write_text(
        DEPLOYMENTS.replace("scripted_model:LetterModel", "helm.clients.anthropic_client.AnthropicClient"))
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "entry scripted/letters" in text and "field client_spec.class_name" in text
    assert "AnthropicClient" in text and "Traceback" not in text


@pytest.mark.parametrize("xdist", XDIST)
def test_run_specs_conf_priority_and_model_argument(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "run_specs.conf").write_text(textwrap.dedent("""
        # HELM's run_specs.conf syntax
        entries: [
          {description: "mmlu:subject=anatomy,model=scripted/letters", priority: 1},
          {description: "mmlu:subject=astronomy,model=scripted/letters", priority: 2},
        ]
    """))
    result = project.runpytest("--collect-only", "-q", "--llmeval-priority", "1")
    result.stdout.fnmatch_lines(["run_specs.conf::mmlu:subject=anatomy[[]scripted/letters[]]"])
    assert "astronomy" not in result.stdout.str()
    run = project.runpytest("--llmeval-max-eval-instances", "2", *xdist)
    run.assert_outcomes(passed=2)


@pytest.mark.parametrize("xdist", XDIST)
def test_eval_file_errors_name_file_entry_and_field(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, """
        entries:
          - description: mmlu:subject=anatomy
            gates: ["exact_match is big"]
    """)
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval_mmlu.yaml, entry #0 ('mmlu:subject=anatomy'), field gates: gate*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_missing_data_says_where_it_was_expected(project: pytest.Pytester, xdist: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(project.path / "user-cache"))
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    (project.path / "empty-mirror").mkdir()
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-data-dir", "empty-mirror",
                               *xdist)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*data file mmlu/dev/anatomy_dev.csv not found: expected *empty-mirror*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_ini_keys_set_the_options(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    project.makeini("""
        [pytest]
        llmeval_models = scripted/letters
        llmeval_suite = from-ini
        llmeval_max_eval_instances = 3
    """)
    project.runpytest(*xdist).assert_outcomes(passed=1)
    run = the_run(project.path, suite="from-ini")
    assert sum(s["mean"] for s in stats_of(run, "num_instances").values()) == 3


# --- the real bundled model ------------------------------------------------------------------------

GREETING_TEST = '''
import pytest


def test_greeting(llm):
    result = llm.chat("Say hello to Bob.", max_tokens=20)
    assert result.success
    assert "bob" in result.text.lower()


def test_tokenizer_and_metadata(tokenizer, model_metadata, llm):
    assert tokenizer.eos_token == "<|im_end|>"
    assert model_metadata.num_parameters == 135_000_000
    assert llm.deployment.name == "local/smollm2-135m-instruct"


@pytest.mark.llmeval_models("local/smollm2-135m-instruct", "huggingface/HuggingFaceTB/SmolLM2-135M-Instruct")
def test_marker_chooses_models(llm):
    assert llm.name
'''


@pytest.mark.slow
@pytest.mark.parametrize("xdist", XDIST)
def test_llm_fixture_on_the_bundled_model(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makepyfile(test_greeting=GREETING_TEST)
    result = pytester.runpytest("-v", *xdist)
    result.assert_outcomes(passed=4)
    assert "test_greeting[local/smollm2-135m-instruct]" in result.stdout.str()
    collected = pytester.runpytest("--collect-only", "-q")
    collected.stdout.fnmatch_lines([
        "*test_marker_chooses_models?local/smollm2-135m-instruct?",
        "*test_marker_chooses_models?huggingface/HuggingFaceTB/SmolLM2-135M-Instruct?",
    ])


@pytest.mark.slow
def test_serial_and_xdist_give_the_same_stats_and_load_once(pytester: pytest.Pytester) -> None:
    write_evals(pytester, """
        entries:
          - mmlu:subject=anatomy
          - mmlu:subject=astronomy
          - mmlu:subject=virology
    """)
    common = ["--llmeval-max-eval-instances", "3", "--llmeval-disable-cache"]
    serial = pytester.runpytest(*common, "--llmeval-output-path", "serial", "--junitxml", "serial.xml")
    serial.assert_outcomes(passed=3)
    spread = pytester.runpytest(*common, "--llmeval-output-path", "spread", "-n", "2", "--junitxml", "spread.xml")
    spread.assert_outcomes(passed=3)
    for run in sorted(p for p in (pytester.path / "serial" / "runs" / "default").iterdir() if p.is_dir()):
        other = pytester.path / "spread" / "runs" / "default" / run.name
        for split, stat in stats_of(run).items():
            assert stats_of(other)[split] == stat, (run.name, split)
    loads: dict[str, int] = {}
    for case in ET.parse(pytester.path / "spread.xml").getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        worker = props["llmeval_worker"]
        assert worker.startswith("gw")
        loads[worker] = max(loads.get(worker, 0), int(props["llmeval_model_loads"]))
    assert loads and all(count <= 1 for count in loads.values()), loads


@pytest.mark.slow
def test_llm_fixture_against_transformers_serve(pytester: pytest.Pytester, served_model: ServedModel) -> None:
    if not served_model.running:
        served_model.start()
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(textwrap.dedent(f"""
        model_deployments:
          - name: served/smollm2
            model_name: HuggingFaceTB/SmolLM2-135M-Instruct
            client_spec:
              class_name: pytest_llmeval.clients.OpenAICompatibleClient
              args: {{base_url: "{served_model.base_url}", model: "{served_model.model}", api: chat}}
    """))
    pytester.makepyfile(test_greeting=GREETING_TEST.split("def test_tokenizer")[0])
    result = pytester.runpytest("--llmeval-models", "served/smollm2", "-v")
    result.assert_outcomes(passed=1)
    assert "test_greeting[served/smollm2] PASSED" in result.stdout.str()
