"""One run as one value: ``execute`` -> RunResult -> HELM files and run records, failed runs included."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import pytest_llmeval.pipeline as pipeline
from pytest_llmeval.adapters.adapter_spec import AdapterSpec
from pytest_llmeval.clients.cache import CachingClient, RequestCache
from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.pipeline import execute
from pytest_llmeval.report.run_records import record_from_error, record_from_result
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult
from pytest_llmeval.run_result import RunFailed, RunResult
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference, Scenario

DEPLOYMENT = "scripted/echo"


class Sums(Scenario):
    """``n+n=`` for n = 0..5: the answer is ``2n``."""

    name = "sums"

    def __init__(self, locator: DataLocator | None = None) -> None:
        self.locator = locator

    def get_instances(self) -> list[Instance]:
        return [Instance(f"{n}+{n}=", (Reference(str(2 * n), (CORRECT_TAG,)),), "test", id=f"id{n}")
                for n in range(6)]


class Answers(ClientBase):
    """Answers ``2n`` (wrong on n=3), fails the requests for ``fail`` and raises on a call holding ``crash``.

    Two requests per call, so a crash leaves the earlier calls answered.
    """

    batch_hint = 2

    def __init__(self, fail: Sequence[int] = (), crash: int | None = None) -> None:
        self.fail, self.crash = set(fail), crash
        self.calls = 0

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        self.calls += 1
        numbers = [int(r.prompt.rsplit("Input: ", 1)[1].split("+")[0]) for r in requests]
        if self.crash in numbers:
            raise ClientError("the backend went away")
        return [RequestResult(success=False, error=f"no answer to {n}") if n in self.fail else
                RequestResult(success=True, completions=[GeneratedOutput(" " + str(2 * n if n != 3 else 7))])
                for n in numbers]


def run_spec() -> RunSpec:
    adapter = AdapterSpec(max_train_instances=0, max_tokens=4, model_deployment=DEPLOYMENT, model=DEPLOYMENT)
    return RunSpec(f"sums:model={DEPLOYMENT}", Sums, {}, adapter, ["exact_match"])


def cached(client: Answers, tmp_path: Path) -> CachingClient:
    return CachingClient(DEPLOYMENT, lambda: client, {"client": "answers"}, RequestCache(tmp_path / "cache.sqlite"))


def test_a_run_is_one_value_and_its_records_need_no_files(tmp_path: Path) -> None:
    result = execute(run_spec(), Answers(), DataLocator(cache=None), tmp_path, "unit")
    assert (result.requests, result.cache_hits, result.failures) == (6, 0, [])
    assert [i.head.instance.id for i in result.instances] == [f"id{n}" for n in range(6)]
    assert all(len(i.states) == 1 for i in result.instances)
    main = result.main_stat
    assert main is not None and (main.count, main.sum) == (6, 5.0)
    written = json.loads((result.output_dir / "per_instance_stats.json").read_text(encoding="utf-8"))
    assert [[s["mean"] for s in e["stats"] if s["name"]["name"] == "exact_match"] for e in written] == [
        [1.0], [1.0], [1.0], [0.0], [1.0], [1.0]]
    written_stats = json.loads((result.output_dir / "stats.json").read_text())
    assert written_stats == [s.to_json() for s in result.helm_stats]  # HELM's per-trial stats, not the pooled
    helm = {(s["name"]["name"], s["name"].get("perturbation", {}).get("name")): s for s in written_stats}
    assert (helm["exact_match", None]["count"], helm["exact_match", None]["mean"]) == (1, 5 / 6)
    assert helm["num_instances", None]["mean"] == 6 and helm["exact_match", "robustness"]["mean"] == 5 / 6

    shutil.rmtree(result.output_dir)  # the records are built from the result alone
    record = record_from_result(nodeid="n", name=f"sums[{DEPLOYMENT}]", key="k", scenario_key="k",
                                model=DEPLOYMENT, result=result)
    assert not result.output_dir.exists()
    assert (record.requests, record.cache_hits, record.value, record.count) == (6, 0, 5 / 6, 6)
    assert [i.metrics["exact_match"] for i in record.instances] == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert [i.correct for i in record.instances] == [True, True, True, False, True, True]
    assert record.instances[3].output == " 7"


def test_failed_requests_raise_with_the_partial_result_and_true_counts(tmp_path: Path) -> None:
    client = Answers(fail=[1, 4])
    with pytest.raises(RunFailed) as info:
        execute(run_spec(), cached(client, tmp_path), DataLocator(cache=None), tmp_path, "unit")
    assert isinstance(info.value.error, ClientError)
    assert str(info.value).startswith("2 of 6 requests failed") and "id1: no answer to 1" in str(info.value)
    result: RunResult = info.value.result
    assert (result.requests, result.cache_hits) == (6, 0)
    assert result.failures == ["id1: no answer to 1", "id4: no answer to 4"]
    assert [bool(i.stats) for i in result.instances] == [True, False, True, True, False, True]
    written = json.loads((result.output_dir / "per_instance_stats.json").read_text(encoding="utf-8"))
    assert [bool(e["stats"]) for e in written] == [True, False, True, True, False, True]

    with pytest.raises(RunFailed) as again:  # the answers that succeeded come from the cache
        execute(run_spec(), cached(Answers(fail=[1, 4]), tmp_path), DataLocator(cache=None), tmp_path, "unit")
    assert (again.value.result.requests, again.value.result.cache_hits) == (6, 4)

    record = record_from_error(nodeid="n", name=f"sums[{DEPLOYMENT}]", model=DEPLOYMENT,
                               error=again.value.error, partial=again.value.result)
    assert (record.outcome, record.requests, record.cache_hits, record.run) == ("error", 6, 4, result.run_spec.name)
    assert record.failures == [f"ClientError: {again.value.error}"]
    assert (record.value, record.count, record.ci95, record.stats) == (None, 0, None, [])
    assert record.output_dir == str(result.output_dir) and len(record.instances) == 6


def test_a_client_that_gives_up_part_way_keeps_what_it_answered(tmp_path: Path) -> None:
    with pytest.raises(RunFailed) as info:
        execute(run_spec(), cached(Answers(crash=4), tmp_path), DataLocator(cache=None), tmp_path, "unit")
    assert isinstance(info.value.error, ClientError) and str(info.value) == "the backend went away"
    result = info.value.result
    assert (result.requests, result.cache_hits) == (4, 0)  # two calls of two answered, the third raised
    assert [s.result is not None for s in result.states] == [True] * 4 + [False] * 2
    state = json.loads((result.output_dir / "scenario_state.json").read_text(encoding="utf-8"))
    assert [s["result"] is not None for s in state["request_states"]] == [True] * 4 + [False] * 2

    client = Answers()
    rerun = execute(run_spec(), cached(client, tmp_path), DataLocator(cache=None), tmp_path, "unit")
    assert (rerun.requests, rerun.cache_hits, client.calls) == (6, 4, 1)


def test_a_metric_that_raises_keeps_the_answers_and_writes_no_stats(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.instance_stats

    def breaks_on_the_third(group: Any, spec: Any, window: Any) -> Any:
        if group[0].instance.id == "id2":
            raise ConfigError("metric 'exact_match' cannot score this")
        return real(group, spec, window)

    monkeypatch.setattr(pipeline, "instance_stats", breaks_on_the_third)
    with pytest.raises(RunFailed) as info:
        execute(run_spec(), cached(Answers(), tmp_path), DataLocator(cache=None), tmp_path, "unit")
    assert isinstance(info.value.error, ConfigError) and info.value.__cause__ is info.value.error
    result = info.value.result
    assert (result.requests, result.cache_hits, result.stats) == (6, 0, [])
    assert all(i.stats == [] for i in result.instances)  # none half-scored
    assert json.loads((result.output_dir / "stats.json").read_text()) == []
    assert len(json.loads((result.output_dir / "scenario_state.json").read_text())["request_states"]) == 6
