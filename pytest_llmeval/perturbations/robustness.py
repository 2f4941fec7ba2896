"""Robustness perturbations: meaning-preserving noise a reader would shrug off.

``MildMix`` is HELM's canonical robustness perturbation (``data_augmentation=robustness``):
lower-case, contract, misspell, then vary the spaces between words. HELM draws misspellings
from a large Wikipedia list; ours is a short list of our own, so the mix also adds rare
keyboard typos to keep a comparable amount of noise.
"""

from __future__ import annotations

import re
from random import Random
from typing import Any

from pytest_llmeval.perturbations.perturbation import Perturbation, match_case, word_pattern

# Expanded form -> contracted form (the contraction perturbation reads it left to right, the
# expansion perturbation right to left).
CONTRACTIONS: dict[str, str] = {
    "are not": "aren't", "cannot": "can't", "could not": "couldn't", "did not": "didn't",
    "does not": "doesn't", "do not": "don't", "had not": "hadn't", "has not": "hasn't",
    "have not": "haven't", "he is": "he's", "he will": "he'll", "I am": "I'm", "I have": "I've",
    "I will": "I'll", "is not": "isn't", "it is": "it's", "it will": "it'll", "let us": "let's",
    "must not": "mustn't", "she is": "she's", "she will": "she'll", "should not": "shouldn't",
    "that is": "that's", "there is": "there's", "they are": "they're", "they have": "they've",
    "they will": "they'll", "was not": "wasn't", "we are": "we're", "we have": "we've",
    "we will": "we'll", "were not": "weren't", "what is": "what's", "where is": "where's",
    "who is": "who's", "will not": "won't", "would not": "wouldn't", "you are": "you're",
    "you have": "you've", "you will": "you'll",
}

# Correct word -> common misspellings of it.
MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "about": ("abuot",), "accommodate": ("accomodate",), "achieve": ("acheive",), "across": ("accross",),
    "address": ("adress",), "although": ("altough",), "answer": ("anwser",), "apparent": ("apparant",),
    "argument": ("arguement",), "because": ("becuase", "becasue"), "before": ("befor",),
    "beginning": ("begining",), "believe": ("beleive",), "between": ("betwen",), "business": ("buisness",),
    "calendar": ("calender",), "certain": ("certian",), "common": ("comon",), "completely": ("completly",),
    "definitely": ("definately",), "different": ("diffrent",), "disappear": ("dissapear",),
    "environment": ("enviroment",), "existence": ("existance",), "experience": ("experiance",),
    "following": ("folowing",), "foreign": ("foriegn",), "friend": ("freind",), "government": ("goverment",),
    "happened": ("happend",), "important": ("importent",), "immediately": ("immediatly",),
    "independent": ("independant",), "interest": ("intrest",), "knowledge": ("knowlege",),
    "necessary": ("neccessary", "necesary"), "occurred": ("occured",), "occurrence": ("occurence",),
    "people": ("poeple",), "possible": ("possable",), "probably": ("probaly",), "process": ("proccess",),
    "question": ("questoin",), "really": ("realy",), "receive": ("recieve",), "recommend": ("recomend",),
    "separate": ("seperate",), "similar": ("similiar",), "successful": ("succesful",),
    "surprise": ("suprise",), "their": ("thier",), "therefore": ("therefor",), "through": ("throught",),
    "tomorrow": ("tommorow",), "truly": ("truely",), "until": ("untill",), "usually": ("usualy",),
    "which": ("wich",), "without": ("withut",), "would": ("woudl",),
}

# Each letter's neighbours on a QWERTY keyboard (distance one).
KEYBOARD_NEIGHBOURS: dict[str, str] = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj", "i": "uojk",
    "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv",
    "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}


class LowerCasePerturbation(Perturbation):
    name = "lowercase"
    robustness = True

    def perturb(self, text: str, rng: Random) -> str:
        return text.lower()


class ContractionPerturbation(Perturbation):
    """``it is`` -> ``it's``; only before a space, so a sentence's last words stay whole."""

    name = "contraction"
    robustness = True
    _pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(CONTRACTIONS, key=len, reverse=True))
                          + r")\b(?= )", re.IGNORECASE)
    _lookup = {k.lower(): v for k, v in CONTRACTIONS.items()}

    def perturb(self, text: str, rng: Random) -> str:
        return self._pattern.sub(lambda m: match_case(m.group(1), self._lookup[m.group(1).lower()]), text)


class ExpansionPerturbation(Perturbation):
    """``it's`` -> ``it is``."""

    name = "expansion"
    robustness = True
    _lookup = {v.lower(): k for k, v in CONTRACTIONS.items()}
    _pattern = word_pattern(tuple(CONTRACTIONS.values()))

    def perturb(self, text: str, rng: Random) -> str:
        return self._pattern.sub(lambda m: match_case(m.group(1), self._lookup[m.group(1).lower()]), text)


class SpacePerturbation(Perturbation):
    """Every run of spaces becomes 1 to ``max_spaces`` spaces."""

    name = "space"
    robustness = True

    def __init__(self, max_spaces: int = 3) -> None:
        self.max_spaces = max_spaces

    def settings(self) -> dict[str, Any]:
        return {"max_spaces": self.max_spaces}

    def perturb(self, text: str, rng: Random) -> str:
        return re.sub(r" +", lambda _: " " * rng.randint(1, self.max_spaces), text)


class MisspellingPerturbation(Perturbation):
    """Each word with a known common misspelling is misspelt with probability ``prob``."""

    name = "misspellings"
    robustness = True
    _pattern = word_pattern(tuple(MISSPELLINGS))

    def __init__(self, prob: float = 0.1) -> None:
        self.prob = prob

    def settings(self) -> dict[str, Any]:
        return {"prob": self.prob}

    def perturb(self, text: str, rng: Random) -> str:
        def misspell(match: re.Match[str]) -> str:
            word = match.group(1)
            if rng.random() >= self.prob:
                return word
            return match_case(word, rng.choice(MISSPELLINGS[word.lower()]))

        return self._pattern.sub(misspell, text)


class TyposPerturbation(Perturbation):
    """Each letter is replaced by a neighbouring key with probability ``prob`` (case kept)."""

    name = "typos"
    robustness = True

    def __init__(self, prob: float = 0.05) -> None:
        self.prob = prob

    def settings(self) -> dict[str, Any]:
        return {"prob": self.prob}

    def perturb(self, text: str, rng: Random) -> str:
        out = []
        for char in text:
            neighbours = KEYBOARD_NEIGHBOURS.get(char.lower())
            if neighbours and rng.random() < self.prob:
                typo = rng.choice(neighbours)
                char = typo.upper() if char.isupper() else typo
            out.append(char)
        return "".join(out)


class MildMixPerturbation(Perturbation):
    """HELM's ``mild_mix``: the canonical robustness perturbation (references untouched)."""

    name = "mild_mix"
    robustness = True

    def __init__(self) -> None:
        self.steps: list[Perturbation] = [
            LowerCasePerturbation(), ContractionPerturbation(), MisspellingPerturbation(prob=0.1),
            TyposPerturbation(prob=0.01), SpacePerturbation(max_spaces=3),
        ]

    def perturb(self, text: str, rng: Random) -> str:
        for step in self.steps:
            text = step.perturb(text, rng)
        return text
