"""The session's registries: built-ins by list, entry points, the conftest hook, and isolation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_llmeval import Description, RunSpec, run_spec_function, value_expander
from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import CALLABLE, backend_of, make_client
from pytest_llmeval.entry_points import load_entry_points
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.extensions import BUILTIN, NameTable
from pytest_llmeval.games.game_spec import discover_games
from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec
from pytest_llmeval.runspec import build_run_spec, expand_description
from pytest_llmeval.scenarios.declarations import register_declared
from pytest_llmeval.scenarios.specs import mmlu_spec
from tests.projects import letters_project

# --- NameTable -------------------------------------------------------------------------------------


def test_a_name_table_refuses_a_name_another_origin_declared() -> None:
    table: NameTable[int] = NameTable("metric")
    table.add("one", 1)
    table.add("two", 2, "a.py")
    table.add("two", 22, "a.py")  # the same origin again (a file collected twice): replaced
    assert dict(table) == {"one": 1, "two": 22} and table.origin("two") == "a.py"
    with pytest.raises(ConfigError, match="metric name 'one' is taken by a built-in metric") as excinfo:
        table.add("one", 11, "b.py")
    assert excinfo.value.field == "name"
    with pytest.raises(ConfigError, match=r"metric 'two' is already declared in a\.py"):
        table.add("two", 3, "b.py")


def test_the_builtins_come_from_the_explicit_list() -> None:
    registries = builtin_registries()
    assert set(registries.scenarios) == {"mmlu", "boolq", "gsm", "synthetic_reasoning", "natural_qa", "narrative_qa",
                                         "wmt_14", "commonsense", "med_qa", "legalbench", "math", "lm_eval"}
    assert registries.scenarios["mmlu"] is mmlu_spec and registries.scenarios.origin("mmlu") == BUILTIN
    assert "mmlu:subject=all" in registries.expanders
    assert {"exact_match", "f1_score", "final_number_exact_match"} <= set(registries.metrics)
    assert set(registries.adapters) == {"generation", "multiple_choice_joint"}
    assert list(registries.games) == [BUILTIN]
    assert "helm.clients.vllm_client.VLLMClient" in registries.clients


def test_two_sessions_do_not_share_what_they_declare() -> None:
    first, second = builtin_registries(), builtin_registries()

    @run_spec_function("own_quiz")
    def own_quiz(description: Description) -> RunSpec:
        return mmlu_spec(Description("mmlu", (("subject", "anatomy"),)))

    @value_expander("mmlu", "subject", "two")
    def two_subjects() -> tuple[str, ...]:
        return ("anatomy", "astronomy")

    register_declared(first, [own_quiz, two_subjects])
    assert build_run_spec(Description.parse("own_quiz"), "d", "m", first).groups == ["mmlu"]
    assert [str(d) for d in expand_description(Description.parse("mmlu:subject=two"), None, first)] == [
        "mmlu:subject=anatomy", "mmlu:subject=astronomy"]
    with pytest.raises(ConfigError, match="unknown scenario 'own_quiz'"):
        build_run_spec(Description.parse("own_quiz"), "d", "m", second)
    assert [str(d) for d in expand_description(Description.parse("mmlu:subject=two"), None, second)] == [
        "mmlu:subject=two"]
    assert "own_quiz" not in builtin_registries().scenarios  # the decorator registered nothing globally


def test_a_run_spec_gets_its_metrics_from_the_registry() -> None:
    registries = builtin_registries()
    spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), "d", "m", registries)
    assert list(spec.matchers) == spec.metrics and spec.matchers["exact_match"] is registries.metrics["exact_match"]


# --- entry points -----------------------------------------------------------------------------------

PLUGIN = '''
from pytest_llmeval import scenario
from pytest_llmeval.scenarios.specs import mmlu_spec


def shouted(gold, pred):
    return float(pred.strip() == gold.upper())


def anatomy(description):
    return mmlu_spec(type(description)("mmlu", (("subject", "anatomy"),)))


@scenario("plugged_words", metrics=["shouted"])
def plugged_words():
    return [{"input": "say a", "references": ["a"]}]


def answer(requests):
    return [" A" for _ in requests]
'''

ENTRY_POINTS = """
[pytest_llmeval.metrics]
shouted = fakeplug:shouted

