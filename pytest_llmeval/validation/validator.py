"""Checking a user-written file against its JSON Schema, and the one way its problems are told.

Every file a user writes (registries, eval files, games files, ``clemgame.json``, custom
scenario sections) goes through :func:`check`: a schema violation becomes one
:class:`ConfigError` naming the file, the entry and the field; a key the format does not know
becomes a :class:`ConfigWarning` (the value is ignored, as HELM and clembench ignore it) that
suggests the closest known key. Schemas mark the objects whose unknown keys are worth a warning
with the extra keyword ``warnUnknown`` (``"typos"``: only keys close to a known one, or listed
in ``belongsUnder`` as misplaced, for formats whose readers ignore unknown keys silently), and
may give a plain-words ``errorMessage``.
"""

from __future__ import annotations

import datetime
import difflib
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from pytest_llmeval.errors import ConfigError, ConfigWarning

# Lists whose items are the entries errors are located by (a list document's items are, too).
ENTRY_LISTS = ("entries", "games", "models", "model_deployments", "tokenizer_configs")
# Keys that name a list entry, in the order they are tried (HELM, clembench, eval and games files).
NAME_KEYS = ("name", "model_name", "description", "game", "game_name")
_TYPE_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "empty"}


def read_document(path: Path, syntax: str | None = None, note: str = "") -> Any:
    """A YAML, JSON or HOCON file's content; unreadable files and syntax errors as one-line ConfigErrors.

    ``syntax`` is ``"json"``, ``"yaml"`` or ``"hocon"`` (by default from the suffix: ``.conf`` is
    HOCON, as HELM writes and reads its run-entry files); ``note`` is added to syntax errors.
    YAML dates stay strings, as HELM's files mean them.
    """
    syntax = syntax or {".json": "json", ".conf": "hocon"}.get(path.suffix, "yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror or exc})", file=path) from None
    if syntax == "hocon":
        return _read_hocon(text, path, note)
    try:
        if syntax == "json":
            return json.loads(text)
        return _dates_as_text(_load_yaml(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}{note}",
                          file=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"is not valid YAML: {_yaml_problem(exc)}{note}", file=path) from None


