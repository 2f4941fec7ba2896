"""Perturbations (``data_augmentation=robustness|fairness``): seeded copies of the eval instances,
run beside their originals, with HELM's perturbed and worst-case stats."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from random import Random
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics import MetricName, Stat, aggregate
from pytest_llmeval.metrics.worst_case import worst_case_stats
from pytest_llmeval.perturbations import (
    ContractionPerturbation,
    ExpansionPerturbation,
    GenderPerturbation,
    LowerCasePerturbation,
    MildMixPerturbation,
    MisspellingPerturbation,
    PersonNamePerturbation,
    PerturbationDescription,
    SpacePerturbation,
    TyposPerturbation,
    augment,
    perturbations_for,
)
from pytest_llmeval.perturbations.fairness import TARGET_NAMES
from pytest_llmeval.perturbations.robustness import KEYBOARD_NEIGHBOURS, MISSPELLINGS
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import CORRECT_TAG, Instance, Reference
from tests.projects import letters_project

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
MILD_MIX = PerturbationDescription("mild_mix", robustness=True)


def _instance(text: str, options: tuple[str, ...] = ("yes", "no"), split: str = "test", id: str = "id7") -> Instance:
    return Instance(text, tuple(Reference(o, (CORRECT_TAG,) if i == 0 else ()) for i, o in enumerate(options)),
                    split, id=id)


# --- metric names carry the perturbation ----------------------------------------------------------------


def test_perturbation_is_part_of_a_metric_names_identity() -> None:
    plain = MetricName("exact_match", "test")
    perturbed = MetricName("exact_match", "test", perturbation=MILD_MIX)
    assert plain != perturbed and hash(plain) != hash(perturbed)
    assert perturbed == MetricName("exact_match", "test", perturbation={"name": "mild_mix", "robustness": True})
    worst = MetricName("exact_match", "test", perturbation=MILD_MIX.with_computed_on("worst"))
    assert worst != perturbed
    stats = aggregate([[Stat(plain).add(1)], [Stat(perturbed).add(0)], [Stat(plain).add(0)]])
    assert [(s.name.perturbation, s.count, s.sum) for s in stats] == [(None, 2, 1.0), (MILD_MIX, 1, 0.0)]


def test_perturbation_json_is_helms() -> None:
    assert MetricName("exact_match", "test", perturbation=MILD_MIX.with_computed_on("worst")).to_json() == {
        "name": "exact_match", "split": "test",
        "perturbation": {"name": "mild_mix", "robustness": True, "fairness": False, "computed_on": "worst"}}
    gender = GenderPerturbation("pronouns").description
    assert gender.to_json() == {"name": "gender", "robustness": False, "fairness": True, "computed_on": "perturbed",
                                "mode": "pronouns", "prob": 1.0, "source_class": "male", "target_class": "female"}
    assert PerturbationDescription.from_json(gender.to_json()) == gender


# --- each perturbation ------------------------------------------------------------------------------------


def test_lowercase() -> None:
    assert LowerCasePerturbation().perturb("The Heart IS red", Random(0)) == "the heart is red"


def test_contraction_only_before_a_space() -> None:
    perturb = ContractionPerturbation().perturb
    assert perturb("It is not what it is", Random(0)) == "It's not what it is"  # leftmost match wins
    assert perturb("This is not what it is", Random(0)) == "This isn't what it is"
    assert perturb("i am sure we are done", Random(0)) == "i'm sure we're done"


def test_expansion() -> None:
    assert ExpansionPerturbation().perturb("It's fine, isn't it? I'm here.", Random(0)) == (
        "It is fine, is not it? I am here.")


def test_spaces_vary_between_one_and_max() -> None:
    text = "a b  c d e f g h"
    out = SpacePerturbation(max_spaces=3).perturb(text, Random(1))
    assert re.sub(" +", " ", out) == re.sub(" +", " ", text)
    assert {len(run) for run in re.findall(" +", out)} <= {1, 2, 3} and out != text


def test_misspellings_come_from_the_list_and_keep_case() -> None:
    text = "Because their answer is different"
    assert MisspellingPerturbation(prob=0.0).perturb(text, Random(0)) == text
    out = MisspellingPerturbation(prob=1.0).perturb(text, Random(0)).split()
    assert out[0] in {m.capitalize() for m in MISSPELLINGS["because"]}
    assert out[1] in MISSPELLINGS["their"] and out[2] in MISSPELLINGS["answer"] and out[3] == "is"


def test_typos_hit_neighbouring_keys_only() -> None:
    text = "Hello, World 42"
    out = TyposPerturbation(prob=1.0).perturb(text, Random(0))
    assert len(out) == len(text)
    for before, after in zip(text, out):
        if before.lower() in KEYBOARD_NEIGHBOURS:
            assert after.lower() in KEYBOARD_NEIGHBOURS[before.lower()]
            assert after.isupper() == before.isupper()
        else:
            assert after == before
    assert TyposPerturbation(prob=0.0).perturb(text, Random(0)) == text


def test_mild_mix_lowercases_contracts_and_keeps_references() -> None:
    instance = _instance("Which Organ is not in the Chest?", ("The Heart", "The Liver"))
    copy = MildMixPerturbation().apply(instance)
    assert copy.id == instance.id and copy.split == instance.split
    assert copy.perturbation == MILD_MIX
    assert copy.references == instance.references  # robustness never touches the answers
    words = re.sub(" +", " ", copy.input)
    assert words == words.lower()
    assert len(words.split()) == len(instance.input.split()) - 1  # "is not" became one word
    assert MildMixPerturbation().apply(instance) == copy  # seeded by the instance id
    assert MildMixPerturbation().apply(instance, seed=1).perturbation == MILD_MIX.__class__(
        "mild_mix", robustness=True, seed=1)


def test_perturbations_are_the_same_in_a_fresh_interpreter() -> None:
    """Seeds come from the instance id, not from Python's salted string hash."""
    text = "John said he is not sure whether the Heart or the Liver is bigger, because their sizes differ."
    code = textwrap.dedent(f"""
        from pytest_llmeval.perturbations import perturbations_for
        from pytest_llmeval.scenarios import Instance, Reference
        instance = Instance({text!r}, (Reference("yes", ("correct",)),), "test", id="id42")
        for p in perturbations_for("canonical"):
            print(repr(p.apply(instance).input))
    """)
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    here = "".join(repr(p.apply(_instance(text, id="id42")).input) + "\n" for p in perturbations_for("canonical"))
    assert outputs == {here}


