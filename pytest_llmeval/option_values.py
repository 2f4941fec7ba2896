"""One ``--llmeval-*`` value and where it came from, so a mistake is named as the user wrote it.

Where a value came from also decides what a relative path is relative to:

- on the command line (``--llmeval-output-path out``, ``-o llmeval_output_path=out``): the
  directory pytest was invoked from, as for any path typed in a shell;
- in an ini file, and every default when pytest found an ini file: that file's folder;
- a default without an ini file: the directory pytest was invoked from.

Never pytest's rootdir: without an ini file it is the common ancestor of the arguments, which
an absolute option value (``--llmeval-data-dir /data tests``) can make ``/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError


def project_dir(config: pytest.Config) -> Path:
    """The ini file's folder when pytest found one, else the directory pytest was invoked from."""
    return config.inipath.parent if config.inipath is not None else Path(config.invocation_params.dir)


@dataclass(frozen=True)
class OptionValue:
    value: Any
    field: str  # ``--llmeval-suite``, or the ini key when the value is written in ``file``
    base: Path  # what a relative path is taken from
    file: Path | None = None

    @classmethod
    def read(cls, config: pytest.Config, name: str, default: Any = None) -> OptionValue:
        """The value of ``--llmeval-<name>``, else of its ini key; ``default`` is the ini default."""
        key = f"llmeval_{name.replace('-', '_')}"
        invoked = Path(config.invocation_params.dir)
        value = config.getoption(key)
        if value is not None:
            return cls(value, f"--llmeval-{name}", invoked)
        value = config.getini(key)
        overrides = config.getoption("override_ini", None) or []
        if any(str(o).split("=", 1)[0].strip() == key for o in overrides):
            return cls(value, f"-o {key}", invoked)
        ini = config.inipath
        if ini is None or value == default:  # the default (or the default written out): named as the option
            return cls(value, f"--llmeval-{name}", project_dir(config))
        return cls(value, key, ini.parent, ini)

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, field=self.field)

    def usage_error(self, message: str) -> pytest.UsageError:
        """Stops the session with one line naming the option (or the ini file and key)."""
        return pytest.UsageError(f"pytest-llmeval: {self.error(message)}")

    def text(self) -> str:
        return "" if self.value is None else str(self.value)

    def path(self) -> Path:
        """The value as a path, a relative one taken from :attr:`base`."""
        path = Path(self.text()).expanduser()
        return path if path.is_absolute() else self.base / path

    def folder(self, what: str, *, must_exist: bool = False) -> Path:
        """The value as a folder the plugin reads or creates; a file in its way is an error now,
        not a traceback when the first run writes there."""
        path = self.path()
        for existing in (path, *path.parents):
            if existing.exists():
                break
        if not existing.is_dir():
            where = f"{path} is a file" if existing == path else f"{path} is inside {existing}, which is a file"
            raise self.usage_error(f"{where}; it must be a folder ({what})")
        if must_exist and existing != path:
            raise self.usage_error(f"no folder {path} ({what})")
        return path

    def whole_number(self) -> int | None:
        """A count or a level of at least 1; unset (or empty) is None."""
        if self.value in (None, ""):
            return None
        try:
            number = int(str(self.value).strip())
        except ValueError:
            raise self.usage_error(f"{self.value!r} is not a whole number (such as 10)") from None
        if number < 1:
            raise self.usage_error(f"must be at least 1, not {number}")
        return number
