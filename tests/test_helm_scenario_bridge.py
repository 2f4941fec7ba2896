"""HELM scenarios that are not built in, run through crfm-helm's own code (scenarios/helm_scenarios.py,
metrics/helm_metrics.py, adapters/helm_adapter.py, clients/helm_services.py).

The tests that need crfm-helm skip without it (``.ci/helm-bridge`` makes an environment that has
it); the ones about what happens without it skip when it is installed. The real-model check
against ``helm-run`` is ``tests/test_helm_parity.py``'s ``bridge_*`` cases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import helm_scenarios
from pytest_llmeval.scenarios.data import DataLocator
from tests.projects import letters_project

SOURCES = Path(__file__).parent / "data" / "helm_sources"
HAS_HELM = helm_scenarios.helm_installed()
needs_helm = pytest.mark.skipif(not HAS_HELM, reason="needs crfm-helm (pip install 'pytest-llmeval[helm]')")
without_helm = pytest.mark.skipif(HAS_HELM, reason="about running without crfm-helm")
MODEL = "scripted/letters"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """The fixture sources copied (HELM writes lock files and caches beside its data)."""
    return Path(shutil.copytree(SOURCES, tmp_path / "mirror"))


def locator(mirror: Path, tmp_path: Path) -> DataLocator:
    return DataLocator(mirror=mirror, cache=tmp_path / "cache")


# --- without crfm-helm --------------------------------------------------------------------------


@without_helm
def test_a_helm_scenario_without_crfm_helm_says_which_extra_brings_it() -> None:
    with pytest.raises(ConfigError, match=r"scenario 'babi_qa' is HELM's and not built in: pip install "
                                          r"'pytest-llmeval\[helm\]'"):
        build_run_spec(Description.parse("babi_qa:task=1"), MODEL, MODEL)


def test_a_name_helm_does_not_know_either_is_an_unknown_scenario() -> None:
    with pytest.raises(ConfigError, match="unknown scenario 'no_such_scenario'"):
        build_run_spec(Description.parse("no_such_scenario:x=1"), MODEL, MODEL)


@without_helm
def test_without_crfm_helm_the_entry_is_collected_and_fails_when_it_runs(pytester: pytest.Pytester,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project = letters_project(pytester, monkeypatch)
    (project.path / "eval_bridge.yaml").write_text('entries: ["babi_qa:task=1"]\n')
    collected = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "--llmeval-models", MODEL)
    collected.stdout.fnmatch_lines(["*babi_qa:task=1?scripted/letters?*"])
    result = project.runpytest("-p", "no:cacheprovider", "--llmeval-models", MODEL)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*babi_qa:task=1?scripted/letters?: scenario 'babi_qa' is HELM's and not built "
                                 "in: pip install 'pytest-llmeval?helm?' brings it*"])
    assert "Traceback" not in result.stdout.str()


# --- the run spec --------------------------------------------------------------------------------


@needs_helm
def test_helms_run_spec_function_builds_the_run_spec_and_our_expanders_follow(mirror: Path, tmp_path: Path) -> None:
    spec = build_run_spec(Description.parse("babi_qa:task=1,max_train_instances=2"), MODEL, MODEL,
                          locator=locator(mirror, tmp_path))
    assert spec.name == "babi_qa:task=1,max_train_instances=2,model=scripted_letters"  # helm-run's folder name
    assert spec.helm_bridge is not None and spec.helm_bridge.adapter_spec is None  # our adapter builds it
    assert spec.adapter_spec.max_train_instances == 2 and spec.adapter_spec.input_prefix == "Passage: "
    assert spec.metrics == ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    assert spec.helm_bridge.helm_metric_specs == []  # HELM's basic metrics are ours
    assert spec.to_json()["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.babi_qa_scenario."
                                                              "BabiQAScenario", "args": {"task": "1"}}


@needs_helm
def test_a_method_our_adapters_lack_goes_to_helms_adapter_and_its_metrics_to_helm() -> None:
    spec = build_run_spec(Description.parse("the_pile:subset=BookCorpus2"), MODEL, MODEL)
    assert spec.helm_bridge is not None
    assert spec.helm_bridge.adapter_spec is not None and spec.helm_bridge.adapter_spec.method == "language_modeling"
    assert not spec.helm_bridge.basic and spec.metrics == []
    assert [m.class_name.rpartition(".")[2] for m in spec.helm_bridge.helm_metric_specs] == ["LanguageModelingMetric"]
    assert spec.main_metric == "bits_per_byte"


@needs_helm
def test_adapter_specs_convert_both_ways() -> None:
    from helm.benchmark.adaptation.common_adapter_specs import get_generation_adapter_spec

    helm_spec = get_generation_adapter_spec(instructions="Answer briefly.", input_noun="Passage",
                                            output_noun="Answer", stop_sequences=["\n"])
    ours, ours_adapt = helm_scenarios.our_adapter_spec(helm_spec)
    assert ours_adapt and ours.instructions == "Answer briefly." and ours.instructions_end == "\n"
    assert ours.stop_sequences == ("\n",)
    bridge = helm_scenarios.HelmBridge(None, [], True)
    assert bridge.helm_adapter_spec(ours) == helm_spec
    # Instructions without the ending newline (HELM's translation spec) convert both ways too.
    raw = helm_spec.__class__(method="generation", instructions="No newline at the end")
    plain, plain_adapt = helm_scenarios.our_adapter_spec(raw)
    assert plain_adapt and plain.instructions_end == ""
    assert bridge.helm_adapter_spec(plain) == raw


@needs_helm
def test_helms_own_metrics_are_the_ones_ours_do_not_compute() -> None:
    from helm.benchmark.metrics.common_metric_specs import (
        get_basic_metric_specs,
        get_bias_metric_specs,
        get_classification_metric_specs,
        get_exact_match_metric_specs,
    )

    from pytest_llmeval.metrics.helm_metrics import split_metric_specs

    names, basic, helm = split_metric_specs(get_exact_match_metric_specs() + get_bias_metric_specs()
                                            + get_classification_metric_specs())
    assert names[0] == "exact_match" and basic
    assert [m.class_name.rpartition(".")[2] for m in helm] == ["ClassificationMetric"]
    names, basic, helm = split_metric_specs(get_basic_metric_specs(["exact_match", "no_such_matcher"]))
    assert not basic and names == []  # one name we lack: HELM computes its basic metrics itself
    assert {m.class_name.rpartition(".")[2] for m in helm} == {"BasicGenerationMetric", "BasicReferenceMetric"}


@needs_helm
def test_a_bad_argument_to_helms_run_spec_is_one_line() -> None:
    with pytest.raises(ConfigError, match="HELM's run spec 'babi_qa' does not take these arguments") as info:
        build_run_spec(Description.parse("babi_qa:colour=blue"), MODEL, MODEL)
    assert "\n" not in str(info.value)


@needs_helm
def test_a_built_in_scenario_goes_through_crfm_helm_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_run_spec(Description.parse("boolq"), MODEL, MODEL).helm_bridge is None
    monkeypatch.setenv(helm_scenarios.FORCE_ENV, "boolq")
    spec = build_run_spec(Description.parse("boolq"), MODEL, MODEL)
    assert spec.helm_bridge is not None and spec.name == "boolq:model=scripted_letters"


# --- the scenario --------------------------------------------------------------------------------


@needs_helm
def test_helms_scenario_reads_the_mirrors_helm_layout_and_keeps_ids_splits_and_its_instance(
        mirror: Path, tmp_path: Path) -> None:
    scenario = helm_scenarios.HelmScenario({"class_name": "helm.benchmark.scenarios.babi_qa_scenario.BabiQAScenario",
                                            "args": {"task": "1"}}, locator(mirror, tmp_path))
    assert scenario.folder == mirror / "helm" / "scenarios" / "babi_qa"
    instances = scenario.get_instances()
    assert [i.id for i in instances[:3]] == ["id0", "id1", "id2"]
    assert {i.split for i in instances} == {"train", "valid", "test"}
    first = instances[0]
    assert first.input.endswith("Question: Where is Daniel?") and first.references[0].output == "bathroom"
    assert first.references[0].is_correct
    helm_instance = helm_scenarios.to_helm_instance(first)
    assert helm_instance.id == "id0" and helm_instance.input.text == first.input
    assert scenario.to_json()["definition_path"] == "helm.benchmark.scenarios.babi_qa_scenario.BabiQAScenario"


@needs_helm
def test_missing_data_offline_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    scenario = helm_scenarios.HelmScenario({"class_name": "helm.benchmark.scenarios.bbq_scenario.BBQScenario",
                                            "args": {"subject": "age"}}, locator(tmp_path / "empty", tmp_path))
    with pytest.raises(DataNotFoundError, match=r"HELM's bbq scenario could not read or download its data into "
                                                r".*cache/helm/scenarios/bbq: network is unreachable") as info:
        scenario.get_instances()
    assert "\n" not in str(info.value)


@needs_helm
def test_bad_data_is_one_line_naming_the_folder(mirror: Path, tmp_path: Path) -> None:
    bad = mirror / "helm" / "scenarios" / "babi_qa" / "data" / "tasks_1-20_v1-2" / "en-valid" / "qa1_train.txt"
    bad.write_text("one Mary moved to the hallway.\n")
    scenario = helm_scenarios.HelmScenario({"class_name": "helm.benchmark.scenarios.babi_qa_scenario.BabiQAScenario",
                                            "args": {"task": "1"}}, locator(mirror, tmp_path))
    with pytest.raises(ConfigError, match=r"file .*babi_qa: HELM's babi_qa scenario could not read its data: "
                                          r"ValueError") as info:
        scenario.get_instances()
    assert "\n" not in str(info.value)


# --- end to end (a scripted model: every step but the real weights) ---------------------------------


@needs_helm
def test_a_helm_scenario_runs_end_to_end_with_helms_metric(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project = letters_project(pytester, monkeypatch)
    shutil.copytree(SOURCES, project.path / "mirror")
    (project.path / "eval_bridge.yaml").write_text('entries: ["bbq:subject=age"]\n')
    result = project.runpytest("-p", "no:cacheprovider", "--llmeval-data-dir", "mirror",
                               "--llmeval-max-eval-instances", "4", "--llmeval-models", MODEL)
    result.assert_outcomes(passed=1)
    run = project.path / "benchmark_output" / "runs" / "default" / "bbq:subject=age,method=multiple_choice_joint," \
                                                                    "model=scripted_letters"
    stats = {s["name"]["name"] for s in json.loads((run / "stats.json").read_text())}
    assert {"exact_match", "num_instances", "bbq_accuracy"} <= stats  # ours and HELM's BBQMetric
    per_instance = json.loads((run / "per_instance_stats.json").read_text())
    assert len(per_instance) == 4 and all(e["instance_id"].startswith("id") for e in per_instance)
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    assert states[0]["request"]["prompt"].startswith("The following are multiple choice questions (with answers).")


@needs_helm
def test_the_names_known_without_crfm_helm_are_crfm_helms() -> None:
    """helm_names.py lists crfm-helm 0.5.16's run-spec functions by module; checked against HELM."""
    from helm.benchmark import run_spec

    from pytest_llmeval.clients.helm_bridge import helm_version
    from pytest_llmeval.scenarios.helm_names import MODULE_OF

    if helm_version() != "0.5.16":
        pytest.skip(f"the list is crfm-helm 0.5.16's; this is {helm_version()}")
    run_spec.discover_run_spec_functions()
    registered = {name: f.__module__.rpartition(".")[2] for name, f in run_spec._REGISTERED_RUN_SPEC_FUNCTIONS.items()}
    assert registered == MODULE_OF
