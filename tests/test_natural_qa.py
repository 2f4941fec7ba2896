"""Natural Questions: HELM's reading of the raw dev shards (HTML cleaning, short answers, the
alternating splits, the seeded draw), its three modes, bad shards, missing data and the run spec."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.natural_qa import SHARDS, NaturalQAScenario, clean_text, clean_token, raw_example

SOURCES = Path(__file__).parent / "data" / "helm_sources"
SHARD_FOLDER = SOURCES / "natural_qa"


def shard_rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress((SHARD_FOLDER / name).read_bytes()).splitlines()]


def with_short_answers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if any(a["short_answers"] for a in r["annotations"])]


def scenario(mode: str, mirror: Path = SOURCES, cache: Path | None = None) -> NaturalQAScenario:
    return NaturalQAScenario(mode=mode, locator=DataLocator(mirror=mirror, cache=cache))


def page(question: str = "who wrote it", answers: tuple[str, ...] = ("Ann",)) -> dict[str, Any]:
    """A one-paragraph NQ example whose annotations point at ``answers`` inside it."""
    html = "<P> It was written by " + " and ".join(answers) + " . </P>"
    data = html.encode()
    shorts = [{"start_byte": data.index(a.encode()), "end_byte": data.index(a.encode()) + len(a.encode())}
              for a in answers]
    long_answer = {"start_byte": 0, "end_byte": len(data)}
    return {"document_html": html, "document_title": "T", "question_text": question,
            "document_tokens": [{"token": t} for t in html.split()],
            "annotations": [{"long_answer": long_answer, "short_answers": shorts}]}


def write_shards(folder: Path, *shards: list[dict[str, Any]] | bytes) -> Path:
    (folder / "natural_qa").mkdir(parents=True)
    for name, rows in zip(SHARDS, list(shards) + [[]] * (len(SHARDS) - len(shards))):
        content = rows if isinstance(rows, bytes) else gzip.compress(
            "".join(json.dumps(r) + "\n" for r in rows).encode())
        (folder / "natural_qa" / name).write_bytes(content)
    return folder


def test_html_is_cleaned_as_helm_cleans_it() -> None:
    assert clean_text(b"<P> Marks &amp; <a href='x'>Spencer</a> </P>") == " Marks & Spencer "
    assert clean_text("5,895\u00a0m".encode()) == "5,895 m"  # a literal no-break space becomes a blank
    assert clean_text(b"6&nbsp;to") == "6\u00a0to"  # an entity's does not
    assert clean_token("<Td>") == "" and clean_token("a b&amp;c") == "a_b&c"


def test_the_shards_give_helms_instances() -> None:
    """Only examples with a short answer; even ones of each shard train, odd ones valid."""
    instances = scenario("openbook_longans").get_instances()
    expected_splits: list[str] = []
    for name in SHARDS:
        kept = with_short_answers(shard_rows(name))
        expected_splits += ["train" if n % 2 == 0 else "valid" for n in range(len(kept))]
    assert [i.split for i in instances] == expected_splits
    assert [i.id for i in instances] == [f"id{n}" for n in range(len(instances))]
    assert len([i for i in instances if i.split == "train"]) >= 5 and len(instances) > 10
    for instance in instances:
        assert instance.input.startswith("Passage: ") and "\n\nQuestion: " in instance.input
        assert instance.input.endswith("?") and "<" not in instance.input
        if instance.split == "train":
            assert len(instance.references) == 1
        assert all(r.is_correct for r in instance.references)
    olympics = next(i for i in instances if "Olympic" in i.input)
    # Every distinct short answer of every annotator, in order, duplicates dropped.
    assert [r.output for r in olympics.references] == ["6\u00a0to 15 April 1896", "1896", "15 April 1896"]
    assert "Marks & Spencer  is a retailer" in instances[1].input


def test_the_draw_is_one_seeded_stream_over_every_example() -> None:
    rng = random.Random(0)
    expected = []
    for name in SHARDS:
        for row in with_short_answers(shard_rows(name)):
            example = raw_example(row, name, "line")
            assert example is not None
            expected.append(example.long_answers[rng.randint(0, len(example.short_answers) - 1)])
    instances = scenario("openbook_longans").get_instances()
    assert [i.input.partition("Passage: ")[2].rpartition("\n\nQuestion: ")[0] for i in instances] == expected


def test_modes_show_the_question_alone_or_with_the_page() -> None:
    closed = scenario("closedbook").get_instances()
    wiki = scenario("openbook_wiki").get_instances()
    assert closed[0].input == "How deep is lake baikal?"
    # Every page token, its tags as empty words: blanks pile up where HTML was.
    assert wiki[0].input.startswith("Title: Lake Baikal\n\nPassage:    Lake Baikal - Wikipedia     Lake Baikal ")
    assert wiki[0].input.endswith("\n\nQuestion: How deep is lake baikal?")
    assert [i.references for i in closed] == [i.references for i in wiki]


@pytest.mark.parametrize(("row", "field", "says"), [
    ({**page(), "document_html": None}, "document_html", "should be str"),
    ({k: v for k, v in page().items() if k != "question_text"}, "question_text", "got nothing"),
    ({**page(), "annotations": [{"long_answer": {"start_byte": 0, "end_byte": 3},
                                 "short_answers": [{"start_byte": 1}]}]},
     "annotations[0].short_answers[0].end_byte", "'end_byte' should be int"),
])
def test_bad_examples_name_file_line_and_field(tmp_path: Path, row: dict[str, Any], field: str, says: str) -> None:
    mirror = write_shards(tmp_path / "mirror", [page(), row])
    with pytest.raises(ConfigError) as excinfo:
        scenario("closedbook", mirror).get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("natural_qa/nq-dev-00.jsonl.gz")
    assert error.entry == "line 2" and says in error.message
    assert error.field == field
    assert "\n" not in str(error)


def test_a_shard_that_is_not_gzip_is_one_line(tmp_path: Path) -> None:
    mirror = write_shards(tmp_path / "mirror", [page()], b"not gzip at all")
    with pytest.raises(ConfigError, match="not a readable gzip file") as excinfo:
        scenario("closedbook", mirror).get_instances()
    assert str(excinfo.value.file).endswith("nq-dev-01.jsonl.gz") and "\n" not in str(excinfo.value)


def test_missing_shards_offline_say_where_they_were_expected(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    (tmp_path / "mirror").mkdir()
    with pytest.raises(DataNotFoundError) as excinfo:
        scenario("closedbook", tmp_path / "mirror", tmp_path / "cache").get_instances()
    message = str(excinfo.value)
    assert str(tmp_path / "mirror" / "natural_qa" / "nq-dev-00.jsonl.gz") in message
    assert "LLMEVAL_OFFLINE" in message and "\n" not in message


def test_run_spec_is_helms() -> None:
    closed = build_run_spec(Description.parse("natural_qa:mode=closedbook"), "local/m", "org/m")
    open_book = build_run_spec(Description.parse("natural_qa:mode=openbook_longans"), "local/m", "org/m")
    assert (closed.adapter_spec.input_prefix, open_book.adapter_spec.input_prefix) == ("Question: ", "")
    adapter = open_book.adapter_spec
    assert (adapter.output_prefix, adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences) == (
        "Answer: ", 5, 300, ("\n",))
    assert open_book.metrics == ["exact_match", "quasi_exact_match", "f1_score"]
    assert open_book.groups == ["natural_qa_openbook_longans"] and open_book.main_metric == "f1_score"
    assert open_book.name == "natural_qa:mode=openbook_longans,model=org_m"
    assert open_book.to_json()["scenario_spec"] == {
        "class_name": "helm.benchmark.scenarios.natural_qa_scenario.NaturalQAScenario",
        "args": {"mode": "openbook_longans"}}


@pytest.mark.parametrize("entry", ["natural_qa", "natural_qa:mode=openbook", "natural_qa:mode=closedbook,x=1"])
def test_a_missing_or_unknown_mode_is_refused(entry: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(entry), "local/m", "org/m")
    assert excinfo.value.field in ("mode", "x")


def test_prompt_is_helms_passage_format(tmp_path: Path) -> None:
    mirror = write_shards(tmp_path / "mirror", [page("who wrote it", ("Ann",)), page("WHO drew it?", ("Bo", "Cy"))])
    spec = build_run_spec(Description.parse("natural_qa:mode=openbook_longans"), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, scenario("openbook_longans", mirror).get_instances())
    assert state.request.prompt == (
        "Passage:  It was written by Ann . \n\nQuestion: Who wrote it?\nAnswer: Ann\n\n"
        "Passage:  It was written by Bo and Cy . \n\nQuestion: Who drew it?\nAnswer:")
    assert [r.output for r in state.instance.references] == ["Bo", "Cy"]


def test_f1_score_is_helms_to_the_last_bit() -> None:
    """HELM's f1_score is NLTK's f_measure over the normalised word sets; 2pr/(p+r) differs in
    the last bit for about a fifth of pairs, so the same formula is used."""
    from nltk.metrics.scores import f_measure

    from pytest_llmeval.metrics.basic import normalize_text
    from pytest_llmeval.metrics.generation import f1_score

    words = ["a", "the", "Burj", "Khalifa", "1896", "April", "15", "ten", "countries", "Sir", "Arthur", "Conan",
             "Doyle"]
    rng = random.Random(1)
    for _ in range(2000):
        gold, pred = (" ".join(rng.choice(words) for _ in range(rng.randint(0, 8))) for _ in range(2))
        helm = f_measure(set(normalize_text(gold).split()), set(normalize_text(pred).split()))
        assert f1_score(gold, pred) == (0.0 if helm is None else helm), (gold, pred)
