"""Episodes of one game item played side by side: the lockstep barrier, equal records, the
concurrency bound against a loopback server, the bundled model, and the option end to end."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients.cache import CachingClient, RequestCache
from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient
from pytest_llmeval.clients.protocol import Capabilities
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.games import GameRunResult, ScriptedModel, discover_games, play_experiment
from pytest_llmeval.games.episode_files import timeless
from pytest_llmeval.games.lockstep import EpisodePlan, Lockstep, plan_episodes, play_side_by_side
from pytest_llmeval.games.player_models import HandleModel, PlayerModel, Reply
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec
from pytest_llmeval.run_result import RunFailed
from tests.projects import make_importable
from tests.servers import JSONHandler, LoopbackHTTPServer

GAMES = discover_games()
XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
def records(run: GameRunResult) -> list[Any]:
    return [(e.index, e.name, timeless(e.interactions), timeless(e.scores), timeless(e.player_requests))
            for e in run.episodes]


def play(game: str, models: list[PlayerModel], root: Path, parallel: Any, experiment: int = 0,
         episodes: list[int] | None = None) -> GameRunResult:
    spec = GAMES[game]
    chosen = spec.load_instances()["experiments"][experiment]
    return play_experiment(spec, chosen, models, root / "results", episodes, root / "helm", parallel)


class BatchingScript(ScriptedModel):
    """A scripted model that says it batches, and keeps the size of every batch it answered."""

    def __init__(self, replies: Any, name: str = "scripted/batching") -> None:
        super().__init__(replies, name=name)
        self.batch_sizes: list[int] = []

    @property
    def batches(self) -> bool:
        return True

    def generate_batch(self, calls: Any) -> list[Reply | Exception]:
        self.batch_sizes.append(len(calls))
        return super().generate_batch(calls)


def taboo_player(messages: list[dict[str, str]]) -> str:
    """Plays both taboo roles so that episodes last different numbers of turns: the describer
    of a word whose length is a multiple of 3 says the word at once (a loss); otherwise it spells
    the word backwards after a few clues, and the guesser reads it back (a win)."""
    first = messages[0]["content"]
    turn = sum(m["role"] == "assistant" for m in messages)
    target = re.search(r"The secret word is:\s*(\S+)", first)
    if target:
        word = target.group(1)
        if len(word) % 3 == 0:
            return f"CLUE: {word}"
        return f"CLUE: spelled {word[::-1]}" if turn >= len(word) % 3 else f"CLUE: hint {turn}"
    spelled = re.search(r"spelled (\S+)", messages[-1]["content"])
    return f"GUESS: {spelled.group(1)[::-1]}" if spelled else "GUESS: house"


# --- the barrier -------------------------------------------------------------------------------


class EchoBatcher(PlayerModel):
    """Answers each chat with its last message; keeps batch sizes; can fail a whole batch."""

    name = "echo"

    def __init__(self, fail_batch: int | None = None) -> None:
        self.sizes: list[int] = []
        self.fail_batch = fail_batch

    def generate(self, messages: list[dict[str, str]]) -> Reply:
        return Reply(messages, {}, messages[-1]["content"])

    def generate_batch(self, calls: Any) -> list[Reply | Exception]:
        self.sizes.append(len(calls))
        if self.fail_batch == len(self.sizes):
            raise RuntimeError("backend down")
        return super().generate_batch(calls)


def run_with_timeout(target: Any, seconds: float = 20) -> Any:
    """``target()`` in a thread; a hang fails the test instead of blocking it."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", target()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the episodes hung"
    return box["value"]


def test_lockstep_batches_every_waiting_episode_and_drops_those_that_ended() -> None:
    model = EchoBatcher()
    lockstep = Lockstep()
    turns = {0: 3, 1: 1, 2: 2, 3: 3}  # episode -> how many calls it makes before it ends

    def episode(index: int, barrier: Lockstep | None) -> list[str]:
        copy = model.episode_model(barrier, index)
        return [copy.generate([{"role": "user", "content": f"e{index} t{t}"}]).text for t in range(turns[index])]

    outcomes = run_with_timeout(lambda: play_side_by_side(list(turns), episode, EpisodePlan(4, True), lockstep))
    assert outcomes == [[f"e{i} t{t}" for t in range(n)] for i, n in turns.items()]
    assert model.sizes == lockstep.batch_sizes == [4, 3, 2]


