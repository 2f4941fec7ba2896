"""Natural Questions (Kwiatkowski et al. 2019): Google search questions answered from Wikipedia.

As HELM does, only the five dev shards are read (the train set is far too large): the
examples with at least one short answer, alternating between HELM's *train* and *valid*
splits within each shard. Three modes say what the model sees with the question: nothing
(``closedbook``), the annotated long answer (``openbook_longans``, HELM Lite's open-book
entry), or the whole page (``openbook_wiki``). A training example carries one short answer
drawn at random; an evaluated one every distinct short answer. The draws come from one
``random.Random(0)`` in HELM's order, so the same answer and passage are picked.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    reject_unknown_arguments,
    run_spec_function,
)
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.generation_adapter import generation_adapter
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

MODES = ("closedbook", "openbook_longans", "openbook_wiki")
BASE_URL = "https://storage.googleapis.com/natural_questions/v1.0/dev"
SHARDS = tuple(f"nq-dev-{i:02d}.jsonl.gz" for i in range(5))
# The mirror holds them as natural_qa/nq-dev-0N.jsonl.gz; elsewhere they are downloaded once.
FILES = tuple(DataSource(uri=f"{BASE_URL}/{name}", mirror_path=f"natural_qa/{name}") for name in SHARDS)
SEED = 0  # HELM's random.seed(0) before the shards are read
_TAG = re.compile("<([^>]*)>")


def clean_token(token: str) -> str:
    """HELM's page token: blanks as underscores, entities decoded, HTML tags dropped."""
    return _TAG.sub("", html.unescape(token.replace(" ", "_")))


def clean_text(raw: bytes) -> str:
    """HELM's text of a span of the page's HTML: no-break spaces as spaces, entities decoded,
    tags dropped (nothing stripped: a paragraph keeps the blanks beside its paragraph tags)."""
    return _TAG.sub("", html.unescape(raw.replace(b"\xc2\xa0", b" ").decode("utf-8")))


@dataclass(frozen=True)
class RawExample:
    """What HELM keeps of an example: a long answer beside each short answer, in order."""

    title: str
    document: str
    question: str
    long_answers: tuple[str, ...]
    short_answers: tuple[str, ...]


def _field(row: dict[str, Any], key: str, kind: type, origin: str, entry: str, within: str = "") -> Any:
    """``row[key]`` of type ``kind``; ``within`` is the path to ``row`` for the message."""
    value = row.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        got = "nothing" if key not in row else f"{value!r:.60}"
        raise ConfigError(f"{key!r} should be {kind.__name__}, got {got}", file=origin, entry=entry,
                          field=f"{within}.{key}" if within else key)
    return value


def _span(page: bytes, span: Any, where: str, origin: str, entry: str) -> str:
    if not isinstance(span, dict):
        raise ConfigError(f"should be an object with start_byte and end_byte, got {span!r:.60}", file=origin,
                          entry=entry, field=where)
    start = _field(span, "start_byte", int, origin, entry, where)
    end = _field(span, "end_byte", int, origin, entry, where)
    try:
        return clean_text(page[start:end])
    except UnicodeDecodeError:
        raise ConfigError(f"bytes {start}..{end} do not cut the page at UTF-8 characters", file=origin,
                          entry=entry, field=where) from None


def raw_example(row: dict[str, Any], origin: str, entry: str) -> RawExample | None:
    """HELM's raw instance of one NQ example; None when no annotator gave a short answer."""
    annotations = _field(row, "annotations", list, origin, entry)
    if not any(isinstance(a, dict) and a.get("short_answers") for a in annotations):
        return None
    page = _field(row, "document_html", str, origin, entry).encode("utf-8")
    tokens = _field(row, "document_tokens", list, origin, entry)
    long_answers: list[str] = []
    short_answers: list[str] = []
    for n, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise ConfigError(f"should be an object, got {annotation!r:.60}", file=origin, entry=entry,
                              field=f"annotations[{n}]")
        long_answer = _span(page, annotation.get("long_answer"), f"annotations[{n}].long_answer", origin, entry)
        for m, short in enumerate(_field(annotation, "short_answers", list, origin, entry, f"annotations[{n}]")):
            short_answers.append(_span(page, short, f"annotations[{n}].short_answers[{m}]", origin, entry))
            long_answers.append(long_answer)
    words = []
    for token in tokens:
        if not isinstance(token, dict) or not isinstance(token.get("token"), str):
            raise ConfigError(f"a token should be an object with a 'token' text, got {token!r:.60}", file=origin,
                              entry=entry, field="document_tokens")
        words.append(clean_token(token["token"]))
    return RawExample(title=_field(row, "document_title", str, origin, entry), document=" ".join(words),
                      question=_field(row, "question_text", str, origin, entry),
                      long_answers=tuple(long_answers), short_answers=tuple(short_answers))


