"""User-defined scenarios: YAML definitions over CSV/JSONL files, and Python functions."""

from __future__ import annotations

import fnmatch
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmeval import Instance, Reference, register_scenario, scenario
from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.errors import ConfigError, ConfigWarning, DataNotFoundError
from pytest_llmeval.extensions import Registries
from pytest_llmeval.pipeline import execute
from pytest_llmeval.requests import Request
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.custom import TableScenario, register_yaml_scenarios
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.declarations import register_declared
from pytest_llmeval.scenarios.decorator import FunctionScenario
from pytest_llmeval.scenarios.row_instances import RecordError, correct_index, instance_from_record
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT

QUIZ = textwrap.dedent("""\
    question,a,b,c,d,answer,split
    Sky colour?,Green,Blue,Red,Yellow,B,train
    Spider legs?,Six,Four,Eight,Ten,2,dev
    2 + 2?,3,4,5,22,4,test
    Cow says?,Meow,Woof,Moo,Quack,C,validation
    Capital of France?,Paris,Rome,Madrid,Berlin,A,
""")
DEPLOYMENT, MODEL = "scripted/test", "scripted/test"


@pytest.fixture
def registries() -> Registries:
    """A session's registries: what a test declares stays in them."""
    return builtin_registries()


def declare(tmp_path: Path, body: str, registries: Registries, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {"quiz.csv": QUIZ}).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    eval_file = tmp_path / "eval_custom.yaml"
    eval_file.write_text(textwrap.dedent(body), encoding="utf-8")
    register_yaml_scenarios(eval_file, yaml.safe_load(eval_file.read_text())["scenarios"], registries)
    return eval_file


def instances(name: str, registries: Registries, locator: DataLocator | None = None) -> list[Instance]:
    spec = build_run_spec(Description.parse(name), DEPLOYMENT, MODEL, registries)
    return spec.build_scenario(locator or DataLocator(cache=None)).get_instances()


MC_YAML = """
    scenarios:
      quiz:
        data: quiz.csv
        input: question
        choices: [a, b, c, d]
        answer: answer
        split_column: split
        instructions: "Answer the questions."
"""


# --- YAML: reading tables -------------------------------------------------------------------------


def test_multiple_choice_csv_with_split_column(tmp_path: Path, registries: Registries) -> None:
    declare(tmp_path, MC_YAML, registries)
    found = instances("quiz", registries)
    assert [i.split for i in found] == [TRAIN_SPLIT, TRAIN_SPLIT, TEST_SPLIT, VALID_SPLIT, TEST_SPLIT]
    assert [i.id for i in found] == ["id0", "id1", "id2", "id3", "id4"]
    correct = [i.first_correct_reference.output for i in found if i.first_correct_reference]
    assert correct == ["Blue", "Eight", "4", "Moo", "Paris"]  # letter, index 2, index 4 is out of range: text
    assert [r.output for r in found[0].references] == ["Green", "Blue", "Red", "Yellow"]


def test_run_spec_uses_the_settings_and_generic_keys(tmp_path: Path, registries: Registries) -> None:
    declare(tmp_path, MC_YAML, registries)
    spec = build_run_spec(Description.parse("quiz:max_train_instances=2,eval_split=test"), DEPLOYMENT, MODEL,
                          registries)
    assert spec.name == "quiz:max_train_instances=2,eval_split=test,model=scripted_test"
    assert spec.adapter_spec.method == "multiple_choice_joint"
    assert spec.adapter_spec.instructions == "Answer the questions."
    assert spec.adapter_spec.max_train_instances == 2 and spec.adapter_spec.max_tokens == 1
    assert spec.metrics[0] == "exact_match" and spec.main_metric == "exact_match"
    assert spec.scenario_class is TableScenario and spec.scenario_args == {"scenario": "quiz"}
    with pytest.raises(ConfigError, match="unknown argument 'subject'") as excinfo:
        build_run_spec(Description.parse("quiz:subject=x"), DEPLOYMENT, MODEL, registries)
    assert excinfo.value.field == "subject"


