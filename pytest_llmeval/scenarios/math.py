"""MATH (Hendrycks et al. 2021): competition problems in 7 subjects and 5 levels, read as HELM reads them.

The canonical source is ``MATH.tar``, which unpacks to ``MATH/{train,test}/<subject>/<n>.json``,
one ``{problem, level, type, solution}`` object per file (7,500 train, 5,000 test); HELM reads the
same files through the Hugging Face copy ``hendrycks/competition_math`` and orders each split
with ``.sort("problem").shuffle(seed=42)`` before it keeps one subject and level. That order
decides the instance ids and which in-context examples are drawn, so it is reproduced here
(:func:`helm_order`). The mirror holds the files as ``math/{train,test}/<subject>/<n>.json``.

With ``use_chain_of_thought`` the whole worked solution is the target (the in-context examples
show it; ``math_equiv_chain_of_thought`` compares the last ``\\boxed{}`` of each side); otherwise
the target is the solution's boxed answer alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, AdapterSpec
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.metrics.math_equiv import boxed_answer
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    reject_unknown_arguments,
    run_spec_function,
)
from pytest_llmeval.scenarios.data import DataArchive, DataLocator
from pytest_llmeval.scenarios.hf_tables import shuffled_order
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    TRAIN_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

ARCHIVE = DataArchive(url="https://people.eecs.berkeley.edu/~hendrycks/MATH.tar", local_root="math",
                      member_root="MATH")
# The run entry's subject -> the files' "type" (HELM's MATHScenario.subjects_mapping).
SUBJECTS = {
    "number_theory": "Number Theory",
    "intermediate_algebra": "Intermediate Algebra",
    "algebra": "Algebra",
    "prealgebra": "Prealgebra",
    "geometry": "Geometry",
    "counting_and_probability": "Counting & Probability",
    "precalculus": "Precalculus",
}
LEVELS = ("1", "2", "3", "4", "5")
FIELDS = ("problem", "level", "type", "solution")
SHUFFLE_SEED = 42
# HELM's 8 examples for use_official_examples=True (the MATH paper's few-shot prompt): problem, answer.
OFFICIAL_EXAMPLES = (
    ("What is $\\left(\\frac{7}{8}\\right)^3 \\cdot \\left(\\frac{7}{8}\\right)^{-3}$?", "1"),
    ("In how many ways can 4 books be selected from a shelf of 6 books"
     " if the order in which the books are selected does not matter?", "15"),
    ("Find the distance between the points $(2,1,-4)$ and $(5,8,-3).$", "\\sqrt{59}"),
    ("The faces of an octahedral die are labeled with digits $1$ through $8$."
     " What is the probability, expressed as a common fraction,"
     " of rolling a sum of $15$ with a pair of such octahedral dice?", "\\frac{1}{32}"),
    ("The first three terms of an arithmetic sequence are 1, 10 and 19, respectively."
     " What is the value of the 21st term?", "181"),
    ("Calculate $6 \\cdot 8\\frac{1}{3}", "50"),
    ("When the binary number $100101110010_2$ is divided by 4,"
     " what is the remainder (give your answer in base 10)?", "2"),
    ("How many zeros are at the end of the product 25 $\\times$ 240?", "3"),
)


@dataclass(frozen=True)
class Problem:
    """One file of the data set, and which file it was (for messages)."""

    problem: str
    level: str
    type: str
    solution: str
    origin: str


def read_split(folder: Path) -> list[Problem]:
    """Every ``<subject>/<n>.json`` of one split, in the order of their paths.

    The order matters only where two problems have the same text (HELM's stable sort keeps
    them as read); the Hugging Face copy listed its files unsorted, so no order is HELM's there.
    """
    files = sorted(folder.glob("*/*.json"), key=lambda p: p.relative_to(folder).as_posix())
    return [_problem(path) for path in files]


def _problem(path: Path) -> Problem:
    try:
        row: Any = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not a JSON file ({exc})", file=path) from None
    if not isinstance(row, dict):
        raise ConfigError(f"expected a JSON object with {', '.join(FIELDS)}, got {type(row).__name__}", file=path)
    for key in FIELDS:
        if not isinstance(row.get(key), str):
            got = "nothing" if key not in row else f"{row[key]!r:.60}"
            raise ConfigError(f"{key!r} should be text, got {got}", file=path, field=key)
    return Problem(row["problem"], row["level"], row["type"], row["solution"], str(path))


def helm_order(problems: list[Problem]) -> list[Problem]:
    """HELM's ``Dataset.sort("problem").shuffle(seed=42)``, without ``datasets``.

    ``sort`` is Arrow's stable sort of the UTF-8 strings (byte order is code-point order, as
    Python compares ``str``); ``shuffle(seed)`` selects the rows as ``datasets`` does
    (:func:`~pytest_llmeval.scenarios.hf_tables.shuffled_order`).
    """
    ordered = sorted(problems, key=lambda p: p.problem)
    return [ordered[i] for i in shuffled_order(len(ordered), SHUFFLE_SEED)]


@dataclass
class MATHScenario(Scenario):
    """One subject at one level: its train problems are the in-context examples (or HELM's 8
    official ones), its test problems are evaluated."""

    subject: str
    level: str
    locator: DataLocator
    use_official_examples: bool = False
    use_chain_of_thought: bool = False

    name = "math"
    description = "Mathematical Problem Solving (MATH competition problems)"
    tags = ("knowledge", "reasoning")

    def __post_init__(self) -> None:
        check_arguments(self.subject, self.level, self.use_official_examples, self.use_chain_of_thought)

    def get_instances(self) -> list[Instance]:
        instances: list[Instance] = []
        for split in (TRAIN_SPLIT, TEST_SPLIT):
            if split == TRAIN_SPLIT and self.use_official_examples:
                instances += [self._instance(problem, answer, split) for problem, answer in OFFICIAL_EXAMPLES]
                continue
            folder = self.locator.locate_folder(f"math/{split}", ARCHIVE)
            rows = self.selected(helm_order(read_split(folder)))
            if split == TEST_SPLIT and not rows:  # MATH itself has problems of every subject and level
                raise DataNotFoundError(f"MATH test problems of subject={self.subject}, level={self.level} not "
                                        f"found: expected {SUBJECTS[self.subject]!r} problems of 'Level "
                                        f"{self.level}' in {folder}")
            instances += [self._instance(row.problem, self._target(row), split) for row in rows]
        return with_ids(instances)

    def selected(self, problems: list[Problem]) -> list[Problem]:
        """This subject and level, in the order given (HELM groups by type, then by level)."""
        wanted = (SUBJECTS[self.subject], f"Level {self.level}")
        return [p for p in problems if (p.type, p.level) == wanted]

    def _target(self, row: Problem) -> str:
        if self.use_chain_of_thought:
            return row.solution
        answer = boxed_answer(row.solution)
        if answer is None:  # HELM's scenario fails here too (KeyError 'answer')
            raise ConfigError("the solution has no \\boxed{...} answer, which a run without "
                              "use_chain_of_thought needs", file=row.origin, field="solution")
        return answer

    @staticmethod
    def _instance(problem: str, answer: str, split: str) -> Instance:
        return Instance(input=problem, references=(Reference(answer, (CORRECT_TAG,)),), split=split)


OFFICIAL_WITH_COT = "Cannot use official examples when use_chain_of_thought is True."
INSTRUCTIONS = "Given a mathematics problem, determine the answer. Simplify your answer as much as possible."
ARGUMENTS = ("subject", "level", "use_official_examples", "use_chain_of_thought")


def check_arguments(subject: str, level: str, official: bool, chain_of_thought: bool, where: str = "") -> None:
    """A known subject and level, and not both flags (HELM's assertion, as one line)."""
    prefix = f"{where}: " if where else ""
    if subject not in SUBJECTS:
        raise ConfigError(f"{prefix}unknown MATH subject {subject!r}; use one of: {', '.join(SUBJECTS)}",
                          field="subject")
    if level not in LEVELS:
        raise ConfigError(f"{prefix}unknown MATH level {level!r}; use one of: {', '.join(LEVELS)}", field="level")
    if official and chain_of_thought:
        raise ConfigError(f"{prefix}{OFFICIAL_WITH_COT}", field="use_official_examples")


def helm_bool(value: str) -> bool:
    """HELM's reading of a run entry's flag: ``true`` in any case is True, anything else False."""
    return value.lower() == "true"


@run_spec_function("math")
def math_spec(description: Description) -> RunSpec:
    """HELM's ``math``: ``Problem:``/``Answer:`` blocks after ``###``, 8 examples; the boxed answer
    between ``$`` signs (20 tokens), or with ``use_chain_of_thought`` the worked solution (400)."""
    args = reject_unknown_arguments(description, ARGUMENTS)
    missing = [key for key in ("subject", "level") if key not in args]
    if missing:
        raise ConfigError(f"{description} needs {' and '.join(f'{k}=' for k in missing)} (subjects: "
                          f"{', '.join(SUBJECTS)}; levels 1-5)", field=missing[0])
    subject, level = args["subject"], args["level"]
    official = helm_bool(args.get("use_official_examples", "False"))
    chain_of_thought = helm_bool(args.get("use_chain_of_thought", "False"))
    check_arguments(subject, level, official, chain_of_thought, where=str(description))
    if chain_of_thought:  # the solution is the output (Wei et al. 2022); stop at the next instance
        output_prefix, output_suffix, max_tokens, stop, group = "Answer: ", "\n", 400, ("###",), \
            "math_chain_of_thought"
    else:  # the answer between LaTeX's $ delimiters
        output_prefix, output_suffix, max_tokens, stop, group = "Answer: $", "$\n", 20, ("$",), "math_regular"
    adapter = AdapterSpec(
        method=ADAPT_GENERATION, instructions=INSTRUCTIONS, input_prefix="Problem: ", input_suffix="\n",
        output_prefix=output_prefix, output_suffix=output_suffix, instance_prefix="###\n",
        max_train_instances=8, num_outputs=1, temperature=0.0, max_tokens=max_tokens, stop_sequences=stop,
    )
    metric = "math_equiv_chain_of_thought" if chain_of_thought else "math_equiv"
    scenario_args = {"subject": subject, "level": level, "use_official_examples": official,
                     "use_chain_of_thought": chain_of_thought}
    return RunSpec(
        name=f"math:subject={subject},level={level},use_official_examples={official},"
             f"use_chain_of_thought={chain_of_thought}",
        scenario_class=MATHScenario, scenario_args=scenario_args, adapter_spec=adapter,
        metrics=[metric], groups=[group], main_metric=metric,
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.math_scenario.MATHScenario",
                            "args": scenario_args},
        helm_metric_specs=helm_basic_metric_specs([metric]),
    )
