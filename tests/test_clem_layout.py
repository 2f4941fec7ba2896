"""Our records beside clemcore's own (clemcore 3.7.2, the ``clembench`` extra).

clemcore's code checks our layout: its run-folder rule and recorders against ours, its current
(non-legacy) scorer over our interactions, and the ``clem`` command line (``run``, ``score``,
``transcribe``, ``eval``) over one results folder that holds our masters' records and clemcore's
for the same model, both played against one scripted OpenAI-compatible server on loopback.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.games import ScriptedModel, discover_games, play_experiment
from pytest_llmeval.games.clemscore import EpisodeScore, compute_table
from pytest_llmeval.games.episode_files import run_folder
from pytest_llmeval.games.recorder import GameRecorder
from tests.projects import make_importable, served_deployment
from tests.servers import JSONHandler, LoopbackHTTPServer

pytest.importorskip("clemcore")

CLEMBENCH = Path(__file__).resolve().parents[2] / "shared" / "peers" / "clembench"
needs_clembench = pytest.mark.skipif(not (CLEMBENCH / "referencegame").is_dir(),
                                     reason=f"no clembench games at {CLEMBENCH}")
MODEL = "fake-model"  # one name for our deployment and clemcore's registry entry
WORDLE_EXPERIMENT = "high_frequency_words_no_clue_no_critic"
GAMES = discover_games()


# --- a scripted chat server ------------------------------------------------------------------------


def scripted_reply(messages: list[dict[str, Any]]) -> str:
    """A reply decided by the chat alone, so both frameworks get the same answers to the same chat.

    hellogame greets right, misses a word or breaks the format depending on the guest's name;
    wordle guesses ``party`` first, then re-prompted unknown words, misses and (after two rounds
    without a green letter) a reply out of format; referencegame's giver and follower follow the
    format and always pick the first grid.
    """
    first, last = str(messages[0]["content"]), str(messages[-1]["content"])
    if "generate a referring expression" in first:
        return "Expression: the grid with the most X"
    if "referring expression that describes" in first:
        return "Answer: first"
    name = re.search(r"name is:\s*\n\s*\n(\S+)", first)
    if name:
        guest = name.group(1)
        return [f"GREET: Hello {guest}, welcome!", "GREET: hello there", f"Hi {guest}!"][len(guest) % 3]
    rounds = sum(1 for m in messages if m["role"] == "assistant")
    if rounds == 0:
        return "explanation: a common word\nguess: party"
    if "not a valid word" in last:
        return "explanation: another try\nguess: house"
    feedback = re.findall(r"guess_feedback: (.*)", last)
    if feedback and "<green>" not in feedback[-1] and rounds >= 2:
        return "I give up"
    return f"explanation: next\nguess: {['zzzzz', 'world', 'crane', 'stare', 'audio'][rounds % 5]}"


class ScriptedChatServer(LoopbackHTTPServer):
    """``POST /v1/chat/completions`` answered with :func:`scripted_reply`; every request is kept."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self
        lock = threading.Lock()

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                with lock:
                    server.requests.append(body)
                answer = {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
                          "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop", "message": {
                              "role": "assistant", "content": scripted_reply(body.get("messages") or [])}}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                self.send_json(200, answer)

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"


@pytest.fixture
def chat_server() -> Iterator[ScriptedChatServer]:
    with ScriptedChatServer() as server:
        yield server


# --- clemcore's own code on our layout ------------------------------------------------------------------


