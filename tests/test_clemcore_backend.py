"""clembench entries on clemcore's own backend code, against a real chat server on loopback.

clemcore's ``openai_compatible`` backend (its GenericOpenAI class, keyed by ``key.json``) and a
backend clemcore finds as ``NAME_api.py`` in the working directory answer through
:class:`ClemcoreBackendClient`: gen_args, clemcore's message handling, the cache (keyed by the
model spec), credentials from clemcore's KeyRegistry, and failures as one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("clemcore")

from pytest_llmeval.clients import Credentials, make_client
from pytest_llmeval.clients.cache import CachingClient, RequestCache
from pytest_llmeval.clients.clemcore_backend import ClemcoreBackendClient, clemcore_backends_module
from pytest_llmeval.clients.factory import identity_for
from pytest_llmeval.clients.redaction import MARKER
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import Registry
from pytest_llmeval.requests import Message, Request
from tests.servers import JSONHandler, LoopbackHTTPServer

clemcore_backends_module()  # imported once here, not inside a pytester run (which drops what it imports)

KEY = "sk-loopback-0123456789SECRET"

# A backend of the user's own, as clemcore finds it: a RemoteBackend keyed by key.json's "loopback".
LOOPBACK_API = '''
import json
import urllib.request

import clemcore.backends as backends


class Loopback(backends.RemoteBackend):
    def _make_api_client(self):
        return self.key["base_url"]

    def get_model_for(self, model_spec):
        return LoopbackModel(self.client, self.key["api_key"], model_spec)


class LoopbackModel(backends.Model):
    def __init__(self, base_url, api_key, model_spec):
        super().__init__(model_spec)
        self.base_url, self.api_key = base_url, api_key

    def generate_response(self, messages):
        body = {"model": self.model_spec.model_id, "messages": messages, **self.gen_args,
                "style": self.model_spec.model_config["style"]}
        request = urllib.request.Request(self.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + self.api_key})
        with urllib.request.urlopen(request, timeout=30) as answer:
            response = json.load(answer)
        return body, response, response["choices"][0]["message"]["content"].strip()
'''


class ChatServer(LoopbackHTTPServer):
    """An OpenAI chat endpoint: answers with what it was sent, echoing the Authorization header
    into ``system_fingerprint``; a last message containing "fail" gets HTTP 400."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                auth = self.headers.get("Authorization", "")
                with lock:
                    server.calls.append({"path": self.path, "auth": auth, "body": body})
                last = body["messages"][-1]["content"]
                status = 400 if "fail" in last else 200
                content = (f"  {body['model']} heard {last!r} at t={body.get('temperature')} "
                           f"max={body.get('max_tokens')}. STOP then more  ")
                answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                          "system_fingerprint": auth,
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": content}}]}
                if status == 400:
                    answer = {"error": {"message": "refused", "type": "invalid_request_error"}}
                self.send_json(status, answer)

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"


@pytest.fixture
def server() -> Any:
    with ChatServer() as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory clemcore looks in (key.json, NAME_api.py); no ~/.clemcore keys."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _keys(project: Path, **entries: dict[str, str]) -> None:
    (project / "key.json").write_text(json.dumps(entries))


def _loopback_project(project: Path, server: ChatServer, style: str = "terse") -> Registry:
    (project / "loopback_api.py").write_text(LOOPBACK_API)
    _keys(project, loopback={"api_key": KEY, "base_url": server.base_url})
    (project / "prod_env").mkdir(exist_ok=True)
    (project / "prod_env" / "model_registry.json").write_text(json.dumps([
        {"model_name": "loop", "backend": "loopback", "model_id": "loop-1", "context_size": "",
         "model_config": {"style": style}}]))
    return Registry.load(project / "prod_env")


