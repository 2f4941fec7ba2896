"""HELM's synthetic reasoning tasks (after LIME, Wu et al. 2021): generated, so no data file.

Every problem starts from a *pattern* of rule symbols and operators (``X + Y = X``) and a
substitution of words for the symbols (``X by " lion "``); its *result* is the substituted
pattern. The three modes ask for: the pattern that produced a result among four
(``pattern_match``), the result of a substitution (``variable_substitution``), the pattern
behind two results (``induction``).

The generator draws exactly as HELM's does with ``numpy.random.RandomState(seed)``, so the
same seed gives HELM's instances, and ours without numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.legacy_random import LegacyNumpyRandom
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    reject_unknown_arguments,
    run_spec_function,
)
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.generation_adapter import generation_adapter
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

MODES = ("pattern_match", "variable_substitution", "induction")
DEFAULT_SEED = 42  # HELM's
SPLIT_SIZES = ((TRAIN_SPLIT, 1000), (VALID_SPLIT, 5000), (TEST_SPLIT, 5000))

ANIMALS = ("zebra", "cobra", "stork", "penguin", "shark", "lion", "buffalo", "whale", "seal", "eagle", "horse", "rat")
FRUITS = ("apple", "peach", "watermelon", "banana", "grape", "kiwi", "pear", "strawberry", "blueberry",
          "blackberry")
WORDS = ANIMALS + FRUITS
RULE_SYMBOLS = ("X", "Y", "Z")
MATH_SYMBOLS = ("+", "-", "*", "=")

@dataclass
class SyntheticReasoningScenario(Scenario):
    """11,000 generated problems: 1,000 train, 5,000 valid, 5,000 test, in HELM's order."""

    mode: str
    random_seed: int = DEFAULT_SEED
    locator: DataLocator | None = None  # nothing to read

    name = "synthetic_reasoning"
    description = "Synthetic reasoning: pattern matching, variable substitution and induction over symbols"
    tags = ("reasoning", "language", "pattern_matching")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown synthetic_reasoning mode {self.mode!r}; use one of: {', '.join(MODES)}",
                              field="mode")

    def get_instances(self) -> list[Instance]:
        rng = LegacyNumpyRandom(self.random_seed)
        instances: list[Instance] = []
        for split, count in SPLIT_SIZES:
            for _ in range(count):
                source, target = self._problem(rng)
                instances.append(Instance(input=source, references=(Reference(target, (CORRECT_TAG,)),),
                                          split=split))
        return with_ids(instances)

    def _problem(self, rng: LegacyNumpyRandom) -> tuple[str, str]:
        """One problem's input and target; every mode makes the same draws up to the last step."""
        rules = rng.choice(RULE_SYMBOLS, rng.randint(2, 4))
        distinct_rules = sorted(set(rules))
        operators = rng.choice(MATH_SYMBOLS, rng.randint(2, 4))
        pattern = _shuffled(rng, rules + operators)
        substitution, substitution_text = _substitution(rng, distinct_rules)
        second_substitution, _ = _substitution(rng, distinct_rules)
        pattern_text = " ".join(pattern)
        result = _apply(pattern, substitution)
        if self.mode == "induction":
            return f"Two results: {result} | {_apply(pattern, second_substitution)}", f"Rule: {pattern_text}"
        if self.mode == "variable_substitution":
            return f"Rules: {pattern_text} | Substitutions: {substitution_text}", result
        # pattern_match: three decoys built from the distinct symbols and the same operators.
        candidates = [" ".join(_shuffled(rng, distinct_rules + operators)) for _ in range(3)] + [pattern_text]
        rng.shuffle(candidates)
        return f"Rules: {' | '.join(candidates)} | Result: {result}", pattern_text


def _shuffled(rng: LegacyNumpyRandom, items: list[str]) -> list[str]:
    items = list(items)
    rng.shuffle(items)
    return items


def _substitution(rng: LegacyNumpyRandom, symbols: list[str]) -> tuple[dict[str, str], str]:
    """One or two random words per symbol, and HELM's text for it: ``X by " lion kiwi " , Y by " rat "``."""
    words = {symbol: " ".join(rng.choice(WORDS, rng.randint(1, 3))) for symbol in symbols}
    return words, " , ".join(f'{symbol} by " {text} "' for symbol, text in words.items())


def _apply(pattern: list[str], substitution: dict[str, str]) -> str:
    return " ".join(substitution.get(token, token) for token in pattern)


def _seed(value: str, description: Description) -> int:
    try:
        seed = int(value)
    except ValueError:
        raise ConfigError(f"random_seed={value!r} in {description} is not a whole number",
                          field="random_seed") from None
    if not 0 <= seed < 2**32:  # numpy's bound, kept so a seed means the same instances in HELM
        raise ConfigError(f"random_seed={value} in {description} must be between 0 and 2**32 - 1",
                          field="random_seed")
    return seed


@run_spec_function("synthetic_reasoning")
def synthetic_reasoning_spec(description: Description) -> RunSpec:
    """HELM's ``synthetic_reasoning:mode=...``: instructions, 5 examples, a one-line ``Target:``."""
    args = reject_unknown_arguments(description, ("mode", "random_seed"))
    mode = args.get("mode")
    if mode not in MODES:
        given = f"mode={mode!r}" if mode is not None else "no mode"
        raise ConfigError(f"{given} in {description}: use mode= one of {', '.join(MODES)}", field="mode")
    scenario_args: dict[str, object] = {"mode": mode}
    if "random_seed" in args:
        scenario_args["random_seed"] = _seed(args["random_seed"], description)
    adapter = generation_adapter(instructions="Please solve the following problem.", output_noun="Target",
                                 max_train_instances=5, max_tokens=50, stop_sequences=("\n",))
    metrics = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    return RunSpec(
        name=str(Description("synthetic_reasoning", description.args)), scenario_class=SyntheticReasoningScenario,
        scenario_args=scenario_args, adapter_spec=adapter, metrics=metrics,
        groups=["synthetic_reasoning", f"synthetic_reasoning_{mode}"],
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.synthetic_reasoning_scenario."
                                          "SyntheticReasoningScenario", "args": dict(scenario_args)},
        helm_metric_specs=helm_basic_metric_specs(metrics),
    )
