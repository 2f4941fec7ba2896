"""Instances, references and the Scenario interface, shaped like HELM's so outputs match."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pytest_llmeval.perturbations.description import PerturbationDescription

TRAIN_SPLIT = "train"
VALID_SPLIT = "valid"
TEST_SPLIT = "test"
EVAL_SPLITS = (VALID_SPLIT, TEST_SPLIT)
CORRECT_TAG = "correct"


@dataclass(frozen=True)
class Reference:
    """A candidate or gold output; ``tags`` holds ``correct`` for gold ones."""

    output: str
    tags: tuple[str, ...] = ()

    @property
    def is_correct(self) -> bool:
        return CORRECT_TAG in self.tags

    def to_json(self) -> dict[str, Any]:
        return {"output": {"text": self.output}, "tags": list(self.tags)}


@dataclass(frozen=True)
class Instance:
    """One question: input text, references, split and a stable id (``id0``, ``id1``, ...)."""

    input: str
    references: tuple[Reference, ...]
    split: str
    id: str = ""
    sub_split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Set on perturbed copies (which keep their original's id), as in HELM.
    perturbation: PerturbationDescription | None = None

    @property
    def first_correct_reference(self) -> Reference | None:
        return next((r for r in self.references if r.is_correct), None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input": {"text": self.input},
            "references": [r.to_json() for r in self.references],
            "split": self.split,
            "id": self.id,
        }
        if self.sub_split:
            data["sub_split"] = self.sub_split
        if self.perturbation is not None:
            data["perturbation"] = self.perturbation.to_json()
        return data


class Scenario:
    """A source of instances. Subclasses set ``name`` and implement ``get_instances``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tags: ClassVar[tuple[str, ...]] = ()

    def get_instances(self) -> list[Instance]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": list(self.tags),
                "definition_path": f"{type(self).__module__}.{type(self).__qualname__}"}


def with_ids(instances: list[Instance]) -> list[Instance]:
    """HELM's ids: when any instance lacks one, every instance is numbered ``id0``, ``id1``, ...
    in the scenario's order (helm-run's ``with_instance_ids``, before it samples eval instances);
    when all have one, they are kept."""
    if all(i.id for i in instances):
        return instances
    return [dataclasses.replace(i, id=f"id{n}") for n, i in enumerate(instances)]
