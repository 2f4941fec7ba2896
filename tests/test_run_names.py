"""Run names as helm-run writes them, run_spec.json with HELM's fields, HELM's instance ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.adapters.adapter_spec import AdapterSpec
from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import Registry
from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec
from pytest_llmeval.report.collector import shared_run_dirs
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.runspec import Description, RunSpec, build_run_spec, helm_value, run_name
from pytest_llmeval.scenarios.scenario import Instance, Reference, Scenario, with_ids

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUNDLED = "local/smollm2-135m-instruct"
SERVER = "local-server/smollm2-135m-instruct"
M = "model=HuggingFaceTB_SmolLM2-135M-Instruct"
MMLU = "mmlu:subject=anatomy,method=multiple_choice_joint"


def _name(text: str, deployment: str = BUNDLED, default: str | None = BUNDLED) -> str:
    return build_run_spec(Description.parse(text), deployment, MODEL, default_deployment=default).name


# --- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("mmlu:subject=anatomy", f"{MMLU},{M}"),
    # The run-spec function's own arguments first (mmlu adds method=), then each expander in order.
    ("mmlu:max_train_instances=0,subject=anatomy,eval_split=test", f"{MMLU},max_train_instances=0,eval_split=test,{M}"),
    ("mmlu:subject=anatomy,eval_split=valid,max_train_instances=1",
     f"{MMLU},eval_split=valid,max_train_instances=1,{M}"),
    # model= where the description puts it, whatever value selected the model; numbers as HELM reads them.
    (f"mmlu:subject=anatomy,model={MODEL},max_train_instances=05", f"{MMLU},{M},max_train_instances=5"),
    ("mmlu:subject=anatomy,model=text,num_train_trials=3", f"{MMLU},{M},num_train_trials=3"),
    ("mmlu:subject=anatomy,data_augmentation=fairness,stop=hash", f"{MMLU},data_augmentation=fairness,stop=hash,{M}"),
    ("mmlu:subject=anatomy,method=multiple_choice_separate_original",
     f"mmlu:subject=anatomy,method=multiple_choice_separate_original,{M}"),
    ("gsm", f"gsm:{M}"),
    ("gsm:max_eval_instances=10", f"gsm:max_eval_instances=10,{M}"),
    # HELM's instructions, stop and data_augmentation expanders always write ',' ...
    ("gsm:instructions=none", f"gsm,instructions=none:{M}"),
    ("boolq:data_augmentation=robustness", f"boolq,data_augmentation=robustness:{M}"),
    # ... and temperature changes the adapter only.
    ("synthetic_reasoning:mode=induction,temperature=0.7,num_outputs=3",
     f"synthetic_reasoning:mode=induction,num_outputs=3,{M}"),
    ("synthetic_reasoning:mode=pattern_match", f"synthetic_reasoning:mode=pattern_match,{M}"),
])
def test_names_are_helm_runs(text: str, expected: str) -> None:
    assert _name(text) == expected


def test_a_deployment_that_is_not_the_models_default_says_which() -> None:
    default, other = _name("mmlu:subject=anatomy"), _name("mmlu:subject=anatomy", deployment=SERVER)
    assert default == f"{MMLU},{M}"
    assert other == f"{MMLU},{M},model_deployment=local-server_smollm2-135m-instruct"
    # Named in the description, model_deployment= stays where it is written, default or not.
    assert _name(f"mmlu:subject=anatomy,model_deployment={BUNDLED},max_train_instances=2") == (
        f"{MMLU},model_deployment=local_smollm2-135m-instruct,max_train_instances=2,{M}")
    assert _name(f"mmlu:subject=anatomy,model={MODEL},model_deployment={SERVER}", deployment=SERVER) == (
        f"{MMLU},{M},model_deployment=local-server_smollm2-135m-instruct")
    assert _name("gsm", deployment=SERVER, default=None) == f"gsm:{M}"  # no registry entry: no default to differ


def test_run_name_takes_the_last_two_parts_of_the_model_name() -> None:
    assert run_name("x", Description("x"), "/data/checkpoints/org/model", "d") == "x:model=org_model"
    assert run_name("x:a=b/c", Description("x"), "m", "d") == "x:a=b_c,model=m"


@pytest.mark.parametrize(("text", "expected"), [("5", "5"), ("05", "5"), ("1.50", "1.5"), ("1_000", "1000"),
                                                ("test", "test"), ("-2", "-2")])
def test_values_are_written_back_as_helm_parses_them(text: str, expected: str) -> None:
    assert helm_value(text) == expected


def test_default_deployment_is_helms_last_current_one(tmp_path: Path) -> None:
    registry = Registry.load()
    assert registry.default_deployment(MODEL) == BUNDLED
    assert registry.select(MODEL) == [BUNDLED]
    assert registry.default_deployment("no/such-model") is None

    def deployment(name: str, deprecated: bool = False) -> ModelDeployment:
        return ModelDeployment(name=name, model_name="org/m", client_spec=ObjectSpec("x"), deprecated=deprecated)

    registry.deployments = {d.name: d for d in (deployment("a/m"), deployment("b/m"), deployment("c/m", True))}
    assert registry.default_deployment("org/m") == "b/m"
    registry.deployments = {d.name: d for d in (deployment("a/m", True), deployment("c/m", True))}
    assert registry.default_deployment("org/m") == "c/m"


def test_items_that_share_a_run_folder_are_reported() -> None:
    def record(nodeid: str, folder: str) -> RunRecord:
        return RunRecord(nodeid=nodeid, name=nodeid, key=nodeid, scenario_key=nodeid, model="m", output_dir=folder)

    [line] = shared_run_dirs([record("e.yaml::a", "runs/s/x"), record("e.yaml::b", "runs/s/x"),
                              record("e.yaml::c", "runs/s/y"), record("e.yaml::d", "")])
    assert line.startswith("2 items wrote the run folder runs/s/x") and line.endswith("e.yaml::a, e.yaml::b")


# --- run_spec.json ---------------------------------------------------------------------------------------

# HELM's AdapterSpec fields in order (crfm-helm 0.5.16); None-valued ones are left out of the file.
HELM_ADAPTER_FIELDS = [
    "method", "global_prefix", "global_suffix", "instructions", "input_prefix", "input_suffix", "reference_prefix",
    "reference_prefix_characters", "reference_suffix", "chain_of_thought_prefix", "chain_of_thought_suffix",
    "output_prefix", "output_suffix", "instance_prefix", "substitutions", "max_train_instances",
    "max_eval_instances", "num_outputs", "num_train_trials", "num_trials", "sample_train", "model_deployment", "model",
    "temperature", "max_tokens", "stop_sequences", "random", "multi_label", "image_generation_parameters",
    "reeval_parameters", "eval_splits", "output_mapping_pattern",
]


def test_run_spec_json_has_helms_fields_and_defaults() -> None:
    spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), BUNDLED, MODEL, default_deployment=BUNDLED)
    data = spec.to_json()
    assert list(data) == ["name", "scenario_spec", "adapter_spec", "metric_specs", "data_augmenter_spec", "groups",
                          "llmeval"]
    adapter = data["adapter_spec"]
    assert list(adapter) == [f for f in HELM_ADAPTER_FIELDS if f in adapter]
    assert set(HELM_ADAPTER_FIELDS) - set(adapter) == {"reference_prefix_characters", "max_eval_instances", "random",
                                                       "image_generation_parameters", "reeval_parameters",
                                                       "eval_splits", "output_mapping_pattern"}
    assert (adapter["chain_of_thought_prefix"], adapter["chain_of_thought_suffix"], adapter["substitutions"],
            adapter["num_trials"], adapter["multi_label"]) == ("", "\n", [], 1, False)
    # HELM's values for MMLU: instructions end with a newline; five outputs (its joint adapter asks for one).
    assert adapter["instructions"] == "The following are multiple choice questions (with answers) about anatomy.\n"
    assert (adapter["num_outputs"], adapter["max_tokens"], adapter["temperature"]) == (5, 1, 0.0)
    assert [m["class_name"].rpartition(".")[2] for m in data["metric_specs"]] == [
        "BasicGenerationMetric", "BasicReferenceMetric", "InstancesPerSplitMetric"]
    assert data["data_augmenter_spec"]["perturbation_specs"] == []
    limited = spec.adapter_spec.replace(max_eval_instances=10, eval_splits=("test",)).to_json()
    assert (limited["max_eval_instances"], limited["eval_splits"]) == (10, ["test"])


class Riddles(Scenario):
    """A user's scenario: nothing of HELM's to name."""

    name = "riddles"

    def __init__(self, locator: object, level: int = 1) -> None:
        self.level = level

    def get_instances(self) -> list[Instance]:
        return []


def test_a_user_scenario_keeps_its_own_class_and_metrics() -> None:
    registries = builtin_registries()
    registries.run_spec_function("riddles", lambda d: RunSpec(
        name="riddles:level=2", scenario_class=Riddles, scenario_args={"level": 2}, adapter_spec=AdapterSpec(),
        metrics=["exact_match"], groups=["riddles"]))
    data = build_run_spec(Description.parse("riddles:level=2"), "org/m", "org/m", registries).to_json()
    assert data["name"] == "riddles:level=2,model=org_m"
    assert data["scenario_spec"] == {"class_name": f"{__name__}.Riddles", "args": {"level": 2}}
    assert data["scenario_spec"] == data["llmeval"]["scenario_spec"]
    assert data["metric_specs"][0]["class_name"] == "pytest_llmeval.metrics.basic.reference_stats"


def test_a_helm_adapter_option_we_do_not_apply_is_refused() -> None:
    registries = builtin_registries()
    registries.run_spec_function("cot", lambda d: RunSpec(
        name="cot", scenario_class=Riddles, scenario_args={},
        adapter_spec=AdapterSpec(chain_of_thought_prefix="Think. "), metrics=["exact_match"]))
    with pytest.raises(ConfigError, match="chain_of_thought_prefix are not supported") as excinfo:
        build_run_spec(Description.parse("cot"), "org/m", "org/m", registries)
    assert excinfo.value.field == "chain_of_thought_prefix"


# --- instance ids ----------------------------------------------------------------------------------------


def _instance(split: str, instance_id: str = "") -> Instance:
    return Instance(f"q{instance_id}", (Reference("a", ("correct",)),), split, instance_id)


def test_ids_number_every_instance_in_order_when_any_lacks_one() -> None:
    numbered = with_ids([_instance("train"), _instance("valid", "mine"), _instance("test")])
    assert [(i.split, i.id) for i in numbered] == [("train", "id0"), ("valid", "id1"), ("test", "id2")]
    given = [_instance("test", "b"), _instance("test", "a")]
    assert with_ids(given) == given  # all given: kept, as helm-run keeps them
