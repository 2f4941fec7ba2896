"""Scenarios declared in an eval file's ``scenarios:`` section: a CSV/JSONL file, no code.

```yaml
scenarios:
  my_quiz:
    data: quiz.csv                      # or {uri: https://..., sha256: ..., member: ..., ...}
    input: question
    choices: [a, b, c, d]               # multiple choice: option columns ...
    answer: answer                      # ... and the answer column (letter, 0-based index or text)
    split_column: split                 # optional: train / valid / test per row
entries:
  - my_quiz:max_train_instances=2
```

Columns are checked against the file's header when the data is read; every mistake names the
eval file, the scenario and the field.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, ADAPT_MULTIPLE_CHOICE_JOINT
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, RunSpec
from pytest_llmeval.scenarios.data import DataLocator, DataSource, FetchedData
from pytest_llmeval.scenarios.jsonl import parse_lines
from pytest_llmeval.scenarios.registration import (
    SETTING_FIELDS,
    ScenarioSettings,
    check_name,
    reject_arguments,
    run_spec_for,
)
from pytest_llmeval.scenarios.row_instances import ANSWER_FORMATS, RecordError, make_instance, split_of
from pytest_llmeval.scenarios.scenario import TEST_SPLIT, TRAIN_SPLIT, Instance, Scenario, with_ids
from pytest_llmeval.validation.eval_schemas import CUSTOM_SCENARIO
from pytest_llmeval.validation.validator import check

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Registries

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


@dataclass(frozen=True)
class TableData:
    """A data file and how to read it: ``csv``, ``tsv``, ``jsonl`` or ``json`` (a list of objects)."""

    source: DataSource
    format: str
    columns: tuple[str, ...] | None = None  # names for a CSV without a header row


@dataclass(frozen=True)
class TableScenarioDefinition:
    """A validated ``scenarios:`` entry."""

    name: str
    file: Path
    data: TableData
    train_data: TableData | None
    input: str
    choices: tuple[str, ...] | str | None
    answer: str | None
    answer_format: str
    references: tuple[str, ...]
    split_column: str | None
    settings: ScenarioSettings

    def error(self, message: str, field: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, entry=f"scenarios.{self.name}", field=field)

    def read_instances(self, locator: DataLocator) -> list[Instance]:
        instances: list[Instance] = []
        if self.train_data is not None:
            instances += self._read(locator, self.train_data, "train_data", TRAIN_SPLIT)
        instances += self._read(locator, self.data, "data", None)
        return with_ids(instances)

    def _read(self, locator: DataLocator, table: TableData, field: str, split: str | None) -> list[Instance]:
        try:
            fetched = locator.fetch(table.source, self.name)
        except ConfigError as exc:
            raise exc.located(file=self.file, entry=f"scenarios.{self.name}", field=field) from None
        except DataNotFoundError as exc:  # same message, located in the eval file as well
            raise type(exc)(f"file {self.file}, entry scenarios.{self.name}, field {field}: {exc}") from None
        columns, rows = read_table(fetched, table, lambda message: self.error(message, field))
        self._check_columns(columns, fetched.origin, field)
        instances = []
        for number, row in enumerate(rows, 1):
            bad = _control_character(row)
            if bad is not None:
                raise self.error(f"row {number} of {fetched.origin}, column {bad[0]!r}: control character "
                                 f"U+{ord(bad[1]):04X} in the cell (only tab and newline may appear)", field)
            try:
                instances.append(self._instance(row, split))
            except RecordError as exc:
                column = exc.column or self._column_of(exc.field)
                where = f", column {column!r}" if column else ""
                raise self.error(f"row {number} of {fetched.origin}{where}: {exc.message}", exc.field) from None
        if not instances:
            raise self.error(f"{fetched.origin} has no rows", field)
        return instances

    def _mapped(self) -> list[tuple[str, str]]:
        """(field, column) for every column this scenario reads."""
        pairs = [("input", self.input)]
        if isinstance(self.choices, str):
            pairs.append(("choices", self.choices))
        elif self.choices is not None:
            pairs += [(f"choices[{i}]", column) for i, column in enumerate(self.choices)]
        if self.answer is not None:
            pairs.append(("answer", self.answer))
        pairs += [(f"references[{i}]" if len(self.references) > 1 else "references", column)
                  for i, column in enumerate(self.references)]
        if self.split_column is not None:
            pairs.append(("split_column", self.split_column))
        return pairs

    def _check_columns(self, columns: list[str], origin: str, data_field: str) -> None:
        for field, column in self._mapped():
            if field == "split_column" and data_field == "train_data":
                continue  # every train_data row is a training example
            if column not in columns and not _has_path(columns, column):
                shown = ", ".join(columns) if columns else "none"
                raise self.error(f"column {column!r} is not in the header of {origin} (columns: {shown})", field)

    def _column_of(self, field: str) -> str | None:
        """The column behind a field, for messages (``None`` where it is a list of columns)."""
        columns = {"input": self.input, "answer": self.answer, "split_column": self.split_column,
                   "choices": self.choices if isinstance(self.choices, str) else None,
                   "references": self.references[0] if len(self.references) == 1 else None}
        return columns.get(field)

    def _instance(self, row: Mapping[str, Any], split: str | None) -> Instance:
        if split is None:
            split = TEST_SPLIT  # rows without a split value are evaluated
            value = _cell_or_none(row, self.split_column) if self.split_column else None
            if value is not None and str(value).strip():
                split = split_of(value, "split_column")
        choices: list[Any] | None = None
        if isinstance(self.choices, str):
            value = _cell(row, self.choices, "choices")
            if not isinstance(value, list):
                raise RecordError(f"{value!r} is not a list of options", "choices")
            choices = value
        elif self.choices is not None:
            choices = [_cell(row, column, f"choices[{i}]") for i, column in enumerate(self.choices)]
        references = None
        if choices is None:
            references = [_cell(row, column, "references") for column in self.references]
        return make_instance(_cell(row, self.input, "input"), split=split, choices=choices,
                             answer=_cell(row, self.answer, "answer") if self.answer else None,
                             references=references, answer_format=self.answer_format)

    def run_spec(self, description: Description) -> RunSpec:
        reject_arguments(description)
        return run_spec_for(self.name, self.settings, TableScenario, {"scenario": self.name}, description, self)


class TableScenario(Scenario):
    """The instances of a YAML-declared scenario, read when the run starts."""

    tags = ("user_defined",)

    def __init__(self, scenario: str, locator: DataLocator, definition: TableScenarioDefinition) -> None:
        self.scenario = scenario
        self.locator = locator
        self.definition = definition

    def get_instances(self) -> list[Instance]:
        return self.definition.read_instances(self.locator)

    def to_json(self) -> dict[str, Any]:
        settings = self.definition.settings
        return {"name": self.scenario, "description": settings.description or f"user-defined scenario "
                f"{self.scenario} from {self.definition.file}", "tags": [*self.tags, *settings.tags],
                "definition_path": str(self.definition.file)}


# --- reading tables ----------------------------------------------------------------------------


def read_table(fetched: FetchedData, table: TableData, error: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows of a CSV/TSV/JSONL/JSON file."""
    try:
        text = fetched.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{fetched.origin} is not UTF-8 text ({exc})") from None
    if table.format in ("csv", "tsv"):
        return _read_csv(text, table, fetched.origin, error)
    records: list[Any] = []
    if table.format == "jsonl":
        try:
            records = [record for _, record in parse_lines(text, fetched.origin)]
        except ConfigError as exc:
            raise error(f"{exc.entry} of {fetched.origin} is not JSON ({exc.message})") from None
    else:
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise error(f"{fetched.origin} is not JSON ({exc})") from None
        if not isinstance(loaded, list):
            raise error(f"{fetched.origin} must hold a JSON list of objects")
        records = loaded
    columns: list[str] = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise error(f"record {number} of {fetched.origin} is not a JSON object")
        columns += [key for key in record if key not in columns]
    return columns, records


