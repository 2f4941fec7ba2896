"""Run-spec descriptions (``mmlu:subject=anatomy,...``) and the RunSpecs built from them."""

from __future__ import annotations

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import Description, RunSpec, build_run_spec
from pytest_llmeval.scenarios.mmlu import MMLUScenario
from pytest_llmeval.scenarios.scenario import EVAL_SPLITS

DEPLOYMENT = "local/smollm2-135m-instruct"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _build(text: str) -> RunSpec:
    return build_run_spec(Description.parse(text), DEPLOYMENT, MODEL)


# --- Description --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scenario", "args"),
    [
        ("mmlu:subject=anatomy", "mmlu", (("subject", "anatomy"),)),
        ("  mmlu:subject = anatomy , max_train_instances=0 ", "mmlu",
         (("subject", "anatomy"), ("max_train_instances", "0"))),
        ("mmlu", "mmlu", ()),
        ("mmlu:", "mmlu", ()),
        ("my-scenario_2:a=1,,b=", "my-scenario_2", (("a", "1"), ("b", ""))),
        ("x:key=a=b", "x", (("key", "a=b"),)),
    ],
)
def test_parse_ok(text: str, scenario: str, args: tuple[tuple[str, str], ...]) -> None:
    description = Description.parse(text)
    assert description.scenario == scenario
    assert description.args == args


@pytest.mark.parametrize(
    "text", ["", ":subject=anatomy", "mm lu:subject=anatomy", "mmlu!:x=1", "mmlu:subject", "mmlu:=anatomy",
             "mmlu:subject=anatomy,oops"],
)
def test_parse_bad(text: str) -> None:
    with pytest.raises(ConfigError):
        Description.parse(text)


@pytest.mark.parametrize(
    "text", ["mmlu", "mmlu:subject=anatomy", "mmlu:subject=anatomy,max_train_instances=0,model=huggingface/org/m"],
)
def test_str_round_trip(text: str) -> None:
    assert str(Description.parse(text)) == text
    assert Description.parse(str(Description.parse(text))) == Description.parse(text)


def test_get_and_without() -> None:
    description = Description.parse("mmlu:subject=anatomy,model=a/b,stop=hash")
    assert description.get("subject") == "anatomy"
    assert description.get("missing") is None
    assert str(description.without("model", "stop")) == "mmlu:subject=anatomy"


# --- build_run_spec ---------------------------------------------------------------------------------


def test_mmlu_run_spec() -> None:
    spec = _build("mmlu:subject=anatomy")
    # helm-run's name: the model's name with '/' as '_' (the deployment is the model's default).
    assert spec.name == "mmlu:subject=anatomy,method=multiple_choice_joint,model=HuggingFaceTB_SmolLM2-135M-Instruct"
    assert spec.scenario_class is MMLUScenario
    assert spec.scenario_args == {"subject": "anatomy"}
    adapter = spec.adapter_spec
    assert adapter.method == "multiple_choice_joint"
    assert adapter.instructions == "The following are multiple choice questions (with answers) about anatomy."
    assert (adapter.max_tokens, adapter.max_train_instances, adapter.num_train_trials) == (1, 5, 1)
    assert adapter.stop_sequences == ("\n",)
    assert adapter.temperature == 0.0
    assert adapter.eval_splits is None and adapter.evaluated_splits == EVAL_SPLITS
    assert (adapter.model_deployment, adapter.model) == (DEPLOYMENT, MODEL)
    assert (adapter.input_prefix, adapter.output_prefix, adapter.reference_prefix) == ("Question: ", "Answer: ", "A. ")
    assert spec.metrics[0] == "exact_match" and spec.main_metric == "exact_match"


def test_subject_underscores_become_spaces_in_instructions() -> None:
    spec = _build("mmlu:subject=high_school_us_history")
    assert spec.adapter_spec.instructions.endswith("about high school us history.")


def test_generic_keys() -> None:
    spec = _build("mmlu:subject=anatomy,max_train_instances=1,eval_split=test,temperature=0.5,stop=hash,"
                  "num_train_trials=2,max_tokens=3,num_outputs=2,instructions=Answer briefly")
    adapter = spec.adapter_spec
    assert adapter.max_train_instances == 1
    assert adapter.eval_splits == ("test",)
    assert adapter.temperature == 0.5
    assert adapter.stop_sequences == ("###",)
    assert adapter.instance_prefix == "###\n\n"  # HELM's stop=hash also separates instances by it
    assert adapter.num_train_trials == 2
    assert (adapter.max_tokens, adapter.num_outputs) == (3, 2)
    assert adapter.instructions == "Answer briefly"
    # Each of HELM's expanders adds its key in the description's order; temperature changes only
    # the adapter (HELM's TemperatureRunExpander); the model comes last when the description has none.
    assert spec.name == ("mmlu:subject=anatomy,method=multiple_choice_joint,max_train_instances=1,eval_split=test,"
                         "stop=hash,num_train_trials=2,max_tokens=3,num_outputs=2,"
                         "instructions=Answer briefly,model=HuggingFaceTB_SmolLM2-135M-Instruct")


