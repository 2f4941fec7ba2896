"""LegalBench (Guha et al. 2023): HELM Lite's five legal-reasoning subsets, read as HELM's
``LegalBenchScenario`` reads them.

Two sources, as helm-run uses them:

- LegalBench's ``helm_prompt_settings.jsonl`` (five JSON lines: each subset's fields as
  ``[label, column]`` pairs, its instructions, its label column, its output noun, and a count
  HELM does not use). The instructions and the output noun shape the *adapter*; since reading
  them means reading (or downloading) data, the run-spec function leaves placeholders that
  :meth:`RunSpec.with_late_texts` fills when the run starts, so collecting an eval file never
  touches the network.
- The Hugging Face data set ``nguha/legalbench`` at HELM's pinned revision, whose loading script
  reads ``data/<subset>/{train,test}.tsv`` from the repository's ``data.tar.gz`` and yields every
  column as text. The TSVs are read here with Python's ``csv`` (tab-separated, ``"`` quoting).

An instance's input is one ``label: value`` line per field; its one reference is the label
column's value. HELM seeds Python's ``random`` with 42 before reading and draws nothing from
it (its adapter reseeds before sampling examples), so the order is the files' order.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import dataclass

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
    TEST_SPLIT,
    TRAIN_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

# HELM's list: its scenario asserts the subset is one of these.
SUBSETS = ("abercrombie", "corporate_lobbying", "international_citizenship_questions", "function_of_decision_section",
           "proa")
PROMPT_SETTINGS = DataSource(
    uri="https://raw.githubusercontent.com/HazyResearch/legalbench/main/helm_prompt_settings.jsonl",
    mirror_path="legalbench/helm_prompt_settings.jsonl")
REVISION = "e042ea68c19df12b737fe768572f22ead61e8e37"
DATA_URL = f"https://huggingface.co/datasets/nguha/legalbench/resolve/{REVISION}/data.tar.gz"
# Placeholders in the adapter spec until the run reads the prompt settings.
INSTRUCTIONS_PLACEHOLDER = "<legalbench instructions>"
OUTPUT_NOUN_PLACEHOLDER = "<legalbench output noun>"


@dataclass(frozen=True)
class PromptSettings:
    """One subset's line of each of the prompt settings file's first four lines."""

    fields: tuple[tuple[str, str], ...]
    instructions: str
    label_key: str
    output_noun: str


def parse_prompt_settings(content: bytes, origin: str, subset: str) -> PromptSettings:
    """HELM's ``get_legalbench_prompt_settings``: the file's five JSON lines, ``subset``'s entries."""
    try:
        lines = content.decode("utf-8").strip().split("\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=origin) from None
    if len(lines) != 5:
        raise ConfigError(f"expected 5 JSON lines (fields, instructions, label keys, output nouns, train counts), "
                          f"got {len(lines)}", file=origin)
    tables = []
    for number, (line, what) in enumerate(zip(lines, ("fields", "instructions", "label keys", "output nouns")), 1):
        try:
            table = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc.msg})", file=origin, entry=f"line {number}") from None
        if not isinstance(table, dict) or subset not in table:
            raise ConfigError(f"the {what} line has no entry for subset {subset!r}", file=origin,
                              entry=f"line {number}", field=subset)
        tables.append(table[subset])
    fields, instructions, label_key, output_noun = tables
    if not isinstance(fields, list) or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f) for f in fields):
        raise ConfigError("a subset's fields should be [label, column] pairs of text", file=origin, entry="line 1",
                          field=subset)
    for number, value in ((2, instructions), (3, label_key), (4, output_noun)):
        if not isinstance(value, str):
            raise ConfigError(f"should be text, got {value!r:.60}", file=origin, entry=f"line {number}", field=subset)
    return PromptSettings(tuple((label, column) for label, column in fields), instructions, label_key, output_noun)


def read_prompt_settings(locator: DataLocator, subset: str) -> PromptSettings:
    data = locator.fetch(PROMPT_SETTINGS, LegalBenchScenario.name)
    return parse_prompt_settings(data.content, data.origin, subset)


