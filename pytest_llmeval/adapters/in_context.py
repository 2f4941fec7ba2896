"""In-context learning as HELM does it: seeded, answer-balanced example sampling and prompts.

Three methods share the prompt layout: ``generation`` (the answer is generated),
``multiple_choice_joint`` (lettered options, a letter is generated) and
``multiple_choice_separate_original`` (one request per option, scored by its log-probability).
"""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import cycle

from pytest_llmeval.adapters.adapter_spec import (
    ADAPT_MULTIPLE_CHOICE_JOINT,
    ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL,
    AdapterSpec,
    RequestState,
)
from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.adapters.prompt import Prompt
from pytest_llmeval.requests import Request
from pytest_llmeval.scenarios.scenario import TRAIN_SPLIT, Instance


def sample_examples(train: list[Instance], seed: int, count: int, sample_train: bool = True) -> list[Instance]:
    """HELM's sampler: labels ordered by frequency (ties shuffled by the seed), then one
    example per label in turn, each drawn at random from that label's instances."""
    count = min(len(train), count)
    if not sample_train:
        return train[count * seed: count * (seed + 1)]
    rng = random.Random(seed)
    by_label: dict[str, list[Instance]] = defaultdict(list)
    unlabeled: list[Instance] = []
    for instance in train:
        correct = instance.first_correct_reference
        if correct is not None:
            by_label[correct.output].append(instance)
        else:
            unlabeled.append(instance)
    labels_by_count: dict[int, list[str]] = defaultdict(list)
    for label, members in sorted(by_label.items()):
        labels_by_count[len(members)].append(label)
    ordered: list[str] = []
    for size in sorted(labels_by_count, reverse=True):
        labels = labels_by_count[size]
        rng.shuffle(labels)
        ordered.extend(labels)
    examples: list[Instance] = []
    pools = {label: list(members) for label, members in by_label.items()}
    remaining = count
    labels_cycle = cycle(ordered) if ordered else iter(())
    while remaining > 0 and any(pools.values()):
        label = next(labels_cycle)
        pool = pools[label]
        if not pool:
            continue
        examples.append(pool.pop(rng.randrange(len(pool))))
        remaining -= 1
    if remaining > 0:
        examples.extend(rng.sample(unlabeled, min(remaining, len(unlabeled))))
    return examples


def letter(index: int) -> str:
    return chr(ord("A") + index)


def example_block(spec: AdapterSpec, instance: Instance, include_output: bool,
                  reference_index: int | None = None) -> str:
    """One instance as text. Training examples carry their answer; the evaluated one ends at
    the open answer cue, or (separate multiple choice) with the option being scored."""
    text = spec.input_prefix + instance.input + spec.input_suffix
    correct_letter = ""
    if spec.method == ADAPT_MULTIPLE_CHOICE_JOINT:
        for i, reference in enumerate(instance.references):
            prefix = spec.reference_prefix.replace("A", letter(i), 1)
            text += prefix + reference.output + spec.reference_suffix
            if reference.is_correct and not correct_letter:
                correct_letter = letter(i)
        answer = correct_letter
    elif reference_index is not None:
        answer = instance.references[reference_index].output
    else:
        correct = instance.first_correct_reference
        answer = correct.output if correct else "n/a"  # HELM's text when nothing is correct
    if include_output:
        return text + spec.output_prefix + answer + spec.output_suffix
    return text + spec.output_prefix.rstrip()


def train_blocks(spec: AdapterSpec, examples: list[Instance]) -> tuple[str, ...]:
    """The in-context examples as text; one trial's examples are the same for every instance."""
    return tuple(example_block(spec, e, include_output=True) for e in examples)


def make_prompt(spec: AdapterSpec, examples: list[Instance], instance: Instance,
                reference_index: int | None = None, blocks: tuple[str, ...] | None = None) -> Prompt:
    """``blocks``: ``train_blocks(spec, examples)`` when the caller already has them."""
    return Prompt(
        instructions_block=spec.instructions + spec.instructions_end if spec.instructions else "",
        train_blocks=train_blocks(spec, examples) if blocks is None else blocks,
        eval_block=example_block(spec, instance, include_output=reference_index is not None,
                                 reference_index=reference_index),
        instance_prefix=spec.instance_prefix, global_prefix=spec.global_prefix, global_suffix=spec.global_suffix,
        substitutions=spec.substitutions,
    )


def build_prompt(spec: AdapterSpec, examples: list[Instance], instance: Instance) -> str:
    return make_prompt(spec, examples, instance).text


def _request(spec: AdapterSpec, prompt: str) -> Request:
    if spec.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL:
        # HELM: score the prompt itself; no tokens generated, greedy, no stop sequences.
        return Request(model_deployment=spec.model_deployment, model=spec.model, prompt=prompt, temperature=0.0,
                       max_tokens=0, num_completions=1, echo_prompt=True)
    # HELM's joint multiple-choice adapter asks for one completion whatever num_outputs says.
    completions = 1 if spec.method == ADAPT_MULTIPLE_CHOICE_JOINT else spec.num_outputs
    return Request(model_deployment=spec.model_deployment, model=spec.model, prompt=prompt,
                   temperature=spec.temperature, max_tokens=spec.max_tokens, num_completions=completions,
                   stop_sequences=spec.stop_sequences)


def instance_states(spec: AdapterSpec, instance: Instance, trial: int, examples: list[Instance],
                    window: ContextWindow | None = None,
                    blocks: tuple[str, ...] | None = None) -> list[RequestState]:
    """The request states of one evaluated instance: one, or one per option (``blocks``: the
    examples' text, when the caller built it once for the trial)."""
    if blocks is None:
        blocks = train_blocks(spec, examples)
    completion_tokens = 0 if spec.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL else spec.max_tokens

    def fitted(prompt: Prompt) -> Prompt:
        return window.fit(prompt, completion_tokens) if window is not None else prompt

    if spec.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL:
        states = []
        for index in range(len(instance.references)):
            prompt = fitted(make_prompt(spec, examples, instance, reference_index=index, blocks=blocks))
            states.append(RequestState(instance, trial, _request(spec, prompt.text), prompt.num_train_instances,
                                       prompt_truncated=prompt.truncated, reference_index=index,
                                       request_mode="original"))
        return states
    mapping = None
    if spec.method == ADAPT_MULTIPLE_CHOICE_JOINT:
        mapping = {letter(i): r.output for i, r in enumerate(instance.references)}
    prompt = fitted(make_prompt(spec, examples, instance, blocks=blocks))
    return [RequestState(instance, trial, _request(spec, prompt.text), prompt.num_train_instances,
                         output_mapping=mapping, prompt_truncated=prompt.truncated)]


def adapt(spec: AdapterSpec, instances: list[Instance], window: ContextWindow | None = None) -> list[RequestState]:
    """Request states for every eval instance in every train trial; prompts are fitted to
    ``window`` when one is given."""
    train = [i for i in instances if i.split == TRAIN_SPLIT]
    evaluated = [i for i in instances if i.split in spec.evaluated_splits]
    states: list[RequestState] = []
    for trial in range(spec.num_train_trials):
        examples = sample_examples(train, trial, spec.max_train_instances, spec.sample_train)
        blocks = train_blocks(spec, examples)
        for instance in evaluated:
            states.extend(instance_states(spec, instance, trial, examples, window, blocks))
    return states
