"""pytest-llmeval's hooks and fixtures. Each hook is thin and hands off to the session."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval import options
from pytest_llmeval.clients.accelerators import pin_worker_gpu
from pytest_llmeval.collect import EvalFile, is_eval_file
from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.games.games_summary import write_games_summary
from pytest_llmeval.games.items import GameFixture, collect_games_file
from pytest_llmeval.heap import freeze_for_exit
from pytest_llmeval.hosts import configure_node, export_host_slot
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.registry.entries import ModelMetadata
from pytest_llmeval.report.collector import REPORT_KEY, ReportSession, get_report
from pytest_llmeval.report.terminal import write_summary
from pytest_llmeval.session import LLMEvalSession
from pytest_llmeval.sharding import shard_finished, shard_items
from pytest_llmeval.watchdog import ControllerWatchdog

SESSION_KEY = pytest.StashKey[LLMEvalSession]()
WATCHDOG_KEY = pytest.StashKey[ControllerWatchdog | None]()

# --- options -----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_llmeval import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


# --- session -----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmeval: an item that runs a language-model evaluation")
    config.addinivalue_line("markers", "llmeval_models(*names): the models one test runs on")
    logging.getLogger("pytest_llmeval").setLevel(logging.INFO)
    export_host_slot(config)  # before any model loads: GPU pinning and thread limits read it
    pin_worker_gpu()
    config.stash[WATCHDOG_KEY] = ControllerWatchdog.for_worker(config)  # a worker ends with its controller
    config.stash[SESSION_KEY] = LLMEvalSession.from_config(config)
    config.stash[REPORT_KEY] = ReportSession.from_config(config, config.stash[SESSION_KEY].settings)
    config.pluginmanager.register(config.stash[REPORT_KEY], "llmeval-report")  # its logreport hook needs the config


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION_KEY in config.stash:
        config.stash[SESSION_KEY].close()
    freeze_for_exit(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A cold machine's one-time weight conversion, in the controller before xdist starts its
    workers (they would wait on it unseen), with its lines and progress bar on the terminal."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        get_session(config).convert_weights(terminal.write_line if terminal is not None else print)


def get_session(config: pytest.Config) -> LLMEvalSession:
    return config.stash[SESSION_KEY]


# --- collection --------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if is_eval_file(file_path, get_session(parent.config).settings.eval_files):
        return EvalFile.from_parent(parent, path=file_path)
    return collect_games_file(file_path, parent)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test using ``llm``, ``tokenizer`` or ``model_metadata`` runs once per selected model."""
    if "llmeval_model" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("llmeval_models")
    session = get_session(metafunc.config)
    models = session.registry.select(list(marker.args)) if marker else session.models
    metafunc.parametrize("llmeval_model", models, ids=models, scope="function")


@pytest.hookimpl(trylast=True)  # after -k and -m: the shards split what was selected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--llmeval-shard K/N``: keep this shard's share of the items."""
    shard_items(config, get_session(config).settings, items)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def llm(llmeval_model: str, pytestconfig: pytest.Config) -> ModelHandle:
    """A ready client for the model under test; the model loads once per process."""
    return get_session(pytestconfig).handle(llmeval_model)


@pytest.fixture
def tokenizer(llmeval_model: str, pytestconfig: pytest.Config) -> Any:
    """The model's tokenizer (loaded without the model's weights)."""
    return get_session(pytestconfig).tokenizer(llmeval_model)


@pytest.fixture
def model_metadata(llmeval_model: str, pytestconfig: pytest.Config) -> ModelMetadata:
    """The registry's metadata for the model under test."""
    session = get_session(pytestconfig)
    return session.registry.model_metadata(session.registry.deployment(llmeval_model).model_name)


@pytest.fixture
def play_game(pytestconfig: pytest.Config) -> GameFixture:
    """Plays episodes of a dialogue game: ``play_game("taboo", ["model", ScriptedModel([...])])``."""
    return GameFixture(get_session(pytestconfig), pytestconfig.rootpath,
                       on_result=get_report(pytestconfig).add_episodes)


@pytest.fixture(scope="session")
def llmeval_session(pytestconfig: pytest.Config) -> Iterator[LLMEvalSession]:
    """The plugin's session object: registry, cache and loaded models."""
    yield get_session(pytestconfig)


# --- reporting ---------------------------------------------------------------------------


def pytest_itemcollected(item: pytest.Item) -> None:
    get_report(item.config).item_collected(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    watchdog = session.config.stash.get(WATCHDOG_KEY, None)
    if watchdog is not None:  # from here on the controller may end before this worker does
        watchdog.stop()
    get_report(session.config).finish_session(session.config)
    shard_finished(session, get_session(session.config).settings)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: tell a starting worker its slot on its own host."""
    configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; merge the run records it sent."""
    get_report(node.config).merge_worker(getattr(node, "workeroutput", None))


def pytest_report_header(config: pytest.Config) -> str | None:
    """Deployments --llmeval-models' groups left out (e.g. their client classes need crfm-helm)."""
    return get_session(config).skipped_line() if SESSION_KEY in config.stash else None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    write_summary(terminalreporter, config)
    write_games_summary(terminalreporter, config)
    line = get_session(config).skipped_line() if SESSION_KEY in config.stash else None
    if line:  # now with the groups of the entries' own `model=`
        terminalreporter.write_line(line)


__all__ = ["LLMEvalError", "get_session"]
