"""Errors a user can act on: each says which file, which entry and which field is wrong."""

from __future__ import annotations

from pathlib import Path


class LLMEvalError(Exception):
    """Base class for every error the plugin raises on purpose."""


class ConfigError(LLMEvalError):
    """Bad input in a file the user wrote (registry, eval file, credentials).

    The message is complete on its own so the plugin can stop the session with it and no
    traceback.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, entry: str | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.entry = entry
        self.field = field
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if entry:
            where.append(f"entry {entry}")
        if field:
            where.append(f"field {field}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def located(self, *, file: str | Path | None = None, entry: str | None = None,
                field: str | None = None) -> ConfigError:
        """The same error with missing location parts filled in."""
        return ConfigError(self.message, file=self.file or file, entry=self.entry or entry,
                           field=self.field or field)


class DataNotFoundError(LLMEvalError):
    """Evaluation data is neither in the mirror, nor in the data cache, nor downloadable."""


class ClientError(LLMEvalError):
    """A model backend failed in a way retries did not fix."""


class UserModelError(ClientError):
    """A user's own model code (a Python-callable client) raised, or returned something
    unusable. The message is one line naming the deployment; the user's traceback, when
    there is one, is the ``__cause__``, shown under ``-v``."""


class ConfigWarning(UserWarning):
    """A key a user's file has that its format does not know: ignored, with the closest known key."""
