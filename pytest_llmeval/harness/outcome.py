"""What an lm-eval entry asks for (:class:`HarnessTask`) and what lm-eval answered
(:class:`HarnessOutcome`): plain values, so run specs, results and records carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeval.harness.task_index import GroupInfo
from pytest_llmeval.requests import Request, RequestResult

# lm_eval's --seed default: python's random, numpy, torch, few-shot sampling.
DEFAULT_SEEDS = (0, 1234, 1234, 1234)


@dataclass(frozen=True)
class HarnessTask:
    """An ``lm_eval:task=...`` entry's arguments, as lm_eval's command line takes them."""

    task: str
    groups: tuple[str, ...] = ()  # the groups the entry named, outermost first, that hold the task
    num_fewshot: int | None = None
    fewshot_as_multiturn: bool = False
    apply_chat_template: bool | str = False
    system_instruction: str | None = None
    gen_kwargs: str = ""  # lm_eval's "key=value,key=value"
    seeds: tuple[int | None, int | None, int | None, int | None] = DEFAULT_SEEDS
    include_paths: tuple[str, ...] = ()
    confirm_run_unsafe_code: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "groups": list(self.groups), "num_fewshot": self.num_fewshot,
                "fewshot_as_multiturn": self.fewshot_as_multiturn, "apply_chat_template": self.apply_chat_template,
                "system_instruction": self.system_instruction, "gen_kwargs": self.gen_kwargs,
                "seeds": list(self.seeds), "include_paths": list(self.include_paths),
                "confirm_run_unsafe_code": self.confirm_run_unsafe_code}


@dataclass
class HarnessOutcome:
    """lm-eval's results for one task (its ``results`` dict without the samples, and the
    samples), with what its files are named by."""

    task: str
    results: dict[str, Any]
    samples: dict[str, list[dict[str, Any]]]
    groups: list[GroupInfo] = field(default_factory=list)
    model_args: str = ""
    output_path: Path = Path("lm_eval")
    chat_template: str | None = None
    system_instruction: str | None = None
    fewshot_as_multiturn: bool = False

    @property
    def task_metrics(self) -> dict[str, Any]:
        """lm-eval's metrics of the task (``"acc,none"``, ``"acc_stderr,none"``, ``"alias"``, ...)."""
        return dict(self.results.get("results", {}).get(self.task, {}))

    @property
    def sample_count(self) -> int:
        counts = self.results.get("n-samples", {}).get(self.task, {})
        return int(counts.get("effective", len(self.samples.get(self.task, []))))


@dataclass
class Exchange:
    """One lm-eval request as we sent it: its kind, lm-eval's instance, our request and result."""

    kind: str
    instance: Any
    request: Request
    result: RequestResult | None = None


@dataclass
class Ledger:
    """Every exchange of a run, in the order sent, with the request and cache counts."""

    exchanges: list[Exchange] = field(default_factory=list)
    requests: int = 0
    cache_hits: int = 0
    failures: list[str] = field(default_factory=list)
