"""Run expanders: one eval-file entry standing for several runs (``expand:`` lists and
``mmlu:subject=all``), each its own pytest item with a readable id."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.collect import read_entries
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import Description, expand_description
from pytest_llmeval.scenarios.mmlu import SUBJECTS
from tests.projects import letters_project

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


def _texts(description: str, lists: dict[str, object] | None = None) -> list[str]:
    return [str(d) for d in expand_description(Description.parse(description), lists)]  # type: ignore[arg-type]


# --- expand_description ------------------------------------------------------------------------------


def test_nothing_to_expand_is_one_run() -> None:
    assert _texts("mmlu:subject=anatomy") == ["mmlu:subject=anatomy"]
    assert _texts("mmlu:subject=anatomy", {}) == ["mmlu:subject=anatomy"]


def test_a_list_gives_one_run_per_value_in_order() -> None:
    assert _texts("mmlu:subject=anatomy", {"max_train_instances": [0, 5]}) == [
        "mmlu:subject=anatomy,max_train_instances=0", "mmlu:subject=anatomy,max_train_instances=5"]


def test_a_listed_key_replaces_the_written_value_in_place() -> None:
    assert _texts("mmlu:subject=anatomy,max_train_instances=3,eval_split=test", {"max_train_instances": [1]}) == [
        "mmlu:subject=anatomy,max_train_instances=1,eval_split=test"]


def test_several_lists_give_every_combination() -> None:
    runs = _texts("mmlu:subject=anatomy", {"temperature": [0.0, 0.7], "method": ["multiple_choice_joint",
                                                                                 "multiple_choice_separate_original"]})
    assert runs == [
        "mmlu:subject=anatomy,temperature=0.0,method=multiple_choice_joint",
        "mmlu:subject=anatomy,temperature=0.0,method=multiple_choice_separate_original",
        "mmlu:subject=anatomy,temperature=0.7,method=multiple_choice_joint",
        "mmlu:subject=anatomy,temperature=0.7,method=multiple_choice_separate_original",
    ]


def test_subject_all_is_one_run_per_mmlu_subject() -> None:
    runs = _texts("mmlu:subject=all,max_train_instances=0")
    assert len(runs) == len(SUBJECTS) == 57
    assert runs[0] == "mmlu:subject=abstract_algebra,max_train_instances=0"
    assert runs[-1] == "mmlu:subject=world_religions,max_train_instances=0"
    assert len(_texts("mmlu:subject=all", {"data_augmentation": ["robustness", "fairness"]})) == 114
    assert _texts("other:subject=all") == ["other:subject=all"]  # only mmlu registers the expansion


def test_values_become_description_text() -> None:
    assert _texts("x:a=1", {"flag": [True, False]}) == ["x:a=1,flag=true", "x:a=1,flag=false"]


@pytest.mark.parametrize(
    ("lists", "field"),
    [
        ({"max_train_instances": 5}, "expand.max_train_instances"),
        ({"max_train_instances": "0,5"}, "expand.max_train_instances"),
        ({"max_train_instances": []}, "expand.max_train_instances"),
        ({"max_train_instances": [[0, 5]]}, "expand.max_train_instances"),
        ({"stop": ["a,b"]}, "expand.stop"),
        ({"bad key": [1]}, "expand.bad key"),
        ({1: [1]}, "expand.1"),
    ],
)
def test_bad_lists_name_the_field(lists: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        expand_description(Description.parse("mmlu:subject=anatomy"), lists)  # type: ignore[arg-type]
    assert excinfo.value.field == field


# --- eval files -----------------------------------------------------------------------------------------


def test_eval_file_entries_expand(tmp_path: Path) -> None:
    path = tmp_path / "eval_x.yaml"
    path.write_text(textwrap.dedent("""
        entries:
          - description: mmlu:subject=anatomy
            expand: {max_train_instances: [0, 5]}
            gates: ["exact_match >= 0.1"]
            priority: 2
          - mmlu:subject=all
    """))
    entries = read_entries(path, builtin_registries())
    assert len(entries) == 2 + 57
    first, second = entries[:2]
    assert (str(first.description), str(second.description)) == (
        "mmlu:subject=anatomy,max_train_instances=0", "mmlu:subject=anatomy,max_train_instances=5")
    assert first.gates == second.gates and first.priority == second.priority == 2
    assert first.index == second.index == 0 and entries[2].index == 1


@pytest.mark.parametrize(
    ("expand", "message", "field"),
    [("[0, 5]", "must map argument names", "expand"), ("{max_train_instances: 5}", "non-empty list",
                                                        "expand.max_train_instances")],
)
def test_eval_file_errors_name_file_entry_and_field(tmp_path: Path, expand: str, message: str, field: str) -> None:
    path = tmp_path / "eval_x.yaml"
    path.write_text(f"entries:\n  - description: mmlu:subject=anatomy\n    expand: {expand}\n")
    with pytest.raises(ConfigError) as excinfo:
        read_entries(path, builtin_registries())
    error = excinfo.value
    assert error.file == str(path) and error.entry == "#0 ('mmlu:subject=anatomy')" and error.field == field
    assert message in str(error)


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return letters_project(pytester, monkeypatch)


def test_subject_all_collects_57_readable_items(project: pytest.Pytester) -> None:
    (project.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=all]\n")
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/letters")
    lines = [line for line in result.stdout.lines if line.startswith("eval_mmlu.yaml::")]
    assert len(lines) == 57
    assert lines[0] == "eval_mmlu.yaml::mmlu:subject=abstract_algebra[scripted/letters]"
    assert "eval_mmlu.yaml::mmlu:subject=virology[scripted/letters]" in lines
    selected = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/letters", "-k", "astronomy")
    selected.stdout.fnmatch_lines(["eval_mmlu.yaml::mmlu:subject=astronomy[[]scripted/letters[]]",
                                   "*1/57 tests collected (56 deselected)*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_expanded_entries_run_as_separate_items(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(textwrap.dedent("""
        entries:
          - description: mmlu:subject=anatomy
            expand: {max_train_instances: [0, 2]}
    """))
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "3", "-v",
                               *xdist)
    result.assert_outcomes(passed=2)
    for shots in (0, 2):  # in any order: xdist reports items as they finish
        result.stdout.fnmatch_lines([f"*PASSED*mmlu:subject=anatomy,max_train_instances={shots}?scripted/letters?*"
                                     if xdist else
                                     f"*mmlu:subject=anatomy,max_train_instances={shots}?scripted/letters? PASSED*"])
    runs = sorted(p for p in (project.path / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir())
    assert [p.name for p in runs] == [
        "mmlu:subject=anatomy,method=multiple_choice_joint,max_train_instances=0,model=scripted_letters",
        "mmlu:subject=anatomy,method=multiple_choice_joint,max_train_instances=2,model=scripted_letters",
    ]
    for run, shots in zip(runs, (0, 2)):
        states = json.loads((run / "scenario_state.json").read_text())["request_states"]
        assert len(states) == 3 and {s["num_train_instances"] for s in states} == {shots}


@pytest.mark.parametrize("xdist", XDIST)
def test_bad_expand_stops_with_file_entry_and_field(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(
        "entries:\n  - {description: 'mmlu:subject=anatomy', expand: {max_train_instances: 5}}\n")
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval_mmlu.yaml, entry #0 ('mmlu:subject=anatomy'), "
                                 "field expand.max_train_instances: *non-empty list*"])


# --- the real bundled model -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_runs_each_expanded_value(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text(textwrap.dedent("""
        entries:
          - description: mmlu:subject=anatomy,eval_split=test
            expand: {max_train_instances: [0, 1]}
    """))
    result = pytester.runpytest("--llmeval-max-eval-instances", "2", "-v")
    result.assert_outcomes(passed=2)
    runs = sorted(p for p in (pytester.path / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir())
    assert len(runs) == 2
    for run, shots in zip(runs, (0, 1)):
        stats = {(s["name"]["name"], s["name"]["split"]): s for s in json.loads((run / "stats.json").read_text())}
        assert stats["num_train_instances", "test"]["mean"] == shots
        assert stats["exact_match", "test"]["count"] == 1  # one train trial
        assert stats["num_instances", "test"]["mean"] == 2


def test_the_readme_example_gives_the_runs_it_promises(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [block] = [b for b in readme.split("```yaml\n")[1:] if "expand:" in b.split("```")[0]]
    path = tmp_path / "eval_readme.yaml"
    path.write_text(block.split("```")[0])
    runs = [str(e.description) for e in read_entries(path, builtin_registries())]
    assert len(runs) == 4 + 57
    assert runs[0] == "mmlu:subject=anatomy,max_train_instances=0,method=multiple_choice_joint"
    assert runs[4] == "mmlu:subject=abstract_algebra" and runs[-1] == "mmlu:subject=world_religions"
