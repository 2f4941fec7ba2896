"""The replicas of one model server: which are live, which is least busy, which cool down.

A fleet (the ranks of a vLLM data-parallel deployment, Ray Serve replicas, several
``transformers serve`` processes) serves one model from several URLs. :class:`ReplicaPool`
hands each request the least busy live replica that has a free slot (``capacity`` requests in
flight on each), so the fleet as a whole carries ``capacity`` times its live replicas. A replica
whose request failed is taken out for ``cooldown`` seconds; after that it gets one probe request
at a time and is put back when a probe is answered. When every replica is out,
:meth:`ReplicaPool.acquire` raises :class:`FleetDown`, one line naming the replicas and the last
error, instead of waiting for a fleet that may never return.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from pytest_llmeval.clients.protocol import Finished
from pytest_llmeval.errors import ClientError
from pytest_llmeval.requests import Request, RequestResult

log = logging.getLogger("pytest_llmeval.http")

DEFAULT_COOLDOWN_S = 30.0


class FleetDown(ClientError):
    """Every replica of a fleet is out: no request can be sent."""


class ReplicaFailed(Exception):
    """Raised by an attempt whose replica failed it (no answer, a timeout, a 5xx): try another."""


@dataclass
class Replica:
    """One server of the fleet and its bookkeeping (changed only under the pool's lock)."""

    index: int
    url: str
    in_flight: int = 0
    dispatched: int = 0
    answered: int = 0
    failures: int = 0
    out_until: float | None = None
    """While taken out: when it may be probed again (pool clock); None while live."""
    probing: bool = False
    last_error: str = ""

    @property
    def live(self) -> bool:
        return self.out_until is None


@dataclass(frozen=True)
class Lease:
    """A slot on one replica, held while one request is sent; ``probe``: it tests a replica that is out."""

    replica: Replica
    probe: bool = False


class ReplicaPool:
    """Thread-safe dispatch over replicas: least busy first, failed ones out until a probe answers.

    ``urls`` are only shown in messages (give them without credentials); ``clock`` is the time
    the cool-downs are measured in (a fake one in tests); ``label`` names the fleet in messages.
    """

    def __init__(self, urls: Sequence[str], capacity: int, cooldown: float = DEFAULT_COOLDOWN_S, *,
                 label: str = "the fleet", clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger = log, wait_s: float = 0.25) -> None:
        if not urls:
            raise ValueError("a replica pool needs at least one URL")
        if capacity < 1 or cooldown < 0:
            raise ValueError("capacity must be >= 1 and cooldown >= 0")
        self.replicas = [Replica(i, url) for i, url in enumerate(urls)]
        self.capacity = capacity
        self.cooldown = float(cooldown)
        self.label = label
        self._clock = clock
        self._log = logger
        self._wait_s = wait_s
        self._cond = threading.Condition()
        self._last_error = ""

    # --- dispatch ------------------------------------------------------------------------------

    def acquire(self) -> Lease:
        """A slot on the least busy live replica, or a probe of one whose cool-down is over.

        Blocks while every usable replica is busy (or a probe is under way); raises
        :class:`FleetDown` at once when every replica is out and none may be probed yet.
        """
        with self._cond:
            while True:
                lease = self._pick(self._clock())
                if lease is not None:
                    lease.replica.in_flight += 1
                    lease.replica.dispatched += 1
                    if lease.probe:
                        lease.replica.probing = True
                    return lease
                if not any(r.live or r.probing for r in self.replicas):
                    raise FleetDown(self.down_message())
                self._cond.wait(self._wait_s)

    def _pick(self, now: float) -> Lease | None:
        for replica in self.replicas:  # a replica due for its probe goes first, so it can come back
            if not replica.live and not replica.probing and replica.out_until is not None \
                    and replica.out_until <= now:
                return Lease(replica, probe=True)
        free = [r for r in self.replicas if r.live and r.in_flight < self.capacity]
        if not free:
            return None
        return Lease(min(free, key=lambda r: (r.in_flight, r.dispatched, r.index)))

    def answered(self, lease: Lease) -> None:
        """The replica answered (whatever the answer said); a probe puts it back."""
        with self._cond:
            replica = lease.replica
            replica.in_flight -= 1
            replica.answered += 1
            if lease.probe:
                replica.probing = False
                if not replica.live:
                    replica.out_until = None
                    self._log.warning("%s: replica %s answered again and is back (%d of %d live)", self.label,
                                      replica.url, self.live_count(), len(self.replicas))
            self._cond.notify_all()

    def failed(self, lease: Lease, error: str) -> None:
        """The replica failed (no answer, a timeout, a 5xx): out for the cool-down, from now."""
        error = " ".join(error.split())
        with self._cond:
            replica = lease.replica
            replica.in_flight -= 1
            replica.failures += 1
            replica.last_error = error
            self._last_error = error
            if lease.probe:
                replica.probing = False
            was_live = replica.live
            replica.out_until = self._clock() + self.cooldown
            if was_live or lease.probe:
                self._log.warning("%s: replica %s taken out for %g s (%d of %d live) after: %s", self.label,
                                  replica.url, self.cooldown, self.live_count(), len(self.replicas), error)
            self._cond.notify_all()

    def released(self, lease: Lease) -> None:
        """The request was abandoned (the run stopped): the slot is free, nothing is judged."""
        with self._cond:
            lease.replica.in_flight -= 1
            if lease.probe:
                lease.replica.probing = False
            self._cond.notify_all()

    # --- state ---------------------------------------------------------------------------------

    def live_count(self) -> int:
        return sum(1 for r in self.replicas if r.live)

    def live_urls(self) -> list[str]:
        with self._cond:
            return [r.url for r in self.replicas if r.live]

    def down_message(self) -> str:
        """One line: how many replicas, which, and the last error any of them gave."""
        urls = ", ".join(r.url for r in self.replicas)
        count = len(self.replicas)
        which = "the only replica of {} is" if count == 1 else f"all {count} replicas of {{}} are"
        last = self._last_error or "no error recorded"
        return f"{which.format(self.label)} down ({urls}); last error: {last}"


# --- requests over a pool -----------------------------------------------------------------------

Attempt = Callable[[Request, int], RequestResult]
"""Sends one request to the replica of that index; raises :class:`ReplicaFailed` when the replica failed."""


def run_on_fleet(pool: ReplicaPool, attempt: Attempt, request: Request) -> RequestResult:
    """The request's result from the first replica that answers it.

    Each failure takes its replica out and the request moves on; a request that failed on twice
    as many replicas as the fleet has (replicas that keep coming back and failing) comes back
    unsuccessful with its last error. :class:`FleetDown` when no replica is left.
    """
    started_at, started = int(time.time()), time.perf_counter()
    error = ""
    for _ in range(2 * len(pool.replicas)):
        lease = pool.acquire()
        try:
            result = attempt(request, lease.replica.index)
        except ReplicaFailed as exc:
            error = str(exc)
            pool.failed(lease, error)
            continue
        except BaseException:
            pool.released(lease)
            raise
        pool.answered(lease)
        return result
    return RequestResult(success=False, error=f"{pool.label}: failed on {2 * len(pool.replicas)} replicas in turn; "
                         f"last: {error}", request_time=time.perf_counter() - started, request_datetime=started_at)


def stream_over_fleet(pool: ReplicaPool, attempt: Attempt, requests: Sequence[Request], thread_name: str,
                      on_abort: Callable[[], None]) -> Iterator[Finished]:
    """Results as they finish, the requests spread over the pool's replicas.

    When the fleet goes down, the requests under way finish and every result that came back is
    yielded (so it is cached) before :class:`FleetDown` is raised. When the caller stops or an
    attempt raises anything else, the requests not yet started are dropped and ``on_abort`` runs.
    """
    if not requests:
        return
    workers = min(pool.capacity * len(pool.replicas), len(requests))
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
    positions: dict[Future[RequestResult], int] = {}
    down: FleetDown | None = None
    unanswered = 0
    try:
        for i, request in enumerate(requests):
            positions[executor.submit(run_on_fleet, pool, attempt, request)] = i
        pending = set(positions)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            finished: list[tuple[int, RequestResult]] = []
            for future in done:
                error = future.exception()
                if isinstance(error, FleetDown):
                    down, unanswered = error, unanswered + 1
                elif error is not None:
                    raise error
                else:
                    finished.append((positions[future], future.result()))
            if finished:
                finished.sort(key=lambda item: item[0])
                yield [i for i, _ in finished], [result for _, result in finished]
    except BaseException:
        on_abort()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    if down is not None:
        raise FleetDown(f"{down} ({unanswered} of {len(requests)} requests unanswered)")
