"""Every ``--llmeval-*`` option, each with an ini key of the same name (dashes -> underscores)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_llmeval.option_values import OptionValue
from pytest_llmeval.registry import DEFAULT_MODEL
from pytest_llmeval.scenarios.data import DATA_DIR_ENV

DEFAULT_EVAL_FILES = "eval_*.yaml eval_*.yml *.eval.yaml run_specs*.conf run_entries*.conf"

# (option, ini type, default, help); the ini key is the option without dashes.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("models", "string", DEFAULT_MODEL,
     "models to evaluate: deployment names, a comma list, a tag such as 'text', 'all', "
     "'huggingface/<org>/<repo>' or a checkpoint folder"),
    ("local-path", "string", "prod_env", "local registry, credentials and cache folder (HELM's prod_env)"),
    ("cache-uri", "string", None,
     "keep the request cache on a PostgreSQL server shared by many hosts: postgresql://user@host:port/db "
     "(credentials from the URI, PG* variables or ~/.pgpass); default: an SQLite file under the local path"),
    ("data-dir", "string", None, "a data mirror folder (also $LLMEVAL_DATA_DIR)"),
    ("output-path", "string", "benchmark_output", "where HELM-format run folders are written"),
    ("suite", "string", "default", "suite name: runs go to <output-path>/runs/<suite>/"),
    ("max-eval-instances", "string", None,
     "evaluate at most N instances per run, chosen by helm-run's sampling rule; overrides an entry's own "
     "max_eval_instances ('all': none of those limits)"),
    ("priority", "string", None, "only run entries with priority <= N (as helm-present --priority)"),
    ("eval-files", "string", DEFAULT_EVAL_FILES, "glob patterns of eval files to collect"),
    ("lm-eval-include", "string", None,
     "folders of your own lm-eval task YAML files, separated by spaces (as lm_eval --include_path)"),
    # dialogue games (pytest_llmeval/games/)
    ("players", "string", None,
     "pair models in two-player games: 'A,B' (several pairings separated by spaces); default: self-play"),
    ("max-episodes", "string", None,
     "play a seeded sample of at most N episodes per game experiment; overrides an entry's own max_episodes "
     "('all': none of those limits)"),
    ("parallel-episodes", "string", None,
     "play a game item's episodes side by side: N at most, 'off' one at a time, 'auto' (when neither this nor "
     "an entry's parallel_episodes is set) in lockstep batches on a local model, as many as the deployment's "
     "concurrency against a server, one at a time for other players"),
    # report and gates (pytest_llmeval/report/settings.py reads these)
    ("fail-under", "string", None,
     "gates on every run, comma-separated: 'exact_match=0.3' is a floor (a ceiling for lower-is-better "
     "metrics such as inference_runtime), or a full gate 'metric <op> number'"),
    ("baseline-dir", "string", "llmeval_baselines", "folder of saved baselines (meant to be committed)"),
    ("save-baseline", "string", None, "save every run's per-instance results as baseline NAME (a new numbered file)"),
    ("compare", "string", None, "compare each run with baseline NAME (a name, number or path)"),
    ("compare-fail", "string", None,
     "regression tolerances, comma-separated: 'exact_match:-2%' (relative) or 'exact_match:-0.02' "
     "(absolute); default: any drop of the main metric"),
    ("significance", "string", "0.05", "level the paired test (McNemar, bootstrap) must reach to call a drop real"),
    # CI shards (pytest_llmeval/sharding.py); `llmeval merge` joins their output folders
    ("shard", "string", None,
     "run shard K of N (such as 1/4): a deterministic share of the items, balanced by expected cost"),
]
_FLAGS: list[tuple[str, str]] = [
    ("update-baseline", "rewrite the compared (or named) baseline from this session's runs"),
    ("no-report", "do not write llmeval_report.html (llmeval_summary.json is still written)"),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "language-model evaluations (pytest-llmeval)")
    for name, ini_type, default, help_text in _OPTIONS:
        group.addoption(f"--llmeval-{name}", dest=f"llmeval_{name.replace('-', '_')}", default=None,
                        help=f"{help_text} (ini: llmeval_{name.replace('-', '_')}; default: {default})")
        parser.addini(f"llmeval_{name.replace('-', '_')}", help_text, type=ini_type, default=default)  # type: ignore[arg-type]
    group.addoption("--llmeval-disable-cache", dest="llmeval_disable_cache", action="store_true", default=None,
                    help="do not read or write the request cache (ini: llmeval_disable_cache)")
    parser.addini("llmeval_disable_cache", "do not use the request cache", type="bool", default=False)
    for flag, help_text in _FLAGS:
        dest = f"llmeval_{flag.replace('-', '_')}"
        group.addoption(f"--llmeval-{flag}", dest=dest, action="store_true", default=None,
                        help=f"{help_text} (ini: {dest})")
        parser.addini(dest, help_text, type="bool", default=False)


_DEFAULTS = {name: default for name, _, default, _ in _OPTIONS}


def option_value(config: pytest.Config, name: str) -> OptionValue:
    """``--llmeval-<name>`` (else its ini key, else the default) and where it came from."""
    return OptionValue.read(config, name, _DEFAULTS.get(name))


def _value(config: pytest.Config, name: str) -> Any:
    return option_value(config, name).value


@dataclass(frozen=True)
class Settings:
    """The options resolved once and checked at start-up; relative paths as :mod:`option_values` says."""

    models: str
    local_path: Path
    data_dir: str | None
    output_path: Path
    suite: str
    max_eval_instances: int | Literal["all"] | None
    priority: int | None
    eval_files: tuple[str, ...]
    disable_cache: bool
    players: str | None = None
    max_episodes: int | Literal["all"] | None = None
    parallel_episodes: int | Literal["auto", "off"] | None = None  # None: the entry's, else auto
    lm_eval_include: tuple[str, ...] = ()  # lm-eval task folders, absolute
    # --llmeval-models given (or its ini key set): as helm-run's --models-to-run, it is the models of
    # an entry whose `model=` is a group or absent, and filters entries naming one model.
    models_explicit: bool = False
    cache_uri: str | None = None  # a postgresql:// request cache instead of the SQLite file
    shard: tuple[int, int] | None = None  # (K, N) of --llmeval-shard K/N

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def option(name: str) -> OptionValue:
            return option_value(config, name)

        data_dir = option("data-dir")
        return cls(
            models=_models(option("models")),
            local_path=option("local-path").folder("HELM's prod_env: registry files, credentials, request cache"),
            data_dir=str(data_dir.folder("a data mirror", must_exist=True)) if data_dir.text() else _data_env(),
            output_path=option("output-path").folder("where HELM run folders are written"),
            suite=_suite(option("suite")),
            max_eval_instances=_limit(option("max-eval-instances")),
            priority=option("priority").whole_number(),
            eval_files=_patterns(option("eval-files")),
            disable_cache=bool(option("disable-cache").value),
            cache_uri=_cache_uri(option("cache-uri")),
            players=_players(option("players")),
            max_episodes=_limit(option("max-episodes")),
            parallel_episodes=_parallel(option("parallel-episodes")),
            lm_eval_include=_folders(option("lm-eval-include"), "lm-eval task folders"),
            shard=_shard(option("shard")),
            models_explicit=config.getoption("llmeval_models") is not None
            or option("models").field != "--llmeval-models",
        )


def _models(option: OptionValue) -> str:
    text = option.text().strip()
    if not text.startswith("{") and not any(part.strip() for part in text.split(",")):
        raise option.usage_error(f"{option.value!r} names no model; give deployment names (a comma list), a tag "
                                 f"such as 'text' or 'all', or leave it out for {DEFAULT_MODEL}")
    return text


def _cache_uri(option: OptionValue) -> str | None:
    """A ``postgresql://`` URI; its password (if written in it) never appears in the message."""
    from pytest_llmeval.clients.cache_store import is_postgres_uri, redact_uri

    text = option.text().strip()
    if text and not is_postgres_uri(text):
        raise option.usage_error(f"{redact_uri(text)!r} is not a PostgreSQL URI; write "
                                 f"postgresql://user@host:port/database (or leave it out for the SQLite file)")
    return text or None


