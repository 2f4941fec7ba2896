"""The fast paths of a cached rerun give exactly what the slow ones gave.

``to_dict``/``to_json`` are built field by field instead of by ``dataclasses.asdict``; cache keys
must not change (existing caches stay valid); HELM's normaliser, renamed stats and Stat JSON are
computed more cheaply; large JSON files go one value per line through the C encoder; the report
reads per-instance metrics from memory. Each test compares against the old formula.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import string
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.adapters.adapter_spec import ADAPT_MULTIPLE_CHOICE_JOINT, RequestState
from pytest_llmeval.adapters.in_context import adapt, build_prompt, sample_examples
from pytest_llmeval.clients.cache import cache_key
from pytest_llmeval.metrics.basic import normalize_text
from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.perturbations.description import PerturbationDescription
from pytest_llmeval.plain import plain
from pytest_llmeval.report.helm_output import json_lines, run_dir, write_run
from pytest_llmeval.report.html import render_report, report_data, report_parts, script_json
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord, instance_records
from pytest_llmeval.report.summary import sort_records, write_json
from pytest_llmeval.requests import GeneratedOutput, Message, Request, RequestResult, Token
from pytest_llmeval.run_result import InstanceResult, RunResult
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.mmlu import MMLUScenario
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference

Point = namedtuple("Point", "x y")


@dataclasses.dataclass
class Inner:
    values: list[int]
    label: str | None = None


@dataclasses.dataclass
class Holder:
    """asdict's own output for any value: the reference :func:`plain` must match."""

    value: Any


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    def __repr__(self) -> str:
        return f"Opaque({self.n})"

    __hash__ = None  # type: ignore[assignment]


VALUES: list[Any] = [
    None, True, 3, 2.5, math.inf, "text", [], {}, (), [1, [2, (3, 4)]], ("a", ["b", {"c": (1,)}]),
    {"k": {"n": [1.5, None]}, "t": (1, 2)}, Point(1, [2, 3]), Inner([1, 2], "x"), [Inner([3])],
    {"d": Inner([4])}, Opaque(7), {"o": [Opaque(1)]}, {1: "int key", (1, 2): "tuple key"},
]


@pytest.mark.parametrize("value", VALUES, ids=[f"v{n}" for n in range(len(VALUES))])
def test_plain_matches_asdict_and_copies(value: Any) -> None:
    expected = dataclasses.asdict(Holder(value))["value"]
    got = plain(value)
    assert got == expected
    assert type(got) is type(expected)
    assert repr(got) == repr(expected)  # the same container types all the way down
    if isinstance(value, (list, dict, Opaque)) and value:
        assert got is not value  # a copy: changing it leaves the object alone


def old_request_dict(request: Request) -> dict[str, Any]:
    """The formula ``Request.to_dict`` used before (and the cache keys were made of)."""
    data = dataclasses.asdict(request)
    data["stop_sequences"] = list(request.stop_sequences)
    if request.messages is not None:
        data["messages"] = [dataclasses.asdict(m) for m in request.messages]
    if not data.pop("verbatim"):  # a later field, in the dict only when set: older keys stay as they were
        return data
    data["verbatim"] = True
    return data


REQUESTS = [
    Request(model_deployment="local/smollm2-135m-instruct", model="HuggingFaceTB/SmolLM2-135M-Instruct",
            prompt="Question: 2+2?\nAnswer:", max_tokens=1, stop_sequences=("\n",)),
    Request(model_deployment="openai/gpt", messages=(Message("system", "Be brief."),
                                                     Message("user", "Caf\u00e9 \u2014 na\u00efve \u00fc?")),
            temperature=0.7, num_completions=2, top_p=0.9),
    Request(model_deployment="scripted/c", prompt="x", max_tokens=0, echo_prompt=True, top_k_per_token=5),
]
IDENTITY = {"class": "tests.Fake", "revision": "abc", "dtype": "float32", "nested": {"b": [1, 2], "a": None}}
# Keys the code before this change computed for REQUESTS and IDENTITY: caches on disk use them.
PINNED_KEYS = [
    "c16fa3b6eef7bb075aa17f2a64525b647c2d990545aad7bb8840058d40b9e358",
    "9947307a023c9432e76d53a9b4cd525a249e6dfdbb720a8194c0535571998107",
    "6f95857387713261484303f56af584ec27e3582a749a53fc214222be7db730c0",
]


