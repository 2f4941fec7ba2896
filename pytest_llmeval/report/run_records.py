"""What the report, the summary and the baselines know about one run: plain, JSON-able records.

A record is built where the run happened (an xdist worker or the only process), travels to
the controller as JSON through ``config.workeroutput``, and is the single source for
``llmeval_summary.json``, ``llmeval_report.html``, the terminal table and saved baselines.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.gates import pick_stat
from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.plain import plain
from pytest_llmeval.report.significance import confidence_interval
from pytest_llmeval.run_result import RunResult

if TYPE_CHECKING:
    from pytest_llmeval.games.episode_runner import GameRunResult

log = logging.getLogger("pytest_llmeval.report")


@dataclass
class InstanceRecord:
    """One evaluated instance (or game episode): what was asked, answered and scored."""

    key: str
    id: str
    split: str | None
    input: str = ""
    prompt: str = ""
    references: list[dict[str, Any]] = field(default_factory=list)  # [{"text", "correct"}]
    output: str = ""  # the raw completion text
    prediction: str | None = None  # the answer as scored (a letter mapped to its option)
    metrics: dict[str, float] = field(default_factory=dict)
    correct: bool | None = None  # None when the main metric is not right/wrong
    perturbation: str | None = None  # a perturbed copy (HELM's robustness/fairness augmentation)

    def to_json(self) -> dict[str, Any]:
        """``dataclasses.asdict``'s dict, built field by field: a report holds thousands of these."""
        return {"key": self.key, "id": self.id, "split": self.split, "input": self.input, "prompt": self.prompt,
                "references": plain(self.references), "output": self.output, "prediction": self.prediction,
                "metrics": plain(self.metrics), "correct": self.correct, "perturbation": self.perturbation}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class RunRecord:
    """One item's run: identity, main metric with its 95% interval, timing, outcome, instances."""

    nodeid: str
    name: str  # the item name: ``mmlu:subject=anatomy[local/smollm2-135m-instruct]``
    key: str  # the baseline key (the item name)
    scenario_key: str  # the key without adapter settings, to compare a changed setting with its baseline
    model: str
    kind: str = "scenario"  # "scenario" or "game"
    scenario: str = ""
    run: str = ""  # HELM's run name (the run folder's name)
    main_metric: str = ""
    split: str | None = None
    value: float | None = None
    count: int = 0
    ci95: list[float] | None = None
    stats: list[dict[str, Any]] = field(default_factory=list)  # HELM Stat JSON
    requests: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    output_dir: str = ""
    worker: str = "master"
    outcome: str = "passed"  # passed, failed or error
    failures: list[str] = field(default_factory=list)
    instances: list[InstanceRecord] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    game: dict[str, str] | None = None  # {"game", "experiment", "players"}: finds the run's episode records
    # An lm-eval task's {"task", "metrics" (lm-eval's), "groups"}: the group aggregates' input.
    lm_eval: dict[str, Any] | None = None

    def to_json(self, instances: bool = True) -> dict[str, Any]:
        """``dataclasses.asdict``'s dict (without ``instances`` unless asked), built field by field."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name != "instances":
                data[name] = plain(getattr(self, name))
            elif instances:
                data[name] = [i.to_json() if type(i) is InstanceRecord else plain(i) for i in self.instances]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["instances"] = [InstanceRecord.from_json(i) for i in data.get("instances", [])]
        return cls(**values)

    @property
    def label(self) -> str:
        """The item name without the model: the leaderboard's column."""
        suffix = f"[{self.model}]"
        return self.name[: -len(suffix)] if self.name.endswith(suffix) else self.name

    def stat_objects(self) -> list[Stat]:
        return [stat_from_json(s) for s in self.stats]


def stat_from_json(data: dict[str, Any]) -> Stat:
    name = data.get("name", {})
    return Stat(MetricName(name.get("name", ""), name.get("split"), name.get("sub_split"), name.get("perturbation")),
                int(data.get("count", 0)), float(data.get("sum", 0.0)), float(data.get("sum_squared", 0.0)),
                data.get("min"), data.get("max"))


def scenario_key(description: Any, model: str) -> str:
    """A run's identity without its adapter settings (``max_train_instances``, ``temperature``, ...)."""
    from pytest_llmeval.runspec import GENERIC_KEYS

    return f"{description.without('model', *GENERIC_KEYS)}[{model}]"


