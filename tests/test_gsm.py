"""GSM8K: HELM's chain-of-thought targets from the real test file, where examples come from,
bad rows, the run spec and the prompt."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.metrics.generation import final_number
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import gsm
from pytest_llmeval.scenarios.data import DATA_DIR_ENV, DataLocator, DataSource
from pytest_llmeval.scenarios.examples import HELDOUT_EXAMPLES
from pytest_llmeval.scenarios.gsm import GSM8KScenario, chain_of_thought_target, final_answer

DATA_DIR = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
TEST_FILE = DATA_DIR / "gsm8k" / "test.jsonl"
needs_data = pytest.mark.skipif(not TEST_FILE.is_file(), reason=f"no GSM8K mirror at {DATA_DIR}")

NATALIA = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
              "altogether in April and May.\n#### 72",
}


def mirror_with(tmp_path: Path, **files: list[dict[str, object]] | str) -> DataLocator:
    """A mirror holding ``gsm8k/<name>.jsonl`` for each keyword (rows, or raw text)."""
    folder = tmp_path / "mirror" / "gsm8k"
    folder.mkdir(parents=True)
    for name, rows in files.items():
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")


def test_helm_target_keeps_the_reasoning_on_one_line() -> None:
    # HELM's own test of its GSM scenario expects exactly this text for the first train row.
    assert chain_of_thought_target(NATALIA["answer"]) == (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May. Natalia sold 48+24 = <<48+24=72>>72 clips altogether "
        "in April and May. The answer is 72.")
    assert final_answer(NATALIA["answer"]) == "72"


@needs_data
def test_heldout_layout_on_the_real_test_file() -> None:
    instances = GSM8KScenario(DataLocator(mirror=DATA_DIR, cache=None), examples_from="heldout").get_instances()
    assert len(instances) == 1319
    assert [i.split for i in instances] == ["train"] * HELDOUT_EXAMPLES + ["test"] * (1319 - HELDOUT_EXAMPLES)
    assert [i.id for i in instances] == [f"id{n}" for n in range(1319)]
    first = instances[0]
    assert first.input.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert [r.output for r in first.references] == [
        "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day. She makes 9 * 2 = $<<9*2=18>>18 every day at "
        "the farmer\u2019s market. The answer is 18."]


@needs_data
def test_every_reference_ends_with_the_answer_after_the_hashes() -> None:
    rows = [json.loads(line) for line in TEST_FILE.read_text(encoding="utf-8").splitlines()]
    instances = GSM8KScenario(DataLocator(mirror=DATA_DIR, cache=None), examples_from="heldout").get_instances()
    assert len(rows) == len(instances)
    for row, instance in zip(rows, instances):
        [reference] = instance.references
        assert reference.is_correct and "\n" not in reference.output
        assert reference.output.endswith(f"The answer is {final_answer(row['answer'])}.")
        assert final_number(reference.output) == final_number(row["answer"].split("####")[-1])


def test_train_file_rows_are_the_examples(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, train=[NATALIA, NATALIA], test=[NATALIA])
    instances = GSM8KScenario(locator).get_instances()
    assert [(i.split, i.id) for i in instances] == [("train", "id0"), ("train", "id1"), ("test", "id2")]


def test_missing_train_file_says_how_to_run_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    locator = mirror_with(tmp_path, test=[NATALIA])
    with pytest.raises(DataNotFoundError) as excinfo:
        GSM8KScenario(locator).get_instances()
    message = str(excinfo.value)
    assert "gsm8k/train.jsonl" in message and str(tmp_path / "mirror" / "gsm8k" / "train.jsonl") in message
    assert "gsm:examples_from=heldout" in message
    assert len(GSM8KScenario(locator, examples_from="heldout").get_instances()) == 1


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder, and a log of the paths it served."""
    folder = tmp_path / "served"
    folder.mkdir()
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            served.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
    assert served, "the scenario never downloaded from the server"


