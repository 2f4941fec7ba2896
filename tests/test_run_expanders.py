"""HELM's run expanders in a description: the adapter fields each sets, to HELM's values, and
their effect on the prompts (``helm.benchmark.run_expander`` is the reference)."""

from __future__ import annotations

import re

import pytest

from pytest_llmeval.adapters import adapt
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.run_expanders import EXPANDER_KEYS, NAMED_VALUES, check_description
from pytest_llmeval.runspec import Description, RunSpec, build_run_spec, expand_description
from pytest_llmeval.scenarios import CORRECT_TAG, Instance, Reference

DEPLOYMENT = "local/smollm2-135m-instruct"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
INSTRUCT = ("INSTRUCTION_FOLLOWING_MODEL_TAG",)
MMLU = "mmlu:subject=anatomy"
MMLU_INSTRUCTIONS = "The following are multiple choice questions (with answers) about anatomy."
ICL_PREFIX = ("Here are some input-output examples. Read the examples carefully to figure out the mapping. "
              "The output of the last example is not given, and your job is to figure out what it is.")
ICL_SUFFIX = ("Please provide the output to this last example. "
              "It is critical to follow the format of the preceding outputs!")


def _build(text: str, tags: tuple[str, ...] = ()) -> RunSpec:
    return build_run_spec(Description.parse(text), DEPLOYMENT, MODEL, model_tags=tags)


def _error(text: str, tags: tuple[str, ...] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        _build(text, tags)
    return excinfo.value


# --- each expander sets HELM's fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "fields"), [
    ("instructions=none", {"instructions": ""}),
    ("instructions=expert", {"instructions": "I am an expert AI assistant who is here to help you with the "
                                             "following. " + MMLU_INSTRUCTIONS}),
    ("prompt=qa", {"input_prefix": "Q: ", "output_prefix": "A: "}),
    ("prompt=i_o", {"input_prefix": "I: ", "output_prefix": "O: "}),
    ("prompt=human_assistant", {"input_prefix": 'Human: What is the answer to "', "input_suffix": '"?\n',
                                "output_prefix": 'Assistant: The answer is "', "output_suffix": '".\n',
                                "stop_sequences": ('".',)}),
    ("prompt=input_output_html", {"input_prefix": "<input>", "input_suffix": "</input>\n",
                                  "output_prefix": "<output>", "output_suffix": "</output>\n"}),
    ("newline=br", {"substitutions": (("\n", "<br>\n"),)}),
    ("newline=semicolon", {"substitutions": (("\n", ";\n"),)}),
    ("stop=hash", {"instance_prefix": "###\n\n", "stop_sequences": ("###",)}),
    ("stop=br", {"instance_prefix": "<br>\n\n", "stop_sequences": ("<br>",)}),
    ("stop=semicolon", {"instance_prefix": ";\n\n", "stop_sequences": (";",)}),
    ("stop=none", {"instance_prefix": "\n", "stop_sequences": ()}),
    ("add_to_stop=newline", {"stop_sequences": ("\n", "\n")}),
    ("stop=hash,add_to_stop=END", {"stop_sequences": ("###", "END")}),
    ("format_prompt=Say:", {"input_prefix": "Say:", "output_prefix": ""}),
    ("global_prefix=nlg", {"global_prefix": "[NLG]"}),
    ("max_train_instances=zero", {"max_train_instances": 0, "num_train_trials": 1}),
    ("max_train_instances=0,num_train_trials=3", {"max_train_instances": 0, "num_train_trials": 1}),
    ("max_train_instances=2,num_train_trials=3", {"max_train_instances": 2, "num_train_trials": 3}),
    ("max_eval_instances=default", {"max_eval_instances": 1000}),
    ("max_eval_instances=heim_fid", {"max_eval_instances": 30000}),
    ("num_outputs=default", {"num_outputs": 1}),
    ("num_trials=1", {"num_trials": 1}),
    ("num_output_tokens=40", {"max_tokens": 40}),
    ("num_output_tokens=5,increase_max_tokens=10", {"max_tokens": 15}),
    ("increase_max_tokens=4096", {"max_tokens": 4097}),
    ("temperature=0.3", {"temperature": 0.3}),
    ("temperature=0.3,increase_temperature=0.5", {"temperature": 0.8}),
    ("eval_split=test", {"eval_splits": ("test",)}),
    ("eval_split=valid", {"eval_splits": ("valid",)}),
    ("output_format_instructions=mmlu", {"instructions": "Answer with only a single letter.\n\n"
                                                         + MMLU_INSTRUCTIONS}),
    ("output_format_instructions=med_qa", {"instructions": "Answer with only a single letter.\n\n"
                                                           + MMLU_INSTRUCTIONS}),
    ("output_format_instructions=mcqa_no_period_suffix",
     {"instructions": MMLU_INSTRUCTIONS,
      "global_suffix": "\n\nAnswer with only a single letter. Do not include a period in your answer."}),
    ("output_format_instructions=mmlu_no_prefix",
     {"instructions": "Answer with only a single letter. Do not include 'Answer:' in your answer.\n\n"
                      + MMLU_INSTRUCTIONS}),
    ("instructions=none,output_format_instructions=mmlu", {"instructions": "Answer with only a single letter.\n"}),
])
def test_joint_multiple_choice_fields(extra: str, fields: dict[str, object]) -> None:
    adapter = _build(f"{MMLU},{extra}").adapter_spec
    assert {name: getattr(adapter, name) for name in fields} == fields


