"""Fairness perturbations: swap who a text is about, and see whether the answer moves.

As in HELM's ``data_augmentation=fairness``, each substitution runs with probability 1 and
changes the references too (an option that says "his" must keep agreeing with the question).
The word and name lists are short lists of our own.
"""

from __future__ import annotations

import re
from random import Random
from typing import Any

from pytest_llmeval.perturbations.perturbation import Perturbation, match_case, word_pattern
from pytest_llmeval.scenarios.scenario import Instance

# male -> female
GENDER_PRONOUNS: dict[str, str] = {"he": "she", "him": "her", "his": "her", "himself": "herself"}
GENDER_TERMS: dict[str, str] = {
    "boy": "girl", "boys": "girls", "brother": "sister", "brothers": "sisters", "dad": "mom", "dads": "moms",
    "father": "mother", "fathers": "mothers", "gentleman": "lady", "gentlemen": "ladies",
    "grandfather": "grandmother", "grandfathers": "grandmothers", "grandson": "granddaughter",
    "grandsons": "granddaughters", "husband": "wife", "husbands": "wives", "king": "queen", "kings": "queens",
    "male": "female", "males": "females", "man": "woman", "men": "women", "nephew": "niece",
    "nephews": "nieces", "son": "daughter", "sons": "daughters", "uncle": "aunt", "uncles": "aunts",
}
GENDER_MAPPINGS = {"pronouns": GENDER_PRONOUNS, "terms": GENDER_TERMS}

# First names by gender: the source group is replaced by names from the target group.
SOURCE_NAMES: dict[str, tuple[str, ...]] = {
    "female": ("Alice", "Amy", "Anna", "Elizabeth", "Emily", "Emma", "Helen", "Jane", "Jennifer", "Julia",
               "Katie", "Laura", "Linda", "Mary", "Megan", "Nancy", "Rachel", "Sarah", "Susan"),
    "male": ("Andrew", "Brian", "Charles", "Daniel", "David", "George", "Jack", "James", "John", "Kevin",
             "Matthew", "Michael", "Paul", "Peter", "Richard", "Robert", "Steven", "Thomas", "William"),
}
TARGET_NAMES: dict[str, tuple[str, ...]] = {
    "female": ("Aisha", "Ebony", "Imani", "Jasmine", "Keisha", "Lakisha", "Latoya", "Nia", "Shanice",
               "Tamika"),
    "male": ("Andre", "Darnell", "DeShawn", "Jamal", "Jerome", "Kwame", "Malik", "Rashad", "Terrell", "Tyrone"),
}


class GenderPerturbation(Perturbation):
    """Replaces male pronouns (``mode=pronouns``) or terms (``mode=terms``) by female ones."""

    name = "gender"
    fairness = True
    should_perturb_references = True

    def __init__(self, mode: str = "pronouns", prob: float = 1.0, source_class: str = "male",
                 target_class: str = "female") -> None:
        if mode not in GENDER_MAPPINGS:
            raise ValueError(f"unknown gender perturbation mode {mode!r}; use one of {', '.join(GENDER_MAPPINGS)}")
        if (source_class, target_class) != ("male", "female"):
            raise ValueError("only male -> female substitutions have word lists")
        self.mode = mode
        self.prob = prob
        self.mapping = GENDER_MAPPINGS[mode]
        self._pattern = word_pattern(tuple(self.mapping))

    def settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "prob": self.prob, "source_class": "male", "target_class": "female"}

    def perturb(self, text: str, rng: Random) -> str:
        def swap(match: re.Match[str]) -> str:
            word = match.group(1)
            if rng.random() >= self.prob:
                return word
            return match_case(word, self.mapping[word.lower()])

        return self._pattern.sub(swap, text)


class PersonNamePerturbation(Perturbation):
    """Replaces first names of the source group by names of the target group, keeping the
    gender; one name is replaced the same way throughout an instance."""

    name = "person_name"
    fairness = True
    should_perturb_references = True

    def __init__(self, prob: float = 1.0, person_name_type: str = "first_name", preserve_gender: bool = True) -> None:
        if (person_name_type, preserve_gender) != ("first_name", True):
            raise ValueError("only gender-preserving first-name substitutions have name lists")
        self.prob = prob
        self._gender = {name: gender for gender, names in SOURCE_NAMES.items() for name in names}
        self._pattern = re.compile(r"\b(" + "|".join(sorted(self._gender, key=len, reverse=True)) + r")\b")
        self._chosen: dict[str, str] = {}

    def settings(self) -> dict[str, Any]:
        return {"prob": self.prob, "person_name_type": "first_name", "preserve_gender": True}

    def apply(self, instance: Instance, seed: int | None = None) -> Instance:
        self._chosen = {}  # a name maps to one replacement across the input and the references
        return super().apply(instance, seed)

    def perturb(self, text: str, rng: Random) -> str:
        def swap(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._chosen:
                keep = rng.random() >= self.prob
                self._chosen[name] = name if keep else rng.choice(TARGET_NAMES[self._gender[name]])
            return self._chosen[name]

        return self._pattern.sub(swap, text)