def test_generation_jsonl_with_train_file_lists_and_paths(tmp_path: Path, registries: Registries) -> None:
    rows = [
        {"q": {"text": "Capital of Italy?"}, "answers": ["Rome", "Roma"], "alias": ""},
        {"q": {"text": "Capital of Japan?"}, "answers": "Tokyo", "alias": "Edo"},
    ]
    files = {"qa.jsonl": "\n".join(json.dumps(r) for r in rows) + "\n\n",
             "shots.tsv": "q.text\tanswers\talias\nCapital of Spain?\tMadrid\t\n"}
    declare(tmp_path, """
        scenarios:
          capitals:
            data: {uri: qa.jsonl}
            train_data: shots.tsv
            input: q.text
            references: [answers, alias]
            max_tokens: 8
            stop: [".", "\\n"]
            metrics: quasi_exact_match
    """, registries, files)
    found = instances("capitals", registries)
    assert [(i.input, i.split) for i in found] == [("Capital of Spain?", TRAIN_SPLIT),
                                                    ("Capital of Italy?", TEST_SPLIT),
                                                    ("Capital of Japan?", TEST_SPLIT)]
    assert [r.output for r in found[1].references] == ["Rome", "Roma"]  # the empty alias is dropped
    assert [r.output for r in found[2].references] == ["Tokyo", "Edo"]
    assert all(r.is_correct for i in found for r in i.references)
    spec = build_run_spec(Description.parse("capitals"), DEPLOYMENT, MODEL, registries)
    assert spec.adapter_spec.method == "generation" and spec.adapter_spec.input_prefix == "Question: "
    assert spec.adapter_spec.stop_sequences == (".", "\n") and spec.adapter_spec.max_tokens == 8
    assert spec.metrics == ["quasi_exact_match"] and spec.main_metric == "quasi_exact_match"


def test_headerless_csv_json_list_and_choices_column(tmp_path: Path, registries: Registries) -> None:
    files = {"mmlu_like.csv": "Q1?,w,x,y,z,D\nQ2?,w,x,y,z,A\n",
             "opts.json": json.dumps([{"prompt": "Pick x", "options": ["w", "x", "y"], "gold": 1}])}
    declare(tmp_path, """
        scenarios:
          headerless:
            data: {uri: mmlu_like.csv, columns: [q, A, B, C, D, ans]}
            input: q
            choices: [A, B, C, D]
            answer: ans
            answer_format: letter
          listed:
            data: opts.json
            input: prompt
            choices: options
            answer: gold
    """, registries, files)
    assert [i.first_correct_reference.output for i in instances("headerless", registries)] == ["z", "w"]  # type: ignore[union-attr]
    [listed] = instances("listed", registries)
    assert [r.output for r in listed.references] == ["w", "x", "y"]
    assert listed.references[1].tags == (CORRECT_TAG,)


def test_rows_with_fewer_options_drop_trailing_empty_ones(tmp_path: Path, registries: Registries) -> None:
    declare(tmp_path, MC_YAML.replace("split_column: split", ""), registries,
            {"quiz.csv": "question,a,b,c,d,answer\nTrue or false?,True,False,,,B\n"})
    [only] = instances("quiz", registries)
    assert [r.output for r in only.references] == ["True", "False"]


# --- YAML: mistakes name the file, the scenario and the field ---------------------------------------


@pytest.mark.parametrize(("change", "field", "text"), [
    ({"input": "questoin"}, "input", "column 'questoin' is not in the header of"),
    ({"choices": ["a", "b", "cc", "d"]}, "choices[2]", "column 'cc' is not in the header"),
    ({"split_column": "fold"}, "split_column", "column 'fold' is not in the header"),
])
def test_unknown_columns_are_named_when_the_data_is_read(tmp_path: Path, change: dict[str, Any], field: str,
                                                         text: str, registries: Registries) -> None:
    definition = yaml.safe_load(textwrap.dedent(MC_YAML))
    definition["scenarios"]["quiz"].update(change)
    eval_file = declare(tmp_path, yaml.safe_dump(definition), registries)
    with pytest.raises(ConfigError) as excinfo:
        instances("quiz", registries)
    error = excinfo.value
    assert (error.file, error.entry, error.field) == (str(eval_file), "scenarios.quiz", field)
    assert text in error.message and "(columns: question, a, b, c, d, answer, split)" in error.message