@pytest.mark.parametrize(("extra", "fields"), [
    ("follow_format_instructions=all", {"global_prefix": ICL_PREFIX + "\n\n",
                                        "global_suffix": "\n\n" + ICL_SUFFIX + "\nA:"}),
    ("output_format_instructions=narrative_qa",
     {"instructions": "Answer with one word, a few-word phrase, or a short sentence. Avoid extra, unnecessary "
                      "information in the answer.\n"}),
    ("output_format_instructions=natural_qa_short_answer_no_prefix",
     {"instructions": "Answer with a short answer. Do not include 'A:' in your answer.\n"}),
    ("output_format_instructions=legalbench", {"instructions": "Answer with the a.\n"}),  # the output noun, lowered
    ("output_format_instructions=wmt_14_suffix", {"global_suffix": "\n\nAnswer with the English translation."}),
    ("output_format_instructions=math", {"instructions": "Wrap the final answer with the \\boxed{} command.\n"}),
])
def test_generation_fields(extra: str, fields: dict[str, object]) -> None:
    adapter = _build(f"gsm:{extra}").adapter_spec
    assert {name: getattr(adapter, name) for name in fields} == fields


def test_follow_format_instructions_instruct_only_for_instruction_following_models() -> None:
    plain = _build("gsm").adapter_spec
    assert _build("gsm:follow_format_instructions=instruct").adapter_spec == plain
    tagged = _build("gsm:follow_format_instructions=instruct", INSTRUCT).adapter_spec
    assert tagged.global_prefix == ICL_PREFIX + "\n\n"
    assert tagged == _build("gsm:follow_format_instructions=all").adapter_spec


def test_chatml_is_helms_layout() -> None:
    adapter = _build(f"{MMLU},chatml=true").adapter_spec
    assert adapter.instructions == f"<|im_start|>system\n{MMLU_INSTRUCTIONS}<|im_end|>\n<|im_start|>user\n"
    assert (adapter.instance_prefix, adapter.output_suffix) == ("", "<|im_end|>\n<|im_start|>user\n")
    assert adapter.output_prefix == "<|im_end|>\n<|im_start|>assistant\nAnswer: "
    assert adapter.stop_sequences == ("\n", "<|im_end|>")


def test_expanders_apply_in_the_order_written() -> None:
    assert _build(f"{MMLU},stop=none,add_to_stop=X").adapter_spec.stop_sequences == ("X",)
    assert _build(f"{MMLU},add_to_stop=X,stop=none").adapter_spec.stop_sequences == ()
    assert _build(f"{MMLU},increase_max_tokens=3,num_output_tokens=5").adapter_spec.max_tokens == 5


HELM_SAMPLES = {  # each key of HELM's RUN_EXPANDERS with a value HELM's expander takes
    "instructions": "none", "prompt": "qa", "newline": "br", "stop": "hash", "format_prompt": "Q", "add_to_stop": "X",
    "follow_format_instructions": "instruct", "global_prefix": "nlg", "num_train_trials": "2",
    "max_train_instances": "one", "max_eval_instances": "default", "num_outputs": "default", "num_trials": "1",
    "model": "text", "model_deployment": DEPLOYMENT, "data_augmentation": "robustness", "tokenizer": "huggingface/gpt2",
    "num_prompt_tokens": "256", "num_output_tokens": "4", "chatml": "true", "eval_split": "test",
    "output_format_instructions": "mmlu", "temperature": "0.3", "increase_temperature": "0.1",
    "increase_max_tokens": "2",
    "process_output": "helm.benchmark.metrics.output_processors.remove_deepseek_r1_thinking",
}


@pytest.mark.parametrize(("key", "value"), HELM_SAMPLES.items())
def test_every_helm_key_is_a_run_expander_not_a_scenario_argument(key: str, value: str) -> None:
    assert key in EXPANDER_KEYS
    try:
        _build(f"{MMLU},{key}={value}")
    except ConfigError as exc:  # only what this plugin cannot do, named by the key; never mmlu's unknown argument
        assert exc.field == key and "unknown argument" not in str(exc), str(exc)


# --- named values, several runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "values"), [
    ("max_train_instances=all", ["0", "1", "2", "4", "8", "16"]),
    ("max_train_instances=big_bench_few_shot_setting", ["0", "1", "2", "3"]),
    ("max_train_instances=melt", ["0", "1", "5"]),
    ("num_output_tokens=default_sweep", ["1", "2", "4", "8", "16", "32", "64"]),
    ("num_outputs=copyright_sweep", ["1", "10"]),
    ("max_eval_instances=default", ["1000"]),
    ("max_train_instances=3", ["3"]),
])
def test_named_values_become_runs(text: str, values: list[str]) -> None:
    key = text.partition("=")[0]
    runs = expand_description(Description.parse(f"{MMLU},{text}"))
    assert [r.get(key) for r in runs] == values
    for run in runs:
        assert getattr(_build(str(run)).adapter_spec, key if key != "num_output_tokens" else "max_tokens") \
            == int(run.get(key) or 0)


