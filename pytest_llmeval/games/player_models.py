"""What stands behind a player: a registry model, a scripted list of replies, or the player's own code.

Every player model answers a chat with clembench's triple (:class:`Reply`): the exact prompt
object sent, the exact raw response, and the cleaned text the game master parses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.clients.hf_chat import merge_same_role
from pytest_llmeval.games.game_window import ChatTokenCounter, check_window
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.requests import Message

DEFAULT_MAX_TOKENS = 100


@dataclass
class Reply:
    prompt: Any
    response: Any
    text: str


class PlayerModelError(Exception):
    """The backend failed to answer (after its own retries)."""


class PlayerModel:
    """Base class; ``programmatic`` models leave the answer to the player's ``_custom_response``."""

    name: str = "programmatic"
    temperature: float = 0.0
    programmatic: bool = False
    #: requests to this model count toward clembench's request metrics
    counts_requests: bool = True

    def generate(self, messages: list[dict[str, str]]) -> Reply:
        raise NotImplementedError

    def reset(self) -> None:
        """Called before each episode (a script starts again from its first reply)."""

    def info(self) -> dict[str, Any]:
        return {"model_name": self.name, "temperature": self.temperature}

    def descriptor(self) -> str:
        """clembench's results-folder part for this model: ``<name>-t<temperature>``."""
        return f"{self.name.replace('/', '_')}-t{self.temperature}"


def as_messages(messages: Iterable[dict[str, str]]) -> list[Message]:
    """Chat dicts as :class:`Message`, consecutive same-role turns merged so roles alternate."""
    return merge_same_role([Message(m["role"], m["content"]) for m in messages])


class HandleModel(PlayerModel):
    """A registry model behind the request cache; checks the context window before each call."""

    def __init__(self, handle: ModelHandle, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 counter: ChatTokenCounter | None = None) -> None:
        self.handle = handle
        self.name = handle.name
        self.max_tokens = max_tokens
        self.counter = counter or ChatTokenCounter()
        self.cache_hits = 0
        self.requests = 0

    def generate(self, messages: list[dict[str, str]]) -> Reply:
        chat = as_messages(messages)
        check_window(chat, self.handle.deployment.max_sequence_length, self.max_tokens, self.counter, self.name)
        request = self.handle.request(messages=tuple(chat), max_tokens=self.max_tokens, temperature=self.temperature)
        [result] = self.handle.generate([request])
        self.requests += 1
        self.cache_hits += int(result.cached)
        if not result.success:
            raise PlayerModelError(f"{self.name}: {result.error or 'request failed'}")
        sent = result.raw_request if result.raw_request is not None else {
            "messages": [{"role": m.role, "content": m.content} for m in chat]}
        response = {
            "response": result.text,
            "raw_response": result.raw_response,
            "finish_reason": result.completions[0].finish_reason if result.completions else None,
            "cached": result.cached,
            "request_time": result.request_time,
        }
        return Reply(sent, response, result.text.strip())


class ScriptedModel(PlayerModel):
    """Replies from a list (or a function of the chat): a stand-in model for tests.

    Its requests count like a real model's, so tests can check the request metrics.
    """

    def __init__(self, replies: Sequence[str] | Callable[[list[dict[str, str]]], str], name: str = "scripted") -> None:
        self.name = name
        self._replies = replies if callable(replies) else list(replies)
        self._next = 0

    def reset(self) -> None:
        self._next = 0

    def generate(self, messages: list[dict[str, str]]) -> Reply:
        if callable(self._replies):
            text = self._replies(messages)
        else:
            if not self._replies:
                raise PlayerModelError(f"{self.name}: no scripted replies")
            text = self._replies[min(self._next, len(self._replies) - 1)]  # the last reply repeats
            self._next += 1
        chat = [{"role": m.role, "content": m.content} for m in as_messages(messages)]
        return Reply({"messages": chat}, {"response": text}, text.strip())


class ProgrammaticModel(PlayerModel):
    """clembench's CustomResponseModel: the player's own ``_custom_response`` answers."""

    programmatic = True
    counts_requests = False

    def __init__(self, name: str = "programmatic") -> None:
        self.name = name

