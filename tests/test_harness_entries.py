"""``lm_eval:task=...`` entries: argument parsing, group and tag expansion over lm-eval's own task
index, the task's main metric, and gates written with lm-eval's ``metric,filter`` names.

Every test that needs lm-eval's TaskManager index is in this module (it takes seconds to build
and is built once per process by ``task_manager()``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.gates import Gate
from pytest_llmeval.harness.entries import lm_eval_spec, main_metric, task_settings
from pytest_llmeval.harness.outcome import DEFAULT_SEEDS, HarnessTask
from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.runspec import Description


def settings(text: str) -> HarnessTask:
    return task_settings(Description.parse(text))


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings(text)
    return caught.value


# --- arguments ------------------------------------------------------------------------------


def test_a_bare_task_has_lm_evals_defaults() -> None:
    assert settings("lm_eval:task=hellaswag") == HarnessTask(task="hellaswag")
    plain = settings("lm_eval:task=hellaswag")
    assert (plain.num_fewshot, plain.fewshot_as_multiturn, plain.apply_chat_template, plain.system_instruction,
            plain.gen_kwargs, plain.seeds, plain.groups, plain.confirm_run_unsafe_code) == (
        None, False, False, None, "", DEFAULT_SEEDS, (), False)
    assert DEFAULT_SEEDS == (0, 1234, 1234, 1234)  # lm_eval --seed's default


def test_every_argument_parses() -> None:
    parsed = settings("lm_eval:task=gsm8k,group=mmlu;mmlu_stem,num_fewshot=5,fewshot_as_multiturn=true,"
                      "apply_chat_template=true,system_instruction=Answer briefly.,"
                      "gen_kwargs=max_gen_toks=64;temperature=0,seed=42,confirm_run_unsafe_code=yes")
    assert parsed == HarnessTask(task="gsm8k", groups=("mmlu", "mmlu_stem"), num_fewshot=5,
                                 fewshot_as_multiturn=True, apply_chat_template=True,
                                 system_instruction="Answer briefly.", gen_kwargs="max_gen_toks=64,temperature=0",
                                 seeds=(42, 42, 42, 42), confirm_run_unsafe_code=True)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("5", 5), ("25", 25)])
def test_num_fewshot(value: str, expected: int) -> None:
    assert settings(f"lm_eval:task=hellaswag,num_fewshot={value}").num_fewshot == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("false", False), ("FALSE", False), ("0", False),
    ("no", False)])
def test_flags(value: str, expected: bool) -> None:
    parsed = settings(f"lm_eval:task=hellaswag,fewshot_as_multiturn={value},confirm_run_unsafe_code={value}")
    assert parsed.fewshot_as_multiturn is expected and parsed.confirm_run_unsafe_code is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("yes", True), ("false", False), ("0", False), ("tool_use", "tool_use"), ("default", "default")])
def test_apply_chat_template_is_a_flag_or_a_template_name(value: str, expected: bool | str) -> None:
    assert settings(f"lm_eval:task=hellaswag,apply_chat_template={value}").apply_chat_template == expected


def test_system_instruction() -> None:
    assert settings("lm_eval:task=hellaswag,system_instruction=You are a careful grader.").system_instruction == (
        "You are a careful grader.")
    assert settings("lm_eval:task=hellaswag,system_instruction=").system_instruction is None


def test_gen_kwargs_semicolons_are_lm_evals_commas() -> None:
    from lm_eval.utils import simple_parse_args_string

    parsed = settings("lm_eval:task=gsm8k,gen_kwargs=max_gen_toks=64;temperature=0;do_sample=false")
    assert parsed.gen_kwargs == "max_gen_toks=64,temperature=0,do_sample=false"
    # simple_evaluate parses the string as lm_eval's --gen_kwargs
    assert simple_parse_args_string(parsed.gen_kwargs) == {"max_gen_toks": 64, "temperature": 0, "do_sample": False}
    assert settings("lm_eval:task=gsm8k,gen_kwargs=temperature=0.5").gen_kwargs == "temperature=0.5"


@pytest.mark.parametrize(("value", "expected"), [
    ("42", (42, 42, 42, 42)),
    ("0", (0, 0, 0, 0)),
    ("1;2;3;4", (1, 2, 3, 4)),
    ("1; 2 ;3;4", (1, 2, 3, 4)),
    ("None;1234;None;7", (None, 1234, None, 7)),
])
def test_seed_is_one_number_or_four(value: str, expected: tuple[int | None, ...]) -> None:
    assert settings(f"lm_eval:task=hellaswag,seed={value}").seeds == expected


def test_group_names_the_groups_outermost_first() -> None:
    assert settings("lm_eval:task=mmlu_anatomy,group=mmlu").groups == ("mmlu",)
    assert settings("lm_eval:task=mmlu_anatomy,group=mmlu;mmlu_stem").groups == ("mmlu", "mmlu_stem")


@pytest.mark.parametrize(("text", "field", "says"), [
    ("lm_eval:num_fewshot=5", "task", "names no task"),
    ("lm_eval:task=", "task", "names no task"),
    ("lm_eval:task=hellaswag,num_fewshot=five", "num_fewshot", "'five' is not a whole number"),
    ("lm_eval:task=hellaswag,num_fewshot=2.5", "num_fewshot", "is not a whole number"),
    ("lm_eval:task=hellaswag,num_fewshot=-1", "num_fewshot", "is negative"),
    ("lm_eval:task=hellaswag,fewshot_as_multiturn=maybe", "fewshot_as_multiturn", "is not true or false"),
    ("lm_eval:task=hellaswag,confirm_run_unsafe_code=sure", "confirm_run_unsafe_code", "is not true or false"),
    ("lm_eval:task=gsm8k,gen_kwargs=max_gen_toks", "gen_kwargs", "'max_gen_toks' is not key=value"),
    ("lm_eval:task=gsm8k,gen_kwargs=temperature=0;greedy", "gen_kwargs", "'greedy' is not key=value"),
    ("lm_eval:task=hellaswag,seed=abc", "seed", "is not a number"),
    ("lm_eval:task=hellaswag,seed=1.5", "seed", "is not a number"),
    ("lm_eval:task=hellaswag,seed=1;2", "seed", "needs one number or four"),
    ("lm_eval:task=hellaswag,seed=1;2;3;4;5", "seed", "needs one number or four"),
])
def test_bad_values_name_the_field(text: str, field: str, says: str) -> None:
    error = config_error(text)
    assert error.field == field
    assert says in str(error)
    assert f"field {field}" in str(error)
    assert "\n" not in str(error)


def test_unknown_argument_is_rejected_with_what_the_entry_takes() -> None:
    error = config_error("lm_eval:task=hellaswag,shots=3")
    assert error.field == "shots"
    assert "unknown argument(s) shots" in str(error)
    assert "num_fewshot" in str(error) and "gen_kwargs" in str(error)


def test_run_spec_names_each_setting() -> None:
    spec = lm_eval_spec(Description.parse("lm_eval:task=mmlu_anatomy,group=mmlu,num_fewshot=5"))
    assert spec.name == "lm_eval:task=mmlu_anatomy,group=mmlu,num_fewshot=5"
    assert spec.groups == ["lm_eval", "mmlu"]
    assert spec.harness == HarnessTask(task="mmlu_anatomy", groups=("mmlu",), num_fewshot=5)
    assert spec.adapter_spec.max_train_instances == 5
    assert spec.scenario_args["task_name"] == "mmlu_anatomy"


# --- main_metric from a config (no index needed) --------------------------------------------


@pytest.mark.parametrize(("config", "expected"), [
    ({"metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}, "acc"),
    ({"metric_list": [{"metric": "exact_match"}], "filter_list": [{"name": "strict-match"}, {"name": "flex"}]},
     "exact_match,strict-match"),
    ({"metric_list": [{"metric": "f1"}], "filter_list": [{"name": "none"}]}, "f1"),
    ({"output_type": "generate_until"}, "exact_match"),
    ({"output_type": "loglikelihood_rolling"}, "word_perplexity"),
    ({"output_type": "multiple_choice"}, "acc"),
    ({}, "acc"),
])
def test_main_metric_of_a_config(config: dict[str, Any], expected: str) -> None:
    assert main_metric(config) == expected


# --- gates with lm-eval's names -------------------------------------------------------------


def _stat(name: str, split: str, *values: float) -> Stat:
    stat = Stat(MetricName(name, split))
    for value in values:
        stat.add(value)
    return stat


@pytest.mark.parametrize(("text", "expected"), [
    ("exact_match,strict-match >= 0.3", Gate("exact_match,strict-match", ">=", 0.3)),
    ("exact_match,flexible-extract>0.25", Gate("exact_match,flexible-extract", ">", 0.25)),
    ("acc,none >= 0.5", Gate("acc", ">=", 0.5)),
    ("acc_norm,none@valid < 0.9", Gate("acc_norm", "<", 0.9, "valid")),
    ("exact_match,strict-match@test >= 0.1", Gate("exact_match,strict-match", ">=", 0.1, "test")),
    ("word_perplexity,none <= 40", Gate("word_perplexity", "<=", 40.0)),
    ("acc >= 0.5", Gate("acc", ">=", 0.5)),
])
def test_gate_parse_takes_lm_eval_metric_names(text: str, expected: Gate) -> None:
    assert Gate.parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("exact_match,strict-match=0.3", Gate("exact_match,strict-match", ">=", 0.3)),
    ("acc,none=0.4", Gate("acc", ">=", 0.4)),
    ("acc,none@valid=0.4", Gate("acc", ">=", 0.4, "valid")),
    ("inference_runtime=2", Gate("inference_runtime", "<=", 2.0)),  # a cost: a ceiling
    ("exact_match,strict-match >= 0.3", Gate("exact_match,strict-match", ">=", 0.3)),  # a full gate
])
def test_fail_under_takes_lm_eval_metric_names(text: str, expected: Gate) -> None:
    assert Gate.fail_under(text) == expected


@pytest.mark.parametrize("text", ["exact_match, strict-match >= 0.3", "exact_match,strict match >= 0.3",
                                  "acc,none,extra >= 0.5", ",none >= 0.5", "acc, >= 0.5"])
def test_malformed_filtered_names_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="is not '<metric> <op> <number>'"):
        Gate.parse(text)


def test_filtered_gates_check_the_filtered_stat() -> None:
    stats = [_stat("exact_match,strict-match", "test", 1, 0, 0, 0), _stat("exact_match,flexible-extract", "test", 1, 1),
             _stat("acc", "valid", 1, 1, 0)]
    assert Gate.parse("exact_match,strict-match >= 0.25").check(stats) is None
    failed = Gate.parse("exact_match,strict-match >= 0.3").check(stats)
    assert failed is not None and "exact_match,strict-match = 0.2500" in failed
    assert Gate.fail_under("exact_match,flexible-extract=1").check(stats) is None
    assert Gate.parse("acc,none >= 0.6").check(stats) is None  # `acc,none` is the stat `acc`
    assert Gate.fail_under("acc,none@valid=0.7") .check(stats) is not None
    missing = Gate.parse("exact_match,none >= 0.1").check(stats)  # no unfiltered exact_match was computed
    assert missing is not None and "was not computed" in missing and "exact_match,strict-match" in missing


def test_gate_on_a_filter_named_with_an_at_sign() -> None:
    assert Gate.parse("exact_match,maj@64 >= 0.3") == Gate("exact_match,maj@64", ">=", 0.3)
    assert Gate.parse("exact_match,maj@8@test >= 0.3") == Gate("exact_match,maj@8", ">=", 0.3, "test")


# --- lm-eval's task index (built once per process) ------------------------------------------

SOCIAL_SCIENCES = ["econometrics", "high_school_geography", "high_school_government_and_politics",
                   "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
                   "human_sexuality", "professional_psychology", "public_relations", "security_studies",
                   "sociology", "us_foreign_policy"]


@pytest.fixture(scope="module")
def index() -> Any:
    pytest.importorskip("lm_eval")
    from pytest_llmeval.harness.task_index import task_manager

    return task_manager(())


def expand(text: str) -> list[str]:
    from pytest_llmeval.harness.entries import expand_entry

    return [str(d) for d in expand_entry(Description.parse(text), ())]


def test_expand_a_task_gives_the_entry_itself(index: Any) -> None:
    from pytest_llmeval.harness.entries import expand_entry

    description = Description.parse("lm_eval:task=hellaswag,num_fewshot=5")
    assert expand_entry(description, ()) == [description]


def test_expand_a_group_gives_one_item_per_task_naming_the_group(index: Any) -> None:
    items = expand("lm_eval:task=mmlu_social_sciences,num_fewshot=5")
    assert sorted(items) == sorted(f"lm_eval:task=mmlu_{s},num_fewshot=5,group=mmlu_social_sciences"
                                   for s in SOCIAL_SCIENCES)
    # the same tasks as lm-eval's index puts under the group (through its tag)
    (tag,) = index.task_index["mmlu_social_sciences"].cfg["task"]
    assert sorted(i.split(",")[0].removeprefix("lm_eval:task=") for i in items) == sorted(
        index.task_index[tag].tags)
    assert all(settings(i).groups == ("mmlu_social_sciences",) for i in items)


def test_expand_a_nested_group_names_every_group_outermost_first(index: Any) -> None:
    items = [settings(i) for i in expand("lm_eval:task=mmlu")]
    assert len(items) == 57
    assert {s.groups for s in items} == {("mmlu", "mmlu_stem"), ("mmlu", "mmlu_other"),
                                         ("mmlu", "mmlu_social_sciences"), ("mmlu", "mmlu_humanities")}
    assert next(s.groups for s in items if s.task == "mmlu_sociology") == ("mmlu", "mmlu_social_sciences")
    assert len({s.task for s in items}) == 57


def test_expand_a_tag_gives_its_tasks_without_a_group(index: Any) -> None:
    assert index.task_index["ai2_arc"].kind.name == "TAG"
    assert expand("lm_eval:task=ai2_arc") == ["lm_eval:task=arc_challenge", "lm_eval:task=arc_easy"]
    assert expand("lm_eval:task=ai2_arc,num_fewshot=25") == ["lm_eval:task=arc_challenge,num_fewshot=25",
                                                              "lm_eval:task=arc_easy,num_fewshot=25"]


@pytest.mark.parametrize(("name", "hint"), [("hellaswagg", "hellaswag"), ("gsm8", "gsm8k"),
                                            ("mmlu_anatomyy", "mmlu_anatomy")])
def test_unknown_task_gives_a_did_you_mean_hint(index: Any, name: str, hint: str) -> None:
    from pytest_llmeval.harness.entries import expand_entry

    with pytest.raises(ConfigError) as caught:
        expand_entry(Description.parse(f"lm_eval:task={name}"), ())
    message = str(caught.value)
    assert f"unknown lm-eval task {name!r}" in message
    assert "did you mean" in message and hint in message.split("did you mean", 1)[1]
    assert caught.value.field == "task"


def test_unknown_task_far_from_any_name_has_no_hint(index: Any) -> None:
    from pytest_llmeval.harness.entries import expand_entry

    with pytest.raises(ConfigError) as caught:
        expand_entry(Description.parse("lm_eval:task=zzzzqqqqxxxx"), ())
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(("task", "expected"), [("hellaswag", "acc"), ("gsm8k", "exact_match,strict-match"),
                                                ("arc_easy", "acc"), ("mmlu_anatomy", "acc")])
def test_main_metric_from_lm_evals_config(index: Any, task: str, expected: str) -> None:
    assert main_metric(dict(index.task_index[task].cfg or {})) == expected


def test_complete_sets_the_main_metric_and_include_paths(index: Any) -> None:
    from pytest_llmeval.harness.entries import complete

    spec = complete(lm_eval_spec(Description.parse("lm_eval:task=gsm8k")), ())
    assert spec.main_metric == "exact_match,strict-match"
    assert spec.harness is not None and spec.harness.include_paths == ()
    with pytest.raises(ConfigError, match="unknown lm-eval task 'no_such_task'"):
        complete(lm_eval_spec(Description.parse("lm_eval:task=no_such_task")), ())


def test_group_infos_carry_the_config_tasks_and_subgroups(index: Any) -> None:
    from pytest_llmeval.harness.task_index import GroupInfo, group_infos

    mmlu, social = group_infos(["mmlu", "mmlu_social_sciences"])
    assert (mmlu.name, len(mmlu.tasks)) == ("mmlu", 57)
    assert mmlu.subgroups == ("mmlu_humanities", "mmlu_other", "mmlu_social_sciences", "mmlu_stem")
    assert mmlu.config["aggregate_metric_list"] == [{"metric": "acc", "weight_by_size": True}]
    assert "task" not in mmlu.config
    assert sorted(social.tasks) == sorted(f"mmlu_{s}" for s in SOCIAL_SCIENCES)
    assert social.subgroups == ()
    assert social.config["group_alias"] == "social sciences"
    assert set(social.tasks) < set(mmlu.tasks)
    assert GroupInfo.from_json(mmlu.to_json()) == mmlu


def test_group_infos_feed_lm_evals_aggregate(index: Any) -> None:
    """The index's GroupInfo of mmlu_social_sciences aggregates two tasks' results as lm-eval does."""
    from types import SimpleNamespace

    from lm_eval.api.metrics import aggregate_subtask_metrics, pooled_sample_stderr

    from pytest_llmeval.harness.groups import group_aggregates
    from pytest_llmeval.harness.task_index import group_infos

    (info,) = group_infos(["mmlu_social_sciences"])
    results = {"mmlu_sociology": (0.6, 0.03, 201), "mmlu_econometrics": (0.3, 0.04, 114)}
    records = [SimpleNamespace(model="m", outcome="pass", lm_eval={
        "task": task, "metrics": {"acc,none": acc, "acc_stderr,none": se, "sample_len": n},
        "groups": [info.to_json()]}) for task, (acc, se, n) in results.items()]
    (row,) = group_aggregates(records)
    accs, ses, sizes = zip(*results.values())
    assert (row["group"], row["alias"], row["tasks"], row["of"]) == ("mmlu_social_sciences", "social sciences", 2, 12)
    assert row["metrics"]["acc,none"] == pytest.approx(aggregate_subtask_metrics(list(accs), list(sizes)))
    assert row["metrics"]["acc_stderr,none"] == pytest.approx(pooled_sample_stderr(list(ses), list(sizes)))


def test_a_task_whose_scored_split_the_mirror_lacks_fails_with_the_data_error(index: Any, tmp_path: Path) -> None:
    """arc_easy scores test, which the mirror lacks: lm-eval's task build reads the first scored
    document of the empty stand-in (an IndexError); the run fails with the one-line data error instead."""
    from pytest_llmeval.clients.protocol import ClientBase
    from pytest_llmeval.errors import DataNotFoundError
    from pytest_llmeval.harness.entries import complete
    from pytest_llmeval.harness.task_run import execute_task
    from pytest_llmeval.run_result import RunFailed
    from pytest_llmeval.scenarios.data import DATA_DIR_ENV, DataLocator

    mirror = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
    arc = mirror / "hf" / "allenai" / "ai2_arc" / "ARC-Easy"
    if not (arc / "validation").is_dir() or (arc / "test").exists():
        pytest.skip(f"needs a mirror with ARC-Easy's validation split and not its test split ({arc})")

    class NoRequests(ClientBase):
        def generate(self, requests: Any) -> Any:
            raise AssertionError("no request should be sent")

    spec = lm_eval_spec(Description.parse("lm_eval:task=arc_easy"))
    spec = dataclasses.replace(spec, adapter_spec=dataclasses.replace(
        spec.adapter_spec, model_deployment="local/none", model="none/none"))
    with pytest.raises(RunFailed) as caught:
        execute_task(complete(spec, ()), NoRequests(), DataLocator(mirror=mirror, cache=None), tmp_path, "suite", 2)
    error = caught.value.error
    assert isinstance(error, DataNotFoundError), f"{type(error).__name__}: {error}"
    assert "\n" not in str(error)
    assert "allenai/ai2_arc" in str(error) and "split 'test'" in str(error)
    assert f"{arc / 'test'}/" in str(error)