def _data_env() -> str | None:
    """``$LLMEVAL_DATA_DIR`` (read by the data locator), checked here so a file fails at start-up."""
    value = os.environ.get(DATA_DIR_ENV)
    if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
        raise pytest.UsageError(f"pytest-llmeval: ${DATA_DIR_ENV}: {value} is a file; it must be a folder "
                                f"(a data mirror)")
    return None


def _suite(option: OptionValue) -> str:
    """A folder name under ``<output-path>/runs/``: never empty, never leading out of it."""
    suite = option.text().strip()
    parts = suite.replace("\\", "/").split("/")
    if not suite or suite.startswith(("/", "~")) or any(part in ("", ".", "..") for part in parts):
        raise option.usage_error(f"{option.value!r} is not a suite name; runs go to <output-path>/runs/<suite>/, "
                                 f"so give a folder name such as 'nightly'")
    return suite


def _patterns(option: OptionValue) -> tuple[str, ...]:
    patterns = tuple(option.text().split())
    if not patterns:
        raise option.usage_error(f"{option.value!r} names no file pattern (default: {DEFAULT_EVAL_FILES})")
    return patterns


def _players(option: OptionValue) -> str | None:
    """``A,B`` pairings separated by spaces; a pairing with an empty name is a typo."""
    text = option.text().strip()
    if not text:
        return None
    for pairing in re.split(r"[\s;]+", text):
        if any(not name.strip() for name in pairing.split(",")):
            raise option.usage_error(f"pairing {pairing!r} has an empty model name; write pairings as 'A,B' "
                                     f"(several separated by spaces)")
    return text


def _folders(option: OptionValue, what: str) -> tuple[str, ...]:
    """Existing folders, separated by spaces, each relative to where the option was written."""
    found = []
    for text in option.text().split():
        folder = OptionValue(text, option.field, option.base, option.file).folder(what, must_exist=True)
        found.append(str(folder.resolve()))
    return tuple(found)


def _shard(option: OptionValue) -> tuple[int, int] | None:
    """``K/N`` with 1 <= K <= N."""
    text = option.text().strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise option.usage_error(f"{option.value!r} is not a shard; give K/N with 1 <= K <= N, such as 1/4")
    return int(match[1]), int(match[2])


def _limit(option: OptionValue) -> int | Literal["all"] | None:
    """A count of instances or episodes, or ``all``."""
    if isinstance(option.value, str) and option.value.strip().lower() == "all":
        return "all"
    return option.whole_number()


def _parallel(option: OptionValue) -> int | Literal["auto", "off"] | None:
    """``auto``, ``off`` or a whole number of episodes played at a time (1 is ``off``); unset is None."""
    text = option.text().strip().lower()
    if not text:
        return None
    if text in ("auto", "off"):
        return "auto" if text == "auto" else "off"
    if not text.isdigit() or int(text) < 1:
        raise option.usage_error(f"{option.value!r} is not a number of episodes; give a whole number of at "
                                 f"least 1, 'auto' or 'off'")
    return int(text)


def pick_limit(command_line: int | Literal["all"] | None, own: int | None) -> int | None:
    """The limit a run gets: the command line's when given (``all`` lifts every limit), else the
    entry's own, so one eval file serves a quick default run and a full one."""
    if command_line == "all":
        return None
    return own if command_line is None else command_line
