"""User-defined scenarios end to end through pytest (pytester), serially and with ``-n 2``.

Scripted models keep most cases fast; the ``slow`` ones run the real bundled model: the
README's worked examples exactly as written, and a scenario whose data lives in S3.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

from tests import data_servers
from tests.data_servers import FileServer, MotoS3
from tests.projects import make_importable

aws_env, file_server, moto_s3 = data_servers.aws_env, data_servers.file_server, data_servers.moto_s3

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
ROOT = Path(__file__).resolve().parents[1]

SCRIPTED_MODELS = '''
"""Scripted models: a letter from the prompt's length; the last word of the last question."""


class LetterModel:
    def generate(self, requests):
        return [" " + "ABCD"[len(r.prompt) % 4] for r in requests]


class LastWordModel:
    def generate(self, requests):
        question = [r.prompt.rsplit("Question: ", 1)[-1].split("\\n")[0] for r in requests]
        return [" " + q.split()[-1].strip("?") for q in question]
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/letters
    model_name: scripted/letters
    client_spec: {class_name: "custom_scripted:LetterModel"}
  - name: scripted/lastword
    model_name: scripted/lastword
    client_spec: {class_name: "custom_scripted:LastWordModel"}
"""

QUIZ_CSV = """\
question,a,b,c,d,answer,split
What colour is a clear daytime sky?,Green,Blue,Red,Yellow,B,train
How many legs does a spider have?,Six,Four,Eight,Ten,C,train
What is 2 + 2?,3,4,5,22,1,test
Which animal says moo?,Cat,Dog,Cow,Duck,Cow,test
What is the capital of France?,Paris,Rome,Madrid,Berlin,A,valid
Which planet do we live on?,Mars,Venus,Jupiter,Earth,D,
Which is a fruit?,Stone,Apple,Chair,Cloud,B,test
"""

QUIZ_YAML = """
scenarios:
  quiz:
    data: {data}
    input: question
    choices: [a, b, c, d]
    answer: answer
    split_column: split
    instructions: "Answer the questions."
entries:
  - quiz
  - quiz:max_train_instances=0
"""

SAY_JSONL = "\n".join(json.dumps(r) for r in [
    {"prompt": "Say Paris", "answers": ["Paris", "paris"], "split": "train"},
    {"prompt": "Say Tokyo", "answers": ["Tokyo"]},
    {"prompt": "Say Rome", "answers": ["Roma"]},
    {"prompt": "Say Cairo?", "answers": ["cairo"]},
]) + "\n"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with two scripted models registered in prod_env/ and importable by workers."""
    pytester.makepyfile(custom_scripted=SCRIPTED_MODELS)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    make_importable(pytester, monkeypatch)
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(pytester.path / "user-cache"))
    return pytester


def runs(root: Path) -> dict[str, Path]:
    folder = root / "benchmark_output" / "runs" / "default"
    return {p.name.split(",model=")[0].split(":model=")[0]: p for p in folder.iterdir() if p.is_dir()}


def recomputed(run: Path, metric: str) -> dict[str, float]:
    """The metric's mean per split, recomputed from the stored predictions and references."""
    from pytest_llmeval.metrics import MATCHERS

    state = json.loads((run / "scenario_state.json").read_text())
    by_split: dict[str, list[float]] = {}
    for rs in state["request_states"]:
        text = rs["result"]["completions"][0]["text"].strip()
        prediction = rs["output_mapping"].get(text) if "output_mapping" in rs else text
        golds = [r["output"]["text"] for r in rs["instance"]["references"] if "correct" in r["tags"]]
        value = max(MATCHERS[metric](g, prediction) for g in golds) if prediction is not None else 0.0
        by_split.setdefault(rs["instance"]["split"], []).append(value)
    return {split: sum(v) / len(v) for split, v in by_split.items()}


def stored(run: Path, metric: str) -> dict[str, float]:
    stats = json.loads((run / "stats.json").read_text())
    return {s["name"]["split"]: s["mean"] for s in stats
            if s["name"]["name"] == metric and "perturbation" not in s["name"]}


# --- YAML scenarios -------------------------------------------------------------------------------


