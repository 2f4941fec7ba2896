"""MATH: HELM's order of the files, the subject and level chosen, targets with and without a
chain of thought, HELM's official examples, bad files, missing data, the run spec and prompt."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.http_session import RetryPolicy
from pytest_llmeval.pipeline import downsample
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import math as math_scenario
from pytest_llmeval.scenarios.data import DataArchive, DataLocator
from pytest_llmeval.scenarios.math import OFFICIAL_EXAMPLES, MATHScenario, helm_order, read_split
from tests import data_servers
from tests.data_servers import FileServer

file_server = data_servers.file_server
# The small MATH-format files the parity references were made from (math/{train,test}/<subject>/<n>.json).
SOURCES = Path(__file__).parent / "data" / "helm_sources"
# The order helm-run's ``datasets`` 3.6 gave these files after ``.sort("problem").shuffle(seed=42)``
# (given the files in path order; two train files share one problem, and the sort keeps them in that order).
HF_ORDER = {
    "train": ["number_theory/79", "number_theory/11", "number_theory/4", "algebra/40", "prealgebra/9", "algebra/15",
              "number_theory/57", "number_theory/63", "number_theory/23", "algebra/21", "algebra/101", "algebra/67",
              "number_theory/45", "number_theory/19", "algebra/34", "number_theory/30", "algebra/71", "prealgebra/5",
              "algebra/3", "algebra/8", "algebra/102", "number_theory/38", "algebra/52", "algebra/90",
              "number_theory/80"],
    "test": ["number_theory/42", "number_theory/31", "number_theory/17", "algebra/2", "algebra/64", "algebra/13",
             "algebra/48", "algebra/27", "number_theory/70", "algebra/88", "algebra/59", "number_theory/25",
             "algebra/36", "geometry/7", "number_theory/6", "number_theory/54"],
}


def source(split: str, name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((SOURCES / "math" / split / f"{name}.json").read_text(encoding="utf-8"))
    return data


def in_order(split: str, subject: str, level: str) -> list[dict[str, str]]:
    """The recorded order's rows of one subject folder at one level."""
    rows = [source(split, name) for name in HF_ORDER[split] if name.startswith(f"{subject}/")]
    return [row for row in rows if row["level"] == f"Level {level}"]


def locator() -> DataLocator:
    return DataLocator(mirror=SOURCES, cache=None)


@pytest.mark.parametrize("split", ["train", "test"])
def test_order_is_helms_sort_then_shuffle(split: str) -> None:
    folder = SOURCES / "math" / split
    ordered = [Path(p.origin).relative_to(folder).as_posix().removesuffix(".json")
               for p in helm_order(read_split(folder))]
    assert ordered == HF_ORDER[split]


@pytest.mark.parametrize("split", ["train", "test"])
def test_order_equals_datasets_own(split: str) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{k: getattr(p, k) for k in ("problem", "level", "type", "solution")}
            for p in read_split(SOURCES / "math" / split)]
    theirs = datasets.Dataset.from_list(rows).sort("problem").shuffle(seed=42)
    assert [(r["problem"], r["solution"]) for r in theirs] == \
        [(p.problem, p.solution) for p in helm_order(read_split(SOURCES / "math" / split))]


def test_chain_of_thought_targets_are_the_solutions() -> None:
    instances = MATHScenario("algebra", "1", locator(), use_chain_of_thought=True).get_instances()
    train, test = in_order("train", "algebra", "1"), in_order("test", "algebra", "1")
    assert (len(train), len(test)) == (10, 7)
    assert [(i.split, i.input, [r.output for r in i.references]) for i in instances] == \
        [("train", r["problem"], [r["solution"]]) for r in train] + \
        [("test", r["problem"], [r["solution"]]) for r in test]
    assert [i.id for i in instances] == [f"id{n}" for n in range(17)]
    assert all(r.is_correct for i in instances for r in i.references)


def test_plain_targets_are_the_boxed_answers() -> None:
    instances = MATHScenario("number_theory", "2", locator()).get_instances()
    test = [i for i in instances if i.split == "test"]
    assert [i.input for i in test] == [r["problem"] for r in in_order("test", "number_theory", "2")]
    assert [i.references[0].output for i in test] == ["4", "3", "6", "15", "7", "2", "\\frac{6}{8}"]
    assert len(instances) - len(test) == 10


def test_official_examples_replace_the_train_problems() -> None:
    instances = MATHScenario("number_theory", "2", locator(), use_official_examples=True).get_instances()
    train = [(i.input, i.references[0].output) for i in instances if i.split == "train"]
    assert train == list(OFFICIAL_EXAMPLES) and len(train) == 8
    assert train[2] == ("Find the distance between the points $(2,1,-4)$ and $(5,8,-3).$", "\\sqrt{59}")
    assert [i.split for i in instances].count("test") == 7


