"""Plain records (a CSV row, a JSON object, a dict from Python) turned into HELM instances.

A record is an ``input`` plus either ``references`` (every one correct: generation) or
``choices`` and an ``answer`` (multiple choice: the answer is a letter, a 0-based index or the
option's text). ``split`` says train (in-context examples), valid or test; test by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llmeval.scenarios.scenario import CORRECT_TAG, TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT, Instance, Reference

SPLITS = {"train": TRAIN_SPLIT, "training": TRAIN_SPLIT, "dev": TRAIN_SPLIT, "valid": VALID_SPLIT,
          "val": VALID_SPLIT, "validation": VALID_SPLIT, "test": TEST_SPLIT}
ANSWER_FORMATS = ("auto", "letter", "index", "text")
RECORD_KEYS = ("input", "references", "choices", "answer", "split", "id")


class RecordError(ValueError):
    """One record is malformed; ``field`` names the record key (or mapped column) at fault."""

    def __init__(self, message: str, field: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.column = column


def split_of(value: Any, field: str = "split") -> str:
    name = str(value).strip().lower() if value is not None else ""
    if name not in SPLITS:
        raise RecordError(f"split {value!r} is not one of {', '.join(SPLITS)}", field)
    return SPLITS[name]


def _letter(index: int) -> str:
    return chr(ord("A") + index)


def correct_index(answer: Any, choices: Sequence[str], answer_format: str = "auto", field: str = "answer") -> int:
    """Which option ``answer`` points at; ``auto`` refuses answers that could mean two options."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise RecordError("the answer is empty", field)
    candidates: dict[str, int] = {}
    text = str(answer).strip()
    if answer_format in ("auto", "letter"):
        letter = text.upper() if answer_format == "letter" else text
        if len(letter) == 1 and "A" <= letter <= _letter(len(choices) - 1):
            candidates["letter"] = ord(letter) - ord("A")
    integral = isinstance(answer, int) and not isinstance(answer, bool)
    if answer_format in ("auto", "index") and (integral or (isinstance(answer, str) and text.isdigit())):
        number = int(text)
        if 0 <= number < len(choices):
            candidates["index"] = number
    if answer_format in ("auto", "text") and (isinstance(answer, str) or answer_format == "text"):
        matches = [i for i, choice in enumerate(choices) if choice.strip() == text]
        if matches:
            candidates["text"] = matches[0]
    if not candidates:
        wanted = {"auto": "a letter, a 0-based index or the text of an option", "letter": "a letter",
                  "index": "a 0-based index", "text": "the text of an option"}[answer_format]
        raise RecordError(f"answer {answer!r} is not {wanted} among {len(choices)} options "
                          f"({', '.join(repr(c) for c in choices)})", field)
    if len(set(candidates.values())) > 1:
        readings = ", ".join(f"as {kind} option {_letter(i)}" for kind, i in candidates.items())
        raise RecordError(f"answer {answer!r} is ambiguous ({readings}); set answer_format to "
                          f"letter, index or text", field)
    return next(iter(candidates.values()))


def choice_texts(values: Sequence[Any], field: str = "choices") -> list[str]:
    """Options as text; empty trailing options are dropped (rows with fewer options)."""
    texts = ["" if v is None else str(v) for v in values]
    while texts and not texts[-1].strip():
        texts.pop()
    for position, text in enumerate(texts):
        if not text.strip():
            raise RecordError(f"option {_letter(position)} is empty", field)
    if len(texts) < 2:
        raise RecordError(f"needs at least two options, got {len(texts)}", field)
    return texts


def make_instance(input_text: Any, *, split: str = TEST_SPLIT, choices: Sequence[Any] | None = None,
                  answer: Any = None, references: Sequence[Any] | None = None, answer_format: str = "auto",
                  instance_id: str = "") -> Instance:
    """One instance; a problem raises :class:`RecordError` naming the record key at fault."""
    if input_text is None or not str(input_text).strip():
        raise RecordError("the input is empty", "input")
    if choices is not None:
        options = choice_texts(choices, "choices")
        index = correct_index(answer, options, answer_format, "answer")
        # As HELM (and our MMLU): every option whose text equals the correct one is correct.
        refs = tuple(Reference(o, (CORRECT_TAG,) if o == options[index] else ()) for o in options)
    else:
        if references is None:
            raise RecordError("needs references (generation) or choices and an answer (multiple choice)",
                              "references")
        refs = tuple(r if isinstance(r, Reference) else Reference(str(r), (CORRECT_TAG,))
                     for r in _flatten(references) if isinstance(r, Reference) or str(r).strip())
        if not any(r.is_correct for r in refs):
            raise RecordError("needs at least one non-empty, correct reference", "references")
    return Instance(input=str(input_text), references=refs, split=split, id=instance_id)


def _flatten(values: Sequence[Any]) -> list[Any]:
    """A reference cell may itself hold a list (JSON: several accepted answers)."""
    flat: list[Any] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            flat.extend(v for v in value if v is not None)
        elif value is not None:
            flat.append(value)
    return flat


def instance_from_record(record: Instance | Mapping[str, Any], answer_format: str = "auto") -> Instance:
    """An :class:`Instance` as is, or a dict with the keys in ``RECORD_KEYS``."""
    if isinstance(record, Instance):
        return record
    if not isinstance(record, Mapping):
        raise RecordError(f"{type(record).__name__} is neither a dict nor an Instance", "instance")
    unknown = sorted(set(record) - set(RECORD_KEYS))
    if unknown:
        raise RecordError(f"unknown key {unknown[0]!r}; a record has {', '.join(RECORD_KEYS)}", unknown[0])
    if "choices" in record and "references" in record:
        raise RecordError("give either references or choices and an answer, not both", "references")
    if "choices" in record and not isinstance(record["choices"], (list, tuple)):
        raise RecordError(f"{record['choices']!r} is not a list of options", "choices")
    references = record.get("references")
    if isinstance(references, (str, Reference)):
        references = [references]
    split = split_of(record["split"]) if "split" in record else TEST_SPLIT
    return make_instance(record.get("input"), split=split, choices=record.get("choices"),
                         answer=record.get("answer"), references=references, answer_format=answer_format,
                         instance_id=str(record.get("id", "")))
