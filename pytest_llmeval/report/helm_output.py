"""HELM's per-run output files, so HELM's own summarizer and users' scripts read our runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_llmeval.run_result import InstanceResult, RunResult

RUN_FILES = ("run_spec.json", "scenario.json", "scenario_state.json", "per_instance_stats.json", "stats.json")


def run_dir(output_path: Path, suite: str, run_name: str) -> Path:
    """``<output>/runs/<suite>/<run name>``; ``/`` in model names becomes ``_`` as in HELM."""
    return output_path / "runs" / suite / run_name.replace("/", "_")


_one_line = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(value, ensure_ascii=False), one encoder


def json_lines(data: Any, depth: int, indent: str = "") -> str:
    """JSON with the outer ``depth`` levels indented and each value below them on one line.

    ``json.dumps(indent=...)`` runs CPython's pure-Python encoder, seconds for a large run; a
    value on one line goes through the C encoder. The file still reads (and diffs) one request
    state or instance per line, and any JSON reader parses it to the same data. An iterator
    stands for a list whose items are made one at a time: each is encoded and dropped before the
    next exists, so a large run's dicts never pile up for the garbage collector to walk.
    """
    if depth > 0 and isinstance(data, (list, tuple, Iterator)):
        inner = indent + "  "
        lines = [inner + (_one_line(v) if depth == 1 else json_lines(v, depth - 1, inner)) for v in data]
        return "[\n" + ",\n".join(lines) + f"\n{indent}]" if lines else "[]"
    if depth > 0 and isinstance(data, dict) and data and all(isinstance(k, str) for k in data):
        inner = indent + "  "
        items = [f"{inner}{_one_line(k)}: {json_lines(v, depth - 1, inner)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    return _one_line(data)


def _write_json(path: Path, data: Any, depth: int | None = None) -> None:
    """Write atomically so a reader (or a killed run) never sees half a file. Small files are
    indented as HELM writes them; large ones pass ``depth`` (see :func:`json_lines`)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(data, indent=2, ensure_ascii=False) if depth is None else json_lines(data, depth)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _instance_json(instance: InstanceResult) -> dict[str, Any]:
    head = instance.head.instance
    return {"instance_id": head.id, **({"perturbation": head.perturbation.to_json()} if head.perturbation else {}),
            "train_trial_index": instance.head.train_trial_index, "stats": [s.to_json() for s in instance.stats]}


def write_run(result: RunResult) -> None:
    """The five files of ``result``'s run folder, from the result alone."""
    directory = result.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "run_spec.json", result.run_spec.to_json())
    _write_json(directory / "scenario.json", result.scenario.to_json())
    _write_json(directory / "scenario_state.json", {
        "adapter_spec": result.run_spec.adapter_spec.to_json(),
        "request_states": (s.to_json() for s in result.states),
    }, depth=2)
    _write_json(directory / "per_instance_stats.json", (_instance_json(i) for i in result.instances), depth=1)
    _write_json(directory / "stats.json", [s.to_json() for s in result.helm_stats])
