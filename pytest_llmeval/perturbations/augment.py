"""``data_augmentation=<name>``: which perturbations a run adds, and how they are added.

As HELM's data-augmentation run expander does, a run keeps every original evaluation instance
and adds one perturbed copy per perturbation, skipping copies the perturbation left unchanged;
training instances (the in-context examples) are never perturbed. Originals and copies are
evaluated in the same run so the worst case over them can be computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_llmeval.perturbations.fairness import GenderPerturbation, PersonNamePerturbation
from pytest_llmeval.perturbations.perturbation import Perturbation
from pytest_llmeval.perturbations.robustness import MildMixPerturbation
from pytest_llmeval.scenarios.scenario import Instance


def robustness() -> list[Perturbation]:
    return [MildMixPerturbation()]


def fairness() -> list[Perturbation]:
    return [GenderPerturbation("pronouns"), GenderPerturbation("terms"), PersonNamePerturbation()]


DATA_AUGMENTATIONS: dict[str, Callable[[], list[Perturbation]]] = {
    "robustness": robustness,
    "fairness": fairness,
    "canonical": lambda: robustness() + fairness(),
}


def perturbations_for(name: str) -> list[Perturbation]:
    """The perturbations behind a ``data_augmentation`` value (KeyError when unknown)."""
    return DATA_AUGMENTATIONS[name]()


def augment(instances: list[Instance], perturbations: list[Perturbation],
            eval_splits: tuple[str, ...]) -> list[Instance]:
    """Every instance, each evaluated one followed by its changed perturbed copies."""
    result: list[Instance] = []
    for instance in instances:
        result.append(instance)
        if instance.split not in eval_splits:
            continue
        for perturbation in perturbations:
            copy = perturbation.apply(instance)
            if copy.input != instance.input or copy.references != instance.references:
                result.append(copy)
    return result


def augmenter_spec(perturbations: list[Perturbation]) -> dict[str, Any]:
    """HELM's ``data_augmenter_spec`` as run_spec.json records it."""
    active = bool(perturbations)
    return {
        "perturbation_specs": [p.spec() for p in perturbations],
        "should_augment_train_instances": False,
        "should_include_original_train": active,
        "should_skip_unchanged_train": active,
        "should_augment_eval_instances": active,
        "should_include_original_eval": active,
        "should_skip_unchanged_eval": active,
        "seeds_per_instance": 1,
    }
