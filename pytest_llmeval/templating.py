"""Jinja2 environments for the pages the plugin writes (``llmeval_report.html``, ``transcript.html``).

Templates are package files under each package's ``templates/`` folder, so an installed
wheel renders the same page as a checkout. Autoescaping is on for every template: a value
becomes markup only where a template says so, never because a call site forgot a helper.
Jinja2 is imported when the first page is written, not when pytest loads the plugin: a
session that writes no page (xdist workers, ``--llmeval-no-report``) never pays for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment


def _blank_none(value: Any) -> Any:
    """``None`` shows as nothing (a missing split, an unset baseline), never as the word None."""
    return "" if value is None else value


def _bytecode_cache() -> Any:
    """Compiled templates kept in the user's cache folder (keyed by the template's source), so a
    session does not compile the report's template again; an unwritable folder only costs that."""
    from jinja2 import FileSystemBytecodeCache

    from pytest_llmeval.paths import user_cache_dir

    class QuietCache(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    folder = user_cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return QuietCache(str(folder))


def package_environment(package: str, filters: dict[str, Callable[..., Any]]) -> Environment:
    """An environment over ``<package>/templates``: escaped, strict about undefined names, and
    with block tags on their own lines leaving no blank lines behind."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(loader=PackageLoader(package, "templates"), autoescape=True,
                              undefined=StrictUndefined, finalize=_blank_none, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False,
                              bytecode_cache=_bytecode_cache())
    environment.filters.update(filters)
    return environment