@pytest.mark.parametrize(("value", "splits"), [("valid", ("valid",)), ("test", ("test",)), ("all", None)])
def test_eval_split(value: str, splits: tuple[str, ...] | None) -> None:
    spec = _build(f"mmlu:subject=anatomy,eval_split={value}")
    assert spec.adapter_spec.eval_splits == splits
    assert spec.name.endswith(f",eval_split={value},model=HuggingFaceTB_SmolLM2-135M-Instruct")


@pytest.mark.parametrize(("value", "stops"), [("none", ()), ("newline", ("\n",)), ("hash", ("###",))])
def test_stop(value: str, stops: tuple[str, ...]) -> None:
    assert _build(f"mmlu:subject=anatomy,stop={value}").adapter_spec.stop_sequences == stops


def test_model_key_names_the_model_run_where_the_description_puts_it() -> None:
    spec = _build("mmlu:subject=anatomy,model=text,max_train_instances=3")
    assert spec.name == ("mmlu:subject=anatomy,method=multiple_choice_joint,model=HuggingFaceTB_SmolLM2-135M-Instruct,"
                         "max_train_instances=3")
    assert spec.name.count("model=") == 1


def test_explicit_method() -> None:
    assert _build("mmlu:subject=anatomy,method=multiple_choice_joint").name.count("method=") == 1


def test_run_spec_to_json() -> None:
    data = _build("mmlu:subject=anatomy").to_json()
    assert data["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.mmlu_scenario.MMLUScenario",
                                     "args": {"subject": "anatomy"}}
    assert data["adapter_spec"]["stop_sequences"] == ["\n"]
    assert "eval_splits" not in data["adapter_spec"]  # None, left out as HELM's asdict_without_nones does
    assert _build("mmlu:subject=anatomy,eval_split=test").to_json()["adapter_spec"]["eval_splits"] == ["test"]


# --- errors -------------------------------------------------------------------------------------------


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        _build(text)
    return excinfo.value


def test_unknown_scenario() -> None:
    error = _error("nosuch:subject=anatomy")
    assert "'nosuch'" in str(error) and "mmlu" in str(error)  # names the known ones


def test_unknown_mmlu_argument() -> None:
    error = _error("mmlu:subject=anatomy,topic=x")
    assert error.field == "topic" and "topic" in str(error)


def test_unknown_method() -> None:
    assert _error("mmlu:subject=anatomy,method=generation").field == "method"


@pytest.mark.parametrize("text", ["mmlu", "mmlu:subject=", "mmlu:max_train_instances=1"])
def test_missing_subject(text: str) -> None:
    error = _error(text)
    assert error.field == "subject" and "subject=" in str(error)


def test_bad_subject_fails_when_building_the_spec() -> None:
    error = _error("mmlu:subject=anatomyy")
    assert error.field == "subject"
    assert "'anatomyy'" in str(error) and "anatomy" in str(error)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("mmlu:subject=anatomy,max_train_instances=five", "max_train_instances"),
        ("mmlu:subject=anatomy,max_train_instances=-1", "max_train_instances"),
        ("mmlu:subject=anatomy,max_train_instances=1.5", "max_train_instances"),
        ("mmlu:subject=anatomy,num_train_trials=0", "num_train_trials"),
        ("mmlu:subject=anatomy,max_tokens=x", "max_tokens"),
        ("mmlu:subject=anatomy,num_outputs=", "num_outputs"),
        ("mmlu:subject=anatomy,temperature=hot", "temperature"),
        ("mmlu:subject=anatomy,stop=comma", "stop"),
        ("mmlu:subject=anatomy,eval_split=train", "eval_split"),
    ],
)
def test_bad_generic_values(text: str, field: str) -> None:
    error = _error(text)
    assert error.field == field
    assert field in str(error)


# --- methods, data augmentation and expansion helpers ------------------------------------------------------


def test_mmlu_separate_method_is_accepted() -> None:
    spec = _build("mmlu:subject=anatomy,method=multiple_choice_separate_original")
    assert spec.adapter_spec.method == "multiple_choice_separate_original"
    assert spec.name.startswith("mmlu:subject=anatomy,method=multiple_choice_separate_original,")


def test_data_augmentation_is_a_generic_key() -> None:
    spec = _build("mmlu:subject=anatomy,data_augmentation=fairness")
    assert [p.name for p in spec.perturbations] == ["gender", "gender", "person_name"]
    assert ",data_augmentation=fairness," in spec.name
    assert _build("mmlu:subject=anatomy").perturbations == []
    assert _error("mmlu:subject=anatomy,data_augmentation=loud").field == "data_augmentation"


def test_with_value_replaces_in_place_or_appends() -> None:
    description = Description.parse("mmlu:subject=anatomy,max_tokens=2")
    assert str(description.with_value("max_tokens", "5")) == "mmlu:subject=anatomy,max_tokens=5"
    assert str(description.with_value("stop", "hash")) == "mmlu:subject=anatomy,max_tokens=2,stop=hash"
