"""JSON-lines data files (GSM8K, BoolQ): every bad row is reported by file, line and field."""

from __future__ import annotations

import json
from typing import Any

from pytest_llmeval.errors import ConfigError


def parse_lines(text: str, origin: str) -> list[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of JSON-lines text.

    Lines end at ``\n`` only (``\r\n`` too), never at the other characters ``splitlines``
    breaks on: a JSON string may hold U+2028 or U+0085 as they are.
    """
    values: list[tuple[int, Any]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc.msg})", file=origin, entry=f"line {number}") from None
    return values


def read_jsonl(content: bytes, origin: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line, so later checks can name the line."""
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=origin) from None
    for number, row in parse_lines(text, origin):
        if not isinstance(row, dict):
            raise ConfigError(f"expected a JSON object, got {type(row).__name__}", file=origin,
                              entry=f"line {number}")
        rows.append((number, row))
    return rows


def require(row: dict[str, Any], key: str, kind: type, origin: str, line: int, *, field: str | None = None,
            allow_empty: bool = False) -> Any:
    """``row[key]`` when it has type ``kind`` (non-blank for text unless ``allow_empty``; a bool is
    not an int), else a located ConfigError; ``field`` names a nested key (``question.stem``)."""
    name = field or key
    if key not in row:
        raise ConfigError(f"{name!r} is missing", file=origin, entry=f"line {line}", field=name)
    value = row[key]
    blank = isinstance(value, str) and not value.strip() and not allow_empty
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) or blank:
        expected = "non-empty text" if kind is str and not allow_empty else kind.__name__
        raise ConfigError(f"{name!r} should be {expected}, got {value!r:.60}", file=origin, entry=f"line {line}",
                          field=name)
    return value
