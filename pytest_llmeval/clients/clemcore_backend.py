"""clemcore's own backends behind the client protocol.

A clembench registry entry whose backend this plugin does not serve itself (anthropic, cohere,
google, mistral, openrouter, llamacpp, slurk, or a ``NAME_api.py`` file that clemcore finds in
the current directory) runs on clemcore's code: the backend comes from
``BackendRegistry.from_packaged_and_cwd_files().get_backend_for(backend)``, the model from its
``get_model_for(ModelSpec)``, and each request is one ``generate_response(messages)`` with the
request's temperature and max_tokens as the model's gen_args. Credentials are clemcore's
business: its backends read ``key.json`` from the current directory or ``~/.clemcore``.

Answers go through the cache like any client's; the cache identity is the entry's model spec,
the backend and clemcore's version. The model is built on the first request that reaches it,
so a run answered from the cache never loads clemcore. A request clemcore's backend fails on
comes back unsuccessful with one line naming the backend and the cause.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llmeval.clemcore_import import import_clemcore
from pytest_llmeval.clients.protocol import Capabilities, ClientBase
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, truncate_at_stop

CLEMCORE_HINT = "pip install 'pytest-llmeval[clembench]'"
CLASS_NAME = "pytest_llmeval.clients.ClemcoreBackendClient"


def clemcore_version() -> str | None:
    """The installed clemcore's version, or None when it is not installed (found without importing it)."""
    if importlib.util.find_spec("clemcore") is None:
        return None
    try:
        return importlib.metadata.version("clemcore")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def clemcore_backends_module() -> Any:
    """``clemcore.backends``, imported with the logging set-up as it was; None without clemcore."""
    if clemcore_version() is None:
        return None
    return import_clemcore("clemcore.backends")


def clemcore_backends() -> list[str] | None:
    """The backends clemcore finds now (the current directory's ``*_api.py`` files first, then its
    packaged ones), or None without clemcore."""
    try:
        module = clemcore_backends_module()
    except ImportError:
        return None
    if module is None:
        return None
    names = [str(row["backend"]) for row in module.BackendRegistry.from_packaged_and_cwd_files()]
    return list(dict.fromkeys(name for name in names if not name.startswith("_")))