@pytest.mark.parametrize(("csv_text", "field", "text"), [
    ("question,a,b,c,d,answer,split\nQ?,w,x,y,z,E,test\n", "answer",
     "row 1 of *, column 'answer': answer 'E' is not a letter, a 0-based index or the text of an option"),
    ("question,a,b,c,d,answer,split\nQ?,w,x,y,z,A,holdout\n", "split_column",
     "row 1 of *, column 'split': split 'holdout' is not one of train, training, dev, valid"),
    ("question,a,b,c,d,answer,split\nQ?,w,x,y,z,A,test\n ,w,x,y,z,A,test\n", "input",
     "row 2 of *, column 'question': the input is empty"),
    ("question,a,b,c,d,answer,split\nQ?,w,,y,z,A,test\n", "choices", "row 1 of *: option B is empty"),
    ("question,a,b,c,d,answer,split\nQ?,B,A,y,z,A,test\n", "answer", "answer 'A' is ambiguous"),
])
def test_bad_rows_are_named(tmp_path: Path, csv_text: str, field: str, text: str, registries: Registries) -> None:
    declare(tmp_path, MC_YAML, registries, {"quiz.csv": csv_text})
    with pytest.raises(ConfigError) as excinfo:
        instances("quiz", registries)
    assert excinfo.value.field == field and excinfo.value.entry == "scenarios.quiz"
    assert fnmatch.fnmatch(excinfo.value.message, f"*{text}*"), excinfo.value.message


@pytest.mark.parametrize(("definition", "field", "text"), [
    ({"input": "q", "references": "a"}, "data", "needs data"),
    ({"data": "x.csv", "references": "a"}, "input", "needs the name of the column"),
    ({"data": "x.csv", "input": "q"}, "references", "needs references"),
    ({"data": "x.csv", "input": "q", "choices": ["a", "b"]}, "answer", "needs the answer column"),
    ({"data": "x.csv", "input": "q", "choices": ["a"], "answer": "z"}, "choices", "at least two"),
    ({"data": "x.csv", "input": "q", "answer": "z"}, "answer", "answer goes with choices"),
    ({"data": "x.xlsx", "input": "q", "references": "a"}, "data.format", "cannot tell the format"),
    ({"data": {"uri": "x.csv", "sha256": "123"}, "input": "q", "references": "a"}, "data.sha256", "SHA-256"),
    ({"data": "x.csv", "input": "q", "references": "a", "adapter": "ranking"}, "adapter", "not an adapter"),
    ({"data": "x.csv", "input": "q", "references": "a", "adapter": "multiple_choice_joint"}, "adapter",
     "needs choices"),
    ({"data": "x.csv", "input": "q", "references": "a", "metrics": ["bleu_9"]}, "metrics", "unknown metric"),
    ({"data": "x.csv", "input": "q", "references": "a", "max_tokens": "many"}, "max_tokens", "whole number"),
    ({"data": "x.csv", "input": "q", "references": "a", "stop": "comma"}, "stop", "use one of"),
    ({"data": "x.csv", "input": "q", "references": "a", "answer_format": "roman"}, "answer_format", "use one of"),
    ({"data": "x.csv", "input": "q", "references": "a", "instructions": 3}, "instructions", "not a string"),
])
def test_definition_errors_name_file_scenario_and_field(tmp_path: Path, definition: dict[str, Any], field: str,
                                                        text: str, registries: Registries) -> None:
    eval_file = tmp_path / "eval_bad.yaml"
    with pytest.raises(ConfigError) as excinfo:
        register_yaml_scenarios(eval_file, {"bad": definition}, registries)
    error = excinfo.value
    assert (error.file, error.entry, error.field) == (str(eval_file), "scenarios.bad", field)
    assert text in error.message
    assert "bad" not in registries.scenarios