def _read_csv(text: str, table: TableData, origin: str, error: Any) -> tuple[list[str], list[dict[str, Any]]]:
    # Universal newlines, as for MMLU: a "\r\n" inside a quoted cell becomes "\n".
    reader = csv.reader(io.StringIO(text, newline=None), delimiter="\t" if table.format == "tsv" else ",")
    lines = [row for row in reader if row]
    if table.columns is not None:
        columns = list(table.columns)
    else:
        if not lines:
            raise error(f"{origin} is empty: it needs a header row (or set data.columns)")
        columns = [c.strip() for c in lines.pop(0)]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise error(f"{origin} has the column {duplicates[0]!r} twice")
    rows = []
    for number, line in enumerate(lines, 1):
        if len(line) > len(columns):
            raise error(f"row {number} of {origin} has {len(line)} cells, more than the {len(columns)} columns "
                        f"({', '.join(columns)})")
        rows.append(dict(zip(columns, line)))
    return columns, rows


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first (column, character) holding a control character other than tab, newline or CR."""
    for column, value in row.items():
        for text in _texts(value):
            found = _CONTROL.search(text)
            if found:
                return str(column), found.group()
    return None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _has_path(columns: list[str], column: str) -> bool:
    """``answers.text`` reaches into a JSON object column ``answers``."""
    return "." in column and column.split(".", 1)[0] in columns


def _cell_or_none(row: Mapping[str, Any], column: str) -> Any:
    try:
        return _cell(row, column, "")
    except RecordError:
        return None


def _cell(row: Mapping[str, Any], column: str, field: str) -> Any:
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise RecordError("the row has no value in this column", field, column)
        value = value[part]
    return value


# --- parsing the YAML --------------------------------------------------------------------------


def _table(raw: Any, field: str, base: Path) -> TableData:
    if isinstance(raw, str):
        raw = {"uri": raw}
    options = raw.get("storage_options", {})
    try:
        source = DataSource(uri=raw.get("uri", ""), sha256=raw.get("sha256"), member=raw.get("member"),
                            storage_options=options, mirror_path=raw.get("mirror_path"))
    except ConfigError as exc:
        raise ConfigError(exc.message, field=f"{field}.{exc.field}") from None
    if source.is_local and not source.local_path.is_absolute():  # relative to the eval file
        source = DataSource(str(base / source.local_path), source.sha256, source.member, source.storage_options,
                            source.mirror_path)
    suffixes = [s.lower() for s in PurePosixPath(source.file_name).suffixes]
    fmt = raw.get("format") or next((FORMATS[s] for s in reversed(suffixes) if s in FORMATS), None)
    if not isinstance(fmt, str) or fmt not in FORMATS.values():
        what = f"{fmt!r} is not a format" if fmt else f"cannot tell the format of {source.file_name!r}"
        raise ConfigError(f"{what}; set format to one of csv, tsv, jsonl, json", field=f"{field}.format")
    columns = raw.get("columns")
    if columns is not None:
        if fmt not in ("csv", "tsv"):
            raise ConfigError("columns names the columns of a CSV/TSV without a header: a list of names",
                              field=f"{field}.columns")
        columns = tuple(columns)
    return TableData(source, fmt, columns)


def _column_list(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def parse_definition(name: Any, raw: Any, file: Path, registries: Registries) -> TableScenarioDefinition:
    """One entry of a ``scenarios:`` section, validated; errors name the file, scenario and field."""
    entry = f"scenarios.{name}"
    try:
        check_name(name)
    except ConfigError as exc:
        raise exc.located(file=file, entry=entry) from None
    check(raw, CUSTOM_SCENARIO, file, entry=entry)
    try:
        if "data" not in raw:
            raise ConfigError("needs data: a path or URI of a CSV/JSONL file", field="data")
        base = file.parent
        data = _table(raw["data"], "data", base)
        train = _table(raw["train_data"], "train_data", base) if raw.get("train_data") is not None else None
        if not isinstance(raw.get("input"), str) or not raw["input"]:
            raise ConfigError("needs the name of the column holding the question/prompt", field="input")
        choices: tuple[str, ...] | str | None = None
        if "choices" in raw:
            value = raw["choices"]
            if isinstance(value, str) and value:
                choices = value  # one column holding a list of options (JSON)
            elif isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) and v for v in value):
                choices = tuple(value)
            else:
                raise ConfigError(f"{value!r}: give a list of at least two option columns (or one column "
                                  f"holding a list)", field="choices")
            if not isinstance(raw.get("answer"), str) or not raw["answer"]:
                raise ConfigError("multiple choice needs the answer column (letter, 0-based index or text)",
                                  field="answer")
            if "references" in raw:
                raise ConfigError("give either references (generation) or choices and answer, not both",
                                  field="references")
        elif "answer" in raw and "references" not in raw:
            raise ConfigError("answer goes with choices; for generation name the answer column(s) in "
                              "references", field="answer")
        references = _column_list(raw["references"]) if "references" in raw else ()
        if choices is None and not references:
            raise ConfigError("needs references (generation) or choices and answer (multiple choice)",
                              field="references")
        answer_format = raw.get("answer_format", "auto")
        if answer_format not in ANSWER_FORMATS:
            raise ConfigError(f"{answer_format!r}: use one of {', '.join(ANSWER_FORMATS)}", field="answer_format")
        split_column = raw.get("split_column")
        settings = ScenarioSettings.parse(
            {k: v for k, v in raw.items() if k in SETTING_FIELDS},
            ADAPT_MULTIPLE_CHOICE_JOINT if choices is not None else ADAPT_GENERATION, registries=registries)
        if settings.multiple_choice and choices is None:
            raise ConfigError("multiple_choice_joint needs choices and answer", field="adapter")
    except ConfigError as exc:
        raise exc.located(file=file, entry=entry) from None
    return TableScenarioDefinition(name, file, data, train, raw["input"], choices, raw.get("answer"),
                                   answer_format, references, split_column, settings)


def register_yaml_scenarios(file: Path, section: Any, registries: Registries) -> list[str]:
    """Declare every scenario of an eval file's ``scenarios:`` section in the collecting session's
    ``registries`` (two files of one session may not declare the same name); returns their names."""
    if not isinstance(section, dict):
        raise ConfigError("must be a mapping of scenario names to definitions", file=file, field="scenarios")
    definitions = [parse_definition(name, raw, file, registries) for name, raw in section.items()]
    for definition in definitions:
        try:
            registries.run_spec_function(definition.name, definition.run_spec, str(file))
        except ConfigError as exc:
            raise exc.located(file=file, entry=f"scenarios.{definition.name}") from None
    return [d.name for d in definitions]
