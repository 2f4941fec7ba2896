"""Malformed ``--llmeval-*`` values (and their ini keys) stop the session at start-up with one line,
and relative paths resolve where the user meant them, never under pytest's rootdir ``/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.projects import letters_project

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
MODEL = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "2"]
RUN = "mmlu:subject=anatomy,method=multiple_choice_joint,model=scripted_letters"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    letters_project(pytester, monkeypatch)
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    (pytester.path / "a_file").write_text("not a folder\n")
    return pytester


def one_line_usage_error(result: pytest.RunResult, project: Path) -> str:
    """The session stopped before running anything, with one error line and no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: pytest-llmeval: ")
    assert not (project / "benchmark_output").exists()
    return lines[0]


BAD_OPTIONS = [
    (["--llmeval-local-path", "a_file"],
     "field --llmeval-local-path: {root}/a_file is a file; it must be a folder (HELM's prod_env"),
    (["--llmeval-output-path", "a_file"], "field --llmeval-output-path: {root}/a_file is a file; it must be a folder"),
    (["--llmeval-output-path", "a_file/runs"],
     "field --llmeval-output-path: {root}/a_file/runs is inside {root}/a_file, which is a file"),
    (["--llmeval-baseline-dir", "a_file"],
     "field --llmeval-baseline-dir: {root}/a_file is a file; it must be a folder"),
    (["--llmeval-baseline-dir", "a_file", "--llmeval-save-baseline", "first"],
     "field --llmeval-baseline-dir: {root}/a_file is a file"),
    (["--llmeval-data-dir", "a_file"], "field --llmeval-data-dir: {root}/a_file is a file; it must be a folder"),
    (["--llmeval-data-dir", "no-such-mirror"], "field --llmeval-data-dir: no folder {root}/no-such-mirror"),
    (["--llmeval-models", ""], "field --llmeval-models: '' names no model"),
    (["--llmeval-models", ","], "field --llmeval-models: ',' names no model"),
    (["--llmeval-models", " , ,"], "field --llmeval-models: ' , ,' names no model"),
    (["--llmeval-max-eval-instances", "abc"], "field --llmeval-max-eval-instances: 'abc' is not a whole number"),
    (["--llmeval-max-eval-instances", "-3"], "field --llmeval-max-eval-instances: must be at least 1, not -3"),
    (["--llmeval-max-eval-instances", "0"], "field --llmeval-max-eval-instances: must be at least 1, not 0"),
    (["--llmeval-max-eval-instances", "2.5"], "field --llmeval-max-eval-instances: '2.5' is not a whole number"),
    (["--llmeval-priority", "x"], "field --llmeval-priority: 'x' is not a whole number"),
    (["--llmeval-priority", "0"], "field --llmeval-priority: must be at least 1, not 0"),
    (["--llmeval-max-episodes", "many"], "field --llmeval-max-episodes: 'many' is not a whole number"),
    (["--llmeval-max-episodes", "-1"], "field --llmeval-max-episodes: must be at least 1, not -1"),
    (["--llmeval-significance", "2"], "field --llmeval-significance: '2' is not a level between 0 and 1"),
    (["--llmeval-significance", "0"], "field --llmeval-significance: '0' is not a level between 0 and 1"),
    (["--llmeval-significance", "often"], "field --llmeval-significance: 'often' is not a level between 0 and 1"),
    (["--llmeval-players", ",,,"], "field --llmeval-players: pairing ',,,' has an empty model name"),
    (["--llmeval-players", "scripted/letters,,scripted/letters"],
     "field --llmeval-players: pairing 'scripted/letters,,scripted/letters' has an empty model name"),
    (["--llmeval-players", "a,b ,c"], "field --llmeval-players: pairing ',c' has an empty model name"),
    (["--llmeval-suite", ""], "field --llmeval-suite: '' is not a suite name"),
    (["--llmeval-suite", "../elsewhere"], "field --llmeval-suite: '../elsewhere' is not a suite name"),
    (["--llmeval-suite", "/var/nightly"], "field --llmeval-suite: '/var/nightly' is not a suite name"),
    (["--llmeval-suite", "nightly/"], "field --llmeval-suite: 'nightly/' is not a suite name"),
    (["--llmeval-eval-files", " "], "field --llmeval-eval-files: ' ' names no file pattern"),
    (["--llmeval-fail-under", "exact_match=high"], "field --llmeval-fail-under: gate 'exact_match=high'"),
    (["--llmeval-compare-fail", "exact_match:lots"], "field --llmeval-compare-fail: 'exact_match:lots'"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_option_value_is_one_line_naming_the_option(project: pytest.Pytester, args: list[str],
                                                          expected: str) -> None:
    result = project.runpytest(*MODEL, *args)
    assert expected.format(root=project.path) in one_line_usage_error(result, project.path)


@pytest.mark.parametrize("xdist", XDIST)
@pytest.mark.parametrize("option", ["local-path", "output-path"])
def test_a_path_option_naming_a_file_never_crashes(project: pytest.Pytester, xdist: list[str], option: str) -> None:
    result = project.runpytest(*MODEL, f"--llmeval-{option}", "a_file", *xdist)
    line = one_line_usage_error(result, project.path)
    assert f"field --llmeval-{option}: {project.path / 'a_file'} is a file; it must be a folder" in line


BAD_INI = [
    ("llmeval_local_path", "a_file", "{root}/a_file is a file; it must be a folder (HELM's prod_env"),
    ("llmeval_output_path", "a_file", "{root}/a_file is a file; it must be a folder"),
    ("llmeval_baseline_dir", "a_file", "{root}/a_file is a file; it must be a folder"),
    ("llmeval_data_dir", "a_file", "{root}/a_file is a file; it must be a folder"),
    ("llmeval_models", ",", "',' names no model"),
    ("llmeval_max_eval_instances", "abc", "'abc' is not a whole number"),
    ("llmeval_priority", "-2", "must be at least 1, not -2"),
    ("llmeval_max_episodes", "0", "must be at least 1, not 0"),
    ("llmeval_significance", "5%", "'5%' is not a level between 0 and 1"),
    ("llmeval_players", "a,", "pairing 'a,' has an empty model name"),
    ("llmeval_suite", "..", "'..' is not a suite name"),
    ("llmeval_fail_under", "exact_match=high", "gate 'exact_match=high'"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_INI, ids=[k for k, _, _ in BAD_INI])
def test_a_bad_ini_value_names_the_ini_file_and_key(project: pytest.Pytester, key: str, value: str,
                                                    expected: str) -> None:
    ini = project.makeini(f"[pytest]\n{key} = {value}\n")
    result = project.runpytest("--llmeval-models", "scripted/letters") if key != "llmeval_models" \
        else project.runpytest()
    line = one_line_usage_error(result, project.path)
    assert f"file {ini}, field {key}: {expected.format(root=project.path)}" in line


def test_an_ini_value_overridden_with_dash_o_is_named_so(project: pytest.Pytester) -> None:
    result = project.runpytest(*MODEL, "-o", "llmeval_output_path=a_file")
    line = one_line_usage_error(result, project.path)
    assert f"field -o llmeval_output_path: {project.path / 'a_file'} is a file" in line


def test_a_data_dir_environment_variable_naming_a_file(project: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_DATA_DIR", str(project.path / "a_file"))
    line = one_line_usage_error(project.runpytest(*MODEL), project.path)
    assert f"$LLMEVAL_DATA_DIR: {project.path / 'a_file'} is a file; it must be a folder" in line


# --- where relative paths go --------------------------------------------------------------------


def run_dirs(output: Path) -> list[str]:
    return sorted(p.name for p in (output / "runs" / "default").iterdir() if p.is_dir())


def test_an_absolute_option_value_moving_the_rootdir_up_leaves_defaults_in_the_project(
        project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Without an ini file, pytest's rootdir is the common ancestor of the arguments; an absolute
    ``--llmeval-data-dir`` outside the project (here a sibling folder) moves it above the project."""
    mirror = tmp_path_factory.mktemp("mirror")
    (mirror / "mmlu").symlink_to(Path(os.environ["LLMEVAL_DATA_DIR"]).resolve() / "mmlu")
    result = project.runpytest("-p", "no:cacheprovider", "--llmeval-data-dir", str(mirror), *MODEL,
                               "eval_mmlu.yaml", "--llmeval-save-baseline", "first")
    result.stdout.fnmatch_lines([f"rootdir: {mirror.parent}"])
    result.assert_outcomes(passed=1)
    assert run_dirs(project.path / "benchmark_output") == [RUN]
    assert (project.path / "prod_env" / "cache" / "requests.sqlite").is_file()
    assert [p.name for p in (project.path / "llmeval_baselines").iterdir()] == ["0001_first.json"]
    assert not any((mirror.parent / name).exists() for name in ("prod_env", "benchmark_output", "llmeval_baselines"))


@pytest.fixture
def clean_fs_root() -> Iterator[list[Path]]:
    """The folders a rootdir of ``/`` used to receive; a run that creates them anyway is cleaned up."""
    folders = [Path("/prod_env"), Path("/benchmark_output"), Path("/llmeval_baselines")]
    if any(f.exists() for f in folders):
        pytest.skip("a folder under / that this test checks is already there")
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("how", ["absolute-option-value", "--rootdir=/"])
def test_a_rootdir_of_fs_root_writes_nothing_under_it(project: pytest.Pytester, clean_fs_root: list[Path],
                                                      how: str) -> None:
    """The reproduction from the issue: no ini file and an absolute option value outside the
    project (the data mirror) make pytest's rootdir ``/``; ``--rootdir=/`` says so outright."""
    mirror = Path(os.environ["LLMEVAL_DATA_DIR"]).resolve()
    args = ["--llmeval-data-dir", str(mirror)] if how != "--rootdir=/" else ["--rootdir=/"]
    result = project.runpytest("-p", "no:cacheprovider", *args, *MODEL, "eval_mmlu.yaml", "--llmeval-save-baseline",
                               "first")
    result.stdout.fnmatch_lines(["rootdir: /"])
    result.assert_outcomes(passed=1)
    assert [f for f in clean_fs_root if f.exists()] == []
    assert run_dirs(project.path / "benchmark_output") == [RUN]
    assert (project.path / "prod_env" / "cache" / "requests.sqlite").is_file()
    assert (project.path / "llmeval_baselines").is_dir()


def test_command_line_paths_are_relative_to_the_invocation_directory(project: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    project.makeini("[pytest]\n")  # the rootdir is the project, the invocation a folder inside it
    (project.path / "sub").mkdir()
    monkeypatch.chdir(project.path / "sub")
    result = project.runpytest(*MODEL, "--llmeval-output-path", "out", "--llmeval-baseline-dir", "saved",
                               "--llmeval-save-baseline", "first", "../eval_mmlu.yaml")
    result.assert_outcomes(passed=1)
    assert run_dirs(project.path / "sub" / "out") == [RUN]
    assert (project.path / "sub" / "saved" / "0001_first.json").is_file()
    # the default local path is the ini file's folder's prod_env: the project's registry was found
    assert (project.path / "prod_env" / "cache" / "requests.sqlite").is_file()


def test_ini_paths_and_defaults_are_relative_to_the_ini_files_folder(project: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    project.makeini("[pytest]\nllmeval_output_path = from-ini\nllmeval_models = scripted/letters\n")
    (project.path / "sub").mkdir()
    monkeypatch.chdir(project.path / "sub")
    result = project.runpytest("--llmeval-max-eval-instances", "2", "--llmeval-save-baseline", "first",
                               "../eval_mmlu.yaml")
    result.assert_outcomes(passed=1)
    assert run_dirs(project.path / "from-ini") == [RUN]
    assert (project.path / "llmeval_baselines" / "0001_first.json").is_file()
    assert (project.path / "prod_env" / "cache" / "requests.sqlite").is_file()
    assert sorted(p.name for p in (project.path / "sub").iterdir()) == []
