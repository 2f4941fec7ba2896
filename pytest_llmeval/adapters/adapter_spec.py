"""How instances become requests (HELM's AdapterSpec) and what each request produced."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.requests import Request, RequestResult
from pytest_llmeval.scenarios.scenario import EVAL_SPLITS, Instance

ADAPT_MULTIPLE_CHOICE_JOINT = "multiple_choice_joint"
ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL = "multiple_choice_separate_original"
ADAPT_GENERATION = "generation"


@dataclass(frozen=True)
class AdapterSpec:
    """HELM's adapter fields, in HELM's order with HELM's names, so ``run_spec.json`` reads as
    helm-run's. Prompt-shape defaults are those of HELM's common adapter specs (one greedy
    output); ``eval_splits`` None means valid and test, as in HELM."""

    method: str = ADAPT_GENERATION
    global_prefix: str = ""
    global_suffix: str = ""
    instructions: str = ""
    input_prefix: str = "Input: "
    input_suffix: str = "\n"
    reference_prefix: str = "A. "
    reference_prefix_characters: tuple[str, ...] | None = None
    reference_suffix: str = "\n"
    chain_of_thought_prefix: str = ""
    chain_of_thought_suffix: str = "\n"
    output_prefix: str = "Output: "
    output_suffix: str = "\n"
    instance_prefix: str = "\n"
    # Regular-expression (source, target) pairs run over the finished prompt (``newline=br``).
    substitutions: tuple[tuple[str, str], ...] = ()
    max_train_instances: int = 5
    max_eval_instances: int | None = None
    num_outputs: int = 1
    num_train_trials: int = 1
    num_trials: int = 1
    sample_train: bool = True
    model_deployment: str = ""
    model: str = ""
    temperature: float = 0.0
    max_tokens: int = 100
    stop_sequences: tuple[str, ...] = ()
    random: str | None = None
    multi_label: bool = False
    eval_splits: tuple[str, ...] | None = None
    output_mapping_pattern: str | None = None
    # What follows the instructions in HELM's text: a newline in its common adapter specs, nothing in
    # its machine-translation spec. Not one of HELM's fields (run_spec.json has it in ``instructions``).
    instructions_end: str = "\n"

    @property
    def evaluated_splits(self) -> tuple[str, ...]:
        """The splits whose instances are evaluated (HELM: valid and test unless narrowed)."""
        return self.eval_splits or EVAL_SPLITS

    def unsupported(self) -> list[str]:
        """HELM options set away from their defaults that our adapters do not apply."""
        defaults = {"reference_prefix_characters": None, "chain_of_thought_prefix": "",
                    "chain_of_thought_suffix": "\n", "num_trials": 1, "random": None,
                    "multi_label": False, "output_mapping_pattern": None}
        return [key for key, value in defaults.items() if getattr(self, key) != value]

    def replace(self, **changes: Any) -> AdapterSpec:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """HELM's ``asdict_without_nones`` of this spec. Our instructions leave out the newline
        HELM's adapter specs end them with (the prompt builder adds it), so it is added here."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        del data["instructions_end"]
        if self.instructions:
            data["instructions"] = self.instructions + self.instructions_end
        for key in ("reference_prefix_characters", "stop_sequences", "eval_splits"):
            if key in data:
                data[key] = list(data[key])
        data["substitutions"] = [{"source": source, "target": target} for source, target in self.substitutions]
        return data


@dataclass
class RequestState:
    """One instance in one train trial: the prompt sent, the result, and the letter mapping.

    Separate multiple choice sends one request per option: ``reference_index`` says which.
    """

    instance: Instance
    train_trial_index: int
    request: Request
    num_train_instances: int
    output_mapping: dict[str, str] | None = None
    result: RequestResult | None = None
    prompt_truncated: bool = False
    reference_index: int | None = None
    request_mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instance": self.instance.to_json(),
            "train_trial_index": self.train_trial_index,
            "request": self.request.to_dict(),
            "result": self.result.to_dict() if self.result is not None else None,
            "num_train_instances": self.num_train_instances,
            "prompt_truncated": self.prompt_truncated,
        }
        if self.output_mapping is not None:
            data["output_mapping"] = self.output_mapping
        if self.reference_index is not None:
            data["reference_index"] = self.reference_index
        if self.request_mode is not None:
            data["request_mode"] = self.request_mode
        return data
