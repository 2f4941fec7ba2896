"""Reading multiple-choice rows (OpenBookQA, CommonsenseQA, HellaSwag, PIQA, SIQA, MedQA) as
HELM's scenarios do, with each bad row reported by file, line and field instead of HELM's
bare ``assert``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.scenarios.jsonl import require
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference


def get(row: dict[str, Any], key: str, kind: type, origin: str, line: int, field: str | None = None) -> Any:
    """``row[key]`` of type ``kind``, empty text allowed as HELM allows it (see ``jsonl.require``)."""
    return require(row, key, kind, origin, line, field=field, allow_empty=True)


def texts(values: object, count: int, origin: str, line: int, field: str) -> list[str]:
    """A list of exactly ``count`` strings (HELM asserts the number of answer choices)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{field!r} should be a list of texts, got {values!r:.60}", file=origin,
                          entry=f"line {line}", field=field)
    if len(values) != count:
        raise ConfigError(f"expected {count} answer choices, got {len(values)}", file=origin,
                          entry=f"line {line}", field=field)
    return list(values)


def lettered_choices(question: dict[str, Any], answer_key: str, count: int, origin: str,
                     line: int) -> tuple[list[str], int]:
    """``question.choices`` (``[{"text", "label"}]``) as texts, and the index ``answerKey``
    names: its letter's place in A, B, C, ..., whose choice must carry that label (HELM's check)."""
    choices = get(question, "choices", list, origin, line, field="question.choices")
    if len(choices) != count:
        raise ConfigError(f"expected {count} answer choices, got {len(choices)}", file=origin,
                          entry=f"line {line}", field="question.choices")
    answers = []
    for choice in choices:
        if not isinstance(choice, dict):
            raise ConfigError(f"a choice should be an object with text and label, got {choice!r:.60}",
                              file=origin, entry=f"line {line}", field="question.choices")
        answers.append(get(choice, "text", str, origin, line, field="question.choices.text"))
    letters = "ABCDE"[:count]
    if answer_key not in letters:
        raise ConfigError(f"answerKey should be one of {', '.join(letters)}, got {answer_key!r}", file=origin,
                          entry=f"line {line}", field="answerKey")
    index = letters.index(answer_key)
    if choices[index].get("label") != answer_key:
        raise ConfigError(f"choice {index + 1} is labelled {choices[index].get('label')!r}, not the answerKey "
                          f"{answer_key!r}", file=origin, entry=f"line {line}", field="question.choices.label")
    return answers, index


def choice_instance(question: str, answers: Sequence[str], correct: int, split: str) -> Instance:
    """HELM's ``_make_instance``: every answer whose text equals the correct one is tagged
    correct (a duplicated option is correct twice, as in helm-run)."""
    correct_text = answers[correct]
    references = tuple(Reference(a, (CORRECT_TAG,) if a == correct_text else ()) for a in answers)
    return Instance(input=question, references=references, split=split)


def label_lines(content: bytes, origin: str) -> list[tuple[int, int]]:
    """``(line number, label)`` of a ``-labels.lst`` file: one integer a line (PIQA, SIQA)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=origin) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    labels = []
    for number, line in enumerate(lines, 1):
        try:
            labels.append((number, int(line.strip())))
        except ValueError:
            raise ConfigError(f"expected an integer label, got {line.strip()!r:.40}", file=origin,
                              entry=f"line {number}") from None
    return labels
