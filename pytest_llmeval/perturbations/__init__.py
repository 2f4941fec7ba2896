"""Perturbations (HELM's data augmentation): robustness and fairness copies of instances."""

from __future__ import annotations

from pytest_llmeval.perturbations.augment import DATA_AUGMENTATIONS, augment, augmenter_spec, perturbations_for
from pytest_llmeval.perturbations.description import ORIGINAL, PERTURBED, WORST, PerturbationDescription
from pytest_llmeval.perturbations.fairness import GenderPerturbation, PersonNamePerturbation
from pytest_llmeval.perturbations.perturbation import Perturbation
from pytest_llmeval.perturbations.robustness import (
    ContractionPerturbation,
    ExpansionPerturbation,
    LowerCasePerturbation,
    MildMixPerturbation,
    MisspellingPerturbation,
    SpacePerturbation,
    TyposPerturbation,
)

__all__ = [
    "DATA_AUGMENTATIONS",
    "ORIGINAL",
    "PERTURBED",
    "WORST",
    "ContractionPerturbation",
    "ExpansionPerturbation",
    "GenderPerturbation",
    "LowerCasePerturbation",
    "MildMixPerturbation",
    "MisspellingPerturbation",
    "PersonNamePerturbation",
    "Perturbation",
    "PerturbationDescription",
    "SpacePerturbation",
    "TyposPerturbation",
    "augment",
    "augmenter_spec",
    "perturbations_for",
]