def test_gender_pronouns_and_terms_change_input_and_references() -> None:
    instance = _instance("He gave his book to him. HE was the man's father.", ("his son", "him himself"))
    pronouns = GenderPerturbation("pronouns").apply(instance)
    assert pronouns.input == "She gave her book to her. SHE was the man's father."
    assert [r.output for r in pronouns.references] == ["her son", "her herself"]
    assert pronouns.references[0].is_correct  # tags kept
    terms = GenderPerturbation("terms").apply(instance)
    assert terms.input == "He gave his book to him. HE was the woman's mother."
    assert [r.output for r in terms.references] == ["his daughter", "him himself"]
    assert pronouns.perturbation != terms.perturbation  # two perturbations, two stat groups


def test_person_names_keep_gender_and_are_consistent() -> None:
    instance = _instance("John met Mary. Later John left; Mark stayed.", ("John", "Mary"))
    copy = PersonNamePerturbation().apply(instance)
    john, mary = copy.references[0].output, copy.references[1].output
    assert john in TARGET_NAMES["male"] and mary in TARGET_NAMES["female"]
    assert copy.input.count(john) == 2 and "John" not in copy.input and "Mary" not in copy.input
    assert copy.input.startswith(f"{john} met {mary}.")


def test_augment_keeps_originals_adds_changed_copies_and_leaves_training_alone() -> None:
    train = _instance("He trains.", split="train", id="id0")
    changed = _instance("He is tall.", id="id1")
    unchanged = _instance("It is blue.", id="id2")
    result = augment([train, changed, unchanged], perturbations_for("fairness"), ("valid", "test"))
    assert [(i.id, i.perturbation.name if i.perturbation else None) for i in result] == [
        ("id0", None), ("id1", None), ("id1", "gender"), ("id2", None)]
    assert result[2].input == "She is tall."


def test_data_augmentation_in_a_run_spec() -> None:
    spec = build_run_spec(Description.parse("mmlu:subject=anatomy,data_augmentation=robustness"), "d", "m")
    assert spec.name == "mmlu:subject=anatomy,method=multiple_choice_joint,data_augmentation=robustness,model=m"
    assert [p.name for p in spec.perturbations] == ["mild_mix"]
    augmenter = spec.to_json()["data_augmenter_spec"]
    assert augmenter["perturbation_specs"] == [
        {"class_name": "pytest_llmeval.perturbations.robustness.MildMixPerturbation", "args": {}}]
    assert augmenter["should_augment_eval_instances"] and augmenter["should_include_original_eval"]
    assert not augmenter["should_augment_train_instances"]
    fairness = build_run_spec(Description.parse("mmlu:subject=anatomy,data_augmentation=fairness"), "d", "m")
    for entry in fairness.to_json()["data_augmenter_spec"]["perturbation_specs"]:  # the specs rebuild the objects
        module, _, name = entry["class_name"].rpartition(".")
        rebuilt = getattr(__import__(module, fromlist=[name]), name)(**entry["args"])
        assert rebuilt.spec() == entry
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse("mmlu:subject=anatomy,data_augmentation=typos"), "d", "m")
    assert excinfo.value.field == "data_augmentation" and "robustness" in str(excinfo.value)


