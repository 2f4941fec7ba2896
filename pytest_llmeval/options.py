"""Every ``--llmeval-*`` option, each with an ini key of the same name (dashes -> underscores)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_llmeval.registry import DEFAULT_MODEL

DEFAULT_EVAL_FILES = "eval_*.yaml eval_*.yml *.eval.yaml run_specs*.conf"

# (option, ini type, default, help); the ini key is the option without dashes.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("models", "string", DEFAULT_MODEL,
     "models to evaluate: deployment names, a comma list, a tag such as 'text', 'all', "
     "'huggingface/<org>/<repo>' or a checkpoint folder"),
    ("local-path", "string", "prod_env", "local registry, credentials and cache folder (HELM's prod_env)"),
    ("data-dir", "string", None, "a data mirror folder (also $LLMEVAL_DATA_DIR)"),
    ("output-path", "string", "benchmark_output", "where HELM-format run folders are written"),
    ("suite", "string", "default", "suite name: runs go to <output-path>/runs/<suite>/"),
    ("max-eval-instances", "string", None,
     "evaluate at most N instances per run, sampled as helm-run samples them; overrides an entry's own "
     "max_eval_instances ('all': none of those limits)"),
    ("priority", "string", None, "only run entries with priority <= N (as helm-present --priority)"),
    ("eval-files", "string", DEFAULT_EVAL_FILES, "glob patterns of eval files to collect"),
    # dialogue games (pytest_llmeval/games/)
    ("players", "string", None,
     "pair models in two-player games: 'A,B' (several pairings separated by spaces); default: self-play"),
    ("max-episodes", "string", None,
     "play a seeded sample of at most N episodes per game experiment; overrides an entry's own max_episodes "
     "('all': none of those limits)"),
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
]
_FLAGS: list[tuple[str, str]] = [
    ("update-baseline", "rewrite the compared (or named) baseline from this session's runs"),
    ("no-report", "do not write report.html (summary.json is still written)"),
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


def _value(config: pytest.Config, name: str) -> Any:
    key = f"llmeval_{name.replace('-', '_')}"
    value = config.getoption(key)
    return value if value is not None else config.getini(key)


@dataclass(frozen=True)
class Settings:
    """The options resolved once; relative paths are taken from the rootdir."""

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

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        root = config.rootpath

        def path(name: str) -> Path:
            value = Path(str(_value(config, name))).expanduser()
            return value if value.is_absolute() else root / value

        data_dir = _value(config, "data-dir")
        if data_dir and not Path(data_dir).expanduser().is_absolute():
            data_dir = str(root / data_dir)
        return cls(
            models=str(_value(config, "models")),
            local_path=path("local-path"),
            data_dir=data_dir or None,
            output_path=path("output-path"),
            suite=str(_value(config, "suite")),
            max_eval_instances=_limit_option(_value(config, "max-eval-instances"), "--llmeval-max-eval-instances"),
            priority=_int_option(_value(config, "priority"), "--llmeval-priority"),
            eval_files=tuple(str(_value(config, "eval-files")).split()),
            disable_cache=bool(_value(config, "disable-cache")),
            players=str(_value(config, "players") or "") or None,
            max_episodes=_limit_option(_value(config, "max-episodes"), "--llmeval-max-episodes"),
        )


def _int_option(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{name} takes a whole number, not {value!r}") from exc
    if number < 1:
        raise pytest.UsageError(f"{name} must be at least 1, not {number}")
    return number


def _limit_option(value: Any, name: str) -> int | Literal["all"] | None:
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    return _int_option(value, name)


def pick_limit(command_line: int | Literal["all"] | None, own: int | None) -> int | None:
    """The limit a run gets: the command line's when given (``all`` lifts every limit), else the
    entry's own, so one eval file serves a quick default run and a full one."""
    if command_line == "all":
        return None
    return own if command_line is None else command_line
