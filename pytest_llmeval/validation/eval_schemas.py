"""JSON Schemas for eval files (run entries, gates, expand, priority, groups) and their
``scenarios:`` sections (custom scenarios read from CSV/JSONL files).

The schemas check shape and types; what needs the plugin's tables (scenario and metric
names, adapters, stop names, answer formats) is checked by the code that owns those tables.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string", "errorMessage": "is not a string (quote it in YAML)"}
_NAMES = {"type": ["string", "array"], "items": {"type": "string"}, "errorMessage": "is not a list of names"}
_SINGLE_VALUE = {"type": ["string", "number", "boolean"],
                 "errorMessage": "is not a single value (no lists, mappings or commas)"}

RUN_ENTRY: dict[str, Any] = {
    "type": ["string", "object"],
    "errorMessage": "needs a 'description' string such as 'mmlu:subject=anatomy'",
    "required": ["description"],
    "properties": {
        "description": {"type": "string", "minLength": 1,
                        "errorMessage": "needs a 'description' string such as 'mmlu:subject=anatomy'"},
        "priority": {"type": ["integer", "null"], "errorMessage": "must be a whole number"},
        "max_eval_instances": {"type": ["integer", "null"], "minimum": 1,
                               "errorMessage": "must be a whole number of at least 1"},
        "gates": {"type": ["string", "array", "null"], "items": {"type": ["string", "number"]},
                  "errorMessage": "must be a gate such as 'exact_match >= 0.25' or a list of them"},
        "groups": {**_NAMES, "type": ["string", "array", "null"]},
        "expand": {
            "type": ["object", "null"],
            "errorMessage": "must map argument names to lists of values, like {max_train_instances: [0, 5]}",
            "additionalProperties": {"type": "array", "minItems": 1, "items": _SINGLE_VALUE,
                                     "errorMessage": "must be a non-empty list of values, like [0, 5]"},
        },
    },
    "warnUnknown": True,
}

EVAL_FILE: dict[str, Any] = {
    "type": "object",
    "errorMessage": "must be a mapping with an 'entries' list",
    "required": ["entries"],
    "properties": {
        "entries": {"type": "array", "items": RUN_ENTRY, "errorMessage": "must be a list of run entries"},
        "scenarios": {"type": ["object", "null"], "errorMessage": "must be a mapping of scenario names to definitions"},
    },
    "warnUnknown": True,
}

_COUNT = {"type": "integer", "minimum": 1, "errorMessage": "is not a whole number >= 1"}

# The settings a user scenario (YAML or @scenario) takes; scenarios.registration.SETTING_FIELDS.
SETTINGS_PROPERTIES: dict[str, Any] = {
    "adapter": _STRING, "metrics": _NAMES, "main_metric": _STRING, "description": _STRING, "tags": _NAMES,
    **{key: _STRING for key in ("instructions", "global_prefix", "global_suffix", "input_prefix", "input_suffix",
                                "output_prefix", "output_suffix", "instance_prefix", "reference_prefix",
                                "reference_suffix")},
    "max_train_instances": {"type": "integer", "minimum": 0, "errorMessage": "is not a whole number >= 0"},
    "num_outputs": _COUNT, "num_train_trials": _COUNT, "max_tokens": _COUNT,
    "temperature": {"type": "number", "minimum": 0, "errorMessage": "is not a number >= 0"},
    "stop": {"type": ["string", "array"], "items": {"type": "string", "minLength": 1}},
    "sample_train": {"type": "boolean", "errorMessage": "is not true or false"},
}
SETTINGS: dict[str, Any] = {"type": "object", "properties": SETTINGS_PROPERTIES}

TABLE_DATA: dict[str, Any] = {
    "type": ["string", "object"],
    "errorMessage": "is neither a path/URI nor a mapping with uri",
    "properties": {
        **{key: _STRING for key in ("uri", "sha256", "member", "mirror_path", "format")},
        "storage_options": {"type": "object", "errorMessage": "is not a mapping"},
        "columns": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                    "errorMessage": "names the columns of a CSV/TSV without a header: a list of names"},
    },
    "warnUnknown": True,
}

_COLUMNS = {"type": ["string", "array"], "minLength": 1, "minItems": 1, "items": {"type": "string", "minLength": 1},
            "errorMessage": "is not a column name or a list of column names"}

CUSTOM_SCENARIO: dict[str, Any] = {
    "type": "object",
    "errorMessage": "must be a mapping with data, input and choices/answer or references",
    "properties": {
        "data": TABLE_DATA,
        "train_data": {**TABLE_DATA, "type": ["string", "object", "null"]},
        "split_column": {"type": ["string", "null"], "minLength": 1, "errorMessage": "is not a column name"},
        "input": {"type": "string", "minLength": 1,
                  "errorMessage": "needs the name of the column holding the question/prompt"},
        "choices": _COLUMNS,
        "answer": {"type": "string", "minLength": 1,
                   "errorMessage": "multiple choice needs the answer column (letter, 0-based index or text)"},
        "answer_format": _STRING,
        "references": _COLUMNS,
        **SETTINGS_PROPERTIES,
    },
    "warnUnknown": True,
}