def read_shard(content: bytes, origin: str) -> Iterator[RawExample]:
    """The raw examples of one gzipped JSON-lines shard, line by line (a shard is ~1 GB unpacked)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"not valid JSON ({exc})", file=origin, entry=f"line {number}") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"expected a JSON object, got {type(row).__name__}", file=origin,
                                      entry=f"line {number}")
                example = raw_example(row, origin, f"line {number}")
                if example is not None:
                    yield example
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"not a readable gzip file ({exc})", file=origin) from None


@dataclass
class NaturalQAScenario(Scenario):
    """The dev examples with a short answer: even ones of each shard train, odd ones valid."""

    mode: str
    locator: DataLocator

    name = "natural_qa"
    description = "Question answering from Wikipedia (Natural Questions)"
    tags = ("question_answering",)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown natural_qa mode {self.mode!r}; use one of: {', '.join(MODES)}", field="mode")

    def get_instances(self) -> list[Instance]:
        rng = random.Random(SEED)
        instances: list[Instance] = []
        for source in FILES:
            data = self.locator.fetch(source, self.name)
            for index, example in enumerate(read_shard(data.content, data.origin)):
                instances.append(self._instance(example, TRAIN_SPLIT if index % 2 == 0 else VALID_SPLIT, rng))
        return with_ids(instances)

    def _instance(self, example: RawExample, split: str, rng: random.Random) -> Instance:
        # str.capitalize also lower-cases the rest, as HELM's prompt has it.
        question = example.question.capitalize()
        if not question.endswith("?"):
            question += "?"
        pick = rng.randint(0, len(example.short_answers) - 1)  # drawn in every mode, as HELM does
        if self.mode == "closedbook":
            text = question
        elif self.mode == "openbook_wiki":
            text = f"Title: {example.title}\n\nPassage: {example.document}\n\nQuestion: {question}"
        else:
            text = f"Passage: {example.long_answers[pick]}\n\nQuestion: {question}"
        if split == TRAIN_SPLIT:
            answers: list[str] = [example.short_answers[pick]]
        else:
            answers = list(dict.fromkeys(example.short_answers))
        return Instance(input=text, references=tuple(Reference(a, (CORRECT_TAG,)) for a in answers), split=split)


METRICS = ["exact_match", "quasi_exact_match", "f1_score"]


@run_spec_function("natural_qa")
def natural_qa_spec(description: Description) -> RunSpec:
    """HELM's ``natural_qa:mode=...``: 5 examples, up to 300 tokens on one line after ``Answer:``."""
    args = reject_unknown_arguments(description, ("mode",))
    mode = args.get("mode")
    if mode not in MODES:
        given = f"mode={mode!r}" if mode is not None else "no mode"
        raise ConfigError(f"{given} in {description}: use mode= one of {', '.join(MODES)}", field="mode")
    adapter = generation_adapter(input_noun="Question" if mode == "closedbook" else None, output_noun="Answer",
                                 max_train_instances=5, max_tokens=300, stop_sequences=("\n",))
    return RunSpec(
        name=f"natural_qa:mode={mode}", scenario_class=NaturalQAScenario, scenario_args={"mode": mode},
        adapter_spec=adapter, metrics=list(METRICS), groups=[f"natural_qa_{mode}"], main_metric="f1_score",
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.natural_qa_scenario.NaturalQAScenario",
                            "args": {"mode": mode}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
    )