@pytest.mark.parametrize("request_", REQUESTS, ids=["prompt", "messages", "echo"])
def test_request_dict_is_the_asdict_formula(request_: Request) -> None:
    new, old = request_.to_dict(), old_request_dict(request_)
    assert new == old and list(new) == list(old) and repr(new) == repr(old)


def test_a_verbatim_request_says_so_and_has_its_own_key() -> None:
    plain = REQUESTS[0]
    verbatim = dataclasses.replace(plain, verbatim=True)
    assert verbatim.to_dict() == {**plain.to_dict(), "verbatim": True}
    assert Request.from_dict(verbatim.to_dict()) == verbatim
    assert cache_key(plain.model_deployment, IDENTITY, verbatim) != cache_key(plain.model_deployment, IDENTITY, plain)


@pytest.mark.parametrize(("request_", "pinned"), list(zip(REQUESTS, PINNED_KEYS)), ids=["prompt", "messages", "echo"])
def test_cache_keys_are_unchanged(request_: Request, pinned: str) -> None:
    payload = {"deployment": request_.model_deployment, "identity": IDENTITY, "request": old_request_dict(request_)}
    old = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert cache_key(request_.model_deployment, IDENTITY, request_) == old == pinned


RESULTS = [
    RequestResult(success=True, completions=[
        GeneratedOutput(" C", -0.25, [Token(" C", -0.25, {" C": -0.25, " B": -1.5}), Token("\n", -0.01)],
                        {"reason": "stop", "detail": {"hit": ["\n"]}}),
        GeneratedOutput(" B")], cached=True, request_time=0.125, request_datetime=1_700_000_000,
        embedding=[0.5, 1.0], raw_request={"prompt": "x", "stop": ("\n",)}, raw_response={"id": "abc", "n": [1, 2]}),
    RequestResult(success=False, error="HTTP 500: boom"),
    RequestResult(success=True, completions=[GeneratedOutput("", tokens=[])], raw_response=Opaque(3)),
]


@pytest.mark.parametrize("result", RESULTS, ids=["tokens", "failed", "opaque"])
def test_result_dict_is_asdict(result: RequestResult) -> None:
    new, old = result.to_dict(), dataclasses.asdict(result)
    assert new == old and list(new) == list(old) and repr(new) == repr(old)
    assert RequestResult.from_dict(json.loads(json.dumps(new, default=lambda o: o.n))).text == result.text


def test_every_field_is_in_the_hand_built_dicts() -> None:
    """A field added to a class without adding it to its dict fails here."""
    every = dataclasses.replace(REQUESTS[0], verbatim=True)  # verbatim is in the dict only when set
    for cls, obj in ((Request, every), (RequestResult, RESULTS[0]), (GeneratedOutput, RESULTS[0].completions[0]),
                     (Token, Token("a", 0.0)), (Message, Message("user", "hi")),
                     (InstanceRecord, InstanceRecord("k", "id0", "test"))):
        dumped = obj.to_dict() if hasattr(obj, "to_dict") else obj.to_json()  # type: ignore[attr-defined]
        assert list(dumped) == [f.name for f in dataclasses.fields(cls)], cls.__name__  # type: ignore[arg-type]


def records() -> list[RunRecord]:
    instance = InstanceRecord(key="test/id0/0", id="id0", split="test", input="q", prompt="Input: q\nOutput:",
                              references=[{"text": "yes", "correct": True}, {"text": "no", "correct": False}],
                              output=" A", prediction="yes", metrics={"exact_match": 1.0, "nan": math.nan},
                              correct=True, perturbation="typos")
    full = RunRecord(nodeid="e.yaml::x[m]", name="x[m]", key="x[m]", scenario_key="x[m]", model="m", value=0.5,
                     count=2, ci95=[0.1, 0.9], stats=[{"name": {"name": "exact_match", "split": "test"}, "count": 2}],
                     failures=["gate"], instances=[instance, InstanceRecord("k2", "id1", None)],
                     comparison={"baseline": "b", "metrics": [{"metric": "exact_match", "delta": -0.1}],
                                 "right_to_wrong": [{"id": "id0"}]},
                     game={"game": "taboo", "experiment": "high", "players": "m--m"})
    return [full, RunRecord(nodeid="n", name="n", key="n", scenario_key="n", model="")]