def test_an_exception_in_one_episode_does_not_hang_the_others() -> None:
    model = EchoBatcher()

    def episode(index: int, barrier: Lockstep | None) -> int:
        copy = model.episode_model(barrier, index)
        for turn in range(3):
            if index == 1 and turn == 1:
                raise ValueError("game code failed")
            copy.generate([{"role": "user", "content": str(turn)}])
        return index

    outcomes = run_with_timeout(lambda: play_side_by_side([0, 1, 2], episode, EpisodePlan(3, True), Lockstep()))
    assert outcomes[0] == 0 and outcomes[2] == 2
    assert isinstance(outcomes[1], ValueError)
    assert model.sizes == [3, 2, 2]


def test_a_failing_batch_fails_the_episodes_in_it_and_only_those() -> None:
    model = EchoBatcher(fail_batch=2)

    def episode(index: int, barrier: Lockstep | None) -> int:
        copy = model.episode_model(barrier, index)
        for turn in range(1 + index):
            copy.generate([{"role": "user", "content": str(turn)}])
        return index

    outcomes = run_with_timeout(lambda: play_side_by_side([0, 1, 2], episode, EpisodePlan(3, True), Lockstep()))
    assert outcomes[0] == 0
    assert [str(o) for o in outcomes[1:]] == ["backend down", "backend down"]
    assert model.sizes == [3, 2]


def test_fewer_workers_than_episodes_start_the_next_as_one_ends() -> None:
    model = EchoBatcher()

    def episode(index: int, barrier: Lockstep | None) -> int:
        copy = model.episode_model(barrier, index)
        for turn in range(2):
            copy.generate([{"role": "user", "content": str(turn)}])
        return index

    lockstep = Lockstep()
    outcomes = run_with_timeout(lambda: play_side_by_side(list(range(5)), episode, EpisodePlan(2, True), lockstep))
    assert outcomes == list(range(5))
    assert max(lockstep.batch_sizes) == 2 and sum(lockstep.batch_sizes) == 10


def test_auto_plans_lockstep_threads_or_one_at_a_time() -> None:
    class Server(ScriptedModel):
        concurrency = 3  # type: ignore[assignment]

    assert plan_episodes([BatchingScript(["x"])], "auto", 6) == EpisodePlan(6, True)
    assert plan_episodes([BatchingScript(["x"])], 2, 6) == EpisodePlan(2, True)
    assert plan_episodes([Server(["x"])], "auto", 6) == EpisodePlan(3)
    assert plan_episodes([Server(["x"])], 8, 6) == EpisodePlan(3)
    assert plan_episodes([ScriptedModel(["x"])], "auto", 6) == EpisodePlan(1)
    assert plan_episodes([ScriptedModel(["x"])], 4, 6) == EpisodePlan(4)
    assert plan_episodes([BatchingScript(["x"])], "off", 6).workers == 1


# --- equal records -----------------------------------------------------------------------------


def test_taboo_in_lockstep_writes_the_records_of_one_at_a_time(tmp_path: Path) -> None:
    sequential = play("taboo", [ScriptedModel(taboo_player, name="scripted/taboo")], tmp_path / "seq", "off")
    model = BatchingScript(taboo_player, name="scripted/taboo")
    parallel = play("taboo", [model], tmp_path / "par", "auto")
    assert records(parallel) == records(sequential)
    assert [e.index for e in parallel.episodes] == list(range(6))
    lengths = {len(e.interactions["turns"]) for e in sequential.episodes}
    assert len(lengths) > 1  # episodes ended at different turns
    assert model.batch_sizes[0] == 6 and model.batch_sizes[-1] < 6 and len(model.batch_sizes) > 2
    assert sum(model.batch_sizes) == sum(len(e.requests) for e in sequential.episodes)
    for name in ("stats.json", "per_instance_stats.json"):
        assert (tmp_path / "par" / "helm" / name).read_text() == (tmp_path / "seq" / "helm" / name).read_text()
    run_file = json.loads((tmp_path / "par" / "results" / "scripted_taboo" / "run.json").read_text())
    assert run_file["games"]["taboo"]["num_instances"] == 6


def test_wordle_with_per_episode_scripts_in_lockstep_and_in_threads(tmp_path: Path) -> None:
    guesses = ["explanation: x\nguess: party", "explanation: x\nguess: water", "explanation: x\nguess: house"]
    sequential = play("wordle", [ScriptedModel(guesses, name="scripted/w")], tmp_path / "seq", "off")
    model = BatchingScript(guesses, name="scripted/w")
    lockstep = play("wordle", [model], tmp_path / "lock", "auto")
    threads = play("wordle", [ScriptedModel(guesses, name="scripted/w")], tmp_path / "threads", 3)
    assert records(lockstep) == records(sequential) == records(threads)
    assert model.batch_sizes[0] == 5
    assert {e.episode_scores["Success"] for e in sequential.episodes} == {0, 1}  # 'water' is won