def main_figures(stats: list[Stat], metric: str) -> dict[str, Any]:
    """The main metric's split, mean, count and 95% interval, as the gates pick it."""
    stat = pick_stat(stats, metric)
    if stat is None or stat.mean is None:
        return {"split": None, "value": None, "count": 0, "ci95": None}
    lo, hi = confidence_interval(stat.count, stat.sum, stat.sum_squared, stat.min, stat.max)
    ci = None if math.isnan(lo) else [lo, hi]
    return {"split": stat.name.split, "value": stat.mean, "count": stat.count, "ci95": ci}


def is_right(value: float | None) -> bool | None:
    """Right/wrong only for 0/1 scores; other scales have no verdict."""
    if value is None or value not in (0.0, 1.0):
        return None
    return value == 1.0


def _prompt_text(request: Any) -> str:
    if getattr(request, "messages", None):
        return "\n\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
    return str(getattr(request, "prompt", ""))


def _stat_values(stats: list[Stat]) -> dict[str, float]:
    """Each metric's mean, first-seen (one instance's stats share its split and perturbation)."""
    values: dict[str, float] = {}
    for stat in stats:
        mean = stat.mean
        if mean is not None:
            values.setdefault(stat.name.name, float(mean))
    return values


def _perturbation(instance: Any) -> str | None:
    perturbation = getattr(instance, "perturbation", None)
    return None if perturbation is None else str(getattr(perturbation, "name", perturbation))


def _answer(group: list[Any], metrics: dict[str, float]) -> tuple[str, str | None]:
    """(raw output, scored prediction); for one request per option, the option the scores picked."""
    from pytest_llmeval.metrics.basic import prediction

    head = group[0]
    if len(group) == 1:
        output = head.result.completions[0].text if head.result and head.result.completions else ""
        return output, prediction(head)
    index = metrics.get("predicted_index")
    references = head.instance.references
    if index is not None and 0 <= int(index) < len(references):
        chosen = references[int(index)].output
        return chosen, chosen
    return "", None


def _references(references: Any, scores: list[float]) -> list[dict[str, Any]]:
    shown = [{"text": r.output, "correct": r.is_correct} for r in references]
    if len(scores) == len(shown):
        for reference, score in zip(shown, scores):
            reference["score"] = score
    return shown


def instance_records(result: RunResult, main_metric: str) -> list[InstanceRecord]:
    """Instance records from a run's result: prompt, references, output, per-instance scores."""
    records: list[InstanceRecord] = []
    seen: dict[str, int] = {}
    for instance_result in result.instances:
        group = instance_result.states
        head = group[0]
        instance = head.instance
        perturbation = _perturbation(instance)
        base_key = f"{instance.split}/{instance.id}/{head.train_trial_index}"
        if perturbation:
            base_key += f"/{perturbation}"
        seen[base_key] = seen.get(base_key, 0) + 1
        key = base_key if seen[base_key] == 1 else f"{base_key}#{seen[base_key]}"
        metrics = _stat_values(instance_result.stats)
        output, predicted = _answer(group, metrics)
        records.append(InstanceRecord(
            key=key, id=instance.id, split=instance.split, input=instance.input,
            prompt="\n\n---\n\n".join(_prompt_text(s.request) for s in group),
            references=_references(instance.references, instance_result.reference_scores),
            output=output, prediction=predicted, metrics=metrics,
            correct=is_right(metrics.get(main_metric)), perturbation=perturbation,
        ))
    return records


def record_from_result(*, nodeid: str, name: str, key: str, scenario_key: str, model: str, result: RunResult,
                       worker: str = "master", kind: str = "scenario") -> RunRecord:
    """The record of a finished run, from its result alone."""
    run_spec = result.run_spec
    stats = list(result.stats)
    figures = main_figures(stats, run_spec.main_metric)
    return RunRecord(
        nodeid=nodeid, name=name, key=key, scenario_key=scenario_key, model=model, kind=kind,
        scenario=name.split(":", 1)[0].split("[", 1)[0], run=run_spec.name, main_metric=run_spec.main_metric,
        stats=[s.to_json() for s in stats], requests=result.requests, cache_hits=result.cache_hits,
        seconds=round(float(result.seconds), 3), output_dir=str(result.output_dir), worker=worker,
        instances=instance_records(result, run_spec.main_metric), lm_eval=_lm_eval_part(result), **figures,
    )


