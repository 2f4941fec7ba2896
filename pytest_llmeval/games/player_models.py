"""What stands behind a player: a registry model, a scripted list of replies, or the player's own code.

Every player model answers a chat with clembench's triple (:class:`Reply`): the exact prompt
object sent, the exact raw response, and the cleaned text the game master parses.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmeval.clients.hf_chat import merge_same_role
from pytest_llmeval.games.game_window import ChatTokenCounter, ContextOverflowError, check_window
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.requests import Message, Request, RequestResult

if TYPE_CHECKING:
    from pytest_llmeval.games.lockstep import Lockstep

DEFAULT_MAX_TOKENS = 100
#: raw-response keys that describe the batch a request was answered in, not the request (how much
#: of the prompt the batch shared): left out of the records, which must not depend on batching
BATCH_KEYS = frozenset({"shared_prefix_tokens"})


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

    # --- episodes played side by side (see games/lockstep.py) --------------------------------

    @property
    def batches(self) -> bool:
        """Answers several chats in one call faster than one by one (a local model): its
        episodes are played in lockstep, so each turn's calls form one batch."""
        return False

    @property
    def concurrency(self) -> int | None:
        """How many calls it answers at once (a server's concurrency); None when unknown."""
        return None

    def episode_model(self, lockstep: Lockstep | None = None, index: int = 0) -> PlayerModel:
        """This model for one of several episodes played at once: a copy with its own
        per-episode state, whose calls wait for the turn's batch when ``lockstep`` is given."""
        model = copy.copy(self)
        if lockstep is not None:
            model.generate = lambda messages: lockstep.ask(self, model, index, messages)  # type: ignore[method-assign]
        return model

    def generate_batch(self, calls: Sequence[tuple[PlayerModel, list[dict[str, str]]]]) -> list[Reply | Exception]:
        """One reply (or the error that ends that episode) per ``(episode model, chat)``; by
        default one call after another, each on its episode's own copy."""
        replies: list[Reply | Exception] = []
        for model, messages in calls:
            try:
                replies.append(type(model).generate(model, messages))
            except Exception as exc:  # that episode's own failure, raised in its thread
                replies.append(exc)
        return replies

    def info(self) -> dict[str, Any]:
        return {"model_name": self.name, "temperature": self.temperature}

    def descriptor(self) -> str:
        """clembench's results-folder part for this model: ``<name>-t<temperature>``."""
        return f"{self.name.replace('/', '_')}-t{self.temperature}"


def as_messages(messages: Iterable[dict[str, str]]) -> list[Message]:
    """Chat dicts as :class:`Message`, consecutive same-role turns merged so roles alternate."""
    return merge_same_role([Message(m["role"], m["content"]) for m in messages])