def test_a_failing_episode_keeps_the_others_and_raises_the_first_failure(tmp_path: Path) -> None:
    names = [i["target_name"] for i in GAMES["hellogame"].load_instances()["experiments"][0]["game_instances"]]
    failing = {names[3]: KeyError("scripted failure"), names[6]: ValueError("later failure")}

    def player(messages: list[dict[str, str]]) -> str:
        for name, error in failing.items():
            if name in messages[0]["content"]:
                raise error
        return "GREET: hello, welcome"

    with pytest.raises(RunFailed) as failed:
        play("hellogame", [BatchingScript(player)], tmp_path, "auto")
    assert failed.value.error is failing[names[3]]  # the first failure in episode order
    assert [e.index for e in failed.value.result.episodes] == [i for i in range(len(names)) if i not in (3, 6)]
    assert len(list((tmp_path / "results").rglob("error.json"))) == 2


def callable_handle(answer: Any, cache: RequestCache | None, batches: bool) -> ModelHandle:
    deployment = ModelDeployment("fake/model", "fake/model", ObjectSpec("x"))
    client = CachingClient("fake/model", lambda: CallableClient(answer, name="fake"), {"fake": 1}, cache,
                           capabilities=Capabilities(loads_weights=batches))
    return ModelHandle(deployment, ModelMetadata("fake/model"), client)


def test_the_cache_answers_a_request_two_episodes_ask_as_it_would_one_at_a_time(tmp_path: Path) -> None:
    sent: list[int] = []

    def answer(requests: list[Any]) -> list[str]:
        sent.append(len(requests))
        return ["explanation: x\nguess: party" for _ in requests]

    sequential = play("wordle", [HandleModel(callable_handle(answer, RequestCache(tmp_path / "a.sqlite"), False))],
                      tmp_path / "seq", "off")
    sequential_sent = sum(sent)
    sent.clear()
    model = HandleModel(callable_handle(answer, RequestCache(tmp_path / "b.sqlite"), True))
    parallel = play("wordle", [model], tmp_path / "par", "auto")
    assert records(parallel) == records(sequential)
    assert sum(sent) == sequential_sent < sum(len(e.requests) for e in parallel.episodes)  # repeats from the cache
    assert parallel.cache_hits == sequential.cache_hits > 0 and parallel.requests == sequential.requests
    assert max(sent) > 1  # the first turn's distinct requests went as one batch


# --- a server ------------------------------------------------------------------------------------