@pytest.mark.parametrize("xdist", XDIST)
def test_yaml_csv_scenario_runs_like_a_builtin(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "quiz.csv").write_text(QUIZ_CSV)
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data="quiz.csv"))
    collected = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/letters")
    collected.stdout.fnmatch_lines(["eval_quiz.yaml::quiz[[]scripted/letters[]]",
                                    "eval_quiz.yaml::quiz:max_train_instances=0[[]scripted/letters[]]"])
    result = project.runpytest("-k", "quiz", "--llmeval-models", "scripted/letters", *xdist)
    result.assert_outcomes(passed=2)
    found = runs(project.path)
    assert set(found) == {"quiz", "quiz:max_train_instances=0"}
    for run in found.values():
        assert set(stored(run, "exact_match")) == {"valid", "test"}
        assert stored(run, "exact_match") == pytest.approx(recomputed(run, "exact_match"))
    state = json.loads((found["quiz"] / "scenario_state.json").read_text())
    assert len(state["request_states"]) == 5  # 2 train rows are examples; 4 test + 1 valid are evaluated
    assert {rs["num_train_instances"] for rs in state["request_states"]} == {2}
    assert state["request_states"][0]["request"]["prompt"].startswith("Answer the questions.\n\nQuestion: ")
    spec = json.loads((found["quiz"] / "run_spec.json").read_text())
    assert spec["scenario_spec"]["args"] == {"scenario": "quiz"}
    result.stdout.fnmatch_lines(["*scripted/letters*quiz*exact_match*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_yaml_jsonl_generation_scenario(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "data").mkdir()
    (project.path / "data" / "say.jsonl").write_text(SAY_JSONL)
    (project.path / "eval_say.yaml").write_text(textwrap.dedent("""
        scenarios:
          say:
            data: data/say.jsonl
            input: prompt
            references: answers
            split_column: split
            metrics: [exact_match, quasi_exact_match]
        entries:
          - description: say:eval_split=test
            gates: ["exact_match >= 0.3", "quasi_exact_match >= 0.6"]
    """))
    result = project.runpytest("--llmeval-models", "scripted/lastword", *xdist)
    result.assert_outcomes(passed=1)
    run = runs(project.path)["say:eval_split=test"]
    assert stored(run, "exact_match") == pytest.approx({"test": 1 / 3})  # Tokyo only
    assert stored(run, "quasi_exact_match") == pytest.approx({"test": 2 / 3})  # and Cairo, case-folded
    assert recomputed(run, "quasi_exact_match") == pytest.approx(stored(run, "quasi_exact_match"))


@pytest.mark.parametrize("xdist", XDIST)
def test_unknown_column_names_file_scenario_and_field(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "quiz.csv").write_text(QUIZ_CSV)
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data="quiz.csv").replace(
        "input: question", "input: questoin"))
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*eval_quiz.yaml, entry scenarios.quiz, field input: column 'questoin' is not in the header of "
        "*quiz.csv (columns: question, a, b, c, d, answer, split)*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("xdist", XDIST)
def test_bad_definition_fails_collection_with_its_location(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data="quiz.csv").replace(
        "split_column: split", "split_column: split\n    metrics: [exact_match, bleu]"))
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval_quiz.yaml, entry scenarios.quiz, field metrics: unknown metric 'bleu'*"])


def test_two_files_may_not_declare_one_name(project: pytest.Pytester) -> None:
    (project.path / "quiz.csv").write_text(QUIZ_CSV)
    for name in ("eval_a.yaml", "eval_b.yaml"):
        (project.path / name).write_text(QUIZ_YAML.format(data="quiz.csv"))
    result = project.runpytest("--llmeval-models", "scripted/letters")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval_b.yaml, entry scenarios.quiz, field name: scenario 'quiz' is already "
                                 "declared in *eval_a.yaml*"])


# --- data over the network -------------------------------------------------------------------------


