"""MATH's answer equivalence (Hendrycks et al. 2021), as HELM scores ``math_equiv``.

Two LaTeX answers are equal when they are the same string after MATH's normalisation: no
spaces, line breaks, ``\\left``/``\\right``, units in ``\\text{ ...}``, degrees, dollar and percent
signs; ``\\dfrac``/``\\tfrac`` as ``\\frac``; ``\\frac12`` as ``\\frac{1}{2}``, ``\\sqrt3`` as
``\\sqrt{3}``, ``0.5`` and ``1/2`` as ``\\frac{1}{2}``; a short ``k = `` before the answer dropped.
The chain-of-thought variant first takes the last ``\\boxed{...}`` of each side.

This is the MATH authors' code as crfm-helm 0.5.16 carries it (``math_scenario.py``), kept
statement for statement: which inputs raise inside the normalisation (and so fall back to
comparing the raw strings) is part of the score, so it is not rewritten more idiomatically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType


def remove_boxed(string: str) -> str | None:
    r"""The text inside ``\boxed{...}`` when ``string`` is exactly that, else None."""
    left = "\\boxed{"
    try:
        assert string[: len(left)] == left
        assert string[-1] == "}"
        return string[len(left): -1]
    except Exception:  # as MATH's code: any failure (an empty string too) means "not boxed"
        return None


def last_boxed_only_string(string: str) -> str | None:
    r"""The last ``\boxed{...}`` (else the last ``\fbox{...}``) with balanced braces, or None."""
    idx = string.rfind("\\boxed")
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return None
    i = idx
    right_brace_idx = None
    num_left_braces_open = 0
    while i < len(string):
        if string[i] == "{":
            num_left_braces_open += 1
        if string[i] == "}":
            num_left_braces_open -= 1
            if num_left_braces_open == 0:
                right_brace_idx = i
                break
        i += 1
    if right_brace_idx is None:
        return None
    return string[idx: right_brace_idx + 1]


def _fix_fracs(string: str) -> str:
    r"""``\frac1b`` -> ``\frac{1}{b}``, ``\frac1{72}`` -> ``\frac{1}{72}``; an empty part after
    ``\frac`` raises IndexError, as in MATH's code (the caller then compares raw strings)."""
    substrs = string.split("\\frac")
    new_str = substrs[0]
    if len(substrs) > 1:
        for substr in substrs[1:]:
            new_str += "\\frac"
            if substr[0] == "{":
                new_str += substr
            else:
                if len(substr) < 2:
                    return string
                a = substr[0]
                b = substr[1]
                if b != "{":
                    new_str += "{" + a + "}{" + b + "}" + substr[2:]
                else:
                    new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    r"""``2/3`` -> ``\frac{2}{3}`` when both sides are plain integers written canonically."""
    if len(string.split("/")) != 2:
        return string
    a_str, b_str = string.split("/")
    try:
        a = int(a_str)
        b = int(b_str)
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    r"""Everything before ``\text{ `` (units); two of them raise AssertionError, as in MATH's code."""
    if "\\text{ " in string:
        splits = string.split("\\text{ ")
        assert len(splits) == 2
        return splits[0]
    return string


def _fix_sqrt(string: str) -> str:
    r"""``\sqrt3`` -> ``\sqrt{3}``; ``\sqrt`` at the very end raises IndexError, as in MATH's code."""
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def strip_string(string: str) -> str:
    """MATH's normalisation of an answer, step by step in MATH's order (the order matters)."""
    string = string.replace("\n", "")
    string = string.replace("\\!", "")
    string = string.replace("\\\\", "\\")
    string = string.replace("tfrac", "frac")
    string = string.replace("dfrac", "frac")
    string = string.replace("\\left", "")
    string = string.replace("\\right", "")
    string = string.replace("^{\\circ}", "")
    string = string.replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "")
    # " 0." is " ." and "{0." is "{."; a leading "." gets its "0".
    string = string.replace(" .", " 0.")
    string = string.replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    # "k = 5" -> "5" when what precedes the only "=" is at most two characters.
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def boxed_answer(solution: str | None) -> str | None:
    r"""The contents of a solution's last ``\boxed{...}`` (HELM's ``get_answer``); None when it
    has none, or its last box is an ``\fbox``."""
    if solution is None:
        return None
    last_boxed = last_boxed_only_string(solution)
    if last_boxed is None:
        return None
    return remove_boxed(last_boxed)


def is_equiv(str1: str | None, str2: str | None) -> float:
    """1.0 when the two answers normalise to the same string; two missing answers count as
    equal (HELM's rule, which matters for the chain-of-thought variant)."""
    if str1 is None and str2 is None:
        return 1.0
    if str1 is None or str2 is None:
        return 0.0
    try:
        return float(strip_string(str1) == strip_string(str2))
    except Exception:  # MATH's code: a normalisation that fails compares the raw strings
        return float(str1 == str2)


def is_equiv_chain_of_thought(gold: str, pred: str) -> float:
    r"""Both sides' last ``\boxed{...}``, then :func:`is_equiv`."""
    return is_equiv(boxed_answer(gold), boxed_answer(pred))


MATH_MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({
    "math_equiv": is_equiv,
    "math_equiv_chain_of_thought": is_equiv_chain_of_thought,
})