def test_train_file_is_downloaded_once_into_the_cache(tmp_path: Path, http_folder: tuple[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    base, folder = http_folder
    (folder / "train.jsonl").write_text(json.dumps(NATALIA) + "\n", encoding="utf-8")
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    monkeypatch.setitem(gsm.FILES, "train", DataSource(uri=f"{base}/train.jsonl", mirror_path="gsm8k/train.jsonl"))
    locator = mirror_with(tmp_path, test=[NATALIA, NATALIA])
    assert [i.split for i in GSM8KScenario(locator).get_instances()] == ["train", "test", "test"]
    (folder / "train.jsonl").unlink()  # a second read comes from the data cache
    assert [i.split for i in GSM8KScenario(locator).get_instances()] == ["train", "test", "test"]


@pytest.mark.parametrize(("text", "line", "field", "says"), [
    ('{"question": "q", "answer": "no hashes here"}\n', "line 1", "answer", "#### <number>"),
    ('{"question": "q", "answer": "x\\n#### lots"}\n', "line 1", "answer", "#### <number>"),
    (json.dumps(NATALIA) + '\n{"answer": "#### 3"}\n', "line 2", "question", "'question' is missing"),
    (json.dumps(NATALIA) + '\n\n{"question": 7, "answer": "#### 3"}\n', "line 3", "question", "non-empty text"),
])
def test_bad_rows_name_file_line_and_field(tmp_path: Path, text: str, line: str, field: str, says: str) -> None:
    locator = mirror_with(tmp_path, test=text)
    with pytest.raises(ConfigError) as excinfo:
        GSM8KScenario(locator, examples_from="heldout").get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("gsm8k/test.jsonl")
    assert (error.entry, error.field) == (line, field)
    assert says in error.message


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, test=json.dumps(NATALIA) + "\n{not json\n")
    with pytest.raises(ConfigError, match=r"gsm8k/test.jsonl, entry line 2: not valid JSON"):
        GSM8KScenario(locator, examples_from="heldout").get_instances()


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("gsm"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.method, adapter.input_prefix, adapter.input_suffix, adapter.output_prefix,
            adapter.output_suffix, adapter.instance_prefix) == ("generation", "Q: ", "\n", "A: ", "\n", "\n")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences, adapter.temperature,
            adapter.num_outputs, adapter.instructions) == (5, 400, ("\n\n",), 0.0, 1, "")
    assert spec.metrics == ["exact_match_indicator", "final_number_exact_match"]
    assert spec.main_metric == "final_number_exact_match"
    assert spec.scenario_args == {"examples_from": "train"}
    assert spec.name == "gsm:model=org_m"
    data = spec.to_json()
    assert data["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.gsm_scenario.GSM8KScenario", "args": {}}
    assert [m["class_name"].rpartition(".")[2] for m in data["metric_specs"]] == [
        "BasicGenerationMetric", "InstancesPerSplitMetric"]
    heldout = build_run_spec(Description.parse("gsm:examples_from=heldout,max_tokens=30"), "local/m", "org/m")
    assert heldout.name == "gsm:examples_from=heldout,max_tokens=30,model=org_m"
    assert heldout.scenario_args == {"examples_from": "heldout"} and heldout.adapter_spec.max_tokens == 30
    # Held-out examples are not HELM's scenario: run_spec.json names ours, with its argument.
    assert heldout.to_json()["scenario_spec"] == {"class_name": "pytest_llmeval.scenarios.gsm.GSM8KScenario",
                                                  "args": {"examples_from": "heldout"}}


@pytest.mark.parametrize(("text", "field"), [("gsm:examples_from=dev", "examples_from"), ("gsm:subject=x", "subject")])
def test_bad_arguments_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(text), "local/m", "org/m")
    assert excinfo.value.field == field


def test_prompt_is_helms_q_and_a_format(tmp_path: Path) -> None:
    question = {"question": "Tom has 3 apples and buys 4. How many now?", "answer": "3+4=<<3+4=7>>7\n#### 7"}
    locator = mirror_with(tmp_path, train=[NATALIA], test=[question])
    spec = build_run_spec(Description.parse("gsm"), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, GSM8KScenario(locator).get_instances())
    assert state.request.prompt == (
        f"Q: {NATALIA['question']}\n"
        "A: Natalia sold 48/2 = <<48/2=24>>24 clips in May. Natalia sold 48+24 = <<48+24=72>>72 clips altogether "
        "in April and May. The answer is 72.\n"
        "\n"
        "Q: Tom has 3 apples and buys 4. How many now?\n"
        "A:")
    assert (state.request.max_tokens, state.request.stop_sequences) == (400, ("\n\n",))