class CountingServer(LoopbackHTTPServer):
    """OpenAI-compatible chat on loopback that greets hellogame's guest, slowly, and counts how
    many requests it had under way at once."""

    def __init__(self, delay: float = 0.1) -> None:
        self.peak = 0
        self.under_way = 0
        self.requests = 0
        lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                with lock:
                    server.under_way += 1
                    server.requests += 1
                    server.peak = max(server.peak, server.under_way)
                time.sleep(delay)
                name = re.search(r"name is:\s*(\S+)", body["messages"][-1]["content"])
                content = f"GREET: hello {name.group(1) if name else ''}, welcome"
                answer = {"object": "chat.completion", "model": body.get("model"), "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
                with lock:
                    server.under_way -= 1
                self.send_json(200, answer)

        super().__init__(Handler)


def server_model(server: CountingServer, concurrency: int) -> HandleModel:
    deployment = ModelDeployment("served/m", "served/m", ObjectSpec("pytest_llmeval.clients.OpenAICompatibleClient"))
    client = CachingClient("served/m", lambda: OpenAICompatibleClient(base_url=f"{server.url}/v1", model="m",
                                                                      concurrency=concurrency), None, None)
    return HandleModel(ModelHandle(deployment, ModelMetadata("served/m"), client))


def test_episodes_against_a_server_run_as_many_at_once_as_its_concurrency(tmp_path: Path) -> None:
    with CountingServer() as server:
        sequential = play("hellogame", [server_model(server, 3)], tmp_path / "seq", "off")
        assert server.peak == 1
        started = time.perf_counter()
        parallel = play("hellogame", [server_model(server, 3)], tmp_path / "par", "auto")
        seconds = time.perf_counter() - started
        assert server.peak == 3
        capped = play("hellogame", [server_model(server, 3)], tmp_path / "cap", 2)
    assert records(parallel) == records(sequential) == records(capped)
    assert server.requests == 30 and parallel.requests == 10
    assert seconds < 10 * 0.1  # ten episodes of one 0.1 s request each, three at a time


# --- the bundled model -----------------------------------------------------------------------------


@pytest.mark.slow
def test_taboo_on_the_bundled_model_in_lockstep_equals_one_at_a_time(tmp_path: Path) -> None:
    from pytest_llmeval.clients import Credentials, make_client
    from pytest_llmeval.games.game_window import ChatTokenCounter
    from pytest_llmeval.registry import DEFAULT_MODEL, Registry

    registry = Registry.load()
    deployment = registry.deployment(DEFAULT_MODEL)
    client = make_client(deployment, Credentials())
    handle = ModelHandle(deployment, registry.model_metadata(deployment.model_name),
                         CachingClient(deployment.name, lambda: client, None, None))
    spec = GAMES["taboo"]

    def model() -> HandleModel:
        return HandleModel(handle, max_tokens=spec.max_tokens, counter=ChatTokenCounter(None, client))

    sequential = play("taboo", [model()], tmp_path / "seq", "off", episodes=[0, 1, 2, 3])
    parallel = play("taboo", [model()], tmp_path / "par", "auto", episodes=[0, 1, 2, 3])
    assert records(parallel) == records(sequential)
    assert parallel.requests == sequential.requests >= 4


# --- the option end to end -------------------------------------------------------------------------

PLAYERS = '''
import os, re, threading, time

_lock = threading.Lock()


class Greeter:
    """Greets hellogame's guest a little slowly and writes the most calls it had under way at once."""
    under_way = 0
    peak = 0

    def generate(self, requests):
        with _lock:
            Greeter.under_way += 1
            Greeter.peak = max(Greeter.peak, Greeter.under_way)
            with open(f"peak-{os.getpid()}.txt", "w") as handle:
                handle.write(str(Greeter.peak))
        time.sleep(0.05)
        answers = []
        for request in requests:
            name = re.search(r"name is:\\s*(\\S+)", request.messages[-1].content)
            answers.append(f"GREET: hello {name.group(1)}, welcome" if len(name.group(1)) % 2 else "Hi!")
        with _lock:
            Greeter.under_way -= 1
        return answers
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/greeter
    model_name: scripted/greeter
    client_spec: {class_name: "greeters:Greeter"}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(greeters=PLAYERS)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    (pytester.path / "games.yaml").write_text("games:\n  - hellogame\n")
    make_importable(pytester, monkeypatch)
    return pytester


def played(project: pytest.Pytester, output: str, *args: str) -> tuple[list[Any], int]:
    """The stable records of every episode the run wrote, and the most calls under way at once."""
    for old in project.path.glob("peak-*.txt"):
        old.unlink()
    result = project.runpytest("--llmeval-models", "scripted/greeter", "--llmeval-disable-cache",
                               "--llmeval-output-path", output, "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    folder = project.path / output / "results"
    episodes = sorted(folder.rglob("interactions.json"))
    assert len(episodes) == 10
    stored = [(p.parent.name, *(timeless(json.loads((p.parent / name).read_text()))
                                for name in ("interactions.json", "scores.json", "player_1.requests.json")))
              for p in episodes]
    peak = max(int(p.read_text()) for p in project.path.glob("peak-*.txt"))
    return stored, peak


@pytest.mark.parametrize("xdist", XDIST)
def test_parallel_episodes_option_plays_n_at_a_time_with_the_same_records(project: pytest.Pytester,
                                                                        xdist: list[str]) -> None:
    one_at_a_time, peak_off = played(project, "off", "--llmeval-parallel-episodes", "off", *xdist)
    auto, peak_auto = played(project, "auto", *xdist)  # a Python callable: its concurrency is unknown
    four, peak_four = played(project, "four", "--llmeval-parallel-episodes", "4", *xdist)
    assert one_at_a_time == auto == four
    assert (peak_off, peak_auto, peak_four) == (1, 1, 4)


def test_parallel_episodes_from_the_games_file_and_the_ini(project: pytest.Pytester) -> None:
    (project.path / "games.yaml").write_text("games:\n  - game: hellogame\n    parallel_episodes: 3\n")
    _, from_entry = played(project, "entry")
    project.makeini("[pytest]\nllmeval_parallel_episodes = 2\n")
    _, from_ini = played(project, "ini")
    _, from_option = played(project, "option", "--llmeval-parallel-episodes", "off")
    assert (from_entry, from_ini, from_option) == (3, 2, 1)


def test_bad_parallel_episodes_values_name_the_option_or_the_entry(project: pytest.Pytester) -> None:
    result = project.runpytest("--llmeval-parallel-episodes", "many")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--llmeval-parallel-episodes*'many' is not a number of episodes*"])
    (project.path / "games.yaml").write_text("games:\n  - game: hellogame\n    parallel_episodes: 0\n")
    result = project.runpytest("--llmeval-models", "scripted/greeter", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*games.yaml*parallel_episodes*whole number of at least 1, 'auto' or 'off'*"])

