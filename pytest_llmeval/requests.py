"""Requests to a model and what comes back: the one vocabulary every client speaks.

Field names follow HELM's ``Request``/``RequestResult`` so that ``scenario_state.json`` reads
the same as HELM's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.plain import plain


@dataclass(frozen=True)
class Message:
    """One chat turn; ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Request:
    """What to ask a model. Either ``prompt`` (plain text) or ``messages`` (a chat) is used."""

    model_deployment: str
    model: str = ""
    prompt: str = ""
    messages: tuple[Message, ...] | None = None
    temperature: float = 0.0
    max_tokens: int = 100
    num_completions: int = 1
    top_k_per_token: int = 1
    stop_sequences: tuple[str, ...] = ()
    echo_prompt: bool = False
    top_p: float = 1.0
    # The prompt is the exact text the model sees: no chat template is put around it (lm-eval's
    # requests, whose contexts are already rendered). Only in the dict (and cache key) when set.
    verbatim: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; also the stable content of the cache key.

        Built field by field: ``dataclasses.asdict``'s deep copy is too slow for every request of
        a run. The same dict, key order included (fields typed as strings and numbers go as they
        are, since deep-copying those returns them unchanged).
        """
        data = {
            "model_deployment": self.model_deployment, "model": self.model, "prompt": self.prompt,
            "messages": None if self.messages is None else [
                m.to_dict() if type(m) is Message else plain(m) for m in self.messages],
            "temperature": self.temperature, "max_tokens": self.max_tokens, "num_completions": self.num_completions,
            "top_k_per_token": self.top_k_per_token, "stop_sequences": list(self.stop_sequences),
            "echo_prompt": self.echo_prompt, "top_p": self.top_p,
        }
        if self.verbatim:
            data["verbatim"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        data = dict(data)
        if data.get("messages") is not None:
            data["messages"] = tuple(Message(**m) for m in data["messages"])
        data["stop_sequences"] = tuple(data.get("stop_sequences", ()))
        return cls(**data)


@dataclass
class Token:
    """A generated token with its log-probability and, when asked, the top alternatives."""

    text: str
    logprob: float
    top_logprobs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "logprob": self.logprob, "top_logprobs": plain(self.top_logprobs)}


@dataclass
class GeneratedOutput:
    """One completion: text, total log-probability, tokens and why generation stopped."""

    text: str
    logprob: float = 0.0
    tokens: list[Token] = field(default_factory=list)
    finish_reason: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "logprob": self.logprob,
                "tokens": [t.to_dict() if type(t) is Token else plain(t) for t in self.tokens],
                "finish_reason": plain(self.finish_reason)}


@dataclass
class RequestResult:
    """The answer to one :class:`Request`. ``cached`` marks results served from the cache."""

    success: bool
    completions: list[GeneratedOutput] = field(default_factory=list)
    cached: bool = False
    request_time: float | None = None
    request_datetime: int | None = None
    error: str | None = None
    embedding: list[float] = field(default_factory=list)
    raw_request: Any = None
    raw_response: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The same dict as ``dataclasses.asdict`` (key order included), built without its deep copy."""
        return {
            "success": self.success,
            "completions": [c.to_dict() if type(c) is GeneratedOutput else plain(c) for c in self.completions],
            "cached": self.cached, "request_time": self.request_time, "request_datetime": self.request_datetime,
            "error": self.error,
            "embedding": plain(self.embedding), "raw_request": plain(self.raw_request),
            "raw_response": plain(self.raw_response),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestResult:
        data = dict(data)
        data["completions"] = [
            GeneratedOutput(
                text=c["text"],
                logprob=c.get("logprob", 0.0),
                tokens=[Token(**t) for t in c.get("tokens", [])],
                finish_reason=c.get("finish_reason"),
            )
            for c in data.get("completions", [])
        ]
        return cls(**data)

    @property
    def text(self) -> str:
        """The first completion's text, or ``""`` when there is none."""
        return self.completions[0].text if self.completions else ""


def truncate_at_stop(text: str, stop_sequences: tuple[str, ...] | list[str]) -> tuple[str, str | None]:
    """Cut ``text`` at the earliest stop sequence; return the text and the sequence hit."""
    cut, hit = len(text), None
    for stop in stop_sequences:
        if not stop:
            continue
        index = text.find(stop)
        if index != -1 and index < cut:
            cut, hit = index, stop
    return text[:cut], hit
