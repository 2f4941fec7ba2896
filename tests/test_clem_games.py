"""clembench's own games, unchanged, played by clemcore's own code with our players.

The games are clembench's at a717f23 (``../shared/peers/clembench``); clemcore is the
``clembench`` extra. Scripted players stand in for models; one test plays the real bundled model.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.games.game_spec import GameSpec, discover_games, read_registry_file, read_spec_file
from pytest_llmeval.games.player_models import ScriptedModel
from tests.projects import make_importable

clemcore = pytest.importorskip("clemcore")

from pytest_llmeval.clem import play_clem_experiment  # noqa: E402
from pytest_llmeval.run_result import RunFailed  # noqa: E402

CLEMBENCH = next((p / "shared" / "peers" / "clembench" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "peers" / "clembench").is_dir()), Path("shared/peers/clembench"))
BENCHMARK_2 = ["adventuregame", "codenames", "guesswhat", "imagegame", "matchit_ascii", "privateshared",
               "referencegame", "taboo", "textmapworld", "textmapworld_graphreasoning", "textmapworld_specificroom",
               "wordle", "wordle_withclue", "wordle_withcritic"]
XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
REPO = Path(__file__).resolve().parents[1]


def _specs() -> dict[str, GameSpec]:
    return discover_games([CLEMBENCH])


def _reply(messages: list[dict[str, Any]]) -> str:
    """A player that answers every game in some format: games parse it, score it or abort."""
    text = messages[-1]["content"]
    if "CLUE" in text and "GUESS" in text.split("\n")[0]:
        return "CLUE: a thing people use"
    return "GUESS: house" if "GUESS" in text else "guess: house\nexplanation: a common word"


# --- finding the games ------------------------------------------------------------------------------------------


def test_all_benchmark_2_specs_are_found_as_clemcore_games() -> None:
    specs = _specs()
    found = sorted(name for name, spec in specs.items() if "2.0" in spec.benchmark)
    assert found == BENCHMARK_2
    assert all(specs[name].on_clemcore for name in found)
    assert specs["taboo"].players == 2 and specs["wordle"].players == 1
    assert specs["wordle_withclue"].instances == "instances_withclue"
    assert specs["textmapworld"].game_path == CLEMBENCH / "textmapworld" / "textmapworld_main"  # three levels deep
    assert specs["taboo"].max_tokens == 300  # clem run's default reply length
    assert dict(specs["taboo"].clem or {})["main_game"] == "taboo"  # the entry as clemcore reads it


def test_game_registry_json_entries_come_first(tmp_path: Path) -> None:
    (tmp_path / "game_registry.json").write_text(json.dumps([
        {"benchmark_path": str(CLEMBENCH / "wordle")},
        {"game_name": "my_taboo", "game_path": str(CLEMBENCH / "taboo"), "players": 2, "benchmark": ["x"]},
    ]))
    specs = read_registry_file(tmp_path / "game_registry.json", "test")
    assert [s.game_name for s in specs] == ["wordle", "wordle_withclue", "wordle_withcritic", "my_taboo"]
    assert specs[-1].on_clemcore and specs[-1].game_path == CLEMBENCH / "taboo"
    assert "my_taboo" in discover_games([tmp_path], registered={})


@pytest.mark.parametrize(("entry", "field", "message"), [
    ({"game_name": "g", "players": 1}, "master", "needs 'master'"),
    ({"game_name": "g"}, "players", "is required"),
    ({"game_name": "g", "players": 1, "benchmark": 2}, "benchmark", "benchmark versions"),
])
def test_bad_clembench_entries_name_file_entry_and_field(tmp_path: Path, entry: dict[str, Any], field: str,
                                                         message: str) -> None:
    if field != "master":
        (tmp_path / "master.py").write_text("")
    (tmp_path / "clemgame.json").write_text(json.dumps([entry]))
    with pytest.raises(ConfigError) as info:
        read_spec_file(tmp_path / "clemgame.json")
    assert str(info.value).startswith(f"file {tmp_path / 'clemgame.json'}, entry #0 ('g'), field {field}:")
    assert message in str(info.value)


def test_a_bad_registry_entry_names_its_field(tmp_path: Path) -> None:
    (tmp_path / "game_registry.json").write_text(json.dumps([{"game_name": "g"}]))
    with pytest.raises(ConfigError, match=r"entry #0, field game_path: needs a 'game_path'"):
        read_registry_file(tmp_path / "game_registry.json", "test")


# --- playing one episode of every game ---------------------------------------------------------------------------


@pytest.mark.parametrize("game", BENCHMARK_2)
def test_one_episode_of_every_benchmark_game_writes_clemcore_records(game: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # matchit_ascii writes a first_words.txt where it runs, as under clem run
    spec = _specs()[game]
    experiment = spec.load_instances()["experiments"][0]
    instance = experiment["game_instances"][0]
    run = play_clem_experiment(spec, experiment, [ScriptedModel(_reply)], tmp_path, [0])
    [episode] = run.episodes
    folder = tmp_path / "scripted" / game / experiment["name"] / f"instance_{instance['game_id']:05d}"
    assert episode.directory == folder and run.players == "scripted"
    for name in ("instance.json", "interactions.json", "scores.json", "completed.json", "transcript.html",
                 "player_1.requests.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "error.json").exists()
    interactions = json.loads((folder / "interactions.json").read_text())
    assert interactions == episode.interactions  # what we hand on is what clemcore wrote
    meta = interactions["meta"]
    assert meta["clem_version"] == clemcore.get_version() and meta["completed"] is True
    assert meta["round_count"] >= 1 and meta["game_id"] == instance["game_id"]
    calls = json.loads((folder / "player_1.requests.json").read_text())
    assert set(calls) == {"meta", "calls"} and all(set(c) == {"round", "call"} for c in calls["calls"])
    scores = json.loads((folder / "scores.json").read_text())
    assert scores["episode scores"] == episode.episode_scores
    assert {"Aborted", "Main Score"} <= set(episode.episode_scores)  # clemcore's scorer insists on both
    experiment_file = json.loads((folder.parent / "experiment.json").read_text())
    assert experiment_file["player_models"]["0"]["model_spec"]["model_name"] == "scripted"
    run_file = json.loads((tmp_path / "scripted" / "run.json").read_text())
    assert game in run_file["games"] and run_file["games"][game]["num_instances"] == 1
    assert {s.name.name for s in run.stats} >= {"played", "percent_played"}


def test_scores_equal_clem_score_on_the_same_records(tmp_path: Path) -> None:
    """clemcore's own scoring pass over the records we wrote gives the scores we report."""
    from clemcore.clemgame import GameBenchmark

    from pytest_llmeval.clem.play import clem_spec

    spec = _specs()["taboo"]
    experiment = spec.load_instances()["experiments"][0]
    run = play_clem_experiment(spec, experiment, [ScriptedModel(_reply)], tmp_path, [0, 1, 2])
    before = {e.directory.name: e.scores for e in run.episodes}
    for episode in run.episodes:
        (episode.directory / "scores.json").unlink()
    with GameBenchmark.load_from_spec(clem_spec(spec)) as benchmark:
        benchmark.compute_scores(sorted(tmp_path.rglob("interactions.json")))
    after = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.rglob("scores.json")}
    assert after == before


