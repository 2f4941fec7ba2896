"""HELM's run expanders: the keys every run entry's description takes, whatever the scenario.

``mmlu:subject=anatomy,stop=hash,prompt=qa,max_train_instances=all`` names a scenario, its own
arguments, and run expanders (``helm.benchmark.run_expander.RUN_EXPANDERS``) that change the run
spec the scenario built: each sets the adapter fields HELM's sets, to HELM's values, in the
order the description lists them. A named value that stands for several (``all``, ``default_sweep``)
becomes one run per value when the entry is read (:func:`value_choices`); a value of the wrong
form stops collection (:func:`check_description`); what needs something this plugin does not
have (a request seed, HELM's metric classes, another tokenizer) fails its run with one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from pytest_llmeval import run_expander_texts as texts
from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.perturbations import DATA_AUGMENTATIONS, perturbations_for

if TYPE_CHECKING:
    from pytest_llmeval.runspec import Description, RunSpec

INSTRUCTION_FOLLOWING_MODEL_TAG = "INSTRUCTION_FOLLOWING_MODEL_TAG"

# HELM's RUN_EXPANDERS, in HELM's order, then this plugin's own ``max_tokens``.
EXPANDER_KEYS = ("instructions", "prompt", "newline", "stop", "format_prompt", "follow_format_instructions",
                 "add_to_stop", "global_prefix", "num_train_trials", "max_train_instances", "max_eval_instances",
                 "num_outputs", "num_trials", "model", "model_deployment", "data_augmentation", "tokenizer",
                 "num_prompt_tokens", "num_output_tokens", "chatml", "eval_split", "output_format_instructions",
                 "temperature", "increase_temperature", "increase_max_tokens", "process_output", "max_tokens")

# HELM's ``values_dict``s: a name that stands for one value or several runs.
NAMED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "max_train_instances": {"zero": ("0",), "one": ("1",), "all": ("0", "1", "2", "4", "8", "16"),
                            "big_bench_few_shot_setting": ("0", "1", "2", "3"), "vhelm": ("0", "1", "2", "4", "8"),
                            "melt": ("0", "1", "5")},
    "max_eval_instances": {"default": ("1000",), "heim_default": ("100",), "heim_fid": ("30000",),
                           "heim_art_styles": ("17",)},
    "num_outputs": {"default": ("1",), "copyright_sweep": ("1", "10")},
    "num_trials": {"heim_efficiency": ("5",)},
    "num_prompt_tokens": {"default_sweep": ("1", "256", "512", "1024", "1536")},
    "num_output_tokens": {"default_sweep": ("1", "2", "4", "8", "16", "32", "64")},
}

# The keys whose value is one of a fixed set (HELM's, then this plugin's extras after them).
CHOICES: dict[str, tuple[str, ...]] = {
    "prompt": tuple(texts.PROMPTS),
    "newline": tuple(texts.NEWLINES),
    "stop": ("none", *texts.STOPS, "newline", "period"),
    "follow_format_instructions": ("all", "instruct"),
    "global_prefix": ("nlg",),
    "eval_split": ("test", "valid", "all"),
    "chatml": ("true",),
}
# HELM's PERTURBATION_SPECS_DICT names: accepted in any entry; a run needs one this plugin has.
HELM_DATA_AUGMENTATIONS = (
    "extra_space", "contrast_sets", "space", "lower", "contract", "filler", "misspelling_mild", "misspelling_medium",
    "misspelling_hard", "misspelling_sweep", "typo_easy", "typo_medium", "typo_hard", "synonym", "dialect_easy",
    "dialect_medium", "dialect_hard", "dialect_deterministic", "person_name_first_hard_preserve_gender",
    "person_name_first_hard_dont_preserve_gender", "person_name_first_deterministic",
    "person_name_last_deterministic", "person_name_last_hard", "gender_terms_easy", "gender_terms_medium",
    "gender_terms_hard", "gender_terms_deterministic", "gender_pronouns_easy", "gender_pronouns_medium",
    "gender_pronouns_hard", "gender_pronouns_deterministic", "robustness", "fairness", "canonical",
    "robustness_all", "cleva_robustness", "cleva_fairness", "cleva", "chinese", "hindi", "spanish", "swahili", "art")
# Whole numbers and their least value (None: any); numbers (temperatures).
WHOLE: dict[str, int | None] = {"num_train_trials": 1, "max_train_instances": 0, "max_eval_instances": 1,
                                "num_outputs": 1, "num_trials": 1, "num_prompt_tokens": 0, "num_output_tokens": 0,
                                "max_tokens": 0, "increase_max_tokens": None}
NUMBERS = ("temperature", "increase_temperature")


def value_choices(key: str, value: str) -> tuple[str, ...] | None:
    """The values a named value stands for (``max_train_instances=all`` -> 0, 1, 2, 4, 8, 16), or None."""
    return NAMED_VALUES.get(key, {}).get(value)


def check_description(description: Description) -> None:
    """Every run-expander value in ``description`` has a form HELM accepts; else a ConfigError
    naming the key (the scenario's own arguments are the scenario's to check)."""
    for key, value in description.args:
        _checked(description, key, value)


def _checked(description: Description, key: str, value: str) -> str | int | float:
    """``value`` as the expander uses it: a named value resolved, a number parsed."""
    named = value_choices(key, value)
    if named is not None:
        if len(named) > 1:
            raise ConfigError(f"{key}={value} in {description} stands for several runs ({', '.join(named)}); "
                              f"expand the description first", field=key)
        value = named[0]
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key}={value!r} in {description}: use one of {', '.join(CHOICES[key])}"
                          f"{_close(value, CHOICES[key])}", field=key)
    if key == "data_augmentation" and value not in HELM_DATA_AUGMENTATIONS and value not in DATA_AUGMENTATIONS:
        raise ConfigError(f"data_augmentation={value!r} in {description}: not one of HELM's data augmentations"
                          f"{_close(value, HELM_DATA_AUGMENTATIONS)}; the ones implemented here: "
                          f"{', '.join(DATA_AUGMENTATIONS)}", field=key)
    if key in WHOLE:
        try:
            number = int(value)
        except ValueError as exc:
            raise ConfigError(f"{key}={value!r} in {description} is not a whole number", field=key) from exc
        least = WHOLE[key]
        if least is not None and number < least:
            words = "must not be negative" if least == 0 else f"must be at least {least}"
            raise ConfigError(f"{key}={value!r} in {description} {words}", field=key)
        return number
    if key in NUMBERS:
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"{key}={value!r} in {description} is not a number", field=key) from exc
    return value


def _close(value: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def close_expander_key(key: str) -> str | None:
    """The run-expander key ``key`` is likely a typo of (``max_train_instance``), if any."""
    close = difflib.get_close_matches(key, EXPANDER_KEYS, n=1, cutoff=0.8)
    return close[0] if close and close[0] != key else None


# --- applying them --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Context:
    description: Description
    model_tags: Collection[str]


_Apply = Callable[["RunSpec", "str | int | float", _Context], "RunSpec"]


def apply_run_expanders(spec: RunSpec, description: Description, model_tags: Collection[str] = ()) -> RunSpec:
    """``spec`` changed by each run expander ``description`` names, in its order, as HELM's
    ``construct_run_specs`` does; ``model_tags`` (the model's metadata tags) decide
    ``follow_format_instructions=instruct``. Then helm-run's rule: no examples, one train trial."""
    context = _Context(description, model_tags)
    for key, raw in description.args:
        apply = _APPLY.get(key)
        if apply is not None:
            spec = apply(spec, _checked(description, key, raw), context)
    if spec.adapter_spec.max_train_instances == 0:
        spec = _adapter(spec, num_train_trials=1)
    return spec


def _adapter(spec: RunSpec, **changes: object) -> RunSpec:
    return dataclasses.replace(spec, adapter_spec=spec.adapter_spec.replace(**changes))


def _field(name: str) -> _Apply:
    """HELM's ReplaceValueRunExpander: one adapter field set to the value."""
    return lambda spec, value, _: _adapter(spec, **{name: value})


def _instructions(spec: RunSpec, value: str | int | float, _: _Context) -> RunSpec:
    if value == "none":
        return _adapter(spec, instructions="")
    if value == "expert":
        return _adapter(spec, instructions=texts.EXPERT_INSTRUCTIONS + spec.adapter_spec.instructions)
    return _adapter(spec, instructions=str(value))  # this plugin's: any other value is the instructions' text


def _stop(spec: RunSpec, value: str | int | float, _: _Context) -> RunSpec:
    if value == "none":
        return _adapter(spec, stop_sequences=())
    if value in texts.STOPS:
        stop = texts.STOPS[str(value)]
        return _adapter(spec, instance_prefix=f"{stop}\n\n", stop_sequences=(stop,))
    return _adapter(spec, stop_sequences=({"newline": "\n", "period": "."}[str(value)],))  # this plugin's two


def _add_to_stop(spec: RunSpec, value: str | int | float, _: _Context) -> RunSpec:
    stop = "\n" if value == "newline" else str(value)
    return _adapter(spec, stop_sequences=(*spec.adapter_spec.stop_sequences, stop))


def _follow_format(spec: RunSpec, value: str | int | float, context: _Context) -> RunSpec:
    adapter = spec.adapter_spec
    if adapter.method != ADAPT_GENERATION:
        raise ConfigError(f"follow_format_instructions in {context.description} only supports the generation "
                          f"method, not {adapter.method}", field="follow_format_instructions")
    if value == "instruct" and INSTRUCTION_FOLLOWING_MODEL_TAG not in context.model_tags:
        return spec
    return _adapter(spec, global_prefix=texts.IN_CONTEXT_LEARNING_INSTRUCTIONS_PREFIX + "\n\n",
                    global_suffix="\n\n" + texts.IN_CONTEXT_LEARNING_INSTRUCTIONS_SUFFIX + "\n"
                    + adapter.output_prefix.strip())


def _output_format(spec: RunSpec, value: str | int | float, context: _Context) -> RunSpec:
    adapter = spec.adapter_spec
    scenario, suffix, no_prefix = str(value), False, False
    if scenario.endswith(texts.SUFFIX_OPTION):
        scenario, suffix = scenario.removesuffix(texts.SUFFIX_OPTION), True
    if scenario.endswith(texts.NO_PREFIX_OPTION):
        scenario, no_prefix = scenario.removesuffix(texts.NO_PREFIX_OPTION), True
    try:
        instructions = texts.output_format_instructions(scenario, adapter.method, adapter.output_prefix)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (in {context.description})", field=exc.field) from None
    if no_prefix:
        instructions += f"{' ' if instructions else ''}Do not include '{adapter.output_prefix.strip()}' in your answer."
    if suffix:
        return _adapter(spec, global_suffix=f"{adapter.global_suffix}\n\n{instructions}")
    return _adapter(spec, instructions=f"{instructions}\n\n{adapter.instructions}" if adapter.instructions
                    else f"{instructions}\n")


def _chatml(spec: RunSpec, _: str | int | float, context: _Context) -> RunSpec:
    """HELM's ChatMLRunExpander (HELM applies it to models tagged CHATML_MODEL_TAG)."""
    adapter = spec.adapter_spec
    scenario = context.description.scenario
    start = "<|im_end|>\n<|im_start|>assistant\n"
    if scenario == "msmarco":
        lines = adapter.output_prefix.split("\n")
        output_prefix = lines[0] + start + lines[1]
    elif scenario in ("summarization_cnndm", "summarization_xsum"):
        output_prefix = adapter.output_prefix + start
    else:
        output_prefix = start + adapter.output_prefix
    instructions = (f"<|im_start|>system\n{adapter.instructions}<|im_end|>\n<|im_start|>user\n" if adapter.instructions
                    else "<|im_start|>user\n")
    return _adapter(spec, instructions=instructions, instance_prefix="", output_prefix=output_prefix,
                    output_suffix="<|im_end|>\n<|im_start|>user\n",
                    stop_sequences=(*adapter.stop_sequences, "<|im_end|>"))


def _data_augmentation(spec: RunSpec, value: str | int | float, context: _Context) -> RunSpec:
    if value not in DATA_AUGMENTATIONS:
        raise ConfigError(f"data_augmentation={value} in {context.description}: HELM's augmentation is not "
                          f"implemented here; use one of {', '.join(DATA_AUGMENTATIONS)}", field="data_augmentation")
    return dataclasses.replace(spec, perturbations=perturbations_for(str(value)))


def _scenario_argument(name: str) -> _Apply:
    """HELM's ScenarioSpecRunExpander: an argument of the scenario itself."""

    def apply(spec: RunSpec, value: str | int | float, context: _Context) -> RunSpec:
        if name == "tokenizer" and value == "default":
            raise ConfigError(f"tokenizer=default in {context.description} picks HELM's tokenizer for each model "
                              f"deployment, a table this plugin does not have", field=name)
        if name not in inspect.signature(spec.scenario_class).parameters:
            raise ConfigError(f"{name}={value} in {context.description} sets an argument of HELM's scenario (the "
                              f"synthetic efficiency one) that {spec.scenario_class.__name__} does not take",
                              field=name)
        return dataclasses.replace(spec, scenario_args={**spec.scenario_args, name: value})

    return apply


def _unsupported(key: str, needs: str) -> _Apply:
    def apply(spec: RunSpec, value: str | int | float, context: _Context) -> RunSpec:
        if key == "num_trials" and value == 1:
            return spec
        raise ConfigError(f"{key}={value} in {context.description} needs {needs}, which this plugin does not have",
                          field=key)

    return apply


def _eval_split(spec: RunSpec, value: str | int | float, _: _Context) -> RunSpec:
    return _adapter(spec, eval_splits=None if value == "all" else (str(value),))  # None: valid and test


_APPLY: dict[str, _Apply] = {
    "instructions": _instructions,
    "prompt": lambda spec, value, _: _adapter(spec, **texts.PROMPTS[str(value)]),
    "newline": lambda spec, value, _: _adapter(spec, substitutions=(texts.NEWLINES[str(value)],)),
    "stop": _stop,
    "format_prompt": lambda spec, value, _: _adapter(spec, input_prefix=str(value), output_prefix=""),
    "follow_format_instructions": _follow_format,
    "add_to_stop": _add_to_stop,
    "global_prefix": lambda spec, value, _: _adapter(spec, global_prefix="[NLG]"),
    "num_train_trials": _field("num_train_trials"),
    "max_train_instances": _field("max_train_instances"),
    "max_eval_instances": _field("max_eval_instances"),
    "num_outputs": _field("num_outputs"),
    "num_trials": _unsupported("num_trials", "a random seed per request (HELM's Request.random)"),
    "data_augmentation": _data_augmentation,
    "tokenizer": _scenario_argument("tokenizer"),
    "num_prompt_tokens": _scenario_argument("num_prompt_tokens"),
    "num_output_tokens": _field("max_tokens"),
    "chatml": _chatml,
    "eval_split": _eval_split,
    "output_format_instructions": _output_format,
    "temperature": _field("temperature"),
    "increase_temperature": lambda spec, value, _: _adapter(
        spec, temperature=spec.adapter_spec.temperature + float(value)),
    "increase_max_tokens": lambda spec, value, _: _adapter(spec, max_tokens=spec.adapter_spec.max_tokens + int(value)),
    "process_output": _unsupported("process_output", "HELM's OutputProcessingMetric and its processor functions"),
    "max_tokens": _field("max_tokens"),
    # model= and model_deployment= choose the deployment the run is built for (the run's model).
}

__all__ = ["EXPANDER_KEYS", "NAMED_VALUES", "apply_run_expanders", "check_description",
           "close_expander_key", "value_choices"]