@pytest.mark.parametrize(("definition", "field", "hint"), [
    ({"data": {"uri": "x.csv", "bucket": "b"}, "input": "q", "references": "a"}, "data.bucket", "(known keys: uri,"),
    ({"data": "x.csv", "input": "q", "references": "a", "refrences": "a"}, "refrences", ": did you mean references?"),
    ({"data": "x.csv", "input": "q", "references": "a", "tag": ["x"]}, "tag", ": did you mean tags?"),
])
def test_unknown_keys_warn_naming_file_scenario_and_field(tmp_path: Path, definition: dict[str, Any], field: str,
                                                         hint: str, registries: Registries) -> None:
    eval_file = tmp_path / "eval_typo.yaml"
    with pytest.warns(ConfigWarning) as record:
        register_yaml_scenarios(eval_file, {"typo": definition}, registries)
    (warning,) = [str(w.message) for w in record]
    assert warning.startswith(f"file {eval_file}, entry scenarios.typo, field {field}: unknown key ")
    assert hint in warning
    assert "typo" in registries.scenarios  # the rest of the definition is valid: it is declared



def test_names_cannot_shadow_builtins_or_each_other(tmp_path: Path) -> None:
    definition = {"data": "x.csv", "input": "q", "references": "a"}
    session = builtin_registries()
    with pytest.raises(ConfigError, match="taken by a built-in scenario"):
        register_yaml_scenarios(tmp_path / "a.yaml", {"mmlu": definition}, session)
    with pytest.raises(ConfigError, match="is not a scenario name") as excinfo:
        register_yaml_scenarios(tmp_path / "a.yaml", {"my quiz": definition}, session)
    assert excinfo.value.field == "name"
    register_yaml_scenarios(tmp_path / "a.yaml", {"dup": definition}, session)
    register_yaml_scenarios(tmp_path / "a.yaml", {"dup": definition}, session)  # the same file again: fine
    with pytest.raises(ConfigError, match=r"'dup' is already declared in .*a\.yaml") as excinfo:
        register_yaml_scenarios(tmp_path / "b.yaml", {"dup": definition}, session)
    assert excinfo.value.file == str(tmp_path / "b.yaml")
    register_yaml_scenarios(tmp_path / "b.yaml", {"dup": definition}, builtin_registries())  # another session may


def test_missing_local_data_names_the_eval_file(tmp_path: Path, registries: Registries) -> None:
    eval_file = declare(tmp_path, """
        scenarios:
          lost:
            data: nowhere/quiz.csv
            input: question
            references: answer
    """, registries)
    with pytest.raises(DataNotFoundError) as excinfo:
        instances("lost", registries)
    message = str(excinfo.value)
    assert message.startswith(f"file {eval_file}, entry scenarios.lost, field data: data file ")
    assert str(tmp_path / "nowhere" / "quiz.csv") in message


def test_scenario_json_describes_the_definition(tmp_path: Path, registries: Registries) -> None:
    eval_file = declare(tmp_path, MC_YAML.replace('instructions: "Answer the questions."',
                                                  'description: "A tiny quiz"\n        tags: [demo]'), registries)
    spec = build_run_spec(Description.parse("quiz"), DEPLOYMENT, MODEL, registries)
    built = spec.build_scenario(DataLocator(cache=None))
    assert built.to_json() == {"name": "quiz", "description": "A tiny quiz", "tags": ["user_defined", "demo"],
                               "definition_path": str(eval_file)}


# --- records and answers --------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "answer_format", "index"), [
    ("B", "auto", 1), ("b", "letter", 1), (2, "auto", 2), ("2", "index", 2), (" Red ", "auto", 2),
    ("Red", "text", 2), ("A", "text", 3),
])
def test_correct_index(answer: Any, answer_format: str, index: int) -> None:
    assert correct_index(answer, ["Green", "Blue", "Red", "A"], answer_format) == index


@pytest.mark.parametrize(("answer", "choices", "text"), [
    ("E", ["a", "b"], "is not a letter"), ("5", ["a", "b"], "is not a letter, a 0-based index"),
    ("1", ["1", "2", "3"], "ambiguous"), ("", ["a", "b"], "empty"), ("B", ["B", "C"], "ambiguous"),
])
def test_correct_index_refuses(answer: Any, choices: list[str], text: str) -> None:
    with pytest.raises(RecordError, match=text):
        correct_index(answer, choices)


