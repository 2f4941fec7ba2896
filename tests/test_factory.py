"""From a deployment's client_spec to a client: HELM class names, credentials, Python callables, errors."""

from __future__ import annotations

import importlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients import check_client_spec, hf_loading, make_client, openai_compatible
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import identity_for
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient
from pytest_llmeval.clients.protocol import client_identity
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import DEFAULT_MODEL, ModelDeployment, ObjectSpec, Registry
from pytest_llmeval.requests import Request

SOURCE = "/prod_env/model_deployments.yaml"
SECRET = "sk-factory-test-0123456789abcdef"


def _deployment(class_name: str, args: dict[str, Any] | None = None, name: str = "my/model",
                model_name: str | None = None) -> ModelDeployment:
    return ModelDeployment(name=name, model_name=model_name or name,
                           client_spec=ObjectSpec(class_name, dict(args or {})), source=SOURCE)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key from the real environment or a stray key.json; loading weights is an error."""
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "GENERIC_OPENAI_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("constructing a client must not load a model or tokenizer")

    monkeypatch.setattr(hf_loading, "load_model", no_loading)
    monkeypatch.setattr(hf_loading, "load_tokenizer", no_loading)


@pytest.fixture()
def openai_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments each OpenAICompatibleClient was built with (it is still built for real)."""
    calls: list[dict[str, Any]] = []

    class Recording(OpenAICompatibleClient):
        def __init__(self, **kwargs: Any) -> None:
            calls.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(openai_compatible, "OpenAICompatibleClient", Recording)
    return calls


def _error(deployment: ModelDeployment, credentials: Credentials | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        make_client(deployment, credentials or Credentials())
    return excinfo.value


# --- class names ------------------------------------------------------------------------------------


def test_unknown_client_class() -> None:
    deployment = _deployment("nosuch_models.NoSuchClient")  # helm.clients.* names: tests/test_helm_bridge.py
    for call in (check_client_spec, lambda d: make_client(d, Credentials())):
        with pytest.raises(ConfigError) as excinfo:
            call(deployment)
        error = excinfo.value
        assert (error.file, error.entry, error.field) == (SOURCE, "my/model", "client_spec.class_name")
        text = str(error)
        assert SOURCE in text and "my/model" in text and "client_spec.class_name" in text
        assert "helm.clients.huggingface_client.HuggingFaceClient" in text  # the supported names are listed


@pytest.mark.parametrize("class_name", ["helm.clients.huggingface_client.HuggingFaceClient",
                                        "pytest_llmeval.clients.HuggingFaceClient"])
def test_helm_huggingface_class(class_name: str) -> None:
    deployment = _deployment(class_name, {"revision": "main"}, name="huggingface/gpt2", model_name="openai/gpt2")
    check_client_spec(deployment)
    client = make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient)
    assert client.source.path == "openai/gpt2"  # the model name, when args do not name the weights
    assert client.source.revision == "main"


def test_huggingface_args_name_the_weights(tmp_path: Path) -> None:
    client = make_client(_deployment("helm.clients.huggingface_client.HuggingFaceClient",
                                     {"pretrained_model_name_or_path": str(tmp_path), "torch_dtype": "bfloat16"}),
                         Credentials())
    assert isinstance(client, HuggingFaceClient)
    assert client.source.path == str(tmp_path) and client.torch_dtype == "bfloat16"


def test_unexpected_args() -> None:
    for class_name in ("helm.clients.huggingface_client.HuggingFaceClient",
                       "pytest_llmeval.clients.OpenAICompatibleClient"):
        error = _error(_deployment(class_name, {"base_url": "http://127.0.0.1:1/v1", "bogus_option": 1}))
        assert (error.file, error.entry, error.field) == (SOURCE, "my/model", "client_spec.args")
        assert "bogus_option" in str(error)


def test_bad_arg_value_keeps_its_field() -> None:
    error = _error(_deployment("pytest_llmeval.clients.OpenAICompatibleClient", {"base_url": "ftp://x"}))
    assert (error.file, error.entry, error.field) == (SOURCE, "my/model", "client_spec.args.base_url")
    assert str(error).count("client_spec.args.base_url") == 1


def test_openai_compatible_needs_base_url() -> None:
    error = _error(_deployment("pytest_llmeval.clients.OpenAICompatibleClient", {"model": "m"}))
    assert error.field == "client_spec.args.base_url" and error.file == SOURCE


