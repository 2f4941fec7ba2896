"""Synthetic reasoning: seeded generation (numpy's draws without numpy), HELM's instances, the
three modes' structure, the run spec and the prompt."""

from __future__ import annotations

import re

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.legacy_random import LegacyNumpyRandom
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.synthetic_reasoning import MODES, SyntheticReasoningScenario


@pytest.mark.parametrize("seed", [0, 42, 7, 2**32 - 1])
def test_draws_are_numpy_legacy_randomstate_draws(seed: int) -> None:
    np = pytest.importorskip("numpy")
    theirs, ours = np.random.RandomState(seed), LegacyNumpyRandom(seed)
    words = [f"w{i}" for i in range(22)]
    for step in range(3000):
        kind = step % 4
        if kind == 0:
            assert ours.randint(2, 4) == theirs.randint(2, 4)
        elif kind == 1:
            items = words[: 1 + step % 22]
            assert ours.choice(items, 3) == list(theirs.choice(items, size=3))
        elif kind == 2:
            mine, numpys = list(range(step % 9)), list(range(step % 9))
            ours.shuffle(mine)
            theirs.shuffle(numpys)
            assert mine == numpys
        else:
            assert ours.randint(0, 1000) == theirs.randint(0, 1000)


# Instances HELM's own SyntheticReasoningScenario produced (numpy 2.4, crfm-helm 0.5.16): index -> (input, target).
HELM_INSTANCES = {
    ("pattern_match", 42): {
        0: ("Rules: + = X Z | X = Z + | + Z = X | X = Z + | Result: + blueberry = horse", "+ Z = X"),
        6000: ("Rules: = Z + - X | - + = X Z | Z - X + = | + - = Z X | Result: = watermelon lion + - zebra",
               "= Z + - X"),
    },
    ("variable_substitution", 42): {
        1000: ('Rules: = X Z - Y + | Substitutions: X by " shark " , Y by " blackberry " , Z by " blackberry "',
               "= shark blackberry - blackberry +"),
    },
    ("induction", 42): {
        6000: ("Two results: * stork - * shark stork | * horse - * buffalo penguin horse", "Rule: * Y - * X Z"),
    },
    ("pattern_match", 7): {
        1000: ("Rules: * - X = Y | X = * X - Y | - * Y = X | X = Y * - | Result: grape = * grape - seal",
               "X = * X - Y"),
    },
}


@pytest.mark.parametrize(("mode", "seed"), list(HELM_INSTANCES))
def test_instances_are_helms(mode: str, seed: int) -> None:
    instances = SyntheticReasoningScenario(mode, seed).get_instances()
    for index, (source, target) in HELM_INSTANCES[(mode, seed)].items():
        assert (instances[index].input, instances[index].references[0].output) == (source, target)


def test_same_seed_same_instances_other_seed_other_instances() -> None:
    first = SyntheticReasoningScenario("variable_substitution", 5).get_instances()
    again = SyntheticReasoningScenario("variable_substitution", 5).get_instances()
    other = SyntheticReasoningScenario("variable_substitution", 6).get_instances()
    assert [i.to_json() for i in first] == [i.to_json() for i in again]
    assert [i.input for i in first] != [i.input for i in other]
    assert sum(a.input == b.input for a, b in zip(first, other)) < len(first) // 10


def test_splits_and_ids() -> None:
    instances = SyntheticReasoningScenario("induction").get_instances()
    assert [i.split for i in instances] == ["train"] * 1000 + ["valid"] * 5000 + ["test"] * 5000
    assert instances[10999].id == "id10999"
    assert all(len(i.references) == 1 and i.references[0].is_correct for i in instances)


def _substitute(rule: str, words: dict[str, str]) -> str:
    return " ".join(words.get(token, token) for token in rule.split())