# --- worst case -------------------------------------------------------------------------------------------


def test_worst_case_over_originals_and_copies() -> None:
    gender = GenderPerturbation("pronouns").description

    def em(value: float, perturbation: PerturbationDescription | None = None) -> list[Stat]:
        return [Stat(MetricName("exact_match", "test", perturbation=perturbation)).add(value)]

    per_instance = [
        (("a", 0), em(1)), (("a", 0), em(0, MILD_MIX)),  # robust copy fails: worst 0
        (("b", 0), em(0)),  # no copy: worst is the original
        (("c", 0), em(1)), (("c", 0), em(1, MILD_MIX)), (("c", 0), em(0, gender)),
    ]
    by_name = {(s.name.perturbation.name, s.name.perturbation.computed_on): s  # type: ignore[union-attr]
               for s in worst_case_stats(per_instance)}
    assert (by_name["robustness", "worst"].count, by_name["robustness", "worst"].sum) == (3, 1.0)
    assert (by_name["fairness", "worst"].count, by_name["fairness", "worst"].sum) == (3, 1.0)
    assert (by_name["mild_mix", "worst"].count, by_name["mild_mix", "worst"].sum) == (2, 1.0)
    assert (by_name["mild_mix", "original"].count, by_name["mild_mix", "original"].sum) == (2, 2.0)
    assert (by_name["gender", "worst"].count, by_name["gender", "worst"].sum) == (1, 0.0)
    assert (by_name["gender", "original"].count, by_name["gender", "original"].sum) == (1, 1.0)
    assert set(by_name) == {("robustness", "worst"), ("fairness", "worst"), ("mild_mix", "worst"),
                            ("mild_mix", "original"), ("gender", "worst"), ("gender", "original")}
    # Trials are kept apart: the same instance in two trials is two instances.
    twice = worst_case_stats([(("a", 0), em(1)), (("a", 1), em(0)), (("a", 1), em(1, MILD_MIX))])
    robust = next(s for s in twice if s.name.perturbation and s.name.perturbation.name == "robustness")
    assert (robust.count, robust.sum) == (2, 1.0)


# --- end to end ---------------------------------------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return letters_project(pytester, monkeypatch)