def test_clemcores_generic_openai_backend(project: Path, server: ChatServer) -> None:
    _keys(project, openai_compatible={"api_key": KEY, "base_url": server.base_url})
    client = ClemcoreBackendClient("openai_compatible", {
        "model_name": "served", "model_id": "served-id", "backend": "openai_compatible",
        "model_config": {"extra_body": {"top_k": 3}}})
    assert client.capabilities().raw_prompts is False
    chat = (Message("user", "first"), Message("user", "second"))  # clemcore merges same-role turns
    results = client.generate([Request("served", messages=chat, temperature=0.5, max_tokens=7),
                               Request("served", prompt="plain", stop_sequences=("STOP",))])
    assert [r.success for r in results] == [True, True]
    first, plain = results
    assert first.text == "served-id heard 'first\\n\\nsecond' at t=0.5 max=7. STOP then more"  # stripped
    assert plain.text == "served-id heard 'plain' at t=0.0 max=100. "
    assert plain.completions[0].finish_reason == {"reason": "stop", "stop_sequence": "STOP"}
    call = server.calls[0]
    assert call["path"] == "/v1/chat/completions" and call["auth"] == f"Bearer {KEY}"
    assert call["body"]["messages"] == [{"role": "user", "content": "first\n\nsecond"}]
    assert call["body"]["top_k"] == 3  # clemcore sends model_config.extra_body
    assert first.raw_request == [{"role": "user", "content": "first\n\nsecond"}]  # clemcore's prompt object
    assert first.raw_response["clem_player"]["model_name"] == "served"
    assert first.raw_response["system_fingerprint"] == f"Bearer {MARKER}"  # the echoed key is redacted
    assert KEY not in json.dumps([r.to_dict() for r in results])
    assert client.identity() == {"class": "pytest_llmeval.clients.ClemcoreBackendClient",
                                 "clemcore": client.version, "backend": "openai_compatible",
                                 "model_spec": {"model_name": "served", "model_id": "served-id",
                                                "backend": "openai_compatible",
                                                "model_config": {"extra_body": {"top_k": 3}}}}


def test_a_working_directory_backend_through_the_registry_and_the_cache(project: Path, server: ChatServer) -> None:
    registry = _loopback_project(project, server)
    assert registry.select("loop") == ["loop"]
    cache = RequestCache(project / "cache.sqlite")
    request = Request("loop", messages=(Message("user", "hello"),), max_tokens=5, num_completions=2)

    def cached_client(registry: Registry) -> CachingClient:
        deployment = registry.deployment("loop")
        credentials = Credentials.load(project / "prod_env")
        build = lambda: make_client(deployment, credentials)  # noqa: E731
        return CachingClient("loop", build, identity_for(deployment, credentials, build), cache)

    (answer,) = cached_client(registry).generate([request])
    assert answer.success and not answer.cached
    assert [c.text for c in answer.completions] == ["loop-1 heard 'hello' at t=0.0 max=5. STOP then more"] * 2
    assert [c["body"]["style"] for c in server.calls] == ["terse", "terse"]  # model_config reached the backend
    assert len(answer.raw_request) == 2 and answer.raw_request[0]["model"] == "loop-1"

    (again,) = cached_client(Registry.load(project / "prod_env")).generate([request])
    assert again.cached and again.text == answer.text and len(server.calls) == 2
    # another model spec is another cache key
    (other,) = cached_client(_loopback_project(project, server, style="chatty")).generate([request])
    assert not other.cached and len(server.calls) == 4 and server.calls[-1]["body"]["style"] == "chatty"


def test_a_failing_request_is_one_unsuccessful_line(project: Path, server: ChatServer) -> None:
    registry = _loopback_project(project, server)
    client = make_client(registry.deployment("loop"), Credentials())
    results = client.generate([Request("loop", prompt="please fail"), Request("loop", prompt="fine"),
                               Request("loop", prompt="echo", echo_prompt=True, max_tokens=0)])
    assert [r.success for r in results] == [False, True, False]
    assert results[0].error == "loop: clemcore's loopback backend raised HTTPError: HTTP Error 400: Bad Request"
    assert results[2].error == "loop: clemcore's loopback backend cannot echo the prompt (no prompt log-probabilities)"
    assert len(server.calls) == 2  # the echo request never left


