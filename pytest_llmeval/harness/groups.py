"""lm-eval group aggregates (``mmlu`` over its 57 tasks) from the items' task results.

Each task of a group is its own item, possibly on another xdist worker; its record carries
lm-eval's metrics for the task and the groups it sits in. At session end lm-eval's own
``Group.aggregate`` (size-weighted means, pooled standard errors) combines them, per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmeval.harness.task_index import GroupInfo


@dataclass(frozen=True)
class _Leaf:
    """What lm-eval's aggregation reads of a task: its name."""

    task_name: str


def _group(info: GroupInfo) -> Any:
    """lm-eval's Group for ``info``, its leaf tasks given by name (no task is built)."""
    from lm_eval.api.group import Group

    class CollectedGroup(Group):
        def get_all_tasks(self, recursive: bool = True) -> list[Any]:
            return [_Leaf(name) for name in info.tasks]

    config = {k: v for k, v in info.config.items()
              if k in ("group", "group_alias", "aggregate_metric_list", "metadata")}
    config.setdefault("group", info.name)
    base = Group.from_config(config)
    return CollectedGroup(name=base.name, alias=base.alias, aggregate_metric_list=base.aggregate_metric_list,
                          metadata=base.metadata, _config=base._config)


def group_aggregates(records: list[Any]) -> list[dict[str, Any]]:
    """Per (model, group) lm-eval's aggregate of the tasks that ran, with how many of the
    group's tasks those are. ``records`` are run records with an ``lm_eval`` part."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    infos: dict[str, GroupInfo] = {}
    for record in records:
        part = getattr(record, "lm_eval", None)
        if not part or record.outcome == "error":
            continue
        by_model.setdefault(record.model, {})[str(part["task"])] = dict(part.get("metrics") or {})
        for data in part.get("groups") or []:
            info = GroupInfo.from_json(data)
            infos.setdefault(info.name, info)
    rows: list[dict[str, Any]] = []
    if not infos:
        return rows
    for model in sorted(by_model):
        tasks = by_model[model]
        for name in sorted(infos):
            info = infos[name]
            present = [t for t in info.tasks if t in tasks]
            if not present:
                continue
            metrics = _group(info).aggregate(tasks)
            rows.append({"model": model, "group": name, "alias": metrics.get("alias", name),
                         "tasks": len(present), "of": len(info.tasks), "metrics": dict(metrics)})
    return rows


def main_value(row: dict[str, Any]) -> tuple[str, float | None, float | None]:
    """The row's first aggregated metric: (lm-eval key, value, stderr)."""
    for key, value in row["metrics"].items():
        if "," in key and "_stderr," not in key and isinstance(value, (int, float)):
            stderr = row["metrics"].get(key.replace(",", "_stderr,", 1))
            return key, float(value), float(stderr) if isinstance(stderr, (int, float)) else None
    return "", None, None