def _run(root: Path) -> Path:
    [run] = [p for p in (root / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir()]
    return run


def _key(perturbation: dict[str, Any] | None) -> str | None:
    """A perturbation's identity, whatever it was computed on."""
    if perturbation is None:
        return None
    return json.dumps({k: v for k, v in perturbation.items() if k != "computed_on"}, sort_keys=True)


def _recomputed(run: Path) -> dict[tuple[str, str, str | None], float]:
    """exact_match per (split, instance id, perturbation) from scenario_state.json alone."""
    scores = {}
    for state in json.loads((run / "scenario_state.json").read_text())["request_states"]:
        instance = state["instance"]
        letter = state["result"]["completions"][0]["text"].strip()
        gold = next(r["output"]["text"] for r in instance["references"] if "correct" in r["tags"])
        key = (instance["split"], instance["id"], _key(instance.get("perturbation")))
        scores[key] = float(state["output_mapping"].get(letter) == gold)
    return scores


def _check_worst_case(run: Path, kind: str) -> dict[str, Any]:
    """stats.json's perturbed and worst exact_match equal the values recomputed from the states."""
    scores = _recomputed(run)
    stats = json.loads((run / "stats.json").read_text())
    found: dict[str, Any] = {}
    for split in {k[0] for k in scores}:
        originals = {i: v for (s, i, p), v in scores.items() if s == split and p is None}
        copies: dict[str, list[float]] = defaultdict(list)
        names = set()
        for (s, i, p), v in scores.items():
            if s == split and p is not None:
                copies[i].append(v)
                names.add(p)

        def stat(key: str | None, computed_on: str | None, split: str = split) -> dict[str, Any]:
            [found] = [x for x in stats if x["name"]["name"] == "exact_match" and x["name"]["split"] == split
                       and _key(x["name"].get("perturbation")) == key
                       and (x["name"].get("perturbation") or {}).get("computed_on") == computed_on]
            return found

        worst = stat(_key({"name": kind, "robustness": kind == "robustness", "fairness": kind == "fairness"}),
                     "worst")
        assert worst["name"]["perturbation"] == {"name": kind, "robustness": kind == "robustness",
                                                 "fairness": kind == "fairness", "computed_on": "worst"}
        expected = [min([v, *copies.get(i, [])]) for i, v in originals.items()]
        # stats.json holds HELM's per-trial means: one train trial, so count 1 and the instances' mean
        assert (worst["count"], worst["mean"]) == (1, pytest.approx(statistics.fmean(expected)))
        assert stat(None, None)["mean"] == pytest.approx(statistics.fmean(originals.values()))
        for name in names:
            perturbed = [v for (s, _, p), v in scores.items() if s == split and p == name]
            assert stat(name, "perturbed")["count"] == 1
            assert stat(name, "perturbed")["mean"] == pytest.approx(statistics.fmean(perturbed))
            mine = {i: min(originals[i], v) for (s, i, p), v in scores.items() if s == split and p == name}
            assert stat(name, "worst")["mean"] == pytest.approx(statistics.fmean(mine.values()))
            assert stat(name, "original")["mean"] == pytest.approx(statistics.fmean(originals[i] for i in mine))
        found[split] = {"originals": len(originals), "copies": sum(len(v) for v in copies.values())}
    per_instance = json.loads((run / "per_instance_stats.json").read_text())
    assert len(per_instance) == len(scores)
    assert {(e["instance_id"], _key(e.get("perturbation"))) for e in per_instance} == {(i, p) for (_, i, p) in scores}
    return found


@pytest.mark.parametrize("xdist", XDIST)
def test_robustness_run_has_originals_copies_and_worst_case(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text("entries: ['mmlu:subject=anatomy,data_augmentation=robustness']\n")
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "10", *xdist)
    result.assert_outcomes(passed=1)
    run = _run(project.path)
    assert run.name == ("mmlu:subject=anatomy,method=multiple_choice_joint,data_augmentation=robustness,"
                        "model=scripted_letters")
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    originals = {s["instance"]["id"]: s for s in states if "perturbation" not in s["instance"]}
    copies = [s for s in states if "perturbation" in s["instance"]]
    assert len(originals) == 10 and len(copies) == 10  # lower-casing changes every question
    for copy in copies:
        original = originals[copy["instance"]["id"]]
        assert copy["instance"]["perturbation"] == {"name": "mild_mix", "robustness": True, "fairness": False,
                                                    "computed_on": "perturbed"}
        assert re.sub(" +", " ", copy["instance"]["input"]["text"]) != original["instance"]["input"]["text"]
        assert copy["instance"]["references"] == original["instance"]["references"]
    found = _check_worst_case(run, "robustness")
    assert sum(f["copies"] for f in found.values()) == 10
    # The gate and the summary still read the unperturbed stat.
    result.stdout.fnmatch_lines(["*scripted/letters*data_augmentation=robustness*exact_match*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_fairness_run_swaps_pronouns_and_names(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_law.yaml").write_text(textwrap.dedent("""
        entries:
          - mmlu:subject=professional_law,data_augmentation=fairness,eval_split=test,max_train_instances=0
    """))
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "12", *xdist)
    result.assert_outcomes(passed=1)
    run = _run(project.path)
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    copies = [s for s in states if "perturbation" in s["instance"]]
    assert copies, "law questions mention men, women and their pronouns"
    assert {c["instance"]["perturbation"]["name"] for c in copies} <= {"gender", "person_name"}
    for copy in copies:
        assert copy["instance"]["perturbation"]["fairness"] is True
        if copy["instance"]["perturbation"].get("mode") == "pronouns":
            assert not re.search(r"\b(he|him|his|himself)\b", copy["instance"]["input"]["text"], re.IGNORECASE)
    found = _check_worst_case(run, "fairness")
    assert found["test"]["originals"] == 12


# --- the real bundled model ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_robustness_run(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text(
        "entries: ['mmlu:subject=anatomy,data_augmentation=robustness,eval_split=test']\n")
    result = pytester.runpytest("--llmeval-max-eval-instances", "3")
    result.assert_outcomes(passed=1)
    run = _run(pytester.path)
    found = _check_worst_case(run, "robustness")
    assert found == {"test": {"originals": 3, "copies": 3}}
