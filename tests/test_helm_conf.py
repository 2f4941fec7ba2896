"""HELM's run-entry conf files as helm-run reads them: HOCON through pyhocon, every entry's
description, priority and groups; all of HELM's own files collect; bad input is one line."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import pyhocon
import pytest

from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.collect import read_entries
from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.options import DEFAULT_EVAL_FILES
from pytest_llmeval.runspec import Description, build_run_spec, expand_description
from tests.conftest import MIRROR
from tests.projects import letters_project

PRESENTATION = MIRROR.parent / "peers" / "helm" / "presentation"
CONF_FILES = sorted(PRESENTATION.glob("*.conf")) if PRESENTATION.is_dir() else []
XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]

DEMO = """\
# HELM's syntax: no commas between entries, comments of both kinds
entries: [
  {description: "mmlu:subject=anatomy,model=scripted/letters,stop=hash", priority: 1, groups: ["demo_group"]}
  // an entry of a later priority, left out by --llmeval-priority 1
  {description: "mmlu:subject=astronomy,model=scripted/letters", priority: 2}
  {description: "babi_qa:model=scripted/letters,task=1", priority: 1}
]
"""


def _write(folder: Path, text: str, name: str = "run_entries_demo.conf") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- reading -----------------------------------------------------------------------------------------------------


def test_hocon_entries_priority_and_groups(tmp_path: Path) -> None:
    entries = read_entries(_write(tmp_path, DEMO), builtin_registries())
    assert [str(e.description) for e in entries] == [
        "mmlu:subject=anatomy,model=scripted/letters,stop=hash", "mmlu:subject=astronomy,model=scripted/letters",
        "babi_qa:model=scripted/letters,task=1"]
    assert [(e.priority, e.groups) for e in entries] == [(1, ("demo_group",)), (2, None), (1, None)]


def test_run_entries_files_are_collected_by_default() -> None:
    assert "run_entries*.conf" in DEFAULT_EVAL_FILES.split() and "run_specs*.conf" in DEFAULT_EVAL_FILES.split()


def test_groups_follow_the_scenarios_own() -> None:
    description = Description.parse("mmlu:subject=anatomy")
    assert build_run_spec(description, "d", "m").groups == ["mmlu"]
    assert build_run_spec(description, "d", "m", groups=["lite", "x"]).groups == ["mmlu", "lite", "x"]
    assert build_run_spec(description, "d", "m", groups=[]).groups == ["mmlu"]


def test_hocon_features_helm_files_use(tmp_path: Path) -> None:
    """Fields on lines of their own without commas, unquoted keys, trailing commas, a substitution."""
    path = _write(tmp_path, """\
        base: "mmlu:subject=anatomy"
        entries: [
          {description: ${base}",stop=hash"
           priority: 1},
          {description: "mmlu:subject=virology", priority: 3},
        ]
    """)
    with pytest.warns(ConfigWarning, match="unknown key base is ignored"):  # helm-run ignores it too
        entries = read_entries(path, builtin_registries())
    assert [(str(e.description), e.priority) for e in entries] == [
        ("mmlu:subject=anatomy,stop=hash", 1), ("mmlu:subject=virology", 3)]


@pytest.mark.skipif(not CONF_FILES, reason=f"no HELM conf files at {PRESENTATION}")
def test_all_of_helms_conf_files_are_there() -> None:
    assert len(CONF_FILES) == 70


@pytest.mark.skipif(not CONF_FILES, reason=f"no HELM conf files at {PRESENTATION}")
@pytest.mark.parametrize("path", CONF_FILES, ids=[p.name for p in CONF_FILES])
def test_helm_conf_file_reads_as_pyhocon_parses_it(path: Path) -> None:
    """Each entry pyhocon finds is read, with its priority and groups, and expands to the runs
    HELM's named values stand for; nothing warns."""
    raw = pyhocon.ConfigFactory.parse_string(path.read_text(encoding="utf-8")).as_plain_ordered_dict()["entries"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        entries = read_entries(path, builtin_registries())
    by_index: dict[int, list[str]] = {}
    for entry in entries:
        by_index.setdefault(entry.index, []).append(str(entry.description))
        source = raw[entry.index]
        assert entry.priority == source.get("priority")
        assert entry.groups == (None if source.get("groups") is None else tuple(source["groups"]))
    assert sorted(by_index) == list(range(len(raw)))
    for index, descriptions in by_index.items():
        expected = expand_description(Description.parse(raw[index]["description"]))
        assert descriptions == [str(d) for d in expected]


@pytest.mark.skipif(not CONF_FILES, reason=f"no HELM conf files at {PRESENTATION}")
@pytest.mark.filterwarnings("ignore::pytest_llmeval.errors.ConfigWarning")  # HELM's registry's own typos
def test_all_helm_conf_files_collect_with_helms_registry(pytester: pytest.Pytester) -> None:
    """HELM's 70 files and HELM's three registry files, unchanged: collection succeeds. The
    selection keeps the item count small (an entry's ``model=text`` runs on the selected model);
    entries naming one of HELM's deployments by itself (the medhelm files) collect too."""
    config = PRESENTATION.parent / "config"
    result = pytester.runpytest("--collect-only", "-q", str(PRESENTATION), "--llmeval-local-path", str(config),
                                "--llmeval-disable-cache", "--llmeval-models", "local/smollm2-135m-instruct",
                                "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-2000:]
    collected = [line for line in result.outlines if "::" in line]
    files = {line.partition("::")[0].rpartition("/")[2] for line in collected}
    assert "run_entries_lite_20240424.conf" in files and "run_entries_core_scenarios_10.conf" in files
    assert len(collected) > 3000
    lite = [line for line in collected if "run_entries_lite_20240424.conf::" in line]
    assert len(lite) == 108  # every HELM Lite entry (all name model groups) on the selected model


@pytest.mark.skipif(not CONF_FILES, reason=f"no HELM conf files at {PRESENTATION}")
@pytest.mark.parametrize(("name", "count"), [("run_entries_lite_20240424.conf", 108), ("run_entries.conf", 465),
                                             ("run_entries_core_scenarios_10.conf", 38)])
def test_known_entry_counts(name: str, count: int) -> None:
    entries = read_entries(PRESENTATION / name, builtin_registries())
    assert len({e.index for e in entries}) == count


# --- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "field", "entry", "words"), [
    ('entries: [\n  {description: "mmlu:subject=anatomy", priority: 1}\n  {description: "b"\n]\n', None, None,
     "is not valid HOCON: line 4, column 1"),
    ('entries: [{description: ${nowhere}}]\n', None, None, "is not valid HOCON: Cannot resolve variable"),
    ('entries: [{priority: 1}]\n', "description", "#0", "is required"),
    ('entries: [{description: "mmlu:subject=anatomy", priority: high}]\n', "priority",
     "#0 ('mmlu:subject=anatomy')", "must be a whole number"),
    ('entries: [{description: "mmlu:subject=anatomy", groups: 3}]\n', "groups", "#0 ('mmlu:subject=anatomy')",
     "is not a list of names"),
    ('entries: [{description: "mmlu:subject=anatomy,stop=hashes"}]\n', "stop",
     "#0 ('mmlu:subject=anatomy,stop=hashes')", "did you mean hash?"),
    ('runs: []\n', "entries", None, "is required"),
])
def test_bad_conf_files_are_one_line(tmp_path: Path, text: str, field: str | None, entry: str | None,
                                     words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        read_entries(path, builtin_registries())
    error = excinfo.value
    assert "\n" not in str(error) and str(error).startswith(f"file {path}"), str(error)
    assert (error.field, error.entry) == (field, entry) and words in str(error), str(error)


def test_a_misspelt_entry_key_warns_with_the_closest(tmp_path: Path) -> None:
    path = _write(tmp_path, 'entries: [{description: "mmlu:subject=anatomy", priorty: 1}]\n')
    with pytest.warns(ConfigWarning, match="field priorty: unknown key priorty is ignored: did you mean priority?"):
        read_entries(path, builtin_registries())


# --- end to end ------------------------------------------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return letters_project(pytester, monkeypatch)


@pytest.mark.parametrize("xdist", XDIST)
def test_conf_runs_by_priority_and_unknown_scenarios_fail_in_one_line(project: pytest.Pytester,
                                                                      xdist: list[str]) -> None:
    _write(project.path, DEMO)
    result = project.runpytest("--llmeval-priority", "1", "--llmeval-max-eval-instances", "2", "-p",
                               "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "astronomy" not in output and "Traceback" not in output
    # HELM's scenario, not built in: without crfm-helm, the line says what brings it.
    result.stdout.fnmatch_lines(["*babi_qa:task=1?scripted/letters?: "
                                 "scenario 'babi_qa' is HELM's and not built in: pip install "
                                 "'pytest-llmeval?helm?'*"])
    [run] = [p for p in (project.path / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir()]
    run_spec = json.loads((run / "run_spec.json").read_text())
    assert run_spec["groups"] == ["mmlu", "demo_group"]
    assert run_spec["adapter_spec"]["stop_sequences"] == ["###"]
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    assert len(states) == 2 and all("###\n\n" in s["request"]["prompt"] for s in states)


def test_a_typo_in_a_description_key_fails_its_run_with_the_closest_key(project: pytest.Pytester) -> None:
    _write(project.path, 'entries: [{description: "mmlu:subject=anatomy,model=scripted/letters,max_train_instance=0"'
                         ', priority: 1}]\n')
    result = project.runpytest("--llmeval-max-eval-instances", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*field max_train_instance: unknown argument(s) max_train_instance * "
                                 "(did you mean max_train_instances?)"])


GSM = "gsm:examples_from=heldout,max_train_instances=1,follow_format_instructions=instruct,num_output_tokens=12"


@pytest.mark.slow
def test_real_model_runs_a_helm_conf(pytester: pytest.Pytester) -> None:
    """HELM Lite's kind of entries on the bundled model: its expanders shape the prompts sent."""
    _write(pytester.path, f"""\
        entries: [
          # HELM Lite's MMLU entry, with HELM's output format instructions
          {{description: "mmlu:subject=anatomy,output_format_instructions=mmlu,max_train_instances=1", priority: 1,
           groups: ["lite_demo"]}}
          {{description: "{GSM}"
           priority: 1}}
          {{description: "mmlu:subject=virology", priority: 2}}
        ]
    """)
    result = pytester.runpytest("--llmeval-priority", "1", "--llmeval-max-eval-instances", "2", "-v")
    result.assert_outcomes(passed=2)
    runs = {p.name.partition(":")[0]: p for p in (pytester.path / "benchmark_output" / "runs" / "default").iterdir()
            if p.is_dir()}
    assert sorted(runs) == ["gsm", "mmlu"]
    mmlu = json.loads((runs["mmlu"] / "scenario_state.json").read_text())["request_states"]
    assert len(mmlu) == 2
    for state in mmlu:
        assert state["request"]["prompt"].startswith("Answer with only a single letter.\n\nThe following are")
        assert state["result"]["completions"][0]["text"] is not None
    assert json.loads((runs["mmlu"] / "run_spec.json").read_text())["groups"] == ["mmlu", "lite_demo"]
    gsm = json.loads((runs["gsm"] / "scenario_state.json").read_text())["request_states"]
    assert len(gsm) == 2
    for state in gsm:  # SmolLM2 is tagged instruction-following, so `instruct` applies
        assert state["request"]["prompt"].startswith("Here are some input-output examples.")
        assert state["request"]["prompt"].endswith("It is critical to follow the format of the preceding outputs!\nA:")
        assert state["request"]["max_tokens"] == 12


def test_an_entrys_groups_select_it_with_k(project: pytest.Pytester) -> None:
    _write(project.path, DEMO)
    result = project.runpytest("--collect-only", "-q", "-k", "demo_group", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*mmlu:subject=anatomy,stop=hash?scripted/letters?", "*1/3 tests collected*"])