def test_a_subject_and_level_the_data_lacks_is_data_not_found() -> None:
    """Full MATH has every subject at every level: none at all means the data is not all there."""
    with pytest.raises(DataNotFoundError, match=r"subject=precalculus, level=5 not found: expected 'Precalculus'"):
        MATHScenario("precalculus", "5", locator()).get_instances()


def test_an_unboxed_solution_names_its_file_without_chain_of_thought() -> None:
    """``test/algebra/36.json`` ends in ``\\fbox{5}``: HELM's scenario fails on it too; with a
    chain of thought it is a target like any other."""
    with pytest.raises(ConfigError) as excinfo:
        MATHScenario("algebra", "1", locator()).get_instances()
    assert excinfo.value.file is not None and excinfo.value.file.endswith("test/algebra/36.json")
    assert excinfo.value.field == "solution" and "\\boxed" in excinfo.value.message
    assert "\n" not in str(excinfo.value)


def copy_sources(tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    shutil.copytree(SOURCES / "math", mirror / "math")
    return mirror


@pytest.mark.parametrize(("content", "field", "says"), [
    ("{not json", None, "not a JSON file"),
    ('["a list"]', None, "expected a JSON object"),
    ('{"problem": "p", "level": "Level 1", "solution": "\\\\boxed{1}"}', "type", "'type' should be text, got nothing"),
    ('{"problem": "p", "level": 1, "type": "Algebra", "solution": "s"}', "level", "'level' should be text, got 1"),
])
def test_a_bad_file_names_file_and_field(tmp_path: Path, content: str, field: str | None, says: str) -> None:
    mirror = copy_sources(tmp_path)
    bad = mirror / "math" / "train" / "geometry" / "5.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        MATHScenario("algebra", "1", DataLocator(mirror=mirror, cache=None), use_chain_of_thought=True).get_instances()
    assert (excinfo.value.file, excinfo.value.field) == (str(bad), field)
    assert says in excinfo.value.message and "\n" not in str(excinfo.value)


def test_missing_data_offline_says_where_it_was_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    scenario = MATHScenario("algebra", "1", DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as excinfo:
        scenario.get_instances()
    message = str(excinfo.value)
    assert "data folder math/train not found" in message and "\n" not in message
    assert str(tmp_path / "mirror" / "math" / "train") in message and "downloads are off" in message


def test_the_archive_is_downloaded_once_into_the_cache(tmp_path: Path, file_server: FileServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """MATH.tar unpacks to ``MATH/{train,test}/...``; the cache keeps it as ``math/...``."""
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    with tarfile.open(file_server.root / "MATH.tar", "w") as tar:
        tar.add(SOURCES / "math", arcname="MATH")
    monkeypatch.setattr(math_scenario, "ARCHIVE", DataArchive(f"{file_server.url}/MATH.tar", "math", "MATH"))
    located = DataLocator(mirror=None, cache=tmp_path / "cache", downloads=RetryPolicy(retries=1, timeout=5.0))
    first = MATHScenario("algebra", "1", located, use_chain_of_thought=True).get_instances()
    second = MATHScenario("algebra", "1", located, use_chain_of_thought=True).get_instances()
    assert first == second == MATHScenario("algebra", "1", locator(), use_chain_of_thought=True).get_instances()
    assert file_server.requests == ["/MATH.tar"]
    assert (tmp_path / "cache" / "math" / "test" / "algebra" / "36.json").is_file()


HELM_COT_NAME = "math:subject=algebra,level=1,use_official_examples=False,use_chain_of_thought=True"


@pytest.mark.parametrize(("entry", "name"), [
    ("math:subject=algebra,level=1,use_chain_of_thought=True", f"{HELM_COT_NAME},model=org_m"),
    # HELM Lite's form: the model first, then a run expander that leaves the name alone.
    ("math:model=org/m,subject=algebra,level=1,use_chain_of_thought=True,follow_format_instructions=instruct",
     f"{HELM_COT_NAME},model=org_m"),
    ("math:level=2,subject=number_theory,use_official_examples=True",
     "math:subject=number_theory,level=2,use_official_examples=True,use_chain_of_thought=False,model=org_m"),
    # HELM reads a flag as true only when it says "true", in any case.
    ("math:subject=geometry,level=5,use_official_examples=yes,use_chain_of_thought=TRUE",
     "math:subject=geometry,level=5,use_official_examples=False,use_chain_of_thought=True,model=org_m"),
])
def test_run_name_is_helms(entry: str, name: str) -> None:
    assert build_run_spec(Description.parse(entry), "local/m", "org/m").name == name


def test_chain_of_thought_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("math:subject=algebra,level=1,use_chain_of_thought=True"),
                          "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.method, adapter.instructions, adapter.input_prefix, adapter.input_suffix, adapter.output_prefix,
            adapter.output_suffix, adapter.instance_prefix) == (
        "generation", math_scenario.INSTRUCTIONS, "Problem: ", "\n", "Answer: ", "\n", "###\n")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences, adapter.temperature,
            adapter.num_outputs) == (8, 400, ("###",), 0.0, 1)
    assert spec.metrics == ["math_equiv_chain_of_thought"] and spec.groups == ["math_chain_of_thought"]
    data = spec.to_json()
    assert data["adapter_spec"]["instructions"] == (
        "Given a mathematics problem, determine the answer. Simplify your answer as much as possible.\n")
    assert data["scenario_spec"] == {
        "class_name": "helm.benchmark.scenarios.math_scenario.MATHScenario",
        "args": {"subject": "algebra", "level": "1", "use_official_examples": False, "use_chain_of_thought": True}}
    assert [m["class_name"].rpartition(".")[2] for m in data["metric_specs"]] == [
        "BasicGenerationMetric", "BasicReferenceMetric", "InstancesPerSplitMetric"]


def test_plain_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("math:subject=number_theory,level=2"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.output_prefix, adapter.output_suffix, adapter.max_tokens, adapter.stop_sequences) == (
        "Answer: $", "$\n", 20, ("$",))
    assert spec.metrics == ["math_equiv"] and spec.groups == ["math_regular"] and spec.main_metric == "math_equiv"


@pytest.mark.parametrize(("entry", "field", "says"), [
    ("math:subject=algebra,level=1,use_official_examples=True,use_chain_of_thought=True", "use_official_examples",
     "Cannot use official examples when use_chain_of_thought is True."),
    ("math:subject=calculus,level=1", "subject", "unknown MATH subject 'calculus'"),
    ("math:subject=algebra,level=6", "level", "unknown MATH level '6'"),
    ("math:subject=algebra", "level", "needs level="),
    ("math:subject=algebra,level=1,split=test", "split", "unknown argument(s) split"),
])
def test_bad_arguments_are_one_line_naming_the_field(entry: str, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(entry), "local/m", "org/m")
    assert excinfo.value.field == field and says in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_prompt_is_helms_problem_and_answer_blocks() -> None:
    spec = build_run_spec(Description.parse("math:subject=number_theory,level=2,use_official_examples=True"),
                          "local/m", "org/m")
    instances = MATHScenario("number_theory", "2", locator(), use_official_examples=True).get_instances()
    state = adapt(spec.adapter_spec, instances)[0]
    prompt = state.request.prompt
    assert prompt.startswith("Given a mathematics problem, determine the answer. Simplify your answer as much as "
                             "possible.\n###\nProblem: ")
    assert prompt.count("###\n") == 9 and prompt.count("\nAnswer: $") == 9
    assert "Problem: How many zeros are at the end of the product 25 $\\times$ 240?\nAnswer: $3$\n###\n" in prompt
    assert prompt.endswith(f"###\nProblem: {state.instance.input}\nAnswer: $")
    assert (state.request.max_tokens, state.request.stop_sequences) == (20, ("$",))


# helm-run --dry-run of HELM Lite's entry on an instruction-following model, over the files above
# with --max-eval-instances 5: each request's instance and the SHA-256 of its prompt (first 16 digits).
LITE_ENTRY = ("math:model=org/m,subject=algebra,level=1,use_chain_of_thought=True,"
              "follow_format_instructions=instruct")
LITE_PROMPTS = [("id16", "78f7b09726f6eeb1"), ("id12", "0805121b216296cd"), ("id11", "068b3108cce6a09f"),
                ("id13", "cfea7cf5dc96660d"), ("id10", "89dee4b44a127205")]


def test_helm_lite_prompts_are_helm_runs() -> None:
    spec = build_run_spec(Description.parse(LITE_ENTRY), "local/m", "org/m",
                          model_tags=["INSTRUCTION_FOLLOWING_MODEL_TAG"])
    instances = downsample(spec.build_scenario(locator()).get_instances(), spec.adapter_spec.evaluated_splits, 5)
    states = adapt(spec.adapter_spec, instances)
    assert [(s.instance.id, hashlib.sha256(s.request.prompt.encode()).hexdigest()[:16]) for s in states] == \
        LITE_PROMPTS
    assert states[0].request.prompt.startswith("Here are some input-output examples.")
    assert states[0].request.prompt.endswith("Answer:\n\nPlease provide the output to this last example. It is "
                                             "critical to follow the format of the preceding outputs!\nAnswer:")
