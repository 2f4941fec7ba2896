"""Episodes of one game item played side by side, each in its own thread.

One game can take hours when its episodes are played one after another. Against a server the
episodes run concurrently, as many as the deployment takes at once. On a local model, which
answers a batch almost as fast as one chat, the episodes advance in lockstep: every model call
waits at a barrier (:class:`Lockstep`) until each episode still under way has asked for its next
reply or finished, and then all waiting calls go to the model as one batch. An episode that ends
(or fails) leaves the barrier, so the others never wait for it.

Each episode plays with its own copies of the player models (:meth:`PlayerModel.episode_model`),
so per-episode state stays apart and the records equal those of playing one at a time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pytest_llmeval.games.player_models import PlayerModel, Reply

T = TypeVar("T")
Setting = int | Literal["auto", "off"] | None


# --- how many at a time --------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodePlan:
    """``workers`` episodes under way at a time (1: one after another), in ``lockstep`` batches or not."""

    workers: int
    lockstep: bool = False

    @property
    def mode(self) -> str:
        return "sequential" if self.workers <= 1 else "lockstep" if self.lockstep else "threads"


def plan_episodes(models: Sequence[PlayerModel], setting: Setting, count: int) -> EpisodePlan:
    """``auto``: lockstep on a model that batches, a server's concurrency otherwise, one at a time
    for players whose backend says neither; ``N``: at most N at a time (and never more than a
    server's concurrency); ``off``: one at a time."""
    setting = "auto" if setting is None else setting
    asking = [m for m in models if not m.programmatic]
    if setting == "off" or setting == 1 or count <= 1 or (setting == "auto" and not asking):
        return EpisodePlan(1)
    if any(m.batches for m in asking):
        return EpisodePlan(count if setting == "auto" else min(setting, count), lockstep=True)
    bounds = [m.concurrency for m in asking if not m.batches]
    known = [b for b in bounds if b is not None]
    if setting == "auto":
        if len(known) < len(bounds) or not known:
            return EpisodePlan(1)
        return EpisodePlan(min(min(known), count))
    return EpisodePlan(min(setting, count, *known))


def episode_models(models: Sequence[PlayerModel], lockstep: Lockstep | None, index: int) -> list[PlayerModel]:
    """One episode's copies of the run's models (one copy per distinct model, so a model given
    twice stays one object, as when played one at a time)."""
    copies: dict[int, PlayerModel] = {}
    return [copies.setdefault(id(m), m.episode_model(lockstep, index)) for m in models]


# --- the barrier ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Call:
    origin: PlayerModel  # the run's model, which answers the batch
    model: PlayerModel  # the episode's copy
    index: int
    messages: list[dict[str, str]]
    done: bool = False
    answer: Any = None  # a Reply or the exception to raise in the episode


@dataclass
class Lockstep:
    """Gathers the model calls of the episodes under way into one batch per turn."""

    #: how many calls each batch held, in order (what a test or a log looks at)
    batch_sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._members = 0
        self._waiting: list[_Call] = []

    def join(self) -> None:
        """An episode starts: batches wait for its calls too."""
        with self._cond:
            self._members += 1

    def leave(self) -> None:
        """An episode ended (or failed): the others no longer wait for it."""
        with self._cond:
            self._members -= 1
            batch = self._take_full()
        if batch:
            self._send(batch)

    def ask(self, origin: PlayerModel, model: PlayerModel, index: int, messages: list[dict[str, str]]) -> Reply:
        """The reply to one episode's call, once the batch it is part of has been answered."""
        call = _Call(origin, model, index, [dict(m) for m in messages])
        with self._cond:
            self._waiting.append(call)
            batch = self._take_full()
        if batch:
            self._send(batch)
        with self._cond:
            while not call.done:
                self._cond.wait()
        if isinstance(call.answer, BaseException):
            raise call.answer
        return call.answer

    def _take_full(self) -> list[_Call]:
        """Every waiting call, in episode order, once no episode under way is still thinking."""
        if not self._waiting or len(self._waiting) < self._members:
            return []
        batch = sorted(self._waiting, key=lambda c: c.index)
        self._waiting = []
        self.batch_sizes.append(len(batch))
        return batch

    def _send(self, batch: list[_Call]) -> None:
        """Each model's calls as one batch; a failure goes to every call it answers."""
        by_model: dict[int, list[_Call]] = {}
        for call in batch:
            by_model.setdefault(id(call.origin), []).append(call)
        answers: list[tuple[_Call, Any]] = []
        for calls in by_model.values():
            try:
                replies: Sequence[Any] = calls[0].origin.generate_batch([(c.model, c.messages) for c in calls])
                if len(replies) != len(calls):
                    raise RuntimeError(f"{calls[0].origin.name}: {len(replies)} replies for {len(calls)} calls")
            except BaseException as exc:  # handed to the episodes that asked
                replies = [exc] * len(calls)
            answers.extend(zip(calls, replies))
        with self._cond:
            for call, answer in answers:
                call.answer = answer
                call.done = True
            self._cond.notify_all()


# --- the threads ---------------------------------------------------------------------------------


def play_side_by_side(positions: Sequence[int], play: Callable[[int, Lockstep | None], T], plan: EpisodePlan,
                      lockstep: Lockstep | None = None) -> list[T | BaseException]:
    """``play(position, lockstep)`` for every position, ``plan.workers`` at a time; the outcome of
    each, in the order given: its value, or the exception it raised (the others play on). A
    lockstep plan gets a barrier of its own unless one is given."""
    if lockstep is None and plan.lockstep and plan.workers > 1:
        lockstep = Lockstep()
    outcomes: list[T | BaseException | None] = [None] * len(positions)
    order = itertools.count()
    lock = threading.Lock()
    stop = threading.Event()

    def take() -> int | None:
        """The next episode's slot, which joins the barrier at once (before the one it follows
        leaves it), so no batch goes out without it."""
        with lock:
            slot = next(order)
        if slot >= len(positions) or stop.is_set():
            return None
        if lockstep is not None:
            lockstep.join()
        return slot

    def worker(slot: int | None) -> None:
        while slot is not None:
            following: int | None = None
            try:
                outcomes[slot] = play(positions[slot], lockstep)
            except BaseException as exc:  # kept, and raised by the caller in order
                outcomes[slot] = exc
            finally:
                following = take()
                if lockstep is not None:
                    lockstep.leave()
            slot = following

    first = [take() for _ in range(max(1, min(plan.workers, len(positions))))]
    threads = [threading.Thread(target=worker, args=(slot,), name=f"llmeval-episode-{n}", daemon=True)
               for n, slot in enumerate(first)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # a short wait, so Ctrl-C reaches this thread
    except BaseException:
        stop.set()  # no new episode starts; those under way finish on their own
        raise
    return [o if o is not None else RuntimeError("episode not played") for o in outcomes]
