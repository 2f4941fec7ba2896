"""Our game masters' records in clemcore 3.7.2's layout, strict JSON, and our wordle on clembench's
own instance files (scripted players, no model)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.games import GameRunResult, ScriptedModel, discover_games, play_experiment
from pytest_llmeval.games.clemscore import EpisodeScore, compute_table
from pytest_llmeval.games.episode_files import instance_folder, run_folder, write_json
from pytest_llmeval.games.games_summary import results_json
from pytest_llmeval.run_result import RunFailed

GAMES = discover_games()
CLEMBENCH_WORDLE = Path(__file__).resolve().parents[2] / "shared" / "peers" / "clembench" / "wordle" / "in"
needs_clembench = pytest.mark.skipif(not CLEMBENCH_WORDLE.is_dir(), reason=f"no clembench wordle at {CLEMBENCH_WORDLE}")


def strict(path: Path) -> Any:
    """The file's JSON, failing on NaN or Infinity (which JSON does not have)."""
    def reject(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def play(game: str, models: list[Any], root: Path, episodes: list[int], experiment: dict[str, Any] | None = None,
         ) -> GameRunResult:
    spec = GAMES[game]
    chosen = experiment or spec.load_instances()["experiments"][0]
    return play_experiment(spec, chosen, models, root / "results", episodes, root / "helm")


def test_records_are_written_in_clemcore_layout(tmp_path: Path) -> None:
    model = ScriptedModel(["GREET: <script>alert(1)</script>"], name="fake/greeter")
    run = play("hellogame", [model], tmp_path, [0, 2])
    experiment = tmp_path / "results" / "fake_greeter" / "hellogame" / "greet_en"
    assert [e.directory for e in run.episodes] == [experiment / "instance_00000", experiment / "instance_00002"]
    infos = {"0": {"model_spec": {"model_name": "fake/greeter", "backend": "scripted"},
                   "gen_args": {"temperature": 0.0}}}
    for episode in run.episodes:
        files = sorted(p.name for p in episode.directory.iterdir())
        assert files == ["completed.json", "instance.json", "interactions.json", "player_1.requests.json",
                         "scores.json", "transcript.html"]
        interactions = strict(episode.directory / "interactions.json")
        assert interactions["meta"] == {
            "game_name": "hellogame", "experiment_name": "greet_en", "game_id": episode.instance["game_id"],
            "results_folder": "fake_greeter", "clem_version": "3.7.2", "round_count": 1, "completed": True,
            "framework": "pytest-llmeval"}
        assert interactions["player_models"] == infos
        assert interactions["Request Count"] == [1] and interactions["Violated Request Count"] == [0]
        calls = strict(episode.directory / "player_1.requests.json")
        assert calls == episode.player_requests["player_1.requests.json"]
        assert calls["meta"] == {"game_name": "hellogame", "experiment_name": "greet_en",
                                 "game_id": episode.instance["game_id"], "player_name": "Player 1",
                                 "game_role": interactions["players"]["Player 1"]["game_role"],
                                 "model_name": "fake/greeter", "round_count": 1, "completed": True}
        [call] = calls["calls"]
        assert call["round"] == 0 and call["call"] == episode.requests[0]
        assert set(call["call"]) == {"timestamp", "manipulated_prompt_obj", "raw_response_obj"}
        assert set(strict(episode.directory / "scores.json")) >= {"turn scores", "episode scores"}
        assert set(strict(episode.directory / "completed.json")) == {"timestamp"}
        html = (episode.directory / "transcript.html").read_text()
        assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    config = strict(experiment / "experiment.json")
    assert config["game_name"] == "hellogame" and config["player_models"] == infos and "game_instances" not in config
    runs = strict(tmp_path / "results" / "fake_greeter" / "run.json")
    assert (runs["clem_version"], runs["player_models"]) == ("3.7.2", infos)
    assert runs["games"]["hellogame"]["num_instances"] == 2 and runs["games"]["hellogame"]["duration_seconds"] >= 0
    stats = {s["name"]["name"]: s for s in strict(tmp_path / "helm" / "stats.json")}
    assert stats["played"]["count"] == 2 and stats["lose"]["mean"] == 1.0
    assert [i["instance_id"] for i in strict(tmp_path / "helm" / "per_instance_stats.json")] == [
        "instance_00000", "instance_00002"]


def test_run_folders_are_named_as_clemcore_names_them(tmp_path: Path) -> None:
    assert run_folder(["m"]) == "m" and run_folder(["a", "b"]) == "a--b" and run_folder(["org/m"]) == "org_m"
    assert run_folder(["a", "b", "c"]) == "group-3p-" + hashlib.sha1(b"a--b--c").hexdigest()[:8]
    assert instance_folder({"game_id": 7}, 0) == "instance_00007"
    assert instance_folder({}, 3) == "instance_00003"  # no game_id: its position
    target = GAMES["taboo"].load_instances()["experiments"][0]["game_instances"][0]["target_word"]
    pair = play("taboo", [ScriptedModel(["CLUE: a thing"], name="d"), ScriptedModel([f"GUESS: {target}"], name="g")],
                tmp_path, [0])
    assert pair.players == "d--g" and pair.episodes[0].directory.parts[-4] == "d--g"
    files = {p.name for p in pair.episodes[0].directory.iterdir()}
    assert {"player_1.requests.json", "player_2.requests.json"} <= files
    selfplay = play("taboo", [ScriptedModel(["CLUE: a thing"], name="m")], tmp_path, [0])
    assert selfplay.players == "m"  # one model given: clemcore names the run after it once
    assert strict(selfplay.episodes[0].directory / "interactions.json")["player_models"].keys() == {"0"}


def test_an_aborted_episode_and_the_results_file_are_strict_json(tmp_path: Path) -> None:
    run = play("hellogame", [ScriptedModel(["no greeting at all"])], tmp_path, [1])
    [episode] = run.episodes
    assert math.isnan(episode.main_score)  # in memory NaN, on disk null
    scores = strict(episode.directory / "scores.json")["episode scores"]
    assert scores["Aborted"] == 1 and scores["Main Score"] is None
    for path in (tmp_path / "results").rglob("*.json"):
        strict(path)
    table = compute_table([EpisodeScore("hellogame", "m", "e", "0", 1, math.nan)])
    write_json(tmp_path / "results.json", results_json(table))
    assert strict(tmp_path / "results.json")["m"]["games"]["hellogame"]["Quality Score"] is None


def test_a_failing_episode_names_its_error_and_a_rerun_replaces_it(tmp_path: Path) -> None:
    broken = {"name": "broken", "game_instances": [{"game_id": 3, "target_word": "party"}]}  # no common_config
    with pytest.raises(RunFailed) as info:
        play("wordle", [ScriptedModel(["explanation: x\nguess: party"])], tmp_path, [0], broken)
    assert isinstance(info.value.error, KeyError)
    folder = tmp_path / "results" / "scripted" / "wordle" / "broken" / "instance_00003"
    assert sorted(p.name for p in folder.iterdir()) == ["error.json", "instance.json", "interactions.json"]
    error = strict(folder / "error.json")
    assert (error["error"], error["message"]) == ("KeyError", "'common_config'")
    assert strict(folder / "interactions.json")["meta"]["completed"] is None

    fixed = {**GAMES["wordle"].load_instances()["experiments"][0], "name": "broken",
             "game_instances": broken["game_instances"]}
    play("wordle", [ScriptedModel(["explanation: x\nguess: party"])], tmp_path, [0], fixed)
    assert not (folder / "error.json").exists() and (folder / "completed.json").is_file()


# --- our wordle on clembench's instance files --------------------------------------------------------


def clembench_experiment(name: str, index: int = 0) -> dict[str, Any]:
    return json.loads((CLEMBENCH_WORDLE / name).read_text(encoding="utf-8"))["experiments"][index]


@needs_clembench
@pytest.mark.parametrize(("game", "file"), [
    ("wordle", "instances.json"), ("wordle_withclue", "instances_withclue.json"), ("wordle", "instances_v1.6.json")])
def test_wordle_plays_clembench_instances_as_clembench_does(tmp_path: Path, game: str, file: str) -> None:
    experiment = clembench_experiment(file)
    instance = experiment["game_instances"][0]
    target, words = instance["target_word"], experiment["lang_keywords"]
    other = next(w for w in ("house", "world", "crane") if w != target)
    replies = ["explanation: x\nguess: zzzzz", f"explanation: x\nguess: {other}", f"explanation: y\nguess: {target}"]
    seen: list[list[dict[str, str]]] = []

    def guesser(messages: list[dict[str, str]]) -> str:
        seen.append([dict(m) for m in messages])
        return replies[len(seen) - 1]

    [episode] = play(game, [ScriptedModel(guesser)], tmp_path, [0], experiment).episodes
    scores = episode.episode_scores
    assert (scores["Success"], scores["Main Score"]) == (1, 100 if game == "wordle" else 50.0)  # two rounds
    assert episode.interactions["Request Count"] == [2, 1] and scores["Parsed Request Count"] == 3
    assert episode.directory.name == f"instance_{instance['game_id']:05d}"
    hint = (f"{words['error_prompt_text']['INVALID_FORMAT']}\n{words['explanation_lang']} "
            f"{words['explanataion_details_lang']}\n{words['guess_lang']} {words['guess_word_lang']}")
    prompt = experiment["guesser_prompt"]
    first = prompt if game == "wordle" else f"{prompt}\n\n{words['clue_lang']} {instance['target_word_clue'].strip()}"
    assert seen[0] == [{"role": "user", "content": first}]
    # clembench's re-prompt keeps the rejected reply in the history, then its own texts
    assert seen[1][1:] == [{"role": "assistant", "content": replies[0]}, {"role": "user", "content": (
        f"{words['error_prompt_text']['NOT_VALID_WORD_FOR_GAME']} {words['error_prompt_text']['RETRY']}\n\n{hint}")}]
    feedback = seen[2][-1]["content"]
    assert feedback.startswith(f"{words['guess_feedback_lang']} ") and feedback.endswith(f"\n\n{hint}")


@needs_clembench
def test_wordle_reads_clembench_legacy_instance_files(tmp_path: Path) -> None:
    """v0.9: no lang_keywords (the word list is english_words), max_attempts_per_game, a retry count
    as a number, the prompt as a message list."""
    experiment = clembench_experiment("instances_v0.9.json")
    assert "lang_keywords" not in experiment and isinstance(experiment["guesser_prompt"], list)
    seen: list[str] = []

    def unknown_words(messages: list[dict[str, str]]) -> str:
        seen.append(messages[0]["content"])
        return "explanation: x\nguess: zzzzz"

    [episode] = play("wordle", [ScriptedModel(unknown_words)], tmp_path, [0], experiment).episodes
    assert seen[0] == experiment["guesser_prompt"][0]["content"]
    retries = experiment["common_config"]["max_retry_per_error"]
    assert episode.episode_scores["Aborted"] == 1  # unknown words: re-prompted, then aborted
    assert episode.episode_scores["Request Count"] == retries + 1 == episode.episode_scores["Parsed Request Count"]
    target = experiment["game_instances"][0]["target_word"]
    won = play("wordle", [ScriptedModel([f"explanation: x\nguess: {target}"])], tmp_path, [0], experiment).episodes[0]
    assert won.episode_scores["Main Score"] == 100
