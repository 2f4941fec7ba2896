"""Plugging in any Python model: a function or object named in a deployment's client_spec.

The contract (documented in the README): ``generate(requests: list[Request])`` returns one
item per request, each either a :class:`RequestResult` or a plain ``str`` (the completion
text). A class named in ``class_name`` is instantiated with the spec's ``args``.

A model function that raises, or returns anything else, fails the run with one line naming
the deployment and the problem (the function's traceback shows under ``-v``); the batches
already answered stay in the cache.
"""

from __future__ import annotations

import importlib
import inspect
import reprlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.errors import ConfigError, UserModelError
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult

EXPECTED = "expected a list with one str or RequestResult per request"


def import_object(dotted: str) -> Any:
    """Import ``pkg.module:attr`` or ``pkg.module.attr``."""
    if ":" in dotted:
        module_name, _, attr = dotted.partition(":")
    else:
        module_name, _, attr = dotted.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{dotted!r} is not a dotted path such as 'my_models:generate'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class CallableClient(ClientBase):
    """Adapts a user's function or object to the client protocol."""

    def __init__(self, target: Any, args: dict[str, Any] | None = None, name: str = "",
                 deployment: str = "") -> None:
        args = dict(args or {})
        self._spec_args = dict(args)  # constructor args too: they shape the answers, so the cache key
        self._label = deployment or name or repr(target)
        if inspect.isclass(target):
            try:
                target = target(**args)
            except TypeError:
                raise  # the spec's args do not fit: the factory names the field
            except Exception as exc:
                raise UserModelError(f"{self._label}: building {name or target.__qualname__} raised "
                                     f"{_describe(exc)}") from exc
            args = {}
        generate = getattr(target, "generate", None)
        self._generate: Callable[..., Any]
        if callable(generate):
            self._generate = generate
            self._what = "the model's generate()"
        elif callable(target):
            self._generate = target
            self._what = "the model function"
        else:
            raise ConfigError(f"{name or target!r} has no generate(requests) method and is not callable",
                              field="client_spec.class_name")
        self._target = target
        self._args = args
        self.batch_hint = int(getattr(target, "batch_hint", 0) or 0) or 16
        self._name = name

    def identity(self) -> dict[str, Any]:
        own = getattr(self._target, "identity", None)
        if callable(own):
            return dict(own())
        return {"callable": self._name, "args": self._spec_args}

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        started = time.perf_counter()
        try:
            returned = self._generate(list(requests), **self._args)
            answers = list(returned) if _is_sequence(returned) else None
        except Exception as exc:
            raise UserModelError(f"{self._label}: {self._what} raised {_describe(exc)}") from exc
        if answers is None:
            raise UserModelError(f"{self._label}: {self._what} returned {_short(returned)}; {EXPECTED}")
        if len(answers) != len(requests):
            raise UserModelError(f"{self._label}: {self._what} returned {len(answers)} items for "
                                 f"{len(requests)} requests; {EXPECTED}")
        wrong = next((i for i, a in enumerate(answers) if not isinstance(a, (RequestResult, str))), None)
        if wrong is not None:
            raise UserModelError(f"{self._label}: {self._what} returned {_short(answers)}; {EXPECTED} "
                                 f"(item {wrong} is {type(answers[wrong]).__name__})")
        elapsed = (time.perf_counter() - started) / max(1, len(requests))
        return [_as_result(answer, elapsed) for answer in answers]


def _is_sequence(value: Any) -> bool:
    """A list (or another iterable of answers), not a lone string, mapping or None."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))


def _short(value: Any) -> str:
    """A value's repr, cut to fit one line."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    return " ".join(short.repr(value).split())


def _describe(exc: BaseException) -> str:
    """``ValueError: boom``: the exception's type and the first line of its message."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _as_result(answer: RequestResult | str, elapsed: float) -> RequestResult:
    if isinstance(answer, RequestResult):
        if answer.request_time is None:
            answer.request_time = elapsed
        return answer
    return RequestResult(success=True, completions=[GeneratedOutput(text=answer)], request_time=elapsed,
                         request_datetime=int(time.time()))
