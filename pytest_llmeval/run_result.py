"""What one run produced, as one value: the input of every writer.

The pipeline (``pipeline.py``) builds a :class:`RunResult`; the HELM files
(``report/helm_output.py``), the report's run records (``report/run_records.py``) and the item's
JUnit properties (``collect.py``) are all written from it, so none of them reads back a file
another one has just written, and nothing is left on the request states for a later reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.gates import pick_stat
from pytest_llmeval.metrics.stat import Stat
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.scenario import Scenario

if TYPE_CHECKING:
    from pytest_llmeval.harness.outcome import HarnessOutcome

ResultT = TypeVar("ResultT")


@dataclass
class InstanceResult:
    """One instance in one train trial (and perturbation): its request states, in the order sent
    (one per option for separate multiple choice, else one), and the stats computed from them
    (none when one of its requests failed)."""

    states: list[RequestState]
    stats: list[Stat] = field(default_factory=list)
    # The score of each reference the answer was picked by (lm-eval's per-choice log-likelihoods).
    reference_scores: list[float] = field(default_factory=list)

    @property
    def head(self) -> RequestState:
        """The first state: its instance and train trial are the whole group's."""
        return self.states[0]


@dataclass
class RunResult:
    """Everything one run produced, for the gates, the HELM files, the report and JUnit."""

    run_spec: RunSpec
    scenario: Scenario
    states: list[RequestState]  # every request state, in the order the adapter built them
    instances: list[InstanceResult]  # the same states grouped per instance, with their stats
    # Every instance's stats pooled (and the worst case over perturbations): the instance-level
    # values the gates, the terminal table, the report, the baselines and JUnit use.
    stats: list[Stat]
    output_dir: Path  # the HELM run folder
    seconds: float
    requests: int = 0  # requests answered, by the cache or the model
    cache_hits: int = 0  # of those, answered by the cache
    failures: list[str] = field(default_factory=list)  # ``<instance id>: <error>`` per failed request
    # HELM's stats.json: per train trial the instances' means, merged over trials (so ``count`` is
    # the number of trials), with HELM's derived and worst-case stats and ``num_instances``.
    helm_stats: list[Stat] = field(default_factory=list)
    # An lm-eval task's own results and samples, for its results files and group aggregates.
    harness: HarnessOutcome | None = None

    @property
    def main_stat(self) -> Stat | None:
        return pick_stat(self.stats, self.run_spec.main_metric)


class RunFailed(LLMEvalError, Generic[ResultT]):
    """A run that failed part-way: ``error`` says why, ``result`` holds what it had done by then
    (its request and cache counts, the states answered, the stats computed), so the summary
    shows the real counts of a failed run. The message is the error's own."""

    def __init__(self, error: BaseException, result: ResultT) -> None:
        super().__init__(str(error))
        self.error = error
        self.result = result