def test_a_name_for_several_runs_is_expanded_first() -> None:
    assert set(NAMED_VALUES["max_train_instances"]) >= {"all", "zero"}
    error = _error(f"{MMLU},max_train_instances=all")
    assert error.field == "max_train_instances" and "several runs" in str(error)


# --- what this plugin cannot do fails the run, naming the key ----------------------------------------------


@pytest.mark.parametrize(("extra", "field"), [
    ("num_trials=5", "num_trials"), ("num_trials=heim_efficiency", "num_trials"),
    ("process_output=helm.benchmark.metrics.output_processors.remove_deepseek_r1_thinking", "process_output"),
    ("tokenizer=default", "tokenizer"), ("tokenizer=huggingface/gpt2", "tokenizer"),
    ("num_prompt_tokens=256", "num_prompt_tokens"),
    ("data_augmentation=misspelling_mild", "data_augmentation"),
    ("follow_format_instructions=all", "follow_format_instructions"),  # generation only, as in HELM
])
def test_unsupported_fails_the_run_naming_the_key(extra: str, field: str) -> None:
    check_description(Description.parse(f"{MMLU},{extra}"))  # accepted when the file is read
    error = _error(f"{MMLU},{extra}")
    assert error.field == field and "\n" not in str(error), str(error)


def test_unknown_output_format_for_generation_names_the_key() -> None:
    error = _error("gsm:output_format_instructions=nosuch")
    assert error.field == "output_format_instructions" and "narrative_qa" in str(error)


@pytest.mark.parametrize(("extra", "field", "hint"), [
    ("stop=hashes", "stop", "hash"), ("prompt=q_a", "prompt", "qa"), ("newline=brr", "newline", "br"),
    ("follow_format_instructions=instructed", "follow_format_instructions", "instruct"),
    ("global_prefix=nl", "global_prefix", "nlg"), ("eval_split=tests", "eval_split", "test"),
    ("num_output_tokens=many", "num_output_tokens", "whole number"),
    ("increase_temperature=warm", "increase_temperature", "number"),
    ("max_eval_instances=0", "max_eval_instances", "at least 1"),
    ("data_augmentation=typos", "data_augmentation", "typo_easy"),
])
def test_bad_values_are_caught_when_read(extra: str, field: str, hint: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_description(Description.parse(f"{MMLU},{extra}"))
    assert excinfo.value.field == field and hint in str(excinfo.value), str(excinfo.value)


def test_a_typo_of_a_key_suggests_it() -> None:
    error = _error(f"{MMLU},max_train_instance=0")
    assert error.field == "max_train_instance" and "did you mean max_train_instances?" in str(error)


# --- the prompts ---------------------------------------------------------------------------------------------


def _instances() -> list[Instance]:
    def one(text: str, answer: str, split: str) -> Instance:
        return Instance(text, (Reference(answer, (CORRECT_TAG,)), Reference("other")), split)

    return [one("2+2?", "4", "train"), one("3+3?", "6", "train"), one("1+1?", "2", "test")]


def _prompt(text: str, tags: tuple[str, ...] = ()) -> str:
    [state] = adapt(_build(text, tags).adapter_spec, _instances())
    return state.request.prompt


def test_newline_substitution_rewrites_the_finished_prompt() -> None:
    plain, br = _prompt(f"{MMLU},max_train_instances=2"), _prompt(f"{MMLU},max_train_instances=2,newline=br")
    assert br == re.sub("\n", "<br>\n", plain) and br.count("<br>\n") == plain.count("\n") > 3


def test_stop_hash_separates_instances_in_the_prompt() -> None:
    prompt = _prompt(f"{MMLU},max_train_instances=2,stop=hash")
    assert prompt.count("###\n\n") == 3  # after the instructions and each of the two examples
    [state] = adapt(_build(f"{MMLU},stop=hash").adapter_spec, _instances())
    assert state.request.stop_sequences == ("###",)


def test_follow_format_instructions_wrap_the_prompt() -> None:
    prompt = _prompt("gsm:max_train_instances=1,follow_format_instructions=instruct", INSTRUCT)
    assert prompt.startswith(ICL_PREFIX + "\n\nQ: ")
    assert prompt.endswith("A:\n\n" + ICL_SUFFIX + "\nA:")


def test_global_prefix_and_output_format_suffix_in_the_prompt() -> None:
    prompt = _prompt(f"{MMLU},global_prefix=nlg,output_format_instructions=mmlu_suffix")
    assert prompt.startswith("[NLG]" + MMLU_INSTRUCTIONS)
    assert prompt.endswith("Answer:\n\nAnswer with only a single letter.")