def test_instance_from_record_forms() -> None:
    gen = instance_from_record({"input": "2+2=", "references": "4", "split": "train", "id": "sum"})
    assert (gen.input, gen.split, gen.id, [r.output for r in gen.references]) == ("2+2=", TRAIN_SPLIT, "sum", ["4"])
    mc = instance_from_record({"input": "Pick", "choices": ["x", "y", "x"], "answer": "x"})
    assert [r.is_correct for r in mc.references] == [True, False, True]  # duplicates of the answer, as HELM
    given = Instance("q", (Reference("a", (CORRECT_TAG,)),), TEST_SPLIT)
    assert instance_from_record(given) is given
    for bad, field in (({"input": "q"}, "references"), ({"input": "q", "refs": "a"}, "refs"),
                       ({"input": "q", "references": "a", "choices": ["a", "b"]}, "references"),
                       ({"input": "q", "choices": "ab", "answer": "A"}, "choices")):
        with pytest.raises(RecordError) as excinfo:
            instance_from_record(bad)
        assert excinfo.value.field == field


# --- Python scenarios ------------------------------------------------------------------------------


def test_decorated_function_runs_through_the_runner(tmp_path: Path, registries: Registries) -> None:
    @scenario("unit_arith", max_tokens=3, max_train_instances=1, metrics=["exact_match"])
    def unit_arith(top: int = 3, offset: int = 0) -> list[dict[str, Any]]:
        """Sums of two equal numbers."""
        shots = [{"input": "1+1=", "references": ["2"], "split": "train"}]
        return shots + [{"input": f"{a}+{a}=", "references": [str(2 * a + offset)]} for a in range(2, 2 + top)]

    assert unit_arith(top=1)[1]["input"] == "2+2="  # the function is returned as it was
    with pytest.raises(ConfigError, match="unknown scenario 'unit_arith'"):  # nothing registered globally
        build_run_spec(Description.parse("unit_arith"), DEPLOYMENT, MODEL, builtin_registries())
    register_declared(registries, [unit_arith])  # what the session does for a conftest or test module
    seen: list[str] = []

    def model(requests: list[Request]) -> list[str]:
        seen.extend(r.prompt for r in requests)
        answers = []
        for r in requests:
            a = int(r.prompt.rsplit("Question: ", 1)[1].split("+")[0])
            answers.append(" " + str(2 * a if a % 2 == 0 else 0))  # right on even numbers only
        return answers

    spec = build_run_spec(Description.parse("unit_arith:top=4"), DEPLOYMENT, MODEL, registries)
    assert spec.name == "unit_arith:top=4,model=scripted_test"
    assert spec.scenario_class is FunctionScenario and spec.scenario_args == {"scenario": "unit_arith",
                                                                             "args": {"top": "4"}}
    result = execute(spec, CallableClient(model), DataLocator(cache=None), tmp_path, "unit")
    assert len(seen) == 4 and seen[0].startswith("Question: 1+1=\nAnswer: 2\n\nQuestion: 2+2=\nAnswer:")
    assert result.main_stat is not None and result.main_stat.mean == 0.5  # 2 and 4 right, 3 and 5 wrong
    scenario_json = json.loads((result.output_dir / "scenario.json").read_text())
    assert scenario_json["description"] == "Sums of two equal numbers."
    assert scenario_json["definition_path"].endswith("unit_arith")


def test_python_scenario_arguments_are_checked(tmp_path: Path, registries: Registries) -> None:
    def needs_level(level: int, verbose: bool = False) -> list[dict[str, Any]]:
        return [{"input": f"{level}{verbose}", "references": ["x"]}]

    register_scenario("unit_levels", needs_level).register(registries)
    with pytest.raises(ConfigError, match=r"needs level=<value>") as excinfo:
        build_run_spec(Description.parse("unit_levels"), DEPLOYMENT, MODEL, registries)
    assert excinfo.value.field == "level"
    with pytest.raises(ConfigError, match="its own arguments are level, verbose"):
        build_run_spec(Description.parse("unit_levels:level=1,colour=red"), DEPLOYMENT, MODEL, registries)
    [only] = instances("unit_levels:level=7,verbose=yes", registries)
    assert only.input == "7True"  # no default for level: it stays text; bool default: converted
    with pytest.raises(ConfigError, match=r"verbose='perhaps' is not a bool"):
        instances("unit_levels:level=1,verbose=perhaps", registries)


