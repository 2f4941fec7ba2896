"""Which lm-eval tasks a name stands for: lm-eval's own ``TaskManager`` index, read without
building any task (so collection loads no data).

A task name gives one item; a group (``mmlu``) or a tag gives one item per task under it, each
knowing the groups it sits in, so the summary can aggregate them as lm-eval does. User task
folders are found as ``lm_eval --include_path`` finds them.

Indexing lm-eval's 14,000 task files takes about ten seconds, in every process that collects
(each xdist worker). What collection needs of the index (kinds, files, members, metric and
group settings) is kept as a snapshot in the user cache, keyed by lm-eval's version and the
task folders' files; a task is then built by a ``TaskManager`` over its own folder only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.paths import user_cache_dir


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


# What a snapshot keeps of a task's or group's config: what collection and the summary read.
_KEPT = ("group", "group_alias", "aggregate_metric_list", "metadata", "metric_list", "filter_list", "output_type",
         "task")


def _plain(value: Any) -> Any:
    """The JSON-able part of a config value (lm-eval's unresolved !function tags are dropped)."""
    if isinstance(value, dict):
        kept = {str(k): _plain(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not _DROP}
    if isinstance(value, (list, tuple)):
        return [v for v in (_plain(item) for item in value) if v is not _DROP]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return _DROP


_DROP = object()


def _entry_json(entry: Any) -> dict[str, Any]:
    cfg = {k: _plain(v) for k, v in (entry.cfg or {}).items() if k in _KEPT}
    return {"kind": str(entry.kind.name), "yaml": str(entry.yaml_path) if entry.yaml_path else None,
            "tags": sorted(entry.tags), "cfg": {k: v for k, v in cfg.items() if v is not _DROP}}


def _tree_stamp(folder: Path) -> list[Any]:
    """A folder's task files, as (count, newest change): a changed or added file makes a new key."""
    count, newest = 0, 0.0
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".yaml"):
                count += 1
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return [str(folder), count, newest]


def _snapshot_key(include_paths: tuple[str, ...]) -> str:
    import lm_eval
    from lm_eval import tasks

    builtin = Path(tasks.__file__).parent
    stamp: list[Any] = [getattr(lm_eval, "__version__", ""), str(builtin)]
    if "site-packages" not in builtin.parts:  # an lm-eval checkout: its files may change
        stamp.append(_tree_stamp(builtin))
    stamp.extend(_tree_stamp(Path(p)) for p in include_paths)
    return hashlib.sha256(json.dumps(stamp).encode("utf-8")).hexdigest()[:24]


@functools.lru_cache(maxsize=4)
def snapshot(include_paths: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every name lm-eval's index knows, with its kind, file, members and settings."""
    require_lm_eval()
    for path in include_paths:
        if not Path(path).is_dir():
            raise ConfigError(f"lm-eval include path {path!r} is not a folder", field="llmeval_lm_eval_include")
    stored = user_cache_dir() / "lm_eval_index" / f"{_snapshot_key(include_paths)}.json"
    try:
        return dict(json.loads(stored.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    index = {name: _entry_json(entry) for name, entry in task_manager(include_paths).task_index.items()}
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_name(f".{stored.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index), encoding="utf-8")
    tmp.replace(stored)
    return index


def task_manager_for(task: str, include_paths: Sequence[str] = ()) -> Any:
    """A TaskManager that builds ``task``: over the task's own folder when the snapshot knows
    it (indexing it takes milliseconds), else over everything."""
    entry = snapshot(tuple(include_paths)).get(task)
    if entry is None or not entry.get("yaml") or entry["kind"] not in ("TASK", "PY_TASK"):
        return task_manager(tuple(include_paths))
    return _folder_manager(str(Path(entry["yaml"]).parent))


@functools.lru_cache(maxsize=32)
def _folder_manager(folder: str) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False, include_path=folder)


def _children(index: dict[str, dict[str, Any]], name: str) -> list[str | dict[str, Any]]:
    """A group's or tag's direct members: names, or inline task configs."""
    entry = index[name]
    if entry["kind"] == "TAG":
        return list(entry["tags"])
    members = entry["cfg"].get("task") or []
    return list(members if isinstance(members, list) else [members])


def _config_for(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry["cfg"].items() if k != "task"}


def task_config(name: str, include_paths: Sequence[str] = ()) -> dict[str, Any]:
    """What the snapshot keeps of a task's config (its metrics, filters, output type)."""
    entry = snapshot(tuple(include_paths)).get(name)
    if entry is None:
        raise ConfigError(f"unknown lm-eval task {name!r}", field="task")
    return dict(entry["cfg"])


@dataclass(frozen=True)
class TaskLeaf:
    """One task an entry runs: its name and the groups above it, outermost first."""

    name: str
    groups: tuple[str, ...]


def expand(name: str, include_paths: Sequence[str] = ()) -> list[TaskLeaf]:
    """The tasks ``name`` (a task, group or tag) stands for, in lm-eval's order; unknown names
    fail with the closest known ones."""
    index = snapshot(tuple(include_paths))
    if name not in index:
        import difflib

        close = difflib.get_close_matches(name, sorted(index), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown lm-eval task {name!r}{hint}", field="task")
    leaves: list[TaskLeaf] = []

    def walk(current: str, above: tuple[str, ...]) -> None:
        kind = index[current]["kind"]
        if kind in ("TASK", "PY_TASK"):
            leaves.append(TaskLeaf(current, above))
            return
        inside = (*above, current) if kind == "GROUP" else above
        for child in _children(index, current):
            if isinstance(child, dict):
                raise ConfigError(f"lm-eval group {current!r} defines a task inline ({child.get('task')!r}); "
                                  f"name the group's tasks in their own files to run them as items", field="task")
            if child not in index:
                raise ConfigError(f"lm-eval group {current!r} names unknown task {child!r}", field="task")
            walk(str(child), inside)

    walk(name, ())
    return leaves


def group_infos(groups: Sequence[str], include_paths: Sequence[str] = ()) -> list[GroupInfo]:
    """Each named group's config and the tasks and groups under it."""
    index = snapshot(tuple(include_paths))
    infos = []
    for group in groups:
        leaves = expand(group, include_paths)
        below = sorted({g for leaf in leaves for g in leaf.groups[leaf.groups.index(group) + 1:]})
        infos.append(GroupInfo(group, _config_for(index[group]), tuple(leaf.name for leaf in leaves), tuple(below)))
    return infos