def read_tsv(content: bytes, origin: str) -> list[tuple[int, dict[str, str]]]:
    """``(row number, {column: text})`` of a tab-separated file with a header row; blank lines
    are skipped and quoted fields unquoted, as the loading script's reader does."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=origin) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = next(reader, None)
    if not header:
        raise ConfigError("no header row", file=origin)
    rows = []
    for number, values in enumerate(reader, 1):
        if not values:
            continue
        if len(values) != len(header):
            raise ConfigError(f"expected {len(header)} tab-separated columns ({', '.join(header)}), got {len(values)}",
                              file=origin, entry=f"row {number}")
        rows.append((number, dict(zip(header, values))))
    return rows


def subset_source(subset: str, split: str) -> DataSource:
    """One split's TSV inside ``data.tar.gz``; the mirror holds it at ``legalbench/data/...``."""
    member = f"data/{subset}/{split}.tsv"
    return DataSource(uri=DATA_URL, member=member, mirror_path=f"legalbench/{member}")


def check_subset(subset: str | None, where: object) -> str:
    if subset not in SUBSETS:
        raise ConfigError(f"subset={subset!r} in {where}: HELM's LegalBench subsets are {', '.join(SUBSETS)}",
                          field="subset")
    return subset


@dataclass
class LegalBenchScenario(Scenario):
    """One subset: its train file gives the in-context examples, its test file is evaluated."""

    subset: str
    locator: DataLocator

    name = "legalbench"
    description = "LegalBench"
    tags = ("text_classification", "robustness")

    def __post_init__(self) -> None:
        check_subset(self.subset, "legalbench")

    def get_instances(self) -> list[Instance]:
        settings = read_prompt_settings(self.locator, self.subset)
        instances = []
        for split, file in ((TRAIN_SPLIT, "train"), (TEST_SPLIT, "test")):
            data = self.locator.fetch(subset_source(self.subset, file), self.name)
            for number, row in read_tsv(data.content, data.origin):
                instances.append(self._instance(row, settings, split, data.origin, number))
        return with_ids(instances)

    @staticmethod
    def _instance(row: dict[str, str], settings: PromptSettings, split: str, origin: str, number: int) -> Instance:
        for column in (*(c for _, c in settings.fields), settings.label_key):
            if column not in row:
                raise ConfigError(f"no column {column!r} (the prompt settings name it; the file has "
                                  f"{', '.join(row)})", file=origin, entry=f"row {number}", field=column)
        prompt = "\n".join(f"{label}: {row[column]}" for label, column in settings.fields)
        return Instance(input=prompt, references=(Reference(row[settings.label_key], (CORRECT_TAG,)),), split=split)


def prompt_texts(subset: str, locator: DataLocator) -> dict[str, str]:
    """The adapter's late texts: the subset's instructions and output noun."""
    settings = read_prompt_settings(locator, subset)
    return {INSTRUCTIONS_PLACEHOLDER: settings.instructions, OUTPUT_NOUN_PLACEHOLDER: settings.output_noun}


METRICS = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]


@run_spec_function("legalbench")
def legalbench_spec(description: Description) -> RunSpec:
    """HELM's ``get_legalbench_spec``: the subset's instructions, no input noun, its output noun,
    5 examples, up to 30 tokens on one line."""
    args = reject_unknown_arguments(description, ("subset",))
    subset = check_subset(args.get("subset"), description)
    adapter = generation_adapter(instructions=INSTRUCTIONS_PLACEHOLDER, input_noun=None,
                                 output_noun=OUTPUT_NOUN_PLACEHOLDER, max_tokens=30, max_train_instances=5)
    return RunSpec(
        name=f"legalbench:subset={subset}", scenario_class=LegalBenchScenario, scenario_args={"subset": subset},
        adapter_spec=adapter, metrics=list(METRICS), groups=["legalbench"], main_metric="quasi_exact_match",
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.legalbench_scenario.LegalBenchScenario",
                            "args": {"subset": subset}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
        late_texts=functools.partial(prompt_texts, subset),
    )