@pytest.mark.parametrize("index", [0, 1])
def test_record_json_is_asdict(index: int) -> None:
    record = records()[index]
    old = dataclasses.asdict(record)
    assert repr(record.to_json()) == repr(old)
    old.pop("instances")
    assert repr(record.to_json(instances=False)) == repr(old)
    for instance in record.instances:
        assert repr(instance.to_json()) == repr(dataclasses.asdict(instance))


def helm_normalize(text: str) -> str:
    """HELM's normalize_text, step by step as HELM writes it."""
    text = text.lower()
    exclude = set(string.punctuation)
    text = "".join(ch for ch in text if ch not in exclude)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@pytest.mark.parametrize("text", [
    "The Answer, is: (B)!", "an apple a day", "  THE\tend.\n", "theater anthem",
    "Caf\u00e9 \u2014 na\u00efve \u201cquotes\u201d", "A.B.C", "a-b_c", "1,000.5 $", "", "...",
    "\u0130stanbul", "Stra\u00dfe and THE a an", "x\u00a0y\u2003z",
])
def test_normalize_text_is_helms(text: str) -> None:
    assert normalize_text(text) == helm_normalize(text)


PERTURBED = PerturbationDescription("typos", robustness=True, seed=1, details=(("prob", 0.1),))


@pytest.mark.parametrize("values", [[], [1.0], [0.0, 1.0, 0.25], [True, None, False], [-0.0], [3, 5]])
@pytest.mark.parametrize("perturbation", [None, PERTURBED,
                                          PerturbationDescription("odd", details=(("words", ["a", "b"]),))])
def test_in_context_is_replace_then_merge(values: list[Any], perturbation: PerturbationDescription | None) -> None:
    stat = Stat(MetricName("exact_match", "valid"))
    for value in values:
        stat.add(value)
    old = Stat(dataclasses.replace(stat.name, split="test", sub_split="s", perturbation=perturbation)).merge(stat)
    new = stat.in_context("test", "s", perturbation)
    assert new == old and repr(new) == repr(old)
    assert json.dumps(new.to_json()) == json.dumps(old.to_json())


@pytest.mark.parametrize("values", [[], [1.0], [0.0, 1.0, 0.25], [1e308, 1e308], [2.0, 2.0, 2.0], [0.1] * 3,
                                    [math.nan, 1.0], [math.inf]])
def test_stat_json_is_the_properties(values: list[float]) -> None:
    stat = Stat(MetricName("m", "test"))
    for value in values:
        stat.add(value)
    expected = {"name": stat.name.to_json(), "count": stat.count, "sum": stat.sum, "sum_squared": stat.sum_squared,
                "min": stat.min, "max": stat.max, "mean": stat.mean, "variance": stat.variance, "stddev": stat.stddev}
    expected = {k: v for k, v in expected.items() if v is not None}  # HELM leaves out what an empty Stat lacks
    assert json.dumps(stat.to_json()) == json.dumps(expected)


NESTED: Any = {"adapter_spec": {"method": "generation", "stop": ["\n"], "empty": [], "none": None, "d": {}},
               "request_states": [{"a": 1, "text": "Caf\u00e9 \u2014 \u00fc", "l": [1, {"x": []}]}, [], {}, "s", 2.5],
               "empty": {}, "n": math.nan}


