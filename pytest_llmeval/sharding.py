"""``--llmeval-shard K/N``: keep the K-th of N shares of the collected items, for CI matrix jobs.

Every shard computes the whole partition itself from the same collection, so N jobs on N
machines (and every pytest-xdist worker of one job, each of which collects on its own) agree on
it without talking to each other. Evaluation items are spread by their expected cost, greedy
longest-processing-time first with ties broken by node id; other tests go round-robin in node
id order. Over all N shards each item runs exactly once; ``llmeval merge`` joins their outputs.

An evaluation's expected cost is its number of requests: its planned instances (the
``--llmeval-max-eval-instances``/``--llmeval-max-episodes`` limit, else the entry's own, else what
the last run of it evaluated) times the requests per instance the last run of it (or of its
scenario) needed, both read from the ``llmeval_summary.json`` of the suite's last unsharded or
merged session in the output folder (each shard must see the same one: restore the merged output
in every job); without any of those, :data:`DEFAULT_INSTANCES` instances of one request each. The
request cache is not consulted: its entries are per deployment, not per run.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_llmeval.options import Settings, pick_limit
from pytest_llmeval.report.summary import SUMMARY_FILE

log = logging.getLogger("pytest_llmeval.sharding")

DEFAULT_INSTANCES = 100  # a run with no limit and no history: about an MMLU subject's test split
COLLECTED_KEY = pytest.StashKey[int]()  # items collected (and selected) before the shard took its share


def partition(costs: Sequence[tuple[str, float]], shards: int) -> list[list[str]]:
    """Greedy longest-processing-time: the costliest job first (ties: the smaller node id) onto
    the shard with the least cost so far (ties: the lower shard). The same jobs give the same
    partition whatever order they come in."""
    assigned: list[list[str]] = [[] for _ in range(shards)]
    loads = [(0.0, index) for index in range(shards)]
    heapq.heapify(loads)
    for nodeid, cost in sorted(costs, key=lambda job: (-job[1], job[0])):
        load, index = heapq.heappop(loads)
        assigned[index].append(nodeid)
        heapq.heappush(loads, (load + cost, index))
    return assigned


def round_robin(nodeids: Iterable[str], shards: int) -> list[list[str]]:
    """The n-th node id in sorted order goes to shard n mod N."""
    assigned: list[list[str]] = [[] for _ in range(shards)]
    for n, nodeid in enumerate(sorted(nodeids)):
        assigned[n % shards].append(nodeid)
    return assigned


@dataclass(frozen=True)
class History:
    """The last session's runs, from its summary: requests and instances per node id."""

    runs: dict[str, tuple[int, int]] = field(default_factory=dict)  # nodeid -> (requests, instances)

    @classmethod
    def read(cls, path: Path) -> History:
        """The costs of a whole suite's summary (an unsharded session's or ``llmeval merge``'s): every
        shard must read the same costs to compute the same split, so a shard's own summary, which
        holds only its share, gives none. An unreadable summary gives none either (the split is
        only less balanced)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("shard"):  # one shard's share: the other shards would read other costs
                log.info("--llmeval-shard: %s is the summary of shard %s, not of the whole suite: no costs",
                         path, data["shard"])
                return cls()
            runs = {str(r["nodeid"]): (int(r.get("requests") or 0), int(r.get("instances") or 0))
                    for r in data["runs"] if r.get("outcome") != "error"}
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.info("--llmeval-shard: %s gives no costs: %s", path, exc)
            return cls()
        return cls(runs)

    def per_instance(self, nodeid: str) -> float | None:
        """Requests per instance of this item's last run, else the mean over its scenario's runs."""
        own = self.runs.get(nodeid)
        if own is not None and own[0] > 0 and own[1] > 0:
            return own[0] / own[1]
        scenario = _scenario(nodeid)
        rates = [r / i for n, (r, i) in self.runs.items() if r > 0 and i > 0 and _scenario(n) == scenario]
        return sum(rates) / len(rates) if rates else None


def _scenario(nodeid: str) -> str:
    """``eval_x.yaml::mmlu:subject=anatomy[model]`` -> ``mmlu``."""
    return nodeid.rsplit("::", 1)[-1].split(":", 1)[0].split("[", 1)[0]


def planned_instances(item: pytest.Item, settings: Settings) -> int | None:
    """The instance (or episode) limit the item will run with, when it has one."""
    entry = getattr(item, "entry", None)
    if entry is None:
        return None
    if hasattr(entry, "max_episodes"):
        return pick_limit(settings.max_episodes, entry.max_episodes)
    return pick_limit(settings.max_eval_instances, getattr(entry, "max_eval_instances", None))


def expected_cost(item: pytest.Item, settings: Settings, history: History) -> float:
    own = history.runs.get(item.nodeid)
    instances = planned_instances(item, settings)
    if instances is None:
        instances = own[1] if own is not None and own[1] > 0 else DEFAULT_INSTANCES
    return float(instances) * (history.per_instance(item.nodeid) or 1.0)


def is_eval_item(item: pytest.Item) -> bool:
    return item.get_closest_marker("llmeval") is not None


@dataclass(frozen=True)
class Sharder:
    """Shard ``index`` (1-based) of ``count``; the costs' history from the last summary."""

    index: int
    count: int
    history: History
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Sharder | None:
        if settings.shard is None:
            return None
        summary = Path(settings.output_path) / "runs" / settings.suite / SUMMARY_FILE
        return cls(settings.shard[0], settings.shard[1], History.read(summary), settings)

    def keep(self, items: Sequence[pytest.Item]) -> set[str]:
        """The node ids this shard runs."""
        evals = [(item.nodeid, expected_cost(item, self.settings, self.history))
                 for item in items if is_eval_item(item)]
        plain = [item.nodeid for item in items if not is_eval_item(item)]
        return {*partition(evals, self.count)[self.index - 1], *round_robin(plain, self.count)[self.index - 1]}

    def select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Hook body: keep this shard's items and report the others as deselected."""
        kept = self.keep(items)
        deselected = [item for item in items if item.nodeid not in kept]
        config.stash[COLLECTED_KEY] = len(items)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.nodeid in kept]


def shard_items(config: pytest.Config, settings: Settings, items: list[pytest.Item]) -> None:
    sharder = Sharder.from_settings(settings)
    if sharder is not None:
        sharder.select(config, items)


def shard_finished(session: pytest.Session, settings: Settings) -> None:
    """A shard whose share of a non-empty collection is empty passes, rather than exiting as
    "no tests collected": with more shards than items, some CI jobs have nothing to do."""
    if (settings.shard is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and session.config.stash.get(COLLECTED_KEY, 0) > 0):
        session.exitstatus = pytest.ExitCode.OK


__all__ = ["DEFAULT_INSTANCES", "History", "Sharder", "expected_cost", "partition", "round_robin", "shard_finished",
           "shard_items"]
