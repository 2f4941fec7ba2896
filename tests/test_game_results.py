"""A game run as one value: GameRunResult -> HELM files, the run's record and the report's episodes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_llmeval.clients.cache import CachingClient
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.errors import UserModelError
from pytest_llmeval.games import GameRunResult, HandleModel, discover_games, play_experiment
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec
from pytest_llmeval.report.collector import ReportSession
from pytest_llmeval.report.run_records import record_from_error, record_from_game
from pytest_llmeval.report.settings import ReportSettings
from pytest_llmeval.run_result import RunFailed

HELLO = discover_games()["hellogame"]


def greeter(fail_on_call: int | None = None) -> HandleModel:
    """A player that greets right (and raises on call ``fail_on_call``)."""
    calls = []

    def answer(requests: list[Any]) -> list[str]:
        calls.append(1)
        if len(calls) == fail_on_call:
            raise RuntimeError("the model server went away")
        name = requests[0].messages[-1].content.split("name is:", 1)[1].split()[0]
        return [f"GREET: Hello {name}, welcome!"]

    deployment = ModelDeployment("fake/greeter", "fake/greeter", ObjectSpec("x"))
    client = CachingClient("fake/greeter", lambda: CallableClient(answer, name="greeter"), None, None)
    return HandleModel(ModelHandle(deployment, ModelMetadata("fake/greeter"), client), max_tokens=20)


def play(tmp_path: Path, model: HandleModel, episodes: list[int]) -> GameRunResult:
    experiment = HELLO.load_instances()["experiments"][0]
    return play_experiment(HELLO, experiment, [model], tmp_path / "results", episodes, tmp_path / "helm")


def test_a_game_run_is_one_value_and_its_record_needs_no_files(tmp_path: Path) -> None:
    run = play(tmp_path, greeter(), [0, 1, 2])
    assert (run.requests, run.cache_hits, len(run.episodes)) == (3, 0, 3)
    assert all(e.stats for e in run.episodes)
    written = json.loads((tmp_path / "helm" / "per_instance_stats.json").read_text())
    assert [e["stats"] for e in written] == [[s.to_json() for s in e.stats] for e in run.episodes]
    assert json.loads((tmp_path / "helm" / "stats.json").read_text()) == [s.to_json() for s in run.stats]
    (tmp_path / "helm" / "stats.json").unlink()  # the record is built from the result alone

    record = record_from_game(nodeid="g::x", name="hellogame:greet_en[fake/greeter]", model="fake/greeter",
                              result=run, worker="gw1")
    assert (record.kind, record.scenario, record.main_metric, record.value, record.count) == (
        "game", "hellogame", "quality_score", 100.0, 3)
    assert (record.requests, record.cache_hits, record.worker, record.output_dir) == (3, 0, "gw1", str(run.run_dir))
    assert record.game == {"game": "hellogame", "experiment": run.experiment, "players": run.players}
    assert record.stats == [s.to_json() for s in run.stats] and record.instances == []


def test_a_game_that_fails_part_way_yields_what_it_played(tmp_path: Path) -> None:
    with pytest.raises(RunFailed) as info:
        play(tmp_path, greeter(fail_on_call=2), [0, 1, 2])
    error = info.value.error  # the user's model raised: one line naming it, its own exception as the cause
    assert isinstance(error, UserModelError) and isinstance(error.__cause__, RuntimeError)
    assert str(info.value) == "greeter: the model function raised RuntimeError: the model server went away"
    partial: GameRunResult = info.value.result
    assert [e.index for e in partial.episodes] == [0]
    assert partial.requests == 1
    assert json.loads((tmp_path / "helm" / "run_spec.json").read_text())["episodes"] == [0]
    record = record_from_error(nodeid="g::x", name="hellogame:greet_en[fake/greeter]", model="fake/greeter",
                               error=info.value.error, partial=partial)
    assert (record.kind, record.outcome, record.requests, record.value) == ("game", "error", 1, None)
    assert record.failures == ["UserModelError: greeter: the model function raised RuntimeError: "
                               "the model server went away"]


def report_session(tmp_path: Path) -> ReportSession:
    settings = ReportSettings(compare=None, compare_path=None, save_baseline=None, update_baseline=False,
                              baseline_dir=tmp_path / "baselines", fail_under=(), tolerances={},
                              significance=0.05, write_html=True)
    return ReportSession(settings, tmp_path, "suite")


def test_the_report_gets_records_and_episodes_from_results_across_workers(tmp_path: Path) -> None:
    run = play(tmp_path, greeter(), [0, 1])
    worker = report_session(tmp_path)
    item = SimpleNamespace(nodeid="games.yaml::hellogame:greet_en[fake/greeter]",
                           name="hellogame:greet_en[fake/greeter]")
    worker.finish_game(item, run, "fake/greeter", "gw0")  # type: ignore[arg-type]
    shipped: dict[str, Any] = {}
    worker.to_workeroutput(shipped)

    controller = report_session(tmp_path)
    controller.merge_worker(json.loads(json.dumps(shipped)))
    controller.observe_report(SimpleNamespace(  # type: ignore[arg-type]
        when="call", nodeid=item.nodeid, outcome="failed", longrepr=f"{item.name}: gate failed: played",
        user_properties=[("llmeval_run", run.name)]))
    [record] = controller.all_records()
    assert (record.outcome, record.failures, record.requests, record.worker) == (
        "failed", [f"{item.name}: gate failed: played"], 2, "gw0")
    episodes = list(controller.episodes.values())
    assert [e["episode"] for e in episodes] == ["instance_00000", "instance_00001"]
    assert [e["path"] for e in episodes] == [str(e.directory) for e in run.episodes]
    assert all(e["game"] == "hellogame" and e["turns"] for e in episodes)
    assert not math.isnan(episodes[0]["scores"]["Main Score"])