@pytest.mark.parametrize("data", [NESTED, [], {}, [1, [2, [3]]], "text", [{"k": [{}]}], (1, ("a", []))])
def test_json_lines_parses_to_the_same_and_is_indent_2_when_deep_enough(data: Any) -> None:
    assert json_lines(data, 99) == json.dumps(data, indent=2, ensure_ascii=False)
    for depth in range(4):
        assert json.dumps(json.loads(json_lines(data, depth))) == json.dumps(data)
    if isinstance(data, list):  # an iterator stands for a list made item by item
        assert json_lines(iter(data), 2) == json_lines(data, 2)


def test_json_lines_keeps_a_dict_with_other_keys_on_one_line() -> None:
    assert json_lines({1: [2], "a": {}}, 3) == '{"1": [2], "a": {}}'


def _states() -> list[RequestState]:
    states = []
    for n, answer in enumerate((" A", " B", " Z")):
        instance = Instance(f"question {n} \u2014 caf\u00e9", (Reference("yes", (CORRECT_TAG,)), Reference("no")),
                            "test", id=f"id{n}")
        request = Request(model_deployment="m", prompt=f"Question: {n}\nAnswer:", max_tokens=1, stop_sequences=("\n",))
        state = RequestState(instance, 0, request, 5, output_mapping={"A": "yes", "B": "no"})
        state.result = RequestResult(success=True, completions=[GeneratedOutput(answer)], request_time=0.1)
        states.append(state)
    return states


def _result(run_spec: Any, scenario: Any, states: list[RequestState], per_instance: list[list[Stat]],
            directory: Path) -> RunResult:
    """A result with one state per instance, as a joint multiple-choice run has."""
    instances = [InstanceResult([state], stats) for state, stats in zip(states, per_instance)]
    return RunResult(run_spec, scenario, states, instances, [], directory, 0.0, len(states))


def test_large_run_files_hold_one_value_per_line_and_the_same_data(tmp_path: Path) -> None:
    run_spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), "m", "m")
    scenario = MMLUScenario("anatomy", DataLocator(mirror=tmp_path / "unused"))
    states = _states()
    per_instance = [[Stat(MetricName("exact_match", "test")).add(float(n == 0)), Stat(MetricName("nan", "test"))]
                    for n, _ in enumerate(states)]
    directory = run_dir(tmp_path, "suite", run_spec.name)
    write_run(_result(run_spec, scenario, states, per_instance, directory))

    state_text = (directory / "scenario_state.json").read_text(encoding="utf-8")
    assert json.loads(state_text) == {"adapter_spec": run_spec.adapter_spec.to_json(),
                                      "request_states": [s.to_json() for s in states]}
    lines = state_text.splitlines()
    assert [json.loads(line.strip().rstrip(",")) for line in lines if line.startswith("    {")] == \
        [s.to_json() for s in states]  # one request state per line
    assert "caf\u00e9" in state_text  # text as written, not \\u escapes
    per_instance_text = (directory / "per_instance_stats.json").read_text(encoding="utf-8")
    assert len(per_instance_text.splitlines()) == len(states) + 2
    assert [e["stats"] for e in json.loads(per_instance_text)] == [[s.to_json() for s in st] for st in per_instance]
    # the small files stay as HELM indents them
    assert (directory / "run_spec.json").read_text(encoding="utf-8") == json.dumps(run_spec.to_json(), indent=2,
                                                                                   ensure_ascii=False)


def test_report_metrics_from_the_result_are_those_of_the_file(tmp_path: Path) -> None:
    """The report's per-instance metrics come from the run's result, never from the file the run
    wrote; they are each metric's first mean in that file, with empty stats skipped."""
    run_spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), "m", "m")
    scenario = MMLUScenario("anatomy", DataLocator(mirror=tmp_path / "unused"))
    states = _states()
    per_instance = [[Stat(MetricName("exact_match", "test")).add(float(n == 0)), Stat(MetricName("empty", "test")),
                     Stat(MetricName("quasi_exact_match", "test")).add(0.5)] if n != 1 else []
                    for n, _ in enumerate(states)]
    directory = run_dir(tmp_path, "suite", run_spec.name)
    result = _result(run_spec, scenario, states, per_instance, directory)
    write_run(result)
    from_file = []
    for entry in json.loads((directory / "per_instance_stats.json").read_text(encoding="utf-8")):
        values: dict[str, float] = {}
        for stat in entry["stats"]:
            if stat.get("mean") is not None:
                values.setdefault(stat["name"]["name"], stat["mean"])
        from_file.append(values)
    (directory / "per_instance_stats.json").unlink()  # the records never read it
    from_memory = instance_records(result, "exact_match")
    assert [r.metrics for r in from_memory] == from_file == [
        {"exact_match": 1.0, "quasi_exact_match": 0.5}, {}, {"exact_match": 0.0, "quasi_exact_match": 0.5}]
    assert [r.correct for r in from_memory] == [True, None, False]