# --- credentials --------------------------------------------------------------------------------------


def _openai_deployment() -> ModelDeployment:
    return _deployment("helm.clients.openai_client.OpenAIClient", name="openai/gpt-4o-mini-2024-07-18")


def _check_key(client: Any, calls: list[dict[str, Any]]) -> None:
    assert isinstance(client, OpenAICompatibleClient)
    assert calls[-1]["api_key"] == SECRET
    assert SECRET not in json.dumps(client.identity())
    assert SECRET not in repr(client)


def test_api_key_from_credentials_conf(tmp_path: Path, openai_calls: list[dict[str, Any]]) -> None:
    (tmp_path / "credentials.conf").write_text(f'openaiApiKey: "{SECRET}"\n')
    client = make_client(_openai_deployment(), Credentials.load(tmp_path))
    _check_key(client, openai_calls)
    assert isinstance(client, OpenAICompatibleClient)
    assert client.base_url == "https://api.openai.com/v1"
    assert client.model == "gpt-4o-mini-2024-07-18"  # HELM's OpenAIClient sends the model engine


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch, openai_calls: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    _check_key(make_client(_openai_deployment(), Credentials()), openai_calls)


def test_api_key_from_key_json(tmp_path: Path, openai_calls: list[dict[str, Any]]) -> None:
    (tmp_path / "key.json").write_text(json.dumps({"openai": {"organization": "", "api_key": SECRET}}))
    _check_key(make_client(_openai_deployment(), Credentials.load(tmp_path)), openai_calls)


def test_api_key_env_arg(monkeypatch: pytest.MonkeyPatch, openai_calls: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("MY_SERVER_TOKEN", SECRET)
    deployment = _deployment("pytest_llmeval.clients.OpenAICompatibleClient",
                             {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "MY_SERVER_TOKEN"})
    _check_key(make_client(deployment, Credentials()), openai_calls)
    assert "api_key_env" not in openai_calls[-1]


def test_no_key_is_fine_for_a_local_server(openai_calls: list[dict[str, Any]]) -> None:
    client = make_client(Registry.load().deployment("local-server/smollm2-135m-instruct"), Credentials())
    assert isinstance(client, OpenAICompatibleClient)
    assert "api_key" not in openai_calls[-1]
    assert client.model == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_helm_model_arguments(openai_calls: list[dict[str, Any]]) -> None:
    together = _deployment("helm.clients.together_client.TogetherChatClient",
                           {"together_model": "meta-llama/Llama-3-8b-chat-hf"}, name="together/llama-3-8b-chat")
    client = make_client(together, Credentials(values={"togetherApiKey": SECRET}))
    assert isinstance(client, OpenAICompatibleClient)
    assert (client.base_url, client.model) == ("https://api.together.xyz/v1", "meta-llama/Llama-3-8b-chat-hf")
    assert openai_calls[-1]["api_key"] == SECRET
    vllm = _deployment("helm.clients.vllm_client.VLLMClient", {"base_url": "http://127.0.0.1:1/v1"},
                       name="vllm/pythia-70m", model_name="eleutherai/pythia-70m")
    client = make_client(vllm, Credentials())
    assert isinstance(client, OpenAICompatibleClient)
    # HELM's VLLMClient sends the model engine (``request.model_engine``) without vllm_model_name
    assert (client.api, client.model) == ("completions", "pythia-70m")
    named = _deployment("helm.clients.openai_client.OpenAIClient", {"openai_model_name": "gpt-4o"}, name="openai/x")
    assert make_client(named, Credentials()).identity()["model"] == "gpt-4o"  # type: ignore[attr-defined]


def test_clembench_backends(tmp_path: Path, openai_calls: list[dict[str, Any]]) -> None:
    (tmp_path / "model_registry.json").write_text(json.dumps([
        {"model_name": "gpt-4o-mini", "backend": "openai", "model_id": "gpt-4o-mini-2024-07-18"},
        {"model_name": "my-server-model", "backend": "generic_openai_compatible", "model_id": "served"},
    ]))
    (tmp_path / "key.json").write_text(json.dumps({
        "openai": {"organization": None, "api_key": SECRET},
        "generic_openai_compatible": {"api_key": "other-key", "base_url": "http://127.0.0.1:1/v1"},
    }))
    registry, credentials = Registry.load(tmp_path), Credentials.load(tmp_path)
    client = make_client(registry.deployment("gpt-4o-mini"), credentials)
    _check_key(client, openai_calls)
    assert isinstance(client, OpenAICompatibleClient)
    assert (client.base_url, client.model) == ("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18")
    assert "backend" not in openai_calls[-1]
    client = make_client(registry.deployment("my-server-model"), credentials)
    assert isinstance(client, OpenAICompatibleClient)
    assert (client.base_url, client.model) == ("http://127.0.0.1:1/v1", "served")
    assert openai_calls[-1]["api_key"] == "other-key"


# --- Python callables ----------------------------------------------------------------------------------


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_python_callable_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "llmeval_factory_mod_a", """
        def generate(requests, style="plain"):
            return [f"{style}:{r.prompt}" for r in requests]
    """)
    deployment = _deployment("llmeval_factory_mod_a:generate", {"style": "fancy"}, name="python/mine")
    check_client_spec(deployment)
    client = make_client(deployment, Credentials())
    assert isinstance(client, CallableClient)
    results = client.generate([Request(model_deployment="python/mine", prompt="hi")])
    assert [r.text for r in results] == ["fancy:hi"]
    assert client.identity() == {"callable": "llmeval_factory_mod_a:generate", "args": {"style": "fancy"}}


