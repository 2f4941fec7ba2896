"""Known secrets replaced by a marker in everything the plugin writes.

A model server may echo a request's ``Authorization`` header, or a user's model may print its
key into an answer. Results are cleaned where they come back from a backend, before the cache
stores them and before any writer (``scenario_state.json``, the report, game transcripts) sees
them; the plugin's log records are cleaned before any handler formats them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from pytest_llmeval.requests import RequestResult

MARKER = "[REDACTED]"
MIN_SECRET_CHARS = 6  # shorter values ("true", "1") would mangle text and protect nothing


class Redactor:
    """Replaces each known secret, wherever it appears, by :data:`MARKER`.

    A redactor with no secrets returns everything untouched at no cost.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SECRET_CHARS}
        # JSON text (the cache's rows) spells non-ASCII and quotes escaped; longest first, so a
        # secret that contains another is replaced whole.
        forms = kept | {json.dumps(s)[1:-1] for s in kept}
        self._secrets = tuple(sorted(forms, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} forms)"  # never the secrets themselves

    def text(self, text: str) -> str:
        """``text`` with every secret replaced (plain text or JSON text alike)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MARKER)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings) with every secret replaced, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def result(self, result: RequestResult) -> RequestResult:
        """``result`` itself when it holds no secret, else a cleaned copy (texts, tokens, error,
        raw request and response)."""
        if not self._secrets:
            return result
        data = result.to_dict()
        dumped = json.dumps(data)
        if not any(secret in dumped for secret in self._secrets):
            return result
        cleaned = RequestResult.from_dict(self.value(data))
        cleaned.cached = result.cached
        return cleaned


class LogRedaction:
    """Cleans the records of the plugin's logger tree (``pytest_llmeval``) and of urllib3's (whose
    retry warnings name URLs) before they are handled.

    A handler on a tree's root logger runs before the handlers of its ancestors (pytest's
    capture and terminal handlers sit on the root logger), so it can rewrite each record in
    place: message, arguments and traceback text.
    """

    def __init__(self, redactor: Redactor, loggers: tuple[str, ...] = ("pytest_llmeval", "urllib3")) -> None:
        self.redactor = redactor
        self.loggers = [logging.getLogger(name) for name in loggers]
        self._handler = _RedactingHandler(redactor)

    def install(self) -> LogRedaction:
        for logger in self.loggers:
            if self.redactor and self._handler not in logger.handlers:
                logger.addHandler(self._handler)
        return self

    def remove(self) -> None:
        for logger in self.loggers:
            logger.removeHandler(self._handler)


class _RedactingHandler(logging.Handler):
    """Emits nothing: it only rewrites the record that the next handlers will format."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def handle(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        pass