def test_a_failing_player_keeps_the_episodes_played_and_reports_the_cause(tmp_path: Path) -> None:
    spec = _specs()["taboo"]
    experiment = spec.load_instances()["experiments"][0]
    calls = {"n": 0}

    def flaky(messages: list[dict[str, Any]]) -> str:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("the server went away")
        return _reply(messages)

    with pytest.raises(RunFailed) as info:
        play_clem_experiment(spec, experiment, [ScriptedModel(flaky)], tmp_path, [0, 1])
    assert "the server went away" in str(info.value.error) and "taboo:high_en instance" in str(info.value.error)
    # clemcore's runner logs a failed player call and plays on, writing no scores (nor error.json)
    played = sorted(p.parent.name for p in tmp_path.rglob("scores.json"))
    assert [e.directory.name for e in info.value.result.episodes] == played and len(played) < 2
    assert (tmp_path / "clembench.log").is_file()  # clemcore's log, in the results folder, not the working one


def test_importing_the_bridge_leaves_other_loggers_working(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(check="""
        import logging, pathlib
        mine = logging.getLogger("someone.else")
        import pytest_llmeval.clem
        assert not mine.disabled
        assert not any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)
        assert not pathlib.Path("clembench.log").exists()
        print("clean")
    """)
    result = pytester.runpython(pytester.path / "check.py")
    assert "clean" in result.stdout.str(), result.stderr.str()


# --- as pytest items -----------------------------------------------------------------------------------------

SCRIPTED = '''
class Player:
    """Answers clembench's prompts: describes and guesses in taboo, guesses house in wordle."""
    def generate(self, requests):
        out = []
        for request in requests:
            text = request.messages[-1].content
            if "CLUE" in text and "GUESS" in text.split("\\n")[0]:
                out.append("CLUE: a thing people use")
            elif "GUESS" in text:
                out.append("GUESS: house")
            else:
                out.append("guess: house\\nexplanation: a common word")
        return out
'''
DEPLOYMENTS = """
model_deployments:
  - name: scripted/player
    model_name: scripted/player
    client_spec: {class_name: "clem_players:Player"}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(clem_players=SCRIPTED)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    make_importable(pytester, monkeypatch)
    return pytester


def test_a_benchmark_selection_collects_every_game_experiment(project: pytest.Pytester) -> None:
    (project.path / "games.yaml").write_text(textwrap.dedent(f"""
        game_dirs: [{str(CLEMBENCH)!r}]
        games:
          - benchmark: "2.0"
    """))
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/player", "-p", "no:cacheprovider")
    names = [line for line in result.stdout.lines if "games.yaml::" in line]
    games = {n.split("::")[1].split(":")[0] for n in names}
    assert games == set(BENCHMARK_2)
    experiments = sum(len(s.load_instances()["experiments"]) for n, s in _specs().items() if n in BENCHMARK_2)
    assert len(names) == experiments


def test_a_games_file_without_games_plays_every_game_of_its_folders(project: pytest.Pytester) -> None:
    (project.path / "games.yaml").write_text(f"game_dirs: [{str(CLEMBENCH / 'wordle')!r}]\n")
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/player", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*games.yaml::wordle:high_frequency_words_no_clue_no_critic*",
                                 "*games.yaml::wordle_withcritic:*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_clembench_taboo_as_items_with_gates_and_summary(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "games.yaml").write_text(textwrap.dedent(f"""
        game_dirs: [{str(CLEMBENCH)!r}]
        games:
          - game: taboo
            max_episodes: 2
            gates: ["request_count >= 1"]
          - game: wordle
            max_episodes: 1
    """))
    result = project.runpytest("--llmeval-models", "scripted/player", "-k", "taboo or wordle", *xdist,
                               "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and "failed" not in outcomes, result.stdout.str()
    results = project.path / "benchmark_output" / "results" / "scripted_player"
    assert sorted(p.parent.parent.name for p in results.glob("taboo/*/instance_*/scores.json")) == [
        "high_en", "high_en", "low_en", "low_en", "medium_en", "medium_en"]
    run = json.loads((results / "run.json").read_text())  # workers share it: no entry lost, counts summed
    assert run["games"]["taboo"]["num_instances"] == 6 and run["games"]["wordle"]["num_instances"] == 2
    result.stdout.fnmatch_lines(["*llmeval games*", "*scripted_player: clemscore*", "*taboo*episodes 6*"])
    table = json.loads((project.path / "benchmark_output" / "results" / "results.json").read_text())
    assert set(table["scripted_player"]["games"]) == {"taboo", "wordle"}


def test_without_clemcore_a_clembench_game_says_which_extra_to_install(project: pytest.Pytester) -> None:
    (project.path / "conftest.py").write_text("import sys\nsys.modules['clemcore'] = None\n")
    (project.path / "games.yaml").write_text(textwrap.dedent(f"""
        game_dirs: [{str(CLEMBENCH)!r}]
        games: [{{game: taboo, max_episodes: 1, experiments: [high_en]}}]
    """))
    result = project.runpytest_subprocess("--llmeval-models", "scripted/player", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*field master: game 'taboo' is one of clembench's own games, played by clemcore, "
                                 "which is not installed: pip install 'pytest-llmeval?clembench?'"])


@pytest.mark.slow
def test_clembench_referencegame_on_the_bundled_model(pytester: pytest.Pytester) -> None:
    """clembench's own referencegame master, played by the real model through clemcore, scored by clemcore."""
    (pytester.path / "games.yaml").write_text(textwrap.dedent(f"""
        game_dirs: [{str(CLEMBENCH / 'referencegame')!r}]
        games: [{{game: referencegame, max_episodes: 1, experiments: [letter_grids]}}]
    """))
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("--llmeval-output-path", str(out), "--llmeval-local-path",
                                           str(pytester.path / "env"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [scores] = list((out / "results").rglob("scores.json"))
    assert scores.parent.name.startswith("instance_") and scores.parts[-5] == "local_smollm2-135m-instruct"
    files = sorted(scores.parent.glob("player_*.requests.json"))
    calls = [c for f in files for c in json.loads(f.read_text())["calls"]]
    assert calls
    for call in calls:
        raw = call["call"]["raw_response_obj"]
        assert raw["clem_player"]["model_name"] == "local_smollm2-135m-instruct"
        assert raw["clem_player"]["response"] == raw["response"].strip()  # the model's own words, cleaned
    assert json.loads(scores.read_text())["episode scores"]["Request Count"] == len(calls)


@pytest.mark.slow
def test_clembench_taboo_side_by_side_on_the_bundled_model_equals_one_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """clemcore plays each episode; on the real model the episodes advance in lockstep, each
    round's calls one batch, and every record equals those of playing one at a time."""
    from pytest_llmeval.clients import Credentials, make_client
    from pytest_llmeval.clients.cache import CachingClient
    from pytest_llmeval.clients.huggingface import HuggingFaceClient
    from pytest_llmeval.games.episode_files import timeless
    from pytest_llmeval.games.game_window import ChatTokenCounter
    from pytest_llmeval.games.player_models import HandleModel
    from pytest_llmeval.model import ModelHandle
    from pytest_llmeval.registry import DEFAULT_MODEL, Registry

    registry = Registry.load()
    deployment = registry.deployment(DEFAULT_MODEL)
    client = make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient)
    turns: list[int] = []
    together = client.generate_together
    monkeypatch.setattr(client, "generate_together", lambda requests: (turns.append(len(requests)),
                                                                       together(requests))[1])
    handle = ModelHandle(deployment, registry.model_metadata(deployment.model_name),
                         CachingClient(deployment.name, lambda: client, None, None))
    spec = _specs()["taboo"]
    experiment = spec.load_instances()["experiments"][0]

    def played(folder: str, parallel: str) -> list[Any]:
        model = HandleModel(handle, max_tokens=60, counter=ChatTokenCounter(None, client))
        run = play_clem_experiment(spec, experiment, [model], tmp_path / folder, [0, 1, 2], parallel=parallel)
        return [(e.index, timeless([e.interactions, e.scores, e.player_requests])) for e in run.episodes]

    one_at_a_time = played("off", "off")
    assert len(one_at_a_time) == 3 and not turns  # one call at a time, no turns
    assert played("auto", "auto") == one_at_a_time
    assert max(turns) == 3  # the three episodes' first calls, one batch


def test_an_entry_reads_another_instances_file_as_clem_run_i_does(project: pytest.Pytester) -> None:
    """``instances:`` is clem run's ``-i``: a file name in the game's ``in/``, or a path from the games file."""
    chosen = {"experiments": [{**e, "game_instances": e["game_instances"][:1]}
                              for e in _specs()["taboo"].load_instances()["experiments"][:1]]}
    (project.path / "picked.json").write_text(json.dumps(chosen))
    (project.path / "games.yaml").write_text(textwrap.dedent(f"""
        game_dirs: [{str(CLEMBENCH)!r}]
        games:
          - {{game: referencegame, instances: instances_v1.6_de, experiments: [letter_grids]}}
          - {{game: taboo, instances: picked.json}}
    """))
    result = project.runpytest("--llmeval-models", "scripted/player", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    results = project.path / "benchmark_output" / "results" / "scripted_player"
    assert [p.parent.name for p in results.glob("taboo/*/instance_*/scores.json")] == [
        f"instance_{chosen['experiments'][0]['game_instances'][0]['game_id']:05d}"]
    german = json.loads((CLEMBENCH / "referencegame" / "in" / "instances_v1.6_de.json").read_text())
    played = json.loads(next(results.glob("referencegame/letter_grids/instance_*/instance.json")).read_text())
    [letters] = [e for e in german["experiments"] if e["name"] == "letter_grids"]
    assert played in letters["game_instances"]


def test_a_missing_instances_file_names_the_games_file_entry(project: pytest.Pytester) -> None:
    (project.path / "games.yaml").write_text(f"game_dirs: [{str(CLEMBENCH)!r}]\n"
                                             "games: [{game: taboo, instances: instances_xx}]\n")
    result = project.runpytest("--llmeval-models", "scripted/player", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*file {project.path / 'games.yaml'}, entry #0 ('taboo'), field instances: "
                                 "game 'taboo' has no instances_xx.json*"])
    assert result.ret != 0