class Named:
    """Stands for a clemcore ``Model`` in ``Model.to_identifier``, which only uses ``str(model)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def test_run_folders_and_record_meta_are_clemcore_s() -> None:
    from clemcore.backends.model_registry import Model
    from clemcore.clemgame.recorder import EventCallRecorder, GameInteractionsRecorder

    for names in (["m"], ["m", "m"], ["a", "b"], ["a", "b", "c"], ["p", "q", "r", "s"]):
        assert run_folder(names) == Model.to_identifier([Named(n) for n in names])
    theirs = GameInteractionsRecorder("g", "e", 1, "m", {}).interactions
    ours = GameRecorder("g", "e", 1, "m").interactions
    assert set(theirs) <= set(ours) and set(theirs["meta"]) <= set(ours["meta"])
    calls = EventCallRecorder("g", experiment_name="e", game_id=1, player_name="Player 1", game_role="r",
                              model_name="m").requests
    recorder = GameRecorder("g", "e", 1, "m")
    recorder.log_player("Player 1", "r", "m")
    assert set(recorder.player_requests["Player 1"]) == set(calls)
    assert set(recorder.player_requests["Player 1"]["meta"]) == set(calls["meta"])


def test_clemcore_s_current_scorer_reads_our_interactions(tmp_path: Path) -> None:
    from clemcore.clemgame.metrics import BENCH_SCORE, GameScorer

    class Standard(GameScorer):  # clemcore's non-legacy scorer with only its framework metrics
        def compute_round_score(self, round_idx: int, round_events: list[dict[str, Any]]) -> None:
            pass

        def compute_episode_scores(self, interactions: dict[str, Any]) -> None:
            self.log_episode_score(BENCH_SCORE, 100 * interactions["Success"])

    spec = GAMES["wordle"]
    experiment = spec.load_instances()["experiments"][0]
    target = experiment["game_instances"][0]["target_word"]
    replies = ["explanation: x\nguess: zzzzz", "explanation: x\nguess: house", f"explanation: x\nguess: {target}"]
    [episode] = play_experiment(spec, experiment, [ScriptedModel(replies)], tmp_path, [0]).episodes
    interactions = json.loads((episode.directory / "interactions.json").read_text())
    scorer = Standard("wordle", experiment, episode.instance)
    scorer.compute_scores(interactions)
    theirs = scorer.scores["episode scores"]
    for metric in ("Request Count", "Parsed Request Count", "Violated Request Count", "Request Success Ratio",
                   "Aborted", "Lose", "Success"):
        assert theirs[metric] == episode.episode_scores[metric], metric
    assert sorted(scorer.scores["round scores"]) == [0, 1]


# --- clem run, score, transcribe and eval over one folder with both ------------------------------------


def clem(args: list[str], cwd: Path, timeout: float = 240) -> str:
    """clemcore's command line in a folder of its own (its registries, keys and log live there)."""
    script = Path(sys.executable).with_name("clem")
    command = [str(script)] if script.is_file() else [sys.executable, "-c", "from clemcore.cli import main; main()"]
    env = {**os.environ, "HOME": str(cwd), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"clem {' '.join(args)} exited with {done.returncode}:\n{output[-4000:]}"
    return output


def scores_in(results: Path) -> list[EpisodeScore]:
    """Every episode's scores in the folder, keyed as clem eval keys them (the last folder names)."""
    found = []
    for path in sorted(results.rglob("scores.json")):
        players, game, experiment, episode = path.parts[-5:-1]
        scores = json.loads(path.read_text())["episode scores"]
        main = scores.get("Main Score")
        main = math.nan if main is None else float(main)  # ours: null; clemcore's: NaN
        found.append(EpisodeScore(game, players, experiment, episode, int(scores["Aborted"]), main))
    return found


def our_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    """Our hellogame, and our wordle master over clembench's unchanged wordle instances."""
    served_deployment(pytester, MODEL, base_url)
    wordle = pytester.path / "games" / "wordle"
    (wordle / "in").mkdir(parents=True)
    shutil.copyfile(CLEMBENCH / "wordle" / "in" / "instances.json", wordle / "in" / "instances.json")
    (wordle / "clemgame.json").write_text(json.dumps(
        {"game_name": "wordle", "players": 1, "master": "Wordle", "scorer": "WordleScorer", "max_tokens": 80}))
    (wordle / "master.py").write_text("from pytest_llmeval.games.builtin.wordle.master import Wordle, WordleScorer\n\n"
                                      "__all__ = ['Wordle', 'WordleScorer']\n")
    (pytester.path / "games.yaml").write_text(
        f"games:\n  - hellogame\n  - game: wordle\n    experiments: [{WORDLE_EXPERIMENT}]\n")
    make_importable(pytester, monkeypatch)


@pytest.mark.slow
@needs_clembench
def test_clem_eval_gives_one_row_for_a_model_with_our_records_and_clemcore_s(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, chat_server: ScriptedChatServer) -> None:
    our_project(pytester, monkeypatch, chat_server.base_url)
    pytester.runpytest("--llmeval-models", MODEL, "-p", "no:cacheprovider").assert_outcomes(passed=2)
    results = pytester.path / "benchmark_output" / "results"
    ours = scores_in(results)
    assert {s.game for s in ours} == {"hellogame", "wordle"} and {s.players for s in ours} == {MODEL}
    assert len(ours) == 20 and any(s.aborted for s in ours) and not all(s.aborted for s in ours)

    home = pytester.path / "clem"
    (home / "games").mkdir(parents=True)
    (home / "games" / "referencegame").symlink_to(CLEMBENCH / "referencegame", target_is_directory=True)
    (home / "model_registry.json").write_text(json.dumps(
        [{"model_name": MODEL, "backend": "openai_compatible", "model_id": MODEL}]))
    (home / "key.json").write_text(json.dumps({"openai_compatible": {"api_key": "none",
                                                                     "base_url": chat_server.base_url}}))
    clem(["run", "-g", "referencegame", "-m", MODEL, "-e", "letter_grids", "-r", str(results)], home)
    clem(["score", "-g", "referencegame", "-r", str(results)], home)
    transcribed = clem(["transcribe", "-g", "all", "-r", str(results)], home)
    assert "exceptions occurred" not in transcribed  # clemcore's transcripts read our interactions too
    assert all((results / MODEL / s.game / s.experiment / s.episode / "transcript.tex").is_file() for s in ours)
    clem(["eval", "-r", str(results)], home)

    with (results / "results.csv").open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert [row[0] for row in rows] == [MODEL]  # one row: our games and clemcore's game side by side
    row = dict(zip(header, rows[0]))
    table = compute_table(scores_in(results))
    assert set(table.games[MODEL]) == {"hellogame", "wordle", "referencegame"}
    for game, values in table.games[MODEL].items():
        assert float(row[f"{game}, % Played"]) == pytest.approx(values["% Played"], abs=1e-9), game
        if not math.isnan(values["Quality Score"]):
            assert float(row[f"{game}, Quality Score"]) == pytest.approx(values["Quality Score"], abs=1e-9), game
    assert float(row["-, clemscore"]) == pytest.approx(table.clemscore(MODEL), abs=1e-9)
    run = json.loads((results / MODEL / "run.json").read_text())
    assert set(run["games"]) == {"hellogame", "wordle", "referencegame"}  # clemcore kept our run.json's entries
    assert {r["model"] for r in chat_server.requests} == {MODEL}
