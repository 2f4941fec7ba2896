"""A perturbation rewrites an instance's text, deterministically for a given instance.

As in HELM, the random generator is seeded with the instance id (and the seed, when one is
given), so a perturbed copy is the same in every run and on every xdist worker, and the copy
keeps its original's id: the metrics pair them up by id.
"""

from __future__ import annotations

import dataclasses
import re
from random import Random
from typing import Any, ClassVar

from pytest_llmeval.perturbations.description import PerturbationDescription
from pytest_llmeval.scenarios.scenario import Instance, Reference


class Perturbation:
    """Subclasses set ``name`` (and the kind) and implement :meth:`perturb`."""

    name: ClassVar[str] = ""
    robustness: ClassVar[bool] = False
    fairness: ClassVar[bool] = False
    # Whether the references change too (fairness substitutions do; typos must not).
    should_perturb_references: ClassVar[bool] = False

    def settings(self) -> dict[str, Any]:
        """The arguments this perturbation was built with (written to run_spec.json)."""
        return {}

    @property
    def description(self) -> PerturbationDescription:
        return PerturbationDescription(self.name, self.robustness, self.fairness,
                                       details=tuple(sorted(self.settings().items())))

    def perturb(self, text: str, rng: Random) -> str:
        raise NotImplementedError

    def rng(self, instance: Instance, seed: int | None = None) -> Random:
        return Random(instance.id if seed is None else f"{seed}{instance.id}")

    def apply(self, instance: Instance, seed: int | None = None) -> Instance:
        """A perturbed copy with the same id, tagged with this perturbation's description."""
        rng = self.rng(instance, seed)
        references = instance.references
        if self.should_perturb_references:
            references = tuple(Reference(self.perturb(r.output, rng), r.tags) for r in references)
        return dataclasses.replace(instance, input=self.perturb(instance.input, rng), references=references,
                                   perturbation=dataclasses.replace(self.description, seed=seed))

    def spec(self) -> dict[str, Any]:
        """HELM's ``PerturbationSpec`` for run_spec.json."""
        cls = type(self)
        return {"class_name": f"{cls.__module__}.{cls.__qualname__}", "args": self.settings()}


def match_case(source: str, target: str) -> str:
    """``target`` in the case pattern of ``source`` (all upper, capitalised, or lower)."""
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source.islower():
        return target.lower()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def word_pattern(words: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """Whole words (longest first so ``his`` never shadows ``himself``), any case."""
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in ordered) + r")\b", re.IGNORECASE)