@pytest.mark.parametrize(("returned", "text", "field"), [
    ([], "returned no instances", None),
    ("abc", "must return a list", None),
    ([{"input": "q"}], "instance #0: needs references", "references"),
    ([{"input": "q", "references": "a", "id": "x"}, {"input": "r", "references": "b", "id": "x"}],
     "two instances have the id 'x'", "id"),
])
def test_python_scenario_results_are_checked(returned: Any, text: str, field: str | None,
                                            registries: Registries) -> None:
    def produce() -> Any:
        return returned

    register_scenario("unit_checked", produce).register(registries)
    with pytest.raises(ConfigError, match=text) as excinfo:
        instances("unit_checked", registries)
    assert excinfo.value.field == field
    assert excinfo.value.entry is not None and "unit_checked" in excinfo.value.entry
    assert excinfo.value.file == __file__


def test_python_multiple_choice_and_locator(tmp_path: Path, registries: Registries) -> None:
    (tmp_path / "data.csv").write_text("x\n")

    @scenario(adapter="multiple_choice_joint", instructions="Pick one.")
    def unit_pick(locator: DataLocator) -> Iterator[dict[str, Any]]:
        assert locator.mirror == tmp_path
        yield {"input": "Which is a fruit?", "choices": ["Stone", "Apple"], "answer": "B"}

    register_declared(registries, [unit_pick])

    [only] = instances("unit_pick", registries, DataLocator(mirror=tmp_path, cache=None))
    assert [r.is_correct for r in only.references] == [False, True]
    spec = build_run_spec(Description.parse("unit_pick"), DEPLOYMENT, MODEL, registries)
    assert spec.adapter_spec.method == "multiple_choice_joint" and spec.adapter_spec.instructions == "Pick one."

    @scenario("unit_pick_bad", adapter="multiple_choice_joint")
    def unit_pick_bad() -> list[dict[str, Any]]:
        return [{"input": "No options", "references": ["x"]}]

    register_declared(registries, [unit_pick_bad])

    with pytest.raises(ConfigError, match="multiple_choice_joint needs choices"):
        instances("unit_pick_bad", registries)


def test_python_registration_errors(registries: Registries) -> None:
    with pytest.raises(ConfigError, match="taken by a built-in scenario") as excinfo:
        register_scenario("mmlu", lambda: []).register(registries)
    assert "scenario 'mmlu'" in (excinfo.value.entry or "")
    with pytest.raises(ConfigError, match="unknown metric 'bleu_9'") as excinfo:  # checked against the registry
        register_scenario("unit_metric", lambda: [], metrics=["bleu_9"]).register(registries)
    assert excinfo.value.field == "metrics"
    with pytest.raises(ConfigError, match="unknown setting 'max_token'") as excinfo:
        register_scenario("unit_typo", lambda: [], max_token=3)
    assert excinfo.value.field == "max_token" and "unit_typo" in (excinfo.value.entry or "")
    with pytest.raises(ConfigError, match="not callable"):
        register_scenario("unit_nothing", "not a function")  # type: ignore[arg-type]


def test_every_scenario_in_the_readme_is_valid(tmp_path: Path) -> None:
    """The README's YAML snippets (including the URI examples nobody runs here) pass validation."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)]
    declared = [b["scenarios"] for b in blocks if isinstance(b, dict) and "scenarios" in b]
    assert len(declared) >= 2
    names = [name for section in declared for name in register_yaml_scenarios(tmp_path / "eval_readme.yaml",
                                                                                 section, builtin_registries())]
    assert {"my_quiz", "capitals", "remote_quiz", "bucket_quiz"} <= set(names)
