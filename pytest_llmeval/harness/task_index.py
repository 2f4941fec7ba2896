"""Which lm-eval tasks a name stands for: lm-eval's own ``TaskManager`` index, read without
building any task (so collection loads no data).

A task name gives one item; a group (``mmlu``) or a tag gives one item per task under it, each
knowing the groups it sits in, so the summary can aggregate them as lm-eval does. User task
folders are found as ``lm_eval --include_path`` finds them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError


@dataclass(frozen=True)
class GroupInfo:
    """A group an item's task sits in: its config (aggregation, alias, version) and every task
    under it, so its aggregate can be computed from the tasks' results alone."""

    name: str
    config: dict[str, Any]
    tasks: tuple[str, ...]
    subgroups: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "tasks": list(self.tasks), "subgroups": list(self.subgroups)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupInfo:
        return cls(str(data["name"]), dict(data.get("config") or {}), tuple(data.get("tasks") or ()),
                   tuple(data.get("subgroups") or ()))


def require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise ConfigError("lm-eval entries need lm-evaluation-harness: pip install 'pytest-llmeval[lmeval]'",
                          field="description") from None


@functools.lru_cache(maxsize=4)
def task_manager(include_paths: tuple[str, ...] = ()) -> Any:
    """lm-eval's TaskManager over its own tasks and ``include_paths`` (later ones win), built once
    per process: indexing thousands of task files takes seconds."""
    require_lm_eval()
    import logging

    from lm_eval.tasks import TaskManager

    for path in include_paths:
        if not Path(path).is_dir():
            raise ConfigError(f"lm-eval include path {path!r} is not a folder", field="llmeval_lm_eval_include")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    return TaskManager(include_path=list(include_paths) or None)


def _kind(entry: Any) -> str:
    return str(entry.kind.name)


def _children(manager: Any, name: str) -> list[str | dict[str, Any]]:
    """A group's or tag's direct members: names, or inline task configs."""
    entry = manager.task_index[name]
    if _kind(entry) == "TAG":
        return sorted(entry.tags)
    members = (entry.cfg or {}).get("task") or []
    return list(members if isinstance(members, list) else [members])


def _config_for(entry: Any) -> dict[str, Any]:
    cfg = dict(entry.cfg or {})
    cfg.pop("task", None)
    return {k: v for k, v in cfg.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}


@dataclass(frozen=True)
class TaskLeaf:
    """One task an entry runs: its name and the groups above it, outermost first."""

    name: str
    groups: tuple[str, ...]


def expand(name: str, include_paths: Sequence[str] = ()) -> list[TaskLeaf]:
    """The tasks ``name`` (a task, group or tag) stands for, in lm-eval's order; unknown names
    fail with the closest known ones."""
    manager = task_manager(tuple(include_paths))
    if name not in manager.task_index:
        import difflib

        close = difflib.get_close_matches(name, manager.all_tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown lm-eval task {name!r}{hint}", field="task")
    leaves: list[TaskLeaf] = []

    def walk(current: str, above: tuple[str, ...]) -> None:
        entry = manager.task_index[current]
        kind = _kind(entry)
        if kind in ("TASK", "PY_TASK"):
            leaves.append(TaskLeaf(current, above))
            return
        inside = (*above, current) if kind == "GROUP" else above
        for child in _children(manager, current):
            if isinstance(child, dict):
                raise ConfigError(f"lm-eval group {current!r} defines a task inline ({child.get('task')!r}); "
                                  f"name the group's tasks in their own files to run them as items", field="task")
            if child not in manager.task_index:
                raise ConfigError(f"lm-eval group {current!r} names unknown task {child!r}", field="task")
            walk(str(child), inside)

    walk(name, ())
    return leaves


def group_infos(groups: Sequence[str], include_paths: Sequence[str] = ()) -> list[GroupInfo]:
    """Each named group's config and the tasks and groups under it."""
    manager = task_manager(tuple(include_paths))
    infos = []
    for group in groups:
        entry = manager.task_index[group]
        leaves = expand(group, include_paths)
        below = sorted({g for leaf in leaves for g in leaf.groups[leaf.groups.index(group) + 1:]})
        infos.append(GroupInfo(group, _config_for(entry), tuple(leaf.name for leaf in leaves), tuple(below)))
    return infos