@pytest.mark.parametrize("xdist", XDIST)
def test_http_data_with_checksum_then_offline_from_cache(project: pytest.Pytester, xdist: list[str],
                                                         file_server: FileServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (file_server.root / "quiz.csv").write_text(QUIZ_CSV)
    good = hashlib.sha256(QUIZ_CSV.encode()).hexdigest()
    data = f"{{uri: '{file_server.url}/quiz.csv', sha256: '{good}'}}"
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data=data))
    args = ["--llmeval-models", "scripted/letters", "--llmeval-disable-cache", *xdist]
    project.runpytest(*args).assert_outcomes(passed=2)
    assert file_server.requests == ["/quiz.csv"]  # two runs (and two workers): one download
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")  # the data cache serves it now
    project.runpytest(*args).assert_outcomes(passed=2)
    assert len(file_server.requests) == 1

    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data=data.replace(good, "0" * 64)))
    monkeypatch.delenv("LLMEVAL_OFFLINE")
    result = project.runpytest(*args)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*field data: checksum mismatch for {file_server.url}/quiz.csv: expected sha256 "
                                 f"{'0' * 64}, got {good}*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_offline_missing_data_says_where_and_how(project: pytest.Pytester, xdist: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data="https://data.example.org/v1/quiz.csv"))
    (project.path / "mirror").mkdir()
    args = ["--llmeval-models", "scripted/letters", "--llmeval-data-dir", "mirror", *xdist]
    result = project.runpytest(*args)
    result.assert_outcomes(failed=2)
    expected = project.path / "mirror" / "quiz" / "quiz.csv"
    result.stdout.fnmatch_lines([
        f"*field data: data file quiz/quiz.csv for scenario quiz (https://data.example.org/v1/quiz.csv) not found: "
        f"expected {expected} or *; downloads are off (LLMEVAL_OFFLINE=1). Put the file at {expected}, or unset "
        f"LLMEVAL_OFFLINE to download it."])
    expected.parent.mkdir()
    expected.write_text(QUIZ_CSV)  # exactly what the message asked for
    project.runpytest(*args).assert_outcomes(passed=2)


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("xdist", XDIST)
def test_s3_data_from_a_real_s3_server(project: pytest.Pytester, xdist: list[str], moto_s3: MotoS3,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    moto_s3.upload("llmeval-quiz", "quiz.csv", QUIZ_CSV.encode())
    data = f"{{uri: 's3://llmeval-quiz/quiz.csv', storage_options: {{endpoint_url: '{moto_s3.endpoint_url}'}}}}"
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data=data))
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    result.assert_outcomes(passed=2)
    run = runs(project.path)["quiz"]
    assert stored(run, "exact_match") == pytest.approx(recomputed(run, "exact_match"))
    # The endpoint may come from the environment instead (AWS_ENDPOINT_URL), as for any AWS client.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint_url)
    (project.path / "eval_quiz.yaml").write_text(QUIZ_YAML.format(data="s3://llmeval-quiz/quiz.csv"))
    project.runpytest("--llmeval-models", "scripted/letters", *xdist).assert_outcomes(passed=2)


# --- Python scenarios ------------------------------------------------------------------------------

PY_CONFTEST = '''
from pytest_llmeval import scenario


@scenario("e2e_words", metrics=["exact_match"], max_tokens=3, max_train_instances=1)
def e2e_words(count: int = 3):
    """Repeat the last word."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    train = [{"input": "Say zeta", "references": ["zeta"], "split": "train"}]
    return train + [{"input": f"Say {w}", "references": [w if n % 2 == 0 else w.upper()]}
                    for n, w in enumerate(words[:count])]
'''

PY_TEST = '''
import pytest

from pytest_llmeval import Description, scenario


@scenario("e2e_inline", adapter="multiple_choice_joint", instructions="Pick one.")
def e2e_inline():
    return [{"input": f"Q{n}", "choices": ["w", "x", "y", "z"], "answer": n % 4} for n in range(8)]


@pytest.mark.llmeval_models("scripted/letters")
def test_inline_scenario(llm, llmeval_session):
    result = llmeval_session.run_entry(Description.parse("e2e_inline:max_train_instances=0"), llm.name)
    state = result.states[0]
    assert state.request.prompt.startswith("Pick one.\\n\\nQuestion: Q0\\nA. w\\nB. x")
    assert result.main_stat.count == 8
    right = sum(s.output_mapping[s.result.completions[0].text.strip()] == s.instance.first_correct_reference.output
                for s in result.states)
    assert 0 < right < 8 and result.main_stat.mean == right / 8
'''


@pytest.mark.parametrize("xdist", XDIST)
def test_python_scenarios_from_conftest_and_inline(project: pytest.Pytester, xdist: list[str]) -> None:
    project.makeconftest(PY_CONFTEST)
    project.makepyfile(test_inline=PY_TEST)
    (project.path / "eval_words.yaml").write_text("entries: [e2e_words, 'e2e_words:count=5']\n")
    result = project.runpytest("--llmeval-models", "scripted/lastword", *xdist)
    result.assert_outcomes(passed=3)
    found = runs(project.path)
    assert stored(found["e2e_words"], "exact_match") == pytest.approx({"test": 2 / 3})  # alpha, gamma
    assert stored(found["e2e_words:count=5"], "exact_match") == pytest.approx({"test": 3 / 5})
    scenario = json.loads((found["e2e_words"] / "scenario.json").read_text())
    assert scenario["description"] == "Repeat the last word." and scenario["definition_path"] == "conftest:e2e_words"