class _Counts:
    """Requests and cache hits of one model, shared by the copies its episodes play with."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.cache_hits = 0
        #: the same request under way in another episode (threads against a server): its result
        self.in_flight: dict[str, _Pending] = {}


@dataclass
class _Pending:
    done: threading.Event
    result: RequestResult | None = None


class HandleModel(PlayerModel):
    """A registry model behind the request cache; checks the context window before each call."""

    def __init__(self, handle: ModelHandle, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 counter: ChatTokenCounter | None = None) -> None:
        self.handle = handle
        self.name = handle.name
        self.max_tokens = max_tokens
        self.counter = counter or ChatTokenCounter()
        self._counts = _Counts()

    @property
    def requests(self) -> int:
        return self._counts.requests

    @property
    def cache_hits(self) -> int:
        return self._counts.cache_hits

    @property
    def batches(self) -> bool:
        return self.handle.client.capabilities().loads_weights

    @property
    def concurrency(self) -> int | None:
        """The backend's own bound on requests under way (a server client's ``concurrency``)."""
        if self.batches:
            return None
        try:
            value = getattr(self.handle.client.client, "concurrency", None)
        except Exception:  # a client that cannot be built fails on its first request, as before
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None

    @property
    def _shares_results(self) -> bool:
        """With the cache on, a request asked again is served from it: the same holds for one
        asked by two episodes at once."""
        return getattr(self.handle.client, "cache", None) is not None

    def _request(self, messages: list[dict[str, str]]) -> tuple[list[Message], Request]:
        chat = as_messages(messages)
        with self._counts.lock:  # tokenizers are not safe to share between threads
            check_window(chat, self.handle.deployment.max_sequence_length, self.max_tokens, self.counter, self.name)
        return chat, self.handle.request(messages=tuple(chat), max_tokens=self.max_tokens,
                                         temperature=self.temperature)

    def generate(self, messages: list[dict[str, str]]) -> Reply:
        chat, request = self._request(messages)
        if not self._shares_results:
            [result] = self.handle.generate([request])
            return self._reply(chat, result)
        key = _request_key(request)
        with self._counts.lock:
            pending = self._counts.in_flight.get(key)
            first = pending is None
            if pending is None:
                pending = self._counts.in_flight[key] = _Pending(threading.Event())
        if not first:  # another episode asked the same just now: its answer, as the cache would give it
            pending.done.wait()
            if pending.result is not None and pending.result.success:
                return self._reply(chat, _as_cached(pending.result))
            [result] = self.handle.generate([request])
            return self._reply(chat, result)
        try:
            [result] = self.handle.generate([request])
            pending.result = result
        finally:
            with self._counts.lock:
                self._counts.in_flight.pop(key, None)
            pending.done.set()
        return self._reply(chat, result)

    def generate_batch(self, calls: Sequence[tuple[PlayerModel, list[dict[str, str]]]]) -> list[Reply | Exception]:
        """Every episode's call in one ``generate``; a request two episodes ask is sent once
        when the cache is on (the second is answered as the cache would answer it)."""
        replies: list[Reply | Exception | None] = [None] * len(calls)
        chats: dict[int, list[Message]] = {}
        send: list[Request] = []
        sent_as: dict[int, tuple[int, bool]] = {}  # call -> (position in send, a repeat)
        first: dict[str, int] = {}
        for i, (_, messages) in enumerate(calls):
            try:
                chats[i], request = self._request(messages)
            except ContextOverflowError as exc:
                replies[i] = exc
                continue
            key = _request_key(request) if self._shares_results else str(i)
            if key in first:
                sent_as[i] = (first[key], True)
            else:
                first[key] = len(send)
                sent_as[i] = (len(send), False)
                send.append(request)
        results = self.handle.generate(send, together=True) if send else []
        for i, (position, repeat) in sent_as.items():
            result = _as_cached(results[position]) if repeat else results[position]
            try:
                replies[i] = self._reply(chats[i], result)
            except PlayerModelError as exc:
                replies[i] = exc
        return [r if r is not None else PlayerModelError(f"{self.name}: no reply") for r in replies]

    def _reply(self, chat: list[Message], result: RequestResult) -> Reply:
        with self._counts.lock:
            self._counts.requests += 1
            self._counts.cache_hits += int(result.cached)
        if not result.success:
            raise PlayerModelError(f"{self.name}: {result.error or 'request failed'}")
        sent = result.raw_request if result.raw_request is not None else {
            "messages": [{"role": m.role, "content": m.content} for m in chat]}
        response = {
            "response": result.text,
            "raw_response": ({k: v for k, v in result.raw_response.items() if k not in BATCH_KEYS}
                             if isinstance(result.raw_response, dict) else result.raw_response),
            "finish_reason": result.completions[0].finish_reason if result.completions else None,
            "cached": result.cached,
            "request_time": result.request_time,
        }
        return Reply(sent, response, result.text.strip())


def _request_key(request: Request) -> str:
    return json.dumps(request.to_dict(), sort_keys=True, default=str)


def _as_cached(result: RequestResult) -> RequestResult:
    """A result as a second asker gets it from the cache: the same answer, marked cached (and
    only a successful one is stored)."""
    if not result.success:
        return result
    repeat = copy.copy(result)
    repeat.cached = True
    return repeat


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