def _load_yaml(text: str) -> Any:
    """libyaml's parser where PyYAML has it (HELM's 600 deployments: 0.2 s instead of 1.5 s); a
    syntax error is parsed again in pure Python so its message is always PyYAML's."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # the C twin of SafeLoader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def _read_hocon(text: str, path: Path, note: str) -> Any:
    """HOCON as HELM parses it (``helm.common.general.parse_hocon``), as plain dicts and lists."""
    import pyhocon
    from pyparsing import ParseBaseException

    try:
        tree = pyhocon.ConfigFactory.parse_string(text)
    except ParseBaseException as exc:
        raise ConfigError(f"is not valid HOCON: line {exc.lineno}, column {exc.col}: {exc.msg}{note}",
                          file=path) from None
    except pyhocon.ConfigException as exc:  # an unresolved ${substitution}, a bad include, ...
        raise ConfigError(f"is not valid HOCON: {' '.join(str(exc).split())}{note}", file=path) from None
    return _plain(tree.as_plain_ordered_dict())


def _plain(value: Any) -> Any:
    """Ordered dicts as dicts (what the schemas and error locations expect)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def _dates_as_text(value: Any) -> Any:
    """YAML reads ``2024-07-18`` as a date; the files mean the string."""
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _warn_unknown(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The ``warnUnknown`` keyword: each key not under ``properties``; with ``"typos"`` only the
    likely typos (a known key is close, or ``belongsUnder`` names the object it belongs in)."""
    if not value or not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    for key in instance:
        if key in known:
            continue
        if value == "typos" and key not in schema.get("belongsUnder", {}) and not _closest(str(key), known):
            continue
        yield ValidationError(f"unknown key {key}", path=[key])


def _closest(key: str, known: Any) -> str | None:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"warnUnknown": _warn_unknown})


def check(document: Any, schema: dict[str, Any], file: str | Path | None, *, entry: str | None = None,
          named: Sequence[str] = ()) -> None:
    """Warn about unknown keys, then raise the first violation of ``schema`` as a ConfigError.

    The entry is the first list item on the error's path (``#3 ('mmlu:subject=anatomy')``),
    or ``<section>.<name>`` below a top-level mapping listed in ``named`` (``scenarios.quiz``),
    or ``entry`` when the caller checks one entry on its own.
    """
    problems = list(_Validator(schema).iter_errors(document))
    for problem in sorted((p for p in problems if p.validator == "warnUnknown"), key=_order):
        # Told at the user's file, not at this line of ours: one line, no source shown (line 0).
        warnings.warn_explicit(ConfigWarning(str(_error(problem, document, file, entry, named))), ConfigWarning,
                               filename=str(file or "<settings>"), lineno=0)
    errors = sorted((p for p in problems if p.validator != "warnUnknown"), key=_order)
    if errors:
        raise _error(errors[0], document, file, entry, named)


def _order(error: ValidationError) -> tuple[Any, ...]:
    """Document order: list indices as numbers, so entry #2 comes before entry #10."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)


def config_error(error: ValidationError, document: Any, file: str | Path | None, entry: str | None = None,
                 named: Sequence[str] = ()) -> ConfigError:
    """One jsonschema error as a one-line ConfigError with file, entry and dotted field."""
    return _error(error, document, file, entry, named)


def _error(error: ValidationError, document: Any, file: str | Path | None, entry: str | None,
           named: Sequence[str]) -> ConfigError:
    path = list(error.absolute_path)
    fields: list[Any] = path
    if entry is None:
        entry, fields = _locate(document, path, named)
        if entry is not None and not fields and error.validator != "required" and len(path) > 1:
            fields = [path[-2]]  # an entry wrong as a whole: the field is the list holding it
    message = _message(error)
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if error.validator == "required":
        missing = next(iter(k for k in expected if k not in instance), None)
        fields = [*fields, missing] if missing is not None else fields
        message = "is required but missing"
    elif error.validator == "warnUnknown":
        key = str(path[-1])
        known = [*schema.get("properties", {})]
        under = schema.get("belongsUnder", {}).get(key)
        close = f"{under}.{key}" if under else _closest(key, known)
        hint = f": did you mean {close}?" if close else f" (known keys: {', '.join(known)})"
        message = f"unknown key {key} is ignored{hint}"
    field = ".".join(str(p) for p in fields) or None
    return ConfigError(message, file=file, entry=entry, field=field)


def _locate(document: Any, path: list[Any], named: Sequence[str]) -> tuple[str | None, list[Any]]:
    """The entry the path goes through, and the path below it."""
    if len(path) >= 2 and path[0] in named:
        return f"{path[0]}.{path[1]}", path[2:]
    container = document
    for depth, part in enumerate(path):
        parent = path[depth - 1] if depth else None
        if isinstance(part, int) and isinstance(container, list) and (depth == 0 or parent in ENTRY_LISTS):
            item = container[part]
            name = item if isinstance(item, str) else next(
                (item[k] for k in NAME_KEYS if isinstance(item, dict) and isinstance(item.get(k), str)), None)
            return (f"#{part} ({name!r})" if name else f"#{part}"), path[depth + 1:]
        try:
            container = container[part]
        except (KeyError, IndexError, TypeError):
            break
    return None, path


def _message(error: ValidationError) -> str:
    """Plain words: the schema's own ``errorMessage``, else jsonschema's, shortened."""
    shown = _shown(error.instance)
    expected: Any = error.validator_value
    schema: Any = error.schema
    custom = schema.get("errorMessage") if isinstance(schema, dict) else None
    if custom:
        return f"{shown} {custom}"
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"{shown} is not {' or '.join(_TYPE_WORDS.get(k, str(k)) for k in kinds)}"
    if error.validator == "enum":
        return f"{shown} is not one of {', '.join(str(v) for v in expected)}"
    if error.validator in ("minimum", "exclusiveMinimum"):
        return f"{shown} must be at least {expected}"
    if error.validator == "minLength":
        return f"{shown} must not be empty"
    if error.validator == "minItems":
        return f"{shown} needs at least {expected} item(s)"
    return error.message.replace("\n", " ")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