def test_script_json_is_ascii_inert_and_parses_to_the_data() -> None:
    data = {"text": "Caf\u00e9 \u2014 \u4e2d\u6587 \U0001f600 </script> & \u2028\u2029", "n": [1.5, math.inf],
            "t": ("a",)}
    text = script_json(data)
    assert text.isascii() and not set("<>&") & set(text)
    assert json.loads(text) == {"text": data["text"], "n": [1.5, None], "t": ["a"]}
    assert json.loads(script_json({"a": [1, 2]})) == {"a": [1, 2]}


def test_report_data_is_script_json_of_the_whole() -> None:
    """Built instance by instance, the embedded JSON is the text one ``script_json`` call gave."""
    [record, empty] = records()
    record.instances[1].input = '</script><b onclick="x">&amp; \u2028 \u4e2d'
    record.scenario = "mmlu<&>"
    episodes = [{"game": "taboo", "scores": {"Main Score": math.nan, "Played": 1.0}, "turns": [[{"content": "<hi>"}]]}]
    data = {"runs": [{"scenario": r.scenario, "main_metric": r.main_metric, "game": r.game,
                      "instances": [i.to_json() for i in r.instances]} for r in (record, empty)],
            "episodes": episodes}
    assert report_data([record, empty], episodes) == script_json(data)
    assert report_data([], []) == script_json({"runs": [], "episodes": []})


def test_report_parts_join_to_the_page() -> None:
    [record, empty] = records()
    record.instances[0].metrics = {"exact_match": 1.0}
    record.comparison = None
    summary: dict[str, Any] = {"suite": "s", "totals": {"runs": 2}}
    parts = list(report_parts(summary, [record, empty], []))
    assert "".join(parts) == render_report(summary, [record, empty], [])
    [data] = [n for n, part in enumerate(parts) if part == report_data(sort_records([record, empty]), [])]
    assert parts[data - 1].endswith('id="llmeval-data">') and parts[data + 1].startswith("</script>")


def test_summary_json_still_writes_null_for_nan(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json(path, {"a": [1.0, math.nan, {"b": -math.inf}], "c": "x"})
    assert path.read_text(encoding="utf-8") == json.dumps({"a": [1.0, None, {"b": None}], "c": "x"}, indent=2) + "\n"
    write_json(path, {"a": [1.0, 2]})
    assert path.read_text(encoding="utf-8") == json.dumps({"a": [1.0, 2]}, indent=2) + "\n"


def test_adapt_builds_each_trials_examples_once_with_the_same_prompts() -> None:
    train = [Instance(f"t{n}", (Reference("x", (CORRECT_TAG,) if n % 2 else ()), Reference("y", () if n % 2 else
                                                                                             (CORRECT_TAG,))),
                      "train", id=f"t{n}") for n in range(8)]
    evaluated = [Instance(f"q{n}", (Reference("x", (CORRECT_TAG,)), Reference("y")), "test", id=f"q{n}")
                 for n in range(4)]
    spec = build_run_spec(Description.parse("mmlu:subject=anatomy"), "m", "m").adapter_spec.replace(
        max_train_instances=3, num_train_trials=2)
    assert spec.method == ADAPT_MULTIPLE_CHOICE_JOINT
    states = adapt(spec, train + evaluated)
    expected = [build_prompt(spec, sample_examples(train, trial, 3), instance)
                for trial in range(2) for instance in evaluated]
    assert [s.request.prompt for s in states] == expected