def _lm_eval_part(result: RunResult) -> dict[str, Any] | None:
    outcome = result.harness
    if outcome is None:
        return None
    return {"task": outcome.task, "metrics": outcome.task_metrics, "groups": [g.to_json() for g in outcome.groups]}


def record_from_game(*, nodeid: str, name: str, model: str, result: GameRunResult,
                     worker: str = "master") -> RunRecord:
    """The record of a game item's run (its episodes are the report's, see ``episodes.py``)."""
    figures = main_figures(result.stats, result.main_metric)
    quality = result.quality
    if figures["value"] is None and not math.isnan(quality):
        figures.update(value=quality, count=len(result.episodes))
    return RunRecord(
        nodeid=nodeid, name=name, key=name, scenario_key=name, model=model, kind="game",
        scenario=result.spec.game_name, run=result.name, main_metric=result.main_metric,
        stats=[s.to_json() for s in result.stats], requests=result.requests, cache_hits=result.cache_hits,
        seconds=round(float(result.seconds), 3), output_dir=str(result.run_dir), worker=worker,
        game={"game": result.spec.game_name, "experiment": result.experiment, "players": result.players},
        **figures,
    )


def record_from_error(*, nodeid: str, name: str, model: str, error: BaseException, worker: str = "master",
                      partial: RunResult | GameRunResult | None = None) -> RunRecord:
    """A run that raised: listed as an error, so the summary never silently drops it. A run that
    failed after sending requests keeps its counts, timing, folder and instances, not its figures
    (a score over the instances that happened to succeed is not the run's)."""
    if isinstance(partial, RunResult):
        record = record_from_result(nodeid=nodeid, name=name, key=name, scenario_key=name, model=model,
                                    result=partial, worker=worker)
    elif partial is not None:
        record = record_from_game(nodeid=nodeid, name=name, model=model, result=partial, worker=worker)
    else:
        record = RunRecord(nodeid=nodeid, name=name, key=name, scenario_key=name, model=model,
                           scenario=name.split(":", 1)[0].split("[", 1)[0], worker=worker)
    record.split, record.value, record.count, record.ci95, record.stats = None, None, 0, None, []
    record.outcome = "error"
    record.failures = [f"{type(error).__name__}: {error}"]
    return record


def record_from_properties(nodeid: str, name: str, props: dict[str, Any], outcome: str,
                           longrepr: str = "") -> RunRecord:
    """A record for an item of another plugin or of the user's own that handed the report no run
    result, only its ``llmeval_*`` properties (the plugin's own items never come here).

    The figures come from the ``stats.json`` of the folder the item names in ``llmeval_output``
    (its own files: the interface documented for such items), else from the properties.
    """
    model = str(props.get("llmeval_model", ""))
    metric = str(props.get("llmeval_metric", ""))
    output_dir = str(props.get("llmeval_output", ""))
    stats: list[Stat] = []
    if output_dir:
        try:
            stats = [stat_from_json(s) for s in json.loads((Path(output_dir) / "stats.json").read_text("utf-8"))]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.debug("no stats.json for %s: %s", nodeid, exc)
    figures = main_figures(stats, metric)
    if figures["value"] is None and isinstance(props.get("llmeval_value"), (int, float)):
        figures.update(value=float(props["llmeval_value"]), count=int(props.get("llmeval_count") or 0))
    game = props.get("llmeval_game")
    scenario = name.split(":", 1)[0].split("[", 1)[0]
    if isinstance(game, dict) and game.get("game"):
        scenario = str(game["game"])
    return RunRecord(
        nodeid=nodeid, name=name, key=name, scenario_key=name, model=model,
        kind="game" if isinstance(game, dict) else str(props.get("llmeval_kind", "scenario")), scenario=scenario,
        run=str(props.get("llmeval_run", "")), main_metric=metric, stats=[s.to_json() for s in stats],
        requests=int(props.get("llmeval_requests") or 0), cache_hits=int(props.get("llmeval_cache_hits") or 0),
        seconds=float(props.get("llmeval_seconds") or 0.0), output_dir=output_dir,
        worker=str(props.get("llmeval_worker", "master")), outcome=outcome,
        failures=[longrepr] if outcome != "passed" and longrepr else [],
        game={k: str(game[k]) for k in ("game", "experiment", "players") if k in game} if isinstance(game, dict)
        else None, **figures,
    )