def test_variable_substitution_target_is_the_substituted_rule() -> None:
    pattern = re.compile(r'^Rules: (.+) \| Substitutions: (.+)$')
    for instance in SyntheticReasoningScenario("variable_substitution").get_instances()[:500]:
        match = pattern.match(instance.input)
        assert match, instance.input
        rule, substitutions = match.groups()
        words = dict(re.findall(r'([XYZ]) by " ([a-z ]+?) "', substitutions))
        assert set(words) == {t for t in rule.split() if t in "XYZ"}
        assert instance.references[0].output == _substitute(rule, words)


def test_pattern_match_target_is_one_of_four_rules_and_produces_the_result() -> None:
    for instance in SyntheticReasoningScenario("pattern_match").get_instances()[:500]:
        *rules, result = instance.input.removeprefix("Rules: ").split(" | ")
        assert len(rules) == 4 and result.startswith("Result: ")
        target = instance.references[0].output
        assert target in rules
        # Every operator of the result sits where the rule puts it.
        operators = [t for t in target.split() if t not in "XYZ"]
        assert [t for t in result.removeprefix("Result: ").split() if t in "+-*="] == operators


def test_induction_results_share_the_target_rule() -> None:
    for instance in SyntheticReasoningScenario("induction").get_instances()[:500]:
        first, second = instance.input.removeprefix("Two results: ").split(" | ")
        rule = instance.references[0].output.removeprefix("Rule: ")
        operators = [t for t in rule.split() if t in "+-*="]
        for result in (first, second):
            assert [t for t in result.split() if t in "+-*="] == operators


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        SyntheticReasoningScenario("riddles")
    assert excinfo.value.field == "mode"


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("synthetic_reasoning:mode=induction"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.instructions, adapter.input_prefix, adapter.input_suffix, adapter.output_prefix) == (
        "Please solve the following problem.", "", "\n", "Target: ")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences) == (5, 50, ("\n",))
    assert spec.metrics == ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    assert spec.name == "synthetic_reasoning:mode=induction,model=org_m"
    assert spec.to_json()["scenario_spec"] == {
        "class_name": "helm.benchmark.scenarios.synthetic_reasoning_scenario.SyntheticReasoningScenario",
        "args": {"mode": "induction"}}
    assert spec.groups == ["synthetic_reasoning", "synthetic_reasoning_induction"]
    assert spec.scenario_args == {"mode": "induction"}
    seeded = build_run_spec(Description.parse("synthetic_reasoning:mode=induction,random_seed=7"), "l/m", "o/m")
    assert seeded.scenario_args == {"mode": "induction", "random_seed": 7}
    assert seeded.name == "synthetic_reasoning:mode=induction,random_seed=7,model=o_m"
    assert seeded.to_json()["scenario_spec"]["args"] == {"mode": "induction", "random_seed": 7}


@pytest.mark.parametrize(("text", "field"), [
    ("synthetic_reasoning", "mode"),
    ("synthetic_reasoning:mode=riddles", "mode"),
    ("synthetic_reasoning:mode=induction,random_seed=x", "random_seed"),
    ("synthetic_reasoning:mode=induction,random_seed=-1", "random_seed"),
    ("synthetic_reasoning:mode=induction,seed=3", "seed"),
])
def test_bad_arguments_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(text), "local/m", "org/m")
    assert excinfo.value.field == field


@pytest.mark.parametrize("mode", MODES)
def test_prompt_has_instructions_examples_and_open_target(mode: str) -> None:
    spec = build_run_spec(Description.parse(f"synthetic_reasoning:mode={mode}"), "local/m", "org/m")
    instances = SyntheticReasoningScenario(mode).get_instances()
    states = adapt(spec.adapter_spec, instances[:1000] + instances[6000:6001])
    [state] = states
    blocks = state.request.prompt.split("\n\n")
    assert blocks[0] == "Please solve the following problem."
    assert len(blocks) == 7  # instructions, five examples, the question
    train_inputs = {i.input: i.references[0].output for i in instances[:1000]}
    for block in blocks[1:6]:
        source, target = block.split("\nTarget: ")
        assert train_inputs[source] == target
    assert blocks[6] == f"{instances[6000].input}\nTarget:"
