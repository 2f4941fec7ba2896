"""``lm_eval:task=...`` run entries: the arguments lm_eval's command line takes, the items a
group or tag collects, and the run spec an item runs.

``lm_eval:task=mmlu`` collects one item per task in the group (``lm_eval:task=mmlu_anatomy,group=mmlu``):
the ``group`` argument says which group's aggregate the item's results count towards.
Values that would hold commas are written with ``;``: ``gen_kwargs=max_gen_toks=64;temperature=0``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pytest_llmeval.adapters.adapter_spec import AdapterSpec
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.harness.outcome import DEFAULT_SEEDS, HarnessTask
from pytest_llmeval.harness.results import TaskScenario, metric_key
from pytest_llmeval.runspec import Description, RunSpec, reject_unknown_arguments, run_spec_function

SCENARIO = "lm_eval"
ARGUMENTS = ("task", "group", "num_fewshot", "fewshot_as_multiturn", "apply_chat_template", "system_instruction",
             "gen_kwargs", "seed", "confirm_run_unsafe_code")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _flag(value: str, key: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{key}={value!r} is not true or false", field=key)


def _seeds(value: str) -> tuple[int | None, int | None, int | None, int | None]:
    """lm_eval's ``--seed``: one number for all four seeds, or four (``None`` leaves one unset)."""
    parts = [p.strip() for p in value.replace(";", ",").split(",")]
    try:
        numbers = [None if p == "None" else int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"seed={value!r} is not a number or four numbers (random;numpy;torch;fewshot)",
                          field="seed") from None
    if len(numbers) == 1:
        return (numbers[0],) * 4
    if len(numbers) != 4:
        raise ConfigError(f"seed={value!r} needs one number or four", field="seed")
    return tuple(numbers)  # type: ignore[return-value]


def task_settings(description: Description) -> HarnessTask:
    """The entry's arguments; one line naming a bad one."""
    args = reject_unknown_arguments(description, ARGUMENTS)
    if not args.get("task"):
        raise ConfigError(f"{description} names no task (lm_eval:task=hellaswag)", field="task")
    fewshot = args.get("num_fewshot")
    try:
        num_fewshot = None if fewshot is None else int(fewshot)
    except ValueError:
        raise ConfigError(f"num_fewshot={fewshot!r} is not a whole number", field="num_fewshot") from None
    if num_fewshot is not None and num_fewshot < 0:
        raise ConfigError(f"num_fewshot={fewshot!r} is negative", field="num_fewshot")
    template: bool | str = False
    if "apply_chat_template" in args:
        raw = args["apply_chat_template"]
        template = _flag(raw, "apply_chat_template") if raw.lower() in (*_TRUE, *_FALSE) else raw
    gen_kwargs = args.get("gen_kwargs", "").replace(";", ",")
    if gen_kwargs:
        for part in gen_kwargs.split(","):
            if "=" not in part:
                raise ConfigError(f"gen_kwargs part {part!r} is not key=value", field="gen_kwargs")
    group = args.get("group")
    return HarnessTask(
        task=args["task"], groups=tuple(group.split(";")) if group else (), num_fewshot=num_fewshot,
        fewshot_as_multiturn=_flag(args["fewshot_as_multiturn"], "fewshot_as_multiturn")
        if "fewshot_as_multiturn" in args else False,
        apply_chat_template=template, system_instruction=args.get("system_instruction") or None,
        gen_kwargs=gen_kwargs, seeds=_seeds(args["seed"]) if "seed" in args else DEFAULT_SEEDS,
        confirm_run_unsafe_code=_flag(args["confirm_run_unsafe_code"], "confirm_run_unsafe_code")
        if "confirm_run_unsafe_code" in args else False)


def expand_entry(description: Description, include_paths: Sequence[str]) -> list[Description]:
    """The items an entry collects: itself for a task, one per task for a group or tag (each
    naming the groups above it that the entry asked for)."""
    from pytest_llmeval.harness.task_index import expand

    settings = task_settings(description)
    leaves = expand(settings.task, include_paths)
    if len(leaves) == 1 and leaves[0].name == settings.task:
        return [description]
    items = []
    for leaf in leaves:  # a leaf's groups start at the entry's own (none for a tag)
        named = description.with_value("task", leaf.name)
        items.append(named.with_value("group", ";".join(leaf.groups)) if leaf.groups else named)
    return items


def main_metric(config: dict[str, Any]) -> str:
    """The task's first metric under its first filter: what the summary shows for it."""
    metrics = config.get("metric_list") or []
    first = metrics[0].get("metric") if metrics and isinstance(metrics[0], dict) else None
    filters = config.get("filter_list") or []
    filter_name = filters[0].get("name", "none") if filters and isinstance(filters[0], dict) else "none"
    if not isinstance(first, str):  # a Python task, or metrics chosen by the output type
        output_type = config.get("output_type", "")
        first = {"loglikelihood_rolling": "word_perplexity", "generate_until": "exact_match"}.get(output_type, "acc")
    return metric_key(first, filter_name)


def complete(run_spec: RunSpec, include_paths: Sequence[str]) -> RunSpec:
    """The run spec with the session's task folders and the task's main metric, which need
    lm-eval's index (run time, in the process that runs it)."""
    from pytest_llmeval.harness.task_index import task_config

    assert run_spec.harness is not None
    paths = tuple(include_paths)
    config = task_config(run_spec.harness.task, paths)
    return dataclasses.replace(run_spec, harness=dataclasses.replace(run_spec.harness, include_paths=paths),
                               main_metric=main_metric(config))


@run_spec_function(SCENARIO)
def lm_eval_spec(description: Description) -> RunSpec:
    """An lm-eval task (see the module); lm-eval's code builds and scores it at run time."""
    settings = task_settings(description)
    name = f"{SCENARIO}:" + ",".join(f"{k}={v}" for k, v in description.args)  # each setting its own folder
    return RunSpec(name=name, scenario_class=TaskScenario,
                   scenario_args={"task_name": settings.task, "description": ""},
                   adapter_spec=AdapterSpec(method="lm_eval", max_train_instances=settings.num_fewshot or 0),
                   metrics=[], groups=[SCENARIO, *settings.groups], main_metric="acc", harness=settings)
