"""Unit tests of the dialogue-game framework and the built-in games (scripted players, no model)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients.cache import CachingClient
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.games import (
    ChatTokenCounter,
    DialogueGameMaster,
    EpisodeScore,
    GameSpec,
    HandleModel,
    Player,
    ScriptedModel,
    compute_table,
    discover_games,
    play_experiment,
    sample_episodes,
)
from pytest_llmeval.games.builtin.taboo.master import check_clue
from pytest_llmeval.games.builtin.wordle.master import ParseError, letter_feedback, parse_reply
from pytest_llmeval.games.clemscore import round2
from pytest_llmeval.games.game_spec import BUILTIN_DIR, read_spec_file
from pytest_llmeval.games.games_file import parse_pairings, read_games_file
from pytest_llmeval.games.master import ABORT_REASON_KEY
from pytest_llmeval.games.transcript import build_transcript
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec
from pytest_llmeval.requests import Message

GAMES = discover_games()


def play(game: str, models: list[Any], tmp_path: Path, experiment: int = 0, episodes: list[int] | None = None):
    spec = GAMES[game]
    exp = spec.load_instances()["experiments"][experiment]
    return play_experiment(spec, exp, models, tmp_path, episodes or [0], tmp_path / "helm")


def first_instance(game: str, experiment: int = 0) -> dict[str, Any]:
    return GAMES[game].load_instances()["experiments"][experiment]["game_instances"][0]


# --- the game master ---------------------------------------------------------------------------


class Echo(DialogueGameMaster):
    """A two-turn test game: ``OK ...`` is valid, ``RETRY`` is re-prompted once, anything else aborts."""

    def _on_setup(self, **instance: Any) -> None:
        self.player = Player(self.player_models[0])
        self.add_player(self.player)
        self.calls: list[str] = []
        self.retried = False
        self.last = ""

    def _on_before_game(self) -> None:
        self.calls.append("before_game")
        self.add_user_message(self.player, "say OK")

    def _on_before_turn(self, turn_idx: int) -> None:
        self.calls.append(f"before_turn {turn_idx}")

    def _validate_player_response(self, player: Player, utterance: str) -> bool:
        self.last = utterance
        if utterance.startswith("OK"):
            return True
        if utterance == "RETRY":
            return False
        self.aborted = True
        return False

    def _on_parse_response(self, player: Player, utterance: str) -> tuple[str, bool]:
        return utterance.lower(), True

    def _after_add_player_response(self, player: Player, utterance: str) -> None:
        self.calls.append(f"added {utterance}")
        self.add_user_message(player, "again")

    def _should_reprompt(self, player: Player) -> bool:
        return self.last == "RETRY" and not self.retried

    def _on_before_reprompt(self, player: Player) -> None:
        self.retried = True
        self.calls.append("before_reprompt")
        self.add_user_message(player, "please say OK")

    def _on_after_turn(self, turn_idx: int) -> None:
        self.calls.append(f"after_turn {turn_idx}")
        if turn_idx == 1:
            self.success = True

    def _on_after_game(self) -> None:
        self.calls.append("after_game")


ECHO = GameSpec("echo", Path("."), players=1, master="Echo")


def run_echo(replies: list[str], **spec_changes: Any) -> Echo:
    spec = GameSpec(**{**ECHO.__dict__, **spec_changes})
    master = Echo(spec, {"name": "e"}, [ScriptedModel(replies)])
    master.setup(game_id=0)
    master.play()
    return master


def test_turn_loop_calls_hooks_in_order_and_reprompts() -> None:
    master = run_echo(["RETRY", "OK one", "OK two"])
    assert master.calls == ["before_game", "before_turn 0", "before_reprompt", "added ok one", "after_turn 0",
                            "before_turn 1", "added ok two", "after_turn 1", "after_game"]
    interactions = master.interactions
    assert len(interactions["turns"]) == 2
    types = [e["action"]["type"] for e in interactions["turns"][0]]
    assert types == ["send message", "get message", "send message (reprompt)", "get message", "parse"]
    # per round, as clemcore's recorder counts them
    assert interactions["Request Count"] == [2, 1]
    assert interactions["Parsed Request Count"] == [1, 1] and interactions["Violated Request Count"] == [1, 0]
    assert interactions["meta"]["round_count"] == 2 and interactions["meta"]["completed"] is True
    assert interactions["Success"] == 1 and interactions["Aborted"] == 0
    assert len(master.requests) == 3 and set(master.requests[0]) == {"timestamp", "manipulated_prompt_obj",
                                                                      "raw_response_obj"}
    # the player's history keeps its replies verbatim and alternates roles
    roles = [m["role"] for m in master.messages_by_names["Player 1"]]
    assert roles[:4] == ["user", "user", "assistant", "user"]


def test_an_invalid_reply_aborts_and_ends_the_loop() -> None:
    master = run_echo(["nonsense"])
    assert master.interactions["Aborted"] == 1 and master.interactions["Lose"] == 0
    assert master.calls[-2:] == ["after_turn 0", "after_game"]
    assert len(master.interactions["turns"]) == 1


def test_endless_reprompting_is_stopped_by_the_request_guard() -> None:
    class Stubborn(Echo):
        def _should_reprompt(self, player: Player) -> bool:
            return True

    master = Stubborn(GameSpec(**{**ECHO.__dict__, "max_requests": 4}), {"name": "e"}, [ScriptedModel(["RETRY"])])
    master.setup(game_id=0)
    master.play()
    assert master.interactions["Aborted"] == 1
    assert master.interactions["Request Count"] == [4]
    assert "more than 4 requests" in master.interactions[ABORT_REASON_KEY]


# --- model-backed players ------------------------------------------------------------------------


def handle_for(answer: Any, window: int | None = None) -> ModelHandle:
    deployment = ModelDeployment("fake/model", "fake/model", ObjectSpec("x"), max_sequence_length=window)
    client = CachingClient("fake/model", lambda: CallableClient(answer, name="fake"), None, None)
    return ModelHandle(deployment, ModelMetadata("fake/model"), client)


def test_handle_model_returns_clembench_triple_with_alternating_roles() -> None:
    seen = []

    def answer(requests: list[Any]) -> list[str]:
        seen.extend(requests)
        return ["  GREET: hello  "]

    model = HandleModel(handle_for(answer), max_tokens=7)
    reply = model.generate([{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                            {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}])
    assert reply.text == "GREET: hello"
    assert reply.response["response"] == "  GREET: hello  "
    assert reply.prompt == {"messages": [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"},
                                         {"role": "user", "content": "d"}]}
    assert [m.role for m in seen[0].messages] == ["user", "assistant", "user"]
    assert seen[0].max_tokens == 7 and seen[0].temperature == 0.0


def test_context_overflow_aborts_the_episode_with_the_reason(tmp_path: Path) -> None:
    calls = []
    model = HandleModel(handle_for(lambda requests: calls.append(1) or ["GREET: hi"], window=40), max_tokens=20)
    run = play("hellogame", [model], tmp_path)
    episode = run.episodes[0]
    assert calls == []  # nothing was sent
    assert episode.episode_scores["Aborted"] == 1 and math.isnan(episode.main_score)
    reason = episode.interactions[ABORT_REASON_KEY]
    assert "context window exceeded" in reason and "max_sequence_length is 40" in reason
    events = [e["action"] for t in episode.interactions["turns"] for e in t]
    errors = [a["content"] for a in events if a["type"] == "error"]
    assert errors == [reason]
    assert run.played == 0.0


def test_token_counter_uses_the_tokenizer_when_there_is_one() -> None:
    class Tokenizer:
        chat_template = None

        def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
            return {"input_ids": list(range(len(text.split())))}

    count, how = ChatTokenCounter(Tokenizer()).count([Message("user", "one two three"), Message("assistant", "four")])
    assert (count, how) == (4, "tokenizer")
    count, how = ChatTokenCounter().count([Message("user", "x" * 30)])
    assert how == "estimate" and count == math.ceil((30 + 4 + 4) / 3)


# --- hellogame, taboo, wordle ----------------------------------------------------------------------


def test_hellogame_success_loss_and_abort(tmp_path: Path) -> None:
    name = first_instance("hellogame")["target_name"]
    won = play("hellogame", [ScriptedModel([f"GREET: Hello {name}, welcome!"])], tmp_path).episodes[0]
    assert won.episode_scores["Success"] == 1 and won.main_score == 100
    lost = play("hellogame", [ScriptedModel(["GREET: Hello there, welcome!"])], tmp_path).episodes[0]
    assert lost.episode_scores["Lose"] == 1 and lost.main_score == 0
    aborted = play("hellogame", [ScriptedModel([f"Hello {name}, welcome!"])], tmp_path).episodes[0]
    assert aborted.episode_scores["Aborted"] == 1 and math.isnan(aborted.main_score)
    assert aborted.episode_scores["Violated Request Count"] == 1


def test_taboo_perfect_guesser_wins_in_one_turn(tmp_path: Path) -> None:
    target = first_instance("taboo")["target_word"]
    run = play("taboo", [ScriptedModel(["CLUE: something everyone knows"]), ScriptedModel([f"GUESS: {target}"])],
               tmp_path)
    scores = run.episodes[0].episode_scores
    assert scores["Success"] == 1 and scores["Main Score"] == 100
    assert len(run.episodes[0].interactions["turns"]) == 1
    assert run.episodes[0].directory.parts[-4] == "scripted--scripted"  # the run's two models, as clemcore names it


def test_taboo_describer_saying_the_target_loses(tmp_path: Path) -> None:
    instance = first_instance("taboo")
    target = instance["target_word"]
    run = play("taboo", [ScriptedModel([f"CLUE: Many {target}s, really"]), ScriptedModel(["GUESS: x"])], tmp_path)
    episode = run.episodes[0]
    scores = episode.episode_scores
    assert (scores["Aborted"], scores["Lose"], scores["Success"], scores["Main Score"]) == (0, 1, 0, 0)
    assert scores["Parsed Request Count"] == 1  # the format was right
    events = [(e["action"]["type"], e["action"]["content"]) for t in episode.interactions["turns"] for e in t]
    assert ("invalid clue", "clue contains target word") in events
    assert not any(e[0] == "send message" and e[1].startswith("CLUE") for e in events)  # guesser never prompted


def test_taboo_wrong_format_aborts_and_max_turns_lose(tmp_path: Path) -> None:
    aborted = play("taboo", [ScriptedModel(["a clue without prefix"]), ScriptedModel(["GUESS: x"])], tmp_path)
    assert aborted.episodes[0].episode_scores["Aborted"] == 1
    lost = play("taboo", [ScriptedModel(["CLUE: a thing"]), ScriptedModel(["GUESS: pear"])], tmp_path)
    scores = lost.episodes[0].episode_scores
    assert scores["Lose"] == 1 and scores["Request Count"] == 6 and scores["Repetition-Guesser"] == 2
    assert len(lost.episodes[0].interactions["turns"]) == 3


def test_taboo_clue_check_compares_stems_and_skips_stop_words() -> None:
    assert check_clue("CLUE: the houses", "house", ["home"])[0]["type"] == 0
    assert check_clue("CLUE: homes for all", "house", ["home"])[0]["type"] == 1
    assert check_clue("CLUE: where people live", "house", ["home", "roof"]) == []


def test_wordle_feedback_and_parsing() -> None:
    assert letter_feedback("spree", "strap") == "s<green> p<yellow> r<green> e<red> e<red>"
    assert letter_feedback("error", "strap") == "e<red> r<red> r<green> o<red> r<red>"
    words = GAMES["wordle"].load_instances()["experiments"][0]["lang_keywords"]
    assert parse_reply("explanation: common\nguess: House", words) == ("house", "common")
    with pytest.raises(ParseError):
        parse_reply("guess: house", words)
    with pytest.raises(ParseError):
        parse_reply("explanation: a\nguess: a\nguess: b", words)


def test_wordle_scores_by_rounds_and_reprompts_unknown_words(tmp_path: Path) -> None:
    target = first_instance("wordle")["target_word"]
    replies = ["explanation: x\nguess: zzzzz", "explanation: x\nguess: house", f"explanation: y\nguess: {target}"]
    run = play("wordle", [ScriptedModel(replies)], tmp_path)
    scores = run.episodes[0].episode_scores
    assert scores["Success"] == 1 and scores["Main Score"] == 100  # two rounds
    assert scores["Request Count"] == 3 and scores["Parsed Request Count"] == 3
    clue = play("wordle_withclue", [ScriptedModel(replies)], tmp_path)
    assert clue.episodes[0].episode_scores["Main Score"] == 50.0
    first = clue.episodes[0].interactions["turns"][0][0]["action"]["content"]
    assert f"clue: {first_instance('wordle_withclue')['target_word_clue']}" in first
    never = play("wordle", [ScriptedModel(["explanation: x\nguess: zzzzz"])], tmp_path).episodes[0]
    assert never.episode_scores["Aborted"] == 1 and never.episode_scores["Request Count"] == 6


def test_wordle_speed_scores_as_clembench(tmp_path: Path) -> None:
    target = first_instance("wordle")["target_word"]
    wrong = [w for w in ("house", "chair", "bread", "night", "money") if w != target]
    replies = [f"explanation: x\nguess: {w}" for w in wrong[:3]] + [f"explanation: x\nguess: {target}"]
    episode = play("wordle", [ScriptedModel(replies)], tmp_path).episodes[0]
    assert episode.episode_scores["Main Score"] == 50  # found in round 4


# --- records, scores, clemscore -------------------------------------------------------------------


def test_clemscore_matches_clembench_rounding_and_nan_rules() -> None:
    scores = [
        EpisodeScore("a", "m", "e", "episode_0", 0, 100.0), EpisodeScore("a", "m", "e", "episode_1", 1, math.nan),
        EpisodeScore("a", "m", "e", "episode_2", 0, 33.333),
        EpisodeScore("b", "m", "e", "episode_0", 1, math.nan),  # never played: no quality score
        EpisodeScore("c", "m", "e", "episode_0", 0, 20.0),
    ]
    table = compute_table(scores)
    assert table.games["m"]["a"] == {"% Played": 66.67, "Quality Score": 66.67, "episodes": 3}
    assert math.isnan(table.games["m"]["b"]["Quality Score"]) and table.games["m"]["b"]["% Played"] == 0.0
    averages = table.averages["m"]
    assert averages["Average % Played"] == round2((66.67 + 0 + 100) / 3) == 55.56
    assert averages["Average Quality Score"] == round2((66.67 + 20) / 2) == 43.34  # b drops out
    assert table.clemscore("m") == round2(55.56 / 100 * 43.34) == 24.08
    assert round2(0.125) == 0.12 and round2(0.375) == 0.38  # half to even, as NumPy


# --- discovery, instances, files ---------------------------------------------------------------------


def test_builtin_games_and_their_generators_reproduce_instances() -> None:
    assert {"hellogame", "taboo", "wordle", "wordle_withclue"} <= set(GAMES)
    assert GAMES["taboo"].players == 2
    assert [e["name"] for e in GAMES["taboo"].load_instances()["experiments"]] == ["high_en", "medium_en", "low_en"]
    from pytest_llmeval.games.builtin.hellogame.instancegenerator import HelloGameInstanceGenerator
    from pytest_llmeval.games.builtin.taboo.instancegenerator import TabooInstanceGenerator
    from pytest_llmeval.games.builtin.wordle.instancegenerator import WordleInstanceGenerator

    for generator, name in ((HelloGameInstanceGenerator(BUILTIN_DIR / "hellogame"), "instances.json"),
                            (TabooInstanceGenerator(BUILTIN_DIR / "taboo"), "instances.json"),
                            (WordleInstanceGenerator(BUILTIN_DIR / "wordle", with_clue=False), "instances.json"),
                            (WordleInstanceGenerator(BUILTIN_DIR / "wordle", with_clue=True),
                             "instances_withclue.json")):
        committed = (generator.game_path / name).read_text()
        generator.rng.seed(generator.seed)  # what generate() does, without writing the file
        generator.instances = {"experiments": []}
        generator.on_generate()
        assert json.dumps(generator.instances, indent=2, ensure_ascii=False) + "\n" == committed, name


def test_sample_episodes_is_seeded_and_ordered() -> None:
    assert sample_episodes(5, None) == [0, 1, 2, 3, 4]
    assert sample_episodes(10, 3) == sample_episodes(10, 3) and sample_episodes(10, 3) == sorted(sample_episodes(10, 3))
    assert len(sample_episodes(10, 3)) == 3


def test_bad_clemgame_json_names_file_entry_and_field(tmp_path: Path) -> None:
    path = tmp_path / "clemgame.json"
    path.write_text(json.dumps([{"game_name": "g", "master": "M", "players": "three"}]))
    with pytest.raises(ConfigError) as info:
        read_spec_file(path)
    assert str(info.value).startswith(f"file {path}, entry #0 ('g'), field players:")
    path.write_text(json.dumps({"game_name": "g", "master": "M", "colour": 1, "max_token": 5}))
    with pytest.warns(ConfigWarning, match="field colour: unknown key colour is ignored"):
        read_spec_file(path)
    with pytest.warns(ConfigWarning, match="field max_token: .* did you mean max_tokens?"):
        read_spec_file(path)


def test_games_file_errors_name_file_entry_and_field(tmp_path: Path) -> None:
    path = tmp_path / "games.yaml"
    path.write_text("games:\n  - game: taboo\n    gates: ['played is high']\n")
    with pytest.raises(ConfigError, match=r"entry #0 \('taboo'\), field gates"):
        read_games_file(path)
    path.write_text("games:\n  - game: taboo\n    max_episodes: 0\n")
    with pytest.raises(ConfigError, match="field max_episodes"):
        read_games_file(path)
    path.write_text("nothing: here\n")
    with pytest.raises(ConfigError, match="field games"):
        read_games_file(path)


def test_pairings_parse() -> None:
    assert parse_pairings("a,b") == [["a", "b"]]
    assert parse_pairings("a,b c,d") == [["a", "b"], ["c", "d"]]
    assert parse_pairings(None) == []


def test_transcript_escapes_every_text() -> None:
    interactions = {"meta": {"game_name": "<b>g</b>"}, "players": {"GM": {"game_role": "<i>", "model_name": "&"}},
                    "turns": [[{"from": "Player 1", "to": "GM", "action": {"type": "<x>", "content": "<img src=x>"}}]]}
    html = build_transcript(interactions, {"name": "<e>"}, {"game_id": 1}, "<p>")
    for raw in ("<b>g</b>", "<img src=x>", "<x>", "<i>", "<e>"):
        assert raw not in html
    assert "&lt;img src=x&gt;" in html


def test_episodes_loading_one_master_at_once_all_get_its_classes(tmp_path: Path) -> None:
    """Threads playing episodes side by side never see a half-loaded master.py."""
    import threading

    (tmp_path / "master.py").write_text("import time\ntime.sleep(0.2)\nclass Slow:\n    pass\n")
    spec = GameSpec(game_name="slow", game_path=tmp_path, players=1, master="Slow")
    found: list[Any] = []
    threads = [threading.Thread(target=lambda: found.append(spec.master_class())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and all(cls.__name__ == "Slow" for cls in found)
