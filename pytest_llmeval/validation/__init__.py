"""One validation path for every file a user writes: JSON Schemas and one error formatter."""

from __future__ import annotations

from pytest_llmeval.validation.validator import check, config_error

__all__ = ["check", "config_error"]