@pytest.mark.parametrize("xdist", XDIST)
def test_python_scenario_mistakes_are_located(project: pytest.Pytester, xdist: list[str]) -> None:
    project.makeconftest(PY_CONFTEST.replace('"references": ["zeta"]', '"refs": ["zeta"]'))
    (project.path / "eval_words.yaml").write_text("entries: ['e2e_words:count=2', 'e2e_words:colour=red']\n")
    result = project.runpytest("--llmeval-models", "scripted/lastword", *xdist)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*conftest.py, entry scenario 'e2e_words' (conftest:e2e_words), field refs: "
                                 "instance #0: unknown key 'refs'*"])
    result.stdout.fnmatch_lines(["*field colour: unknown argument 'colour' in e2e_words:colour=red; its own "
                                 "arguments are count*"])


# --- the real bundled model -----------------------------------------------------------------------


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def readme_files(section: str) -> dict[str, str]:
    """Every code block introduced by a line ending in ``name``: is a file of the example."""
    return dict(re.findall(r"`([\w./-]+)`:\n\n```[\w-]*\n(.*?)```", section, flags=re.DOTALL))


def readme_command(section: str) -> list[str]:
    [command] = re.findall(r"```bash\n(pytest[^\n]*)\n```", section)
    return command.split()[1:]


@pytest.mark.slow
def test_readme_yaml_example_works_as_written(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    section = readme_section("Your own data, no code")
    files = readme_files(section)
    assert set(files) == {"quiz.csv", "capitals.jsonl", "eval_quiz.yaml"}
    for name, text in files.items():
        (pytester.path / name).write_text(text)
    # In a subprocess, as a user would run it (and torch's lazily imported modules stay put).
    result = pytester.runpytest_subprocess(*readme_command(section), "--llmeval-disable-cache")
    [expected] = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)
    outcome = re.search(r"(\d+) passed", expected)
    assert outcome is not None
    result.assert_outcomes(passed=int(outcome.group(1)))
    rows = [line.split()[:4] for line in expected.splitlines() if line.startswith("local/")]
    assert len(rows) == 3
    for model, run, metric, value in rows:
        pattern = rf"^{re.escape(model)}\s+{re.escape(run)}\s+{re.escape(metric)}\s+{re.escape(value)}\b"
        assert re.search(pattern, result.stdout.str(), flags=re.MULTILINE), (pattern, result.stdout.str())


@pytest.mark.slow
def test_readme_python_example_works_as_written(pytester: pytest.Pytester) -> None:
    section = readme_section("Your own scenario in Python")
    files = readme_files(section)
    assert set(files) == {"conftest.py", "eval_plurals.yaml", "test_plurals.py"}
    for name, text in files.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess(*readme_command(section), "--llmeval-disable-cache", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_plurals.yaml::plurals:count=3?local/smollm2-135m-instruct? PASSED*",
                                 "*test_plurals.py::test_plurals_zero_shot?local/smollm2-135m-instruct? PASSED*"])
    found = runs(pytester.path)
    assert set(found) == {"plurals:count=3", "plurals:count=3,max_train_instances=0"}
    for run in found.values():
        assert stored(run, "exact_match") == pytest.approx(recomputed(run, "exact_match"))
        assert len(json.loads((run / "per_instance_stats.json").read_text())) == 3


@pytest.mark.slow
@pytest.mark.usefixtures("aws_env")
def test_s3_scenario_on_the_bundled_model(pytester: pytest.Pytester, moto_s3: MotoS3,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    moto_s3.upload("llmeval-real", "say.jsonl", SAY_JSONL.encode())
    (pytester.path / "eval_say.yaml").write_text(textwrap.dedent(f"""
        scenarios:
          say_real:
            data:
              uri: s3://llmeval-real/say.jsonl
              sha256: {hashlib.sha256(SAY_JSONL.encode()).hexdigest()}
              storage_options: {{endpoint_url: "{moto_s3.endpoint_url}"}}
            input: prompt
            references: answers
            split_column: split
            instructions: "Repeat the last word."
        entries: [say_real]
    """))
    result = pytester.runpytest_subprocess("--llmeval-disable-cache")
    result.assert_outcomes(passed=1)
    run = runs(pytester.path)["say_real"]
    state = json.loads((run / "scenario_state.json").read_text())
    assert len(state["request_states"]) == 3
    assert all(rs["result"]["completions"][0]["text"] is not None for rs in state["request_states"])
    assert stored(run, "exact_match") == pytest.approx(recomputed(run, "exact_match"))