def test_missing_key_or_backend_is_a_one_line_error(project: Path, server: ChatServer) -> None:
    registry = _loopback_project(project, server)
    _keys(project, other={"api_key": KEY})
    client = make_client(registry.deployment("loop"), Credentials())
    with pytest.raises(ConfigError) as excinfo:
        client.generate([Request("loop", prompt="hi")])
    message = str(excinfo.value)
    assert message.startswith("field backend: clemcore's loopback backend cannot serve loop: AssertionError: "
                              "No 'loopback' in "), message
    assert "\n" not in message and not server.calls
    nowhere = ClemcoreBackendClient("nowhere", {"model_name": "n"})
    with pytest.raises(ConfigError, match=r"clemcore 3\.7\.\d+ has no backend 'nowhere' \(nor a nowhere_api\.py"):
        nowhere.generate([Request("n", prompt="hi")])


def test_an_eval_runs_on_a_clemcore_backend(pytester: pytest.Pytester, server: ChatServer) -> None:
    """End to end through pytest: MMLU on the working directory's backend, then again from the cache."""
    _loopback_project(pytester.path, server)
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    args = ("--llmeval-models", "loop", "--llmeval-max-eval-instances", "3", "-p", "no:cacheprovider", "-rA")
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*requests: 3, cache hits: 0*",
                                "*PASSED eval_mmlu.yaml::mmlu:subject=anatomy*loop*"])
    assert len(server.calls) == 3 and all(c["auth"] == f"Bearer {KEY}" for c in server.calls)
    assert server.calls[0]["body"]["messages"][0]["content"].startswith(
        "The following are multiple choice questions (with answers) about anatomy.")
    second = pytester.runpytest(*args)
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*requests: 3, cache hits: 3*"])
    assert len(server.calls) == 3  # every answer from the cache
    written = b"".join(p.read_bytes() for p in pytester.path.rglob("*") if p.is_file() and p.name != "key.json")
    assert KEY.encode() not in written


def test_the_client_spec_can_name_the_client_directly(tmp_path: Path) -> None:
    """A model_deployments.yaml entry may name the class itself, with a backend and a spec."""
    (tmp_path / "model_deployments.yaml").write_text(textwrap.dedent("""\
        model_deployments:
          - name: clem/claude
            client_spec:
              class_name: pytest_llmeval.clients.ClemcoreBackendClient
              args: {backend: anthropic, model_spec: {model_name: claude, model_id: claude-x}}
    """))
    client = make_client(Registry.load(tmp_path).deployment("clem/claude"), Credentials())
    assert isinstance(client, ClemcoreBackendClient)
    assert client.identity()["model_spec"] == {"model_name": "claude", "model_id": "claude-x", "backend": "anthropic"}
    with pytest.raises(ConfigError, match=r"field client_spec\.args\.model_spec: must be a clemcore model spec"):
        ClemcoreBackendClient("anthropic", {"model_id": "x"})


def test_importing_clemcore_leaves_logging_as_it_was(tmp_path: Path) -> None:
    """clemcore's import-time dictConfig (root handlers replaced, loggers disabled, ./clembench.log)
    is undone: checked in a fresh process, where clemcore is not imported yet."""
    script = textwrap.dedent("""
        import logging, pathlib
        ours = logging.getLogger("pytest_llmeval.http")
        handler = logging.StreamHandler()
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        from pytest_llmeval.clients.clemcore_backend import clemcore_backends
        assert "openai_compatible" in clemcore_backends()
        import sys
        assert "clemcore" in sys.modules
        root = logging.getLogger()
        assert root.handlers == [handler] and root.level == logging.WARNING, (root.handlers, root.level)
        assert not ours.disabled
        assert not pathlib.Path("clembench.log").exists()
        print("kept")
    """)
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert completed.returncode == 0 and completed.stdout.strip() == "kept", completed.stderr[-2000:]