[pytest_llmeval.scenarios]
plugged_anatomy = fakeplug:anatomy
words = fakeplug:plugged_words

[pytest_llmeval.clients]
fakeplug.Answer = fakeplug:answer

[pytest_llmeval.games]
fake games = fakeplug.games
"""


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    """A distribution on sys.path, as pip would leave it: a package and its dist-info."""
    (tmp_path / "fakeplug" / "games").mkdir(parents=True)
    (tmp_path / "fakeplug" / "__init__.py").write_text(PLUGIN)
    (tmp_path / "fakeplug" / "games" / "__init__.py").write_text("")
    info = tmp_path / "fakeplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_installed_packages_register_through_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, monkeypatch, ENTRY_POINTS)
    registries = load_entry_points(builtin_registries())
    assert registries.metrics["shouted"]("a", " A") == 1.0
    assert registries.metrics.origin("shouted") == ("entry point shouted = fakeplug:shouted "
                                                    "(group pytest_llmeval.metrics)")
    spec = build_run_spec(Description.parse("plugged_anatomy"), "d", "m", registries)
    assert spec.scenario_args == {"subject": "anatomy"}
    words = build_run_spec(Description.parse("plugged_words"), "d", "m", registries)  # its declared name
    assert words.metrics == ["shouted"]
    deployment = ModelDeployment(name="fake/one", model_name="fake/one",
                                 client_spec=ObjectSpec(class_name="fakeplug.Answer"))
    assert backend_of(deployment, registries.clients) == CALLABLE
    assert make_client(deployment, Credentials(), registries.clients) is not None
    assert registries.games["package fake games"] == (tmp_path / "fakeplug" / "games").resolve()
    assert discover_games((), registries.games).keys() == discover_games().keys()  # an empty games folder
    assert "shouted" not in builtin_registries().metrics


def test_a_broken_entry_point_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, monkeypatch, "[pytest_llmeval.metrics]\nlost = fakeplug:no_such_metric\n")
    with pytest.raises(ConfigError) as excinfo:
        load_entry_points(builtin_registries())
    assert str(excinfo.value) == ("entry entry point lost = fakeplug:no_such_metric (group pytest_llmeval.metrics): "
                                  "cannot be loaded: AttributeError: module 'fakeplug' has no attribute "
                                  "'no_such_metric'")


# --- the conftest hook ------------------------------------------------------------------------------

HOOK_CONFTEST = '''
from pytest_llmeval import register_scenario


def shouted(gold, pred):
    return float(pred.strip() == gold.upper())


def letters():
    return [{"input": f"Q{n}", "references": ["a"]} for n in range(4)]


def pytest_llmeval_register(registries):
    registries.metrics.add("shouted", shouted, origin=__file__)
    register_scenario("hooked", letters, metrics=["shouted", "exact_match"], max_train_instances=0).register(
        registries)
'''


@pytest.mark.parametrize("xdist", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")])
def test_a_conftest_registers_through_the_hook(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               xdist: list[str]) -> None:
    project = letters_project(pytester, monkeypatch)
    project.makeconftest(HOOK_CONFTEST)
    (project.path / "eval_hooked.yaml").write_text("entries: [hooked]\n")
    project.runpytest("--llmeval-models", "scripted/letters", *xdist).assert_outcomes(passed=1)
    [stats_file] = (project.path / "benchmark_output").rglob("hooked*/stats.json")
    names = {stat["name"]["name"] for stat in json.loads(stats_file.read_text())}
    assert {"shouted", "exact_match"} <= names


def test_a_session_does_not_see_an_earlier_sessions_scenarios(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    project = letters_project(pytester, monkeypatch)
    conftest = project.makeconftest(HOOK_CONFTEST)
    (project.path / "eval_hooked.yaml").write_text("entries: [hooked]\n")
    project.runpytest("--llmeval-models", "scripted/letters").assert_outcomes(passed=1)
    conftest.unlink()  # the same process, a new session: nothing is left from the first one
    result = project.runpytest("--llmeval-models", "scripted/letters")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown scenario 'hooked'*"])