class ClemcoreBackendClient(ClientBase):
    """Answers chat requests with clemcore's backend ``backend`` for the registry entry ``model_spec``.

    Requests run one at a time: a clemcore model carries its gen_args on itself.
    """

    batch_hint = 1  # each answer is cached as soon as it arrives

    def __init__(self, backend: str, model_spec: Mapping[str, Any], label: str = "") -> None:
        if not isinstance(backend, str) or not backend:
            raise ConfigError("must be a clemcore backend name", field="client_spec.args.backend")
        if not isinstance(model_spec, Mapping) or not model_spec.get("model_name"):
            raise ConfigError("must be a clemcore model spec with a model_name", field="client_spec.args.model_spec")
        self.version = clemcore_version()
        if self.version is None:
            raise ConfigError(f"backend {backend!r} runs on clemcore's own backend code, which is not installed "
                              f"({CLEMCORE_HINT})", field="backend")
        self.backend = backend
        self.model_spec = {**model_spec, "backend": backend}
        self.label = label or str(model_spec["model_name"])
        self._model: Any = None
        self._lock = threading.Lock()
        self._redactor = Redactor()

    def __repr__(self) -> str:
        return f"ClemcoreBackendClient(backend={self.backend!r}, model={self.model_spec['model_name']!r})"

    def identity(self) -> dict[str, Any]:
        """The entry's spec (but where it was read), the backend and clemcore's version; no key."""
        spec = {key: value for key, value in self.model_spec.items() if key != "lookup_source"}
        return {"class": CLASS_NAME, "clemcore": self.version, "backend": self.backend, "model_spec": spec}

    def capabilities(self) -> Capabilities:
        """clemcore's backends take chat messages and give text: no echo, no log-probabilities."""
        return Capabilities(raw_prompts=False)

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """One result per request, in order; the backend is set up on the first call."""
        if not requests:
            return []
        model = self._load()
        return [self._run(model, request) for request in requests]

    # --- clemcore ---------------------------------------------------------------------------

    def _load(self) -> Any:
        """clemcore's model for the spec; a backend that cannot be set up is a one-line ConfigError."""
        with self._lock:
            if self._model is not None:
                return self._model
            try:
                backends = clemcore_backends_module()
            except ImportError as exc:
                raise ConfigError(f"backend {self.backend!r} needs clemcore, which does not import ({exc}; "
                                  f"{CLEMCORE_HINT})", field="backend") from exc
            if backends is None:
                raise ConfigError(f"backend {self.backend!r} runs on clemcore's own backend code, which is not "
                                  f"installed ({CLEMCORE_HINT})", field="backend")
            registry = backends.BackendRegistry.from_packaged_and_cwd_files()
            if not registry.is_supported(self.backend):
                raise ConfigError(f"clemcore {self.version} has no backend {self.backend!r} (nor a "
                                  f"{self.backend}_api.py in the current directory)", field="backend")
            try:
                backend = registry.get_backend_for(self.backend)
                model = backend.get_model_for(backends.ModelSpec.from_dict(dict(self.model_spec)))
            except Exception as exc:
                raise ConfigError(f"clemcore's {self.backend} backend cannot serve {self.label}: {_describe(exc)}",
                                  field="backend") from exc
            key = getattr(backend, "key", None)
            if isinstance(key, Mapping):
                self._redactor = Redactor([str(value) for name, value in key.items()
                                           if value and not str(name).lower().endswith("url")])
            self._model = model
            return model

    def _run(self, model: Any, request: Request) -> RequestResult:
        """One request: the backend's answer, cut at the stop sequences; any failure unsuccessful."""
        started_at = int(time.time())
        started = time.perf_counter()
        messages = _messages(request)
        unsupported = _unsupported(request)
        if unsupported:
            return RequestResult(success=False, error=f"{self.label}: clemcore's {self.backend} backend {unsupported}",
                                 request_datetime=started_at, raw_request=messages)
        prompts: list[Any] = []
        responses: list[Any] = []
        outputs: list[GeneratedOutput] = []
        try:
            with self._lock:
                model.set_gen_args(temperature=request.temperature, max_tokens=request.max_tokens)
                for _ in range(max(1, request.num_completions)):
                    prompt, response, text = model.generate_response([dict(m) for m in messages])
                    prompts.append(_jsonable(prompt))
                    responses.append(_jsonable(response))
                    outputs.append(_output(str(text), request))
        except Exception as exc:  # the backend's own failure (its retries spent): the other requests still count
            error = self._redactor.text(f"{self.label}: clemcore's {self.backend} backend raised {_describe(exc)}")
            return RequestResult(success=False, error=error, request_time=time.perf_counter() - started,
                                 request_datetime=started_at, raw_request=messages)
        single = len(outputs) == 1
        return RequestResult(
            success=True, completions=outputs, request_time=time.perf_counter() - started,
            request_datetime=started_at, raw_request=self._redactor.value(prompts[0] if single else prompts),
            raw_response=self._redactor.value(responses[0] if single else responses),
        )


# --- helpers ---------------------------------------------------------------------------------


def _messages(request: Request) -> list[dict[str, str]]:
    """The chat clemcore's ``generate_response`` takes; a plain prompt is one user turn."""
    if request.messages is not None:
        return [{"role": m.role, "content": m.content} for m in request.messages]
    return [{"role": "user", "content": request.prompt}]


def _unsupported(request: Request) -> str | None:
    """What the request asks that a clemcore backend cannot give, or None."""
    if request.echo_prompt:
        return "cannot echo the prompt (no prompt log-probabilities)"
    if request.top_k_per_token > 1:
        return "gives no token log-probabilities"
    if request.verbatim and request.messages is None:
        return "takes chat messages, not a raw prompt (lm-eval's verbatim requests)"
    return None


def _output(text: str, request: Request) -> GeneratedOutput:
    cut, hit = truncate_at_stop(text, request.stop_sequences)
    finish = {"reason": "stop", "stop_sequence": hit} if hit is not None else None
    return GeneratedOutput(text=cut, finish_reason=finish)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data (a backend's prompt and response objects may hold anything)."""
    return json.loads(json.dumps(value, default=str))


def _describe(exc: BaseException) -> str:
    """``ValueError: boom``: the exception's type and the first line of its message."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