def test_python_class_with_unexpected_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "llmeval_factory_mod_b", """
        class Model:
            def __init__(self, size=1):
                self.size = size
            def generate(self, requests):
                return ["x" * self.size for _ in requests]
    """)
    ok = make_client(_deployment("llmeval_factory_mod_b.Model", {"size": 3}), Credentials())
    assert [r.text for r in ok.generate([Request(model_deployment="d", prompt="p")])] == ["xxx"]
    error = _error(_deployment("llmeval_factory_mod_b.Model", {"colour": "red"}))
    assert (error.file, error.entry, error.field) == (SOURCE, "my/model", "client_spec.args")
    assert "colour" in str(error)


def test_python_object_that_cannot_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "llmeval_factory_mod_c", "VALUE = 42\n")
    error = _error(_deployment("llmeval_factory_mod_c:VALUE"))
    assert (error.file, error.entry, error.field) == (SOURCE, "my/model", "client_spec.class_name")
    assert str(error).count("client_spec.class_name") == 1


def test_python_callable_missing_attribute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "llmeval_factory_mod_d", "def generate(requests):\n    return []\n")
    error = _error(_deployment("llmeval_factory_mod_d:generat"))
    assert error.field == "client_spec.class_name" and "generat" in str(error)


def test_identity_for_a_callable_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "llmeval_factory_mod_e", """
        BUILT = []
        class Model:
            def __init__(self, size=1):
                BUILT.append(size)
            def generate(self, requests):
                return ["x" for _ in requests]
    """)
    deployment = _deployment("llmeval_factory_mod_e:Model", {"size": 2})
    identity = identity_for(deployment, Credentials())
    built = importlib.import_module("llmeval_factory_mod_e").BUILT
    assert built == []
    # The cache key made before building must match the built client's own identity.
    assert identity == client_identity(make_client(deployment, Credentials()))
    assert built == [2]


def test_identity_for_never_holds_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    identity = identity_for(_openai_deployment(), Credentials())
    assert identity is not None and identity["model"] == "gpt-4o-mini-2024-07-18"
    assert SECRET not in json.dumps(identity)


def test_a_built_in_client_is_built_once_for_identity_and_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.clients import factory

    built: list[object] = []
    real = factory.make_client

    def counting(deployment: object, credentials: Credentials, backends: object = factory.BUILTIN_BACKENDS) -> object:
        built.append(real(deployment, credentials, backends))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr("pytest_llmeval.session.make_client", counting)
    from pytest_llmeval.clients.cache import RequestCache
    from pytest_llmeval.scenarios import DataLocator
    from pytest_llmeval.session import LLMEvalSession

    session = LLMEvalSession(None, Registry.load(), Credentials(), DataLocator.from_settings(None),  # type: ignore[arg-type]
                             RequestCache(tmp_path / "requests.sqlite"), [DEFAULT_MODEL])
    handle = session.handle(DEFAULT_MODEL)
    assert handle.client.identity()["dtype"] == "float32"
    assert handle.client.client is built[0] and len(built) == 1
